"""Search as GeoJSON (RFC 7946), on both backends: the same results as the JSON answer, one
Feature per result with the promised properties, the audience rule (restricted sites at their
municipality's point with the intake phone alone, confidential ones absent), content
negotiation, and phones kept in step with the directory.

Ground truth: the points and phones the test itself wrote, shapely for geometry, and the boundary
files' representative points for restricted sites (not the service's own output).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from shapely.geometry import shape
from sqlmodel import Session

from referral_net.db.models import Location
from referral_net.domain import locations, service_at_locations, services
from referral_net.schemas.directory import (
    LocationCreate,
    LocationUpdate,
    ServiceAtLocationCreate,
    ServiceCreate,
)
from referral_net.security.roles import Principal, Role
from tests.factories import bearer, make_organization, make_user
from tests.ground_truth import municipality_of, representative_points

pytestmark = pytest.mark.db

STEWARD = Principal(role=Role.STEWARD, subject="user:geojson")
GEOJSON = "application/geo+json"
# Three sites in Quetzaltenango (0901), one of each visibility.
SITES = {
    "public": (14.8420, -91.5190),
    "restricted": (14.8450, -91.5160),
    "confidential": (14.8390, -91.5230),
}


@dataclass(frozen=True)
class Made:
    """One service at one location the test wrote, with the values the truth needs."""

    link_id: str
    location_id: str
    lat: float
    lon: float
    intake_phone: str
    site_phone: str
    service_phone: str


def _e164(number: str) -> str:
    return "+502" + number.replace(" ", "").replace("-", "")


@pytest.fixture
def sites(session: Session, taxonomy_loaded: None) -> dict[str, Made]:
    """A public, a restricted and a confidential site, each with its own phones."""
    organization = make_organization(session, "Red GeoJSON (ejemplo)")
    made: dict[str, Made] = {}
    for number, (visibility, (lat, lon)) in enumerate(SITES.items()):
        intake, site_phone, service_phone = (
            f"5555 01{number}0",
            f"5555 02{number}0",
            f"5555 03{number}0",
        )
        location = locations.create(
            session=session,
            principal=STEWARD,
            data=LocationCreate.model_validate(
                {
                    "organization_id": organization.id,
                    "name": f"Sede {visibility} (ejemplo)",
                    "latitude": lat,
                    "longitude": lon,
                    "visibility": visibility,
                    "intake_phone": _e164(intake),
                    "phones": [{"number": f"+502 {site_phone}"}],
                }
            ),
        )
        service = services.create(
            session=session,
            principal=STEWARD,
            data=ServiceCreate.model_validate(
                {
                    "organization_id": organization.id,
                    "name": f"Albergue {visibility} (ejemplo)",
                    "categories": ["protection.shelter.emergency"],
                    "languages": ["spa", "mam"],
                    "phones": [{"number": f"+502 {service_phone}"}],
                    "schedules": [
                        {"byday": "MO,TU,WE,TH,FR", "opens_at": "08:00", "closes_at": "16:00"}
                    ],
                }
            ),
        )
        link = service_at_locations.create(
            session=session,
            principal=STEWARD,
            data=ServiceAtLocationCreate(service_id=service.id, location_id=location.id),
        )
        made[visibility] = Made(
            str(link.id),
            str(location.id),
            lat,
            lon,
            _e164(intake),
            _e164(site_phone),
            _e164(service_phone),
        )
    return made


@pytest.fixture
def caseworker(app: FastAPI, session: Session) -> dict[str, str]:
    """Bearer headers of a caseworker (sees every site exactly)."""
    return bearer(app, make_user(session, Role.CASEWORKER))


def _geojson(
    client: TestClient, headers: dict[str, str] | None = None, **params: Any
) -> dict[str, Any]:
    response = client.get(
        "/api/v1/search",
        params={"near": "14.842,-91.519", "limit": 100, "f": "geojson", **params},
        headers=headers or {},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == GEOJSON
    body: dict[str, Any] = response.json()
    return body


def _by_id(collection: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {feature["id"]: feature for feature in collection["features"]}


def test_features_are_the_json_results_with_the_promised_properties(
    client: TestClient, sites: dict[str, Made], caseworker: dict[str, str]
) -> None:
    collection = _geojson(client, caseworker)
    as_json = client.get(
        "/api/v1/search", params={"near": "14.842,-91.519", "limit": 100}, headers=caseworker
    ).json()
    assert collection["type"] == "FeatureCollection"
    assert [f["id"] for f in collection["features"]] == [
        r["service_at_location_id"] for r in as_json["contents"]
    ]
    assert collection["total_items"] == as_json["total_items"] == len(sites)
    for feature in collection["features"]:
        assert set(feature) == {"type", "id", "geometry", "properties"}
        assert feature["type"] == "Feature"
        assert shape(feature["geometry"]).geom_type == "Point"  # a valid GeoJSON geometry
    public = _by_id(collection)[sites["public"].link_id]
    # RFC 7946: longitude first.
    assert public["geometry"]["coordinates"] == [sites["public"].lon, sites["public"].lat]
    properties = public["properties"]
    assert properties["name"] == "Albergue public (ejemplo)"
    assert properties["category_codes"] == ["protection.shelter.emergency"]
    assert properties["top_category"] == "protection"
    assert properties["categories"] == ["Albergue de emergencia"]
    assert properties["language_codes"] == ["mam", "spa"]
    assert properties["hours"] == ["lun–vie 08:00–16:00"]
    assert isinstance(properties["open_now"], bool)
    assert properties["precision"] == "exact"
    assert properties["municipality_code"] == "0901"
    assert "last_verified" in properties
    assert properties["phones"] == [
        sites["public"].site_phone,
        sites["public"].service_phone,
        sites["public"].intake_phone,
    ]
    # Scalars and lists of strings only (GDAL/OGR reads each as a typed field).
    for value in properties.values():
        assert value is None or isinstance(value, str | int | float | bool | list)
        if isinstance(value, list):
            assert all(isinstance(item, str) for item in value)


def test_labels_and_hours_follow_the_request_language(
    client: TestClient, sites: dict[str, Made]
) -> None:
    collection = _geojson(client, {"Accept-Language": "en"})
    properties = _by_id(collection)[sites["public"].link_id]["properties"]
    assert properties["categories"] == ["Emergency shelter"]
    assert properties["hours"] == ["Mon–Fri 08:00–16:00"]
    assert "Mam" in properties["languages"]


def test_the_public_gets_restricted_sites_at_their_municipality_and_no_confidential_one(
    client: TestClient, sites: dict[str, Made], caseworker: dict[str, str]
) -> None:
    restricted, confidential = sites["restricted"], sites["confidential"]
    for params in ({}, {"bbox": "-91.53,14.83,-91.50,14.86"}, {"municipality": "0901"}):
        response = client.get(
            "/api/v1/search",
            params={"limit": 100, **(params or {"near": "14.842,-91.519"})},
            headers={"Accept": GEOJSON},
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == GEOJSON
        text = response.text
        features = _by_id(response.json())
        assert confidential.link_id not in features
        for secret in (
            confidential.location_id,
            confidential.intake_phone,
            confidential.site_phone,
            f"{confidential.lat}",
            f"{restricted.lat}",
            f"{restricted.lon}",
            restricted.site_phone,
        ):
            assert secret not in text, secret
        if "bbox" in params:  # the municipality's point, not the site, decides a window
            continue
        shown = features[restricted.link_id]
        truth = representative_points()[municipality_of(restricted.lat, restricted.lon)]
        assert shown["geometry"]["coordinates"] == [truth[1], truth[0]]
        assert shown["properties"]["precision"] == "municipality"
        assert shown["properties"]["phones"] == [restricted.intake_phone]
    trusted = _by_id(_geojson(client, caseworker))
    assert trusted[confidential.link_id]["properties"]["precision"] == "exact"
    assert trusted[restricted.link_id]["geometry"]["coordinates"] == [
        restricted.lon,
        restricted.lat,
    ]
    assert restricted.site_phone in trusted[restricted.link_id]["properties"]["phones"]


def test_a_changed_site_phone_reaches_the_next_search(
    client: TestClient, session: Session, sites: dict[str, Made]
) -> None:
    public = sites["public"]
    location = session.get(Location, uuid.UUID(public.location_id))
    assert location is not None
    locations.update(
        session=session,
        principal=STEWARD,
        location=location,
        data=LocationUpdate.model_validate({"phones": [{"number": "+502 5555 0999"}]}),
    )
    phones = _by_id(_geojson(client))[public.link_id]["properties"]["phones"]
    assert phones == ["+50255550999", public.service_phone, public.intake_phone]
    # The JSON answer carries the same numbers.
    page = client.get("/api/v1/search", params={"near": "14.842,-91.519", "limit": 100}).json()
    (result,) = [r for r in page["contents"] if r["service_at_location_id"] == public.link_id]
    assert result["phones"] == phones


@pytest.mark.parametrize(
    ("params", "accept", "expected"),
    [
        ({"f": "geojson"}, None, GEOJSON),
        ({}, GEOJSON, GEOJSON),
        ({}, f"application/json;q=0.5, {GEOJSON}", GEOJSON),
        ({}, f"{GEOJSON};q=0.2, application/json", "application/json"),
        ({"f": "json"}, GEOJSON, "application/json"),
        ({}, None, "application/json"),
        ({}, "*/*", "application/json"),
    ],
)
def test_the_format_is_chosen_by_f_then_accept(
    client: TestClient,
    sites: dict[str, Made],
    params: dict[str, str],
    accept: str | None,
    expected: str,
) -> None:
    response = client.get(
        "/api/v1/search",
        params={"near": "14.842,-91.519", **params},
        headers={"Accept": accept} if accept else {},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == expected
    assert "accept" in response.headers["vary"].lower()
    body = response.json()
    assert ("features" in body) == (expected == GEOJSON)


def test_an_unknown_format_is_a_problem(client: TestClient) -> None:
    response = client.get("/api/v1/search", params={"near": "14.842,-91.519", "f": "kml"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
