"""Every validation rule: bad input gets a 422 problem naming the field, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from referral_net.db.models import Location, Metadata, Organization, Service
from tests.factories import location_body, make_organization, organization_body, service_body

pytestmark = pytest.mark.db

SQUARE = [[[-91.6, 15.2], [-91.4, 15.2], [-91.4, 15.4], [-91.6, 15.4], [-91.6, 15.2]]]


def _counts(session: Session) -> tuple[int, ...]:
    return tuple(
        int(session.exec(select(func.count()).select_from(model)).one())
        for model in (Organization, Service, Location, Metadata)
    )


def _assert_rejected(
    client: TestClient,
    session: Session,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    field: str,
    fragment: str = "",
) -> None:
    before = _counts(session)
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    fields = [e["field"] for e in problem["errors"]]
    assert any(f.startswith(field) for f in fields), fields
    if fragment:
        assert fragment in response.text
    assert _counts(session) == before


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"latitude": 95.0, "longitude": -91.5}, "body", "latitude"),
        ({"latitude": -91.5181, "longitude": 14.8347}, "body", "swapped"),
        ({"latitude": 40.4, "longitude": -3.7}, "body", "outside Guatemala"),
        ({"latitude": 14.8, "longitude": None}, "body", "together"),
        ({"languages": ["xx"]}, "body.languages", ""),
        ({"languages": ["spanish"]}, "body.languages", ""),
        ({"phones": [{"number": "call me"}]}, "body.phones", ""),
        ({"intake_phone": "12"}, "body.intake_phone", ""),
        ({"visibility": "secret"}, "body.visibility", ""),
        ({"nickname": "x"}, "body.nickname", ""),
        ({"name": ""}, "body.name", ""),
    ],
)
def test_bad_location_is_rejected_and_nothing_written(
    client: TestClient,
    session: Session,
    steward_headers: dict[str, str],
    overrides: dict[str, Any],
    field: str,
    fragment: str,
) -> None:
    org = make_organization(session)
    body = location_body(org.id, **overrides)
    _assert_rejected(client, session, "/api/v1/locations", body, steward_headers, field, fragment)


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        (
            {"service_areas": [{"extent": {"type": "Polygon", "coordinates": [SQUARE[0][:-1]]}}]},
            "body.service_areas",
            "closed",
        ),
        (
            {
                "service_areas": [
                    {
                        "extent": {
                            "type": "Polygon",
                            "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]],
                        }
                    }
                ]
            },
            "body.service_areas",
            "",
        ),
        (
            {
                "service_areas": [
                    {
                        "extent": {
                            "type": "Polygon",
                            "coordinates": [
                                [[-100, 0], [-80, 0], [-80, 20], [-100, 20], [-100, 0]]
                            ],
                        }
                    }
                ]
            },
            "body.service_areas",
            "area",
        ),
        ({"service_areas": [{"extent": {"type": "Point", "coordinates": [0, 0]}}]}, "body", ""),
        ({"languages": ["zzz"]}, "body.languages", ""),
        ({"eligibility": {"minimum_age": 18, "maximum_age": 12}}, "body.eligibility", ""),
        ({"eligibility": {"genders_served": ["robot"]}}, "body.eligibility", ""),
        ({"schedules": [{"byday": "XX", "opens_at": "08:00", "closes_at": "10:00"}]}, "body", ""),
        ({"schedules": [{"byday": "MO", "opens_at": "08:00"}]}, "body.schedules", ""),
        ({"capacity": [{"unit": "bed", "available": 5, "maximum": 2}]}, "body.capacity", ""),
        ({"capacity": [{"unit": "bed", "available": -1}]}, "body.capacity", ""),
        ({"email": "not-an-email"}, "body.email", ""),
        ({"url": "ftp://example.org"}, "body.url", ""),
    ],
)
def test_bad_service_is_rejected_and_nothing_written(
    client: TestClient,
    session: Session,
    steward_headers: dict[str, str],
    taxonomy_loaded: None,
    overrides: dict[str, Any],
    field: str,
    fragment: str,
) -> None:
    org = make_organization(session)
    body = service_body(org.id, **overrides)
    _assert_rejected(client, session, "/api/v1/services", body, steward_headers, field, fragment)


def test_unknown_category_is_rejected_and_nothing_written(
    client: TestClient, session: Session, steward_headers: dict[str, str], taxonomy_loaded: None
) -> None:
    org = make_organization(session)
    before = _counts(session)
    response = client.post(
        "/api/v1/services",
        json=service_body(org.id, categories=["protection.nonsense"]),
        headers=steward_headers,
    )
    assert response.status_code == 422
    problem = response.json()
    assert [e["field"] for e in problem["errors"]] == ["categories"]
    assert "protection.nonsense" not in response.text  # rejected values are never echoed
    assert _counts(session) == before


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"email": "nope"}, "body.email"),
        ({"website": "javascript:alert(1)"}, "body.website"),
        ({"year_incorporated": 1200}, "body.year_incorporated"),
        ({"phones": [{"number": "+1 abc"}]}, "body.phones"),
        ({"status": "active"}, "body.status"),
    ],
)
def test_bad_organization_is_rejected_and_nothing_written(
    client: TestClient,
    session: Session,
    steward_headers: dict[str, str],
    overrides: dict[str, Any],
    field: str,
) -> None:
    body = organization_body(**overrides)
    _assert_rejected(client, session, "/api/v1/organizations", body, steward_headers, field)


def test_bad_patch_leaves_the_record_unchanged(
    client: TestClient, session: Session, steward_headers: dict[str, str]
) -> None:
    org = make_organization(session)
    loc = client.post(
        "/api/v1/locations", json=location_body(org.id), headers=steward_headers
    ).json()
    before = _counts(session)
    response = client.patch(
        f"/api/v1/locations/{loc['id']}",
        json={"latitude": -91.5181, "longitude": 14.8347},
        headers=steward_headers,
    )
    assert response.status_code == 422
    assert "swapped" in response.text
    assert _counts(session) == before
    assert client.get(f"/api/v1/locations/{loc['id']}").json()["latitude"] == loc["latitude"]
