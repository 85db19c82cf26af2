"""Leak test: restricted and confidential sites never reach the public or partners.

Seeds a restricted and a confidential shelter, then calls every read path as the public and as a
partner key: item reads and lists, search in every mode, match, and the error answers for their
ids. No response may carry a coordinate pair within 500 m of either true site, its address, or
its site phone. Later read paths (GeoJSON, OGC API, tiles, exports, the embed map) extend the
PATHS list here when they are built.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pyproj import Geod
from sqlmodel import Session

from referral_net.api.schemas.directory import (
    LocationCreate,
    ServiceAtLocationCreate,
    ServiceCreate,
)
from referral_net.domain import areas, keys, locations, service_at_locations, services
from referral_net.security.roles import Principal, Role
from tests.factories import make_organization

pytestmark = pytest.mark.db
GEOD = Geod(ellps="WGS84")
STEWARD = Principal(role=Role.STEWARD, subject="user:test")
SECRET_ADDRESS = "Calle Reservada 77-13"
AREA = {
    "type": "Polygon",
    "coordinates": [[[-91.7, 14.7], [-91.3, 14.7], [-91.3, 15.0], [-91.7, 15.0], [-91.7, 14.7]]],
}


@dataclass(frozen=True)
class Hidden:
    """A hidden site and what must never leak about it."""

    location_id: str
    link_id: str
    service_id: str
    lat: float
    lon: float
    phone: str
    visibility: str


def _hidden_site(
    session: Session,
    org_id: uuid.UUID,
    name: str,
    lat: float,
    lon: float,
    visibility: str,
    phone: str,
) -> Hidden:
    location = locations.create(
        session=session,
        principal=STEWARD,
        data=LocationCreate(
            organization_id=org_id,
            name=name,
            latitude=lat,
            longitude=lon,
            visibility=visibility,
            intake_phone="5555-0000",
            intake_description="Ingreso público",
            addresses=[
                {
                    "address_1": SECRET_ADDRESS,
                    "city": "Quetzaltenango",
                    "state_province": "Quetzaltenango",
                }
            ],
            phones=[{"number": phone}],
        ),
    )
    service = services.create(
        session=session,
        principal=STEWARD,
        data=ServiceCreate(
            organization_id=org_id,
            name=f"Albergue {visibility} (ejemplo)",
            categories=["protection.shelter.emergency"],
            languages=["spa"],
            schedules=[
                {"byday": "MO,TU,WE,TH,FR,SA,SU", "opens_at": "00:00", "closes_at": "00:00"}
            ],
            service_areas=[{"name": "cobertura", "extent": AREA}],
        ),
    )
    link = service_at_locations.create(
        session=session,
        principal=STEWARD,
        data=ServiceAtLocationCreate(service_id=service.id, location_id=location.id),
    )
    return Hidden(
        str(location.id),
        str(link.id),
        str(service.id),
        lat,
        lon,
        phone.replace("-", "").replace(" ", ""),
        visibility,
    )


@pytest.fixture
def hidden(session: Session, taxonomy_loaded: None) -> list[Hidden]:
    """A restricted and a confidential shelter in Quetzaltenango, away from its central point."""
    org = make_organization(session, "Red de albergues (ejemplo)")
    sites = [
        _hidden_site(session, org.id, "Casa A", 14.8710, -91.4920, "restricted", "5555-9901"),
        _hidden_site(session, org.id, "Casa B", 14.7750, -91.5150, "confidential", "5555-9902"),
    ]
    rep = areas.get_area(session=session, code="0901")
    assert rep is not None
    for site in sites:  # the shown municipality point must itself be far from each real site
        _, _, far = GEOD.inv(
            site.lon, site.lat, rep.representative_longitude, rep.representative_latitude
        )
        assert far > 1500
    return sites


@pytest.fixture(params=["public", "partner"])
def audience(request: pytest.FixtureRequest, session: Session) -> dict[str, str]:
    """Headers of an anonymous caller or of a partner key."""
    if request.param == "public":
        return {}
    _, raw = keys.create_key(session=session, name=f"partner-{uuid.uuid4().hex[:6]}")
    session.commit()
    return {"X-API-Key": raw}


def _numbers(node: Any) -> Iterator[float]:
    if isinstance(node, bool):
        return
    if isinstance(node, int | float):
        yield float(node)
    elif isinstance(node, dict):
        for value in node.values():
            yield from _numbers(value)
    elif isinstance(node, list):
        for value in node:
            yield from _numbers(value)
    elif isinstance(node, str):
        for match in re.findall(r"-?\d{1,3}\.\d{3,}", node):
            yield float(match)


def _assert_no_leak(text: str, sites: list[Hidden], where: str) -> None:
    try:
        numbers = list(_numbers(json.loads(text)))
    except ValueError:
        numbers = [float(m) for m in re.findall(r"-?\d{1,3}\.\d{3,}", text)]
    lats = [n for n in numbers if 13.0 <= n <= 18.5]
    lons = [n for n in numbers if -93.0 <= n <= -88.0]
    compact = text.replace(" ", "").replace("-", "")
    for site in sites:
        assert SECRET_ADDRESS not in text, where
        assert site.phone not in compact, where
        for lat in lats:
            for lon in lons:
                _, _, metres = GEOD.inv(site.lon, site.lat, lon, lat)
                assert metres > 500, f"{where}: ({lat}, {lon}) is {metres:.0f} m from a hidden site"


def _paths(sites: list[Hidden]) -> list[tuple[str, str, dict[str, Any] | None]]:
    restricted, confidential = sites
    near = f"{confidential.lat},{confidential.lon}"
    paths: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "/api/v1/locations?per_page=100", None),
        ("GET", "/api/v1/locations?municipality=0901&per_page=100", None),
        ("GET", "/api/v1/service_at_locations?per_page=100", None),
        ("GET", "/api/v1/services?per_page=100", None),
        ("GET", f"/api/v1/search?near={near}&limit=100", None),
        ("GET", f"/api/v1/search?near={near}&radius_m=2000&limit=100", None),
        ("GET", f"/api/v1/search?near={restricted.lat},{restricted.lon}&radius_m=800", None),
        ("GET", "/api/v1/search?bbox=-91.56,14.76,-91.48,14.88&limit=100", None),
        ("GET", "/api/v1/search?municipality=0901&limit=100", None),
        ("GET", "/api/v1/search?department=09&limit=100", None),
        ("GET", f"/api/v1/search?covers={near}&limit=100", None),
        ("GET", f"/api/v1/search?near={near}&q=albergue&category=protection.shelter", None),
        (
            "POST",
            "/api/v1/match",
            {
                "location": {"latitude": confidential.lat, "longitude": confidential.lon},
                "needs": [{"code": "protection.shelter", "urgency": "emergency"}],
            },
        ),
    ]
    for site in sites:
        paths += [
            ("GET", f"/api/v1/locations/{site.location_id}", None),
            ("GET", f"/api/v1/service_at_locations/{site.link_id}", None),
            ("GET", f"/api/v1/services/{site.service_id}", None),
            ("GET", f"/api/v1/service_at_locations?location_id={site.location_id}", None),
            ("PATCH", f"/api/v1/locations/{site.location_id}", {"name": "x"}),
            ("DELETE", f"/api/v1/locations/{site.location_id}", None),
            ("GET", f"/api/v1/metadata?resource_id={site.location_id}", None),
            ("GET", f"/api/v1/audit?resource_id={site.location_id}", None),
        ]
    return paths


def test_no_hidden_place_reaches_public_or_partners(
    client: TestClient, hidden: list[Hidden], audience: dict[str, str]
) -> None:
    checked = 0
    for method, path, body in _paths(hidden):
        response = client.request(method, path, json=body, headers=audience)
        assert response.status_code < 500, (method, path, response.text)
        _assert_no_leak(response.text, hidden, f"{method} {path}")
        checked += 1
    assert checked >= 25


def test_confidential_is_absent_and_not_counted(
    client: TestClient, hidden: list[Hidden], audience: dict[str, str]
) -> None:
    restricted, confidential = hidden
    assert (
        client.get(f"/api/v1/locations/{confidential.location_id}", headers=audience).status_code
        == 404
    )
    assert (
        client.get(
            f"/api/v1/service_at_locations/{confidential.link_id}", headers=audience
        ).status_code
        == 404
    )
    listed = client.get(
        "/api/v1/service_at_locations",
        params={"service_id": confidential.service_id},
        headers=audience,
    ).json()
    assert listed["total_items"] == 0
    found = client.get(
        "/api/v1/search", params={"municipality": "0901", "limit": 100}, headers=audience
    ).json()
    ids = {r["service_at_location_id"] for r in found["contents"]}
    assert confidential.link_id not in ids
    assert restricted.link_id in ids
    coarse = next(r for r in found["contents"] if r["service_at_location_id"] == restricted.link_id)
    assert coarse["location"]["precision"] == "municipality"
    assert coarse["location"]["intake_phone"] == "+50255550000"
    # A search with a radius of 50 m around the confidential site finds nothing at all
    tight = client.get(
        "/api/v1/search",
        params={"near": f"{confidential.lat},{confidential.lon}", "radius_m": 50},
        headers=audience,
    ).json()
    assert tight["total_items"] == 0


def test_the_detector_catches_an_exact_place(
    client: TestClient, hidden: list[Hidden], session: Session
) -> None:
    """Guard against a blind test: a caseworker's answer does carry the place, and is caught."""
    from fastapi import FastAPI  # noqa: F401 - documents that the app fixture is in play

    from tests.factories import bearer, make_user

    caseworker = bearer(client.app, make_user(session, Role.CASEWORKER))  # type: ignore[arg-type]
    for site in hidden:
        response = client.get(f"/api/v1/locations/{site.location_id}", headers=caseworker)
        assert response.status_code == 200
        with pytest.raises(AssertionError):
            _assert_no_leak(response.text, [site], "caseworker read")
