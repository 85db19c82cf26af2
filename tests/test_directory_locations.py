"""Locations: geometry kept in step with lat/lon, INE codes from the polygons (checked against
shapely), cross-border flag, visibility on reads, and who may change visibility."""

from __future__ import annotations

import json
import uuid
from functools import cache
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from geoalchemy2.shape import to_shape
from shapely.geometry import Point, shape
from sqlmodel import Session

from referral_net.db.models import Location
from referral_net.security.roles import Role
from tests.factories import (
    HUEHUETENANGO,
    bearer,
    location_body,
    make_organization,
    make_user,
)

pytestmark = pytest.mark.db
BASE = "/api/v1/locations"
DATA = Path(__file__).resolve().parents[1] / "src/referral_net/data/guatemala"


@cache
def _municipality_of(lat: float, lon: float) -> str:
    features = json.loads((DATA / "municipalities.geojson").read_text(encoding="utf-8"))["features"]
    hits = [
        f["properties"]["ine_code"]
        for f in features
        if shape(f["geometry"]).contains(Point(lon, lat))
    ]
    assert len(hits) == 1
    return str(hits[0])


def test_create_fills_point_and_codes_from_polygons(
    client: TestClient, steward_headers: dict[str, str], session: Session
) -> None:
    org = make_organization(session)
    created = client.post(BASE, json=location_body(org.id), headers=steward_headers)
    assert created.status_code == 201, created.text
    body = created.json()
    expected = _municipality_of(body["latitude"], body["longitude"])
    assert body["municipality_code"] == expected
    assert body["department_code"] == expected[:2]
    assert sorted(lang["code"] for lang in body["languages"]) == ["mam", "spa"]
    assert body["addresses"][0]["city"] == "Quetzaltenango"

    stored = session.get(Location, uuid.UUID(body["id"]))
    assert stored is not None
    point = to_shape(stored.geom)
    assert (point.y, point.x) == (body["latitude"], body["longitude"])

    lat, lon = HUEHUETENANGO
    moved = client.patch(
        f"{BASE}/{body['id']}", json={"latitude": lat, "longitude": lon}, headers=steward_headers
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["municipality_code"] == _municipality_of(lat, lon)
    session.expire_all()
    stored = session.get(Location, uuid.UUID(body["id"]))
    assert stored is not None
    assert to_shape(stored.geom).equals(Point(lon, lat))


def test_outside_guatemala_needs_the_flag(
    client: TestClient, steward_headers: dict[str, str], session: Session
) -> None:
    org = make_organization(session)
    tapachula = {"latitude": 14.9056, "longitude": -92.2634}
    refused = client.post(BASE, json=location_body(org.id, **tapachula), headers=steward_headers)
    assert refused.status_code == 422
    assert "outside Guatemala" in refused.text
    accepted = client.post(
        BASE,
        json=location_body(org.id, outside_country=True, **tapachula),
        headers=steward_headers,
    )
    assert accepted.status_code == 201, accepted.text
    assert "municipality_code" not in accepted.json()  # HSDS: absent, never null
    assert accepted.json()["outside_country"] is True


@pytest.mark.parametrize("visibility", ["restricted", "confidential"])
def test_hidden_sites_are_not_shown_exactly_to_the_public(
    app: FastAPI, client: TestClient, session: Session, visibility: str
) -> None:
    org = make_organization(session)
    steward = bearer(app, make_user(session, Role.STEWARD))
    body = location_body(
        org.id, visibility=visibility, intake_phone="5555-0199", intake_description="Oficina"
    )
    created = client.post(BASE, json=body, headers=steward).json()
    caseworker = bearer(app, make_user(session, Role.CASEWORKER))
    exact = client.get(f"{BASE}/{created['id']}", headers=caseworker).json()
    assert exact["latitude"] == body["latitude"]
    assert exact["addresses"]

    public = client.get(f"{BASE}/{created['id']}")
    if visibility == "confidential":
        assert public.status_code == 404
        listed = client.get(BASE, params={"organization_id": str(org.id)}).json()
        assert listed["total_items"] == 0
        return
    assert public.status_code == 200
    coarse = public.json()
    assert coarse["precision"] == "municipality"
    assert coarse["addresses"] == []
    assert coarse["phones"] == []
    assert coarse["intake_phone"] == "+50255550199"
    assert (coarse["latitude"], coarse["longitude"]) != (body["latitude"], body["longitude"])
    assert "4a Calle" not in public.text
    assert "+50255550102" not in public.text


def test_visibility_can_drop_for_providers_but_rise_only_for_stewards(
    app: FastAPI, client: TestClient, session: Session
) -> None:
    org = make_organization(session)
    provider = bearer(app, make_user(session, Role.PROVIDER, org.id))
    steward = bearer(app, make_user(session, Role.STEWARD))
    loc = client.post(BASE, json=location_body(org.id), headers=provider).json()
    lowered = client.patch(
        f"{BASE}/{loc['id']}", json={"visibility": "confidential"}, headers=provider
    )
    assert lowered.status_code == 200
    raised = client.patch(f"{BASE}/{loc['id']}", json={"visibility": "public"}, headers=provider)
    assert raised.status_code == 403
    assert (
        client.get(f"{BASE}/{loc['id']}", headers=provider).json()["visibility"] == "confidential"
    )
    by_steward = client.patch(f"{BASE}/{loc['id']}", json={"visibility": "public"}, headers=steward)
    assert by_steward.status_code == 200


def test_provider_gets_404_for_another_orgs_confidential_site(
    app: FastAPI, client: TestClient, session: Session
) -> None:
    org_a = make_organization(session, "A (ejemplo)")
    org_b = make_organization(session, "B (ejemplo)")
    steward = bearer(app, make_user(session, Role.STEWARD))
    hidden = client.post(
        BASE, json=location_body(org_b.id, visibility="confidential"), headers=steward
    ).json()
    provider_a = bearer(app, make_user(session, Role.PROVIDER, org_a.id))
    response = client.patch(f"{BASE}/{hidden['id']}", json={"name": "x"}, headers=provider_a)
    assert response.status_code == 404
    assert client.get(f"{BASE}/{hidden['id']}", headers=provider_a).status_code == 404
