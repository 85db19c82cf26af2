"""Services: nested records, categories with descendants, open-now across midnight and 24-hour
services, capacity and its freshness, verification, and service-at-location links."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from referral_net.db.models import Service
from referral_net.domain import services
from referral_net.security.roles import Principal, Role
from tests.factories import bearer, location_body, make_organization, make_user, service_body

pytestmark = pytest.mark.db
BASE = "/api/v1/services"

ALL_DAYS = "MO,TU,WE,TH,FR,SA,SU"
SQUARE = {
    "type": "Polygon",
    "coordinates": [[[-91.6, 15.2], [-91.4, 15.2], [-91.4, 15.4], [-91.6, 15.4], [-91.6, 15.2]]],
}


def _create(
    client: TestClient, headers: dict[str, str], body: dict[str, object]
) -> dict[str, object]:
    response = client.post(BASE, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_create_and_read_back_everything_nested(
    client: TestClient, session: Session, steward_headers: dict[str, str], taxonomy_loaded: None
) -> None:
    org = make_organization(session)
    body = service_body(
        org.id,
        eligibility={
            "minimum_age": 12,
            "maximum_age": 17,
            "genders_served": ["woman", "trans_woman"],
            "trans_inclusive": True,
            "lgbtiq_affirming": True,
            "accepts_accompanying_children": False,
            "minors_only": True,
        },
        service_areas=[{"name": "Zona", "extent": SQUARE}],
        capacity=[{"unit": "bed", "available": 3, "maximum": 10}],
    )
    created = _create(client, steward_headers, body)
    read = client.get(f"{BASE}/{created['id']}").json()
    assert read["eligibility"]["minimum_age"] == 12
    assert read["eligibility"]["genders_served"] == ["woman", "trans_woman"]
    assert read["eligibility"]["minors_only"] is True
    assert [c["code"] for c in read["categories"]] == ["protection.legal_aid"]
    assert sorted(lang["code"] for lang in read["languages"]) == ["quc", "spa"]
    assert read["phones"][0]["number"] == "+50255550103"
    assert read["schedules"][0]["byday"] == "MO,TU,WE,TH,FR"
    assert read["cost_options"][0]["currency"] == "GTQ"
    assert read["required_documents"][0]["document"] == "Ninguno"
    # HSDS: extent is a string (GeoJSON text, extent_type geojson); the profile's geometry is
    # the same polygon as an object.
    area = read["service_areas"][0]
    assert area["extent_type"] == "geojson"
    assert json.loads(area["extent"]) == area["geometry"]
    assert area["geometry"]["type"] == "MultiPolygon"
    assert area["geometry"]["coordinates"][0] == SQUARE["coordinates"]
    # HSDS leaves absent fields out (no description), rather than sending null.
    assert read["capacity"] == [
        {
            "unit": "bed",
            "available": 3,
            "maximum": 10,
            "updated": read["capacity"][0]["updated"],
            "stale": False,
        }
    ]
    # The HSDS 3.1 draft's form of the same figure: capacities with a unit object and ids.
    [capacity] = read["capacities"]
    assert capacity["unit"]["identifier"] == "bed"
    assert uuid.UUID(capacity["id"])
    assert uuid.UUID(capacity["unit"]["id"])
    assert (capacity["available"], capacity["maximum"]) == (3, 10)
    # HSDS top-level ages beside the profile's eligibility object; every nested record has an id.
    assert (read["minimum_age"], read["maximum_age"]) == (12, 17)
    for nested in ("languages", "phones", "schedules", "cost_options", "required_documents"):
        assert all(uuid.UUID(item["id"]) for item in read[nested]), nested


def test_labels_follow_accept_language(
    client: TestClient, session: Session, steward_headers: dict[str, str], taxonomy_loaded: None
) -> None:
    org = make_organization(session)
    created = _create(client, steward_headers, service_body(org.id))
    spanish = client.get(f"{BASE}/{created['id']}")
    english = client.get(f"{BASE}/{created['id']}", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert spanish.headers["Content-Language"] == "es"
    assert english.headers["Content-Language"] == "en"
    assert spanish.json()["categories"][0]["name"] != english.json()["categories"][0]["name"]


def test_category_filter_includes_descendants(
    client: TestClient,
    session: Session,
    steward_headers: dict[str, str],
    taxonomy_loaded: None,
    unique: str,
) -> None:
    org = make_organization(session)
    shelter = _create(
        client,
        steward_headers,
        service_body(
            org.id, name=f"{unique} albergue", categories=["protection.shelter.emergency"]
        ),
    )
    health = _create(
        client,
        steward_headers,
        service_body(org.id, name=f"{unique} salud", categories=["protection.health.medical"]),
    )

    def ids(params: dict[str, object]) -> set[str]:
        page = client.get(BASE, params={"search": unique, **params}).json()
        return {s["id"] for s in page["contents"]}

    assert ids({"category": "protection.shelter"}) == {shelter["id"]}
    assert ids({"category": "protection"}) == {shelter["id"], health["id"]}
    assert ids({"category": ["protection.shelter", "protection.health"]}) == {
        shelter["id"],
        health["id"],
    }
    assert ids({"category": "prosecution"}) == set()
    unknown = client.get(BASE, params={"category": "nope.nothing"})
    assert unknown.status_code == 422
    assert unknown.headers["content-type"] == "application/problem+json"


def test_open_at_across_midnight_and_24_hours(
    client: TestClient,
    session: Session,
    steward_headers: dict[str, str],
    taxonomy_loaded: None,
    unique: str,
) -> None:
    org = make_organization(session)
    night = _create(
        client,
        steward_headers,
        service_body(
            org.id,
            name=f"{unique} nocturno",
            schedules=[{"byday": "FR", "opens_at": "18:00", "closes_at": "06:00"}],
        ),
    )
    always = _create(
        client,
        steward_headers,
        service_body(
            org.id,
            name=f"{unique} 24h",
            schedules=[{"byday": ALL_DAYS, "opens_at": "00:00", "closes_at": "00:00"}],
        ),
    )
    office = _create(client, steward_headers, service_body(org.id, name=f"{unique} oficina"))

    def open_ids(when: str) -> set[str]:
        page = client.get(BASE, params={"search": unique, "open_at": when})
        assert page.status_code == 200, page.text
        return {s["id"] for s in page.json()["contents"]}

    # 2026-11-27 is a Friday; Saturday 02:00 is inside Friday's 18:00-06:00 period.
    assert open_ids("2026-11-28T02:00:00-06:00") == {night["id"], always["id"]}
    assert open_ids("2026-11-28T07:00:00-06:00") == {always["id"]}
    assert open_ids("2026-11-27T10:00:00-06:00") == {always["id"], office["id"]}
    # Thursday 02:00 is not open: Wednesday is not listed for the night service.
    assert open_ids("2026-11-26T02:00:00-06:00") == {always["id"]}
    # UTC input: 2026-11-28T03:00Z is Friday 21:00 in Guatemala.
    assert open_ids("2026-11-28T03:00:00Z") == {night["id"], always["id"]}
    read = client.get(f"{BASE}/{always['id']}").json()
    assert read["open_24h"] is True
    assert read["open_now"] is True
    conflict = client.get(BASE, params={"open_now": True, "open_at": "2026-11-28T02:00:00Z"})
    assert conflict.status_code == 400


def test_capacity_endpoint_and_staleness(
    app: FastAPI, client: TestClient, session: Session, taxonomy_loaded: None
) -> None:
    org = make_organization(session)
    other = make_organization(session, "Otra (ejemplo)")
    steward = bearer(app, make_user(session, Role.STEWARD))
    provider = bearer(app, make_user(session, Role.PROVIDER, org.id))
    outsider = bearer(app, make_user(session, Role.PROVIDER, other.id))
    created = _create(client, steward, service_body(org.id))
    url = f"{BASE}/{created['id']}/capacity"
    body = {"capacity": [{"unit": "bed", "available": 2, "maximum": 8}]}

    assert client.put(url, json=body).status_code == 401
    assert client.put(url, json=body, headers=outsider).status_code == 403
    updated = client.put(url, json=body, headers=provider)
    assert updated.status_code == 200, updated.text
    assert updated.json()["capacity"][0]["available"] == 2
    assert updated.json()["capacity"][0]["stale"] is False

    service = session.get(Service, uuid.UUID(str(created["id"])))
    assert service is not None
    steward_principal = Principal(role=Role.STEWARD, subject="user:test")
    from referral_net.schemas.directory import CapacityIn

    services.set_capacity(
        session=session,
        principal=steward_principal,
        service=service,
        rows=[CapacityIn(unit="bed", available=1, maximum=8)],
        when=datetime.now(UTC) - timedelta(hours=73),
    )
    stale = client.get(f"{BASE}/{created['id']}").json()["capacity"][0]
    assert stale["available"] == 1
    assert stale["stale"] is True


def test_verification_and_due_list(
    app: FastAPI, client: TestClient, session: Session, taxonomy_loaded: None
) -> None:
    org = make_organization(session)
    steward = bearer(app, make_user(session, Role.STEWARD))
    never = _create(client, steward, service_body(org.id, name="Nunca verificado"))
    old = _create(client, steward, service_body(org.id, name="Verificado hace mucho"))
    fresh = _create(client, steward, service_body(org.id, name="Verificado hoy"))
    today = date(2026, 11, 29)
    assert (
        client.post(
            f"{BASE}/{old['id']}/verify", json={"assured_date": "2026-03-01"}, headers=steward
        ).status_code
        == 200
    )
    verified = client.post(f"{BASE}/{fresh['id']}/verify", json={}, headers=steward)
    assert verified.status_code == 200
    assert verified.json()["assured_by"].startswith("user:steward-")
    assert verified.json()["assured_date"] == datetime.now(UTC).date().isoformat()

    due = client.get(
        "/api/v1/verification/due",
        params={"today": today.isoformat(), "per_page": 100},
        headers=steward,
    )
    assert due.status_code == 200
    due_ids = [item["service_id"] for item in due.json()["contents"]]
    assert never["id"] in due_ids
    assert old["id"] in due_ids
    assert fresh["id"] not in due_ids
    old_item = next(i for i in due.json()["contents"] if i["service_id"] == old["id"])
    assert old_item["days_since_verified"] == (today - date(2026, 3, 1)).days
    shorter = client.get(
        "/api/v1/verification/due",
        params={"today": today.isoformat(), "period_days": 365, "per_page": 100},
        headers=steward,
    ).json()
    assert old["id"] not in [i["service_id"] for i in shorter["contents"]]
    assert client.get("/api/v1/verification/due").status_code == 401
    provider = bearer(app, make_user(session, Role.PROVIDER, org.id))
    assert client.post(f"{BASE}/{never['id']}/verify", json={}, headers=provider).status_code == 403


def test_service_at_location_links(
    client: TestClient, session: Session, steward_headers: dict[str, str], taxonomy_loaded: None
) -> None:
    org = make_organization(session)
    service = _create(client, steward_headers, service_body(org.id))
    location = client.post(
        "/api/v1/locations", json=location_body(org.id), headers=steward_headers
    ).json()
    link = client.post(
        "/api/v1/service_at_locations",
        json={"service_id": service["id"], "location_id": location["id"], "description": "cita"},
        headers=steward_headers,
    )
    assert link.status_code == 201, link.text
    link_id = link.json()["id"]
    duplicate = client.post(
        "/api/v1/service_at_locations",
        json={"service_id": service["id"], "location_id": location["id"]},
        headers=steward_headers,
    )
    assert duplicate.status_code == 409
    listed = client.get("/api/v1/service_at_locations", params={"service_id": service["id"]})
    assert [x["id"] for x in listed.json()["contents"]] == [link_id]
    read = client.get(f"/api/v1/service_at_locations/{link_id}")
    assert read.json()["location_name"] == location["name"]
    stale = read.headers["ETag"]
    assert (
        client.patch(
            f"/api/v1/service_at_locations/{link_id}",
            json={"description": "sin cita"},
            headers=steward_headers,
        ).status_code
        == 200
    )
    assert (
        client.patch(
            f"/api/v1/service_at_locations/{link_id}",
            json={"description": "x"},
            headers={**steward_headers, "If-Match": stale},
        ).status_code
        == 412
    )
    assert (
        client.delete(
            f"/api/v1/service_at_locations/{link_id}", headers=steward_headers
        ).status_code
        == 204
    )
    assert client.get(f"/api/v1/service_at_locations/{link_id}").status_code == 404


def test_stale_if_match_on_service_is_412(
    client: TestClient, session: Session, steward_headers: dict[str, str], taxonomy_loaded: None
) -> None:
    org = make_organization(session)
    created = client.post(BASE, json=service_body(org.id), headers=steward_headers)
    stale = created.headers["ETag"]
    sid = created.json()["id"]
    assert (
        client.patch(
            f"{BASE}/{sid}", json={"name": "uno"}, headers={**steward_headers, "If-Match": stale}
        ).status_code
        == 200
    )
    refused = client.patch(
        f"{BASE}/{sid}", json={"name": "dos"}, headers={**steward_headers, "If-Match": stale}
    )
    assert refused.status_code == 412
    assert client.get(f"{BASE}/{sid}").json()["name"] == "uno"
