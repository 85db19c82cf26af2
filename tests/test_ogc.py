"""OGC API - Features at /ogc (issue 16 item 2), on both backends, through the test client.

Ground truth comes from the sites the test itself places and from the shipped boundary files
(shapely), never from the code's own answers.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from shapely.geometry import Point, box, shape
from sqlmodel import Session

from referral_net.api.problems import PROBLEM_MEDIA_TYPE
from referral_net.domain import locations, service_at_locations, services
from referral_net.schemas.directory import LocationCreate, ServiceAtLocationCreate, ServiceCreate
from referral_net.security.roles import Principal, Role
from tests.factories import bearer, make_organization, make_user

pytestmark = pytest.mark.db
STEWARD = Principal(role=Role.STEWARD, subject="user:test")
DATA = Path(__file__).resolve().parents[1] / "src/referral_net/data/guatemala"
GEOJSON = "application/geo+json"
PROBLEM = "application/problem+json"
CONFORMANCE = {
    f"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/{name}"
    for name in ("core", "geojson", "oas30", "html")
}
ALL_DAYS = "MO,TU,WE,TH,FR,SA,SU"

# name, lat, lon, visibility, category, languages
SITES = [
    (
        "Albergue Xela <b>uno</b>",
        14.8400,
        -91.5200,
        "public",
        "protection.shelter.emergency",
        ("spa", "mam"),
    ),
    ("Clinica Salcaja", 14.8850, -91.4580, "public", "protection.health.medical", ("spa", "quc")),
    ("Asesoria legal Xela", 14.8330, -91.5170, "public", "protection.legal_aid", ("spa",)),
    ("Oficina Huehue", 15.3197, -91.4710, "public", "protection.legal_aid", ("spa", "mam")),
    ("Oficina Totonicapan", 14.9110, -91.3610, "public", "protection.legal_aid", ("quc",)),
    (
        "Refugio reservado",
        14.8500,
        -91.5100,
        "restricted",
        "protection.shelter.emergency",
        ("spa",),
    ),
    ("Casa secreta", 14.8450, -91.5300, "confidential", "protection.shelter.emergency", ("spa",)),
]


@dataclass(frozen=True)
class Site:
    """One service at one location the test placed."""

    link_id: str
    name: str
    lat: float
    lon: float
    visibility: str
    category: str
    languages: tuple[str, ...]


@cache
def _municipalities() -> dict[str, Any]:
    data = json.loads((DATA / "municipalities.geojson").read_text(encoding="utf-8"))
    return {
        f["properties"]["ine_code"]: shape(f["geometry"])
        for f in data["features"]
        if f["properties"]["ine_code"] not in ("0100", "0700")
    }


@cache
def _departments() -> dict[str, Any]:
    data = json.loads((DATA / "departments.geojson").read_text(encoding="utf-8"))
    return {f["properties"]["ine_code"]: shape(f["geometry"]) for f in data["features"]}


@cache
def _representative_points() -> dict[str, tuple[float, float]]:
    with (DATA / "municipality_centroids.csv").open(encoding="utf-8") as fh:
        return {
            r["ine_code"]: (float(r["inside_lat"]), float(r["inside_lon"]))
            for r in csv.DictReader(fh)
        }


def _municipality_of(lat: float, lon: float) -> str:
    (code,) = [c for c, poly in _municipalities().items() if poly.intersects(Point(lon, lat))]
    return code


def _public_point(site: Site) -> tuple[float, float] | None:
    """(lat, lon) where the public sees a site, None where it does not exist for them."""
    if site.visibility == "public":
        return site.lat, site.lon
    if site.visibility == "restricted":
        return _representative_points()[_municipality_of(site.lat, site.lon)]
    return None


@pytest.fixture
def network(session: Session, taxonomy_loaded: None) -> list[Site]:
    """The sites above, built through the domain."""
    org = make_organization(session, "Red OGC (ejemplo)")
    sites = []
    for name, lat, lon, visibility, category, languages in SITES:
        location = locations.create(
            session=session,
            principal=STEWARD,
            data=LocationCreate(
                organization_id=org.id,
                name=f"Sede {name}",
                latitude=lat,
                longitude=lon,
                visibility=visibility,
                intake_phone="5555-0100",
            ),
        )
        service = services.create(
            session=session,
            principal=STEWARD,
            data=ServiceCreate(
                organization_id=org.id,
                name=name,
                categories=[category],
                languages=list(languages),
                phones=[{"number": "5555-0199"}],
                schedules=[{"byday": ALL_DAYS, "opens_at": "00:00", "closes_at": "00:00"}]
                if category.startswith("protection.shelter")
                else [{"byday": "MO", "opens_at": "08:00", "closes_at": "08:01"}],
            ),
        )
        link = service_at_locations.create(
            session=session,
            principal=STEWARD,
            data=ServiceAtLocationCreate(service_id=service.id, location_id=location.id),
        )
        sites.append(Site(str(link.id), name, lat, lon, visibility, category, languages))
    return sites


def _get(client: TestClient, path: str, **params: Any) -> dict[str, Any]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _rel(document: dict[str, Any], rel: str) -> dict[str, Any] | None:
    return next((link for link in document["links"] if link["rel"] == rel), None)


def _visible(network: list[Site]) -> list[Site]:
    return [s for s in network if _public_point(s) is not None]


def test_landing_page_links_the_api_conformance_and_collections(client: TestClient) -> None:
    response = client.get("/ogc")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    landing = response.json()
    rels = {link["rel"]: link for link in landing["links"]}
    assert {"self", "alternate", "service-desc", "service-doc", "conformance", "data"} <= set(rels)
    assert rels["service-desc"]["href"].endswith("/ogc/api")
    assert rels["data"]["href"].endswith("/ogc/collections")
    assert rels["conformance"]["href"].endswith("/ogc/conformance")


def test_conformance_declares_core_geojson_oas30_and_html(client: TestClient) -> None:
    # ... and OGC API - Tiles' classes besides (tests/test_tiles.py checks those).
    assert set(_get(client, "/ogc/conformance")["conformsTo"]) >= CONFORMANCE


def test_api_document_is_openapi_30_of_the_ogc_routes_only(client: TestClient) -> None:
    response = client.get("/ogc/api")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    document = response.json()
    assert document["openapi"].startswith("3.0")
    assert document["paths"]
    assert all(p.startswith("/ogc") for p in document["paths"])
    assert "/ogc/collections/{collection_id}/items" in document["paths"]
    refs = list(_all_refs(document))
    assert refs
    assert all(r.startswith("#/") for r in refs)
    # Errors are documented as they are sent: problem+json only, with the problem's schema.
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            errors = {s: r for s, r in operation["responses"].items() if s[0] in "45"}
            assert {"404", "503"} <= errors.keys(), (path, method)
            for status, answer in errors.items():
                assert list(answer["content"]) == [PROBLEM_MEDIA_TYPE], (path, method, status)
                schema = answer["content"][PROBLEM_MEDIA_TYPE]["schema"]
                assert schema == {"$ref": "#/components/schemas/ProblemDetails"}
    assert "ProblemDetails" in document["components"]["schemas"]


def _all_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _all_refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _all_refs(value)]
    return []


def test_collections_and_one_collection(client: TestClient) -> None:
    listed = _get(client, "/ogc/collections")
    ids = [c["id"] for c in listed["collections"]]
    assert ids == ["services", "departments", "municipalities", "places"]
    services_collection = _get(client, "/ogc/collections/services")
    assert services_collection["itemType"] == "feature"
    ((min_lon, min_lat, max_lon, max_lat),) = services_collection["extent"]["spatial"]["bbox"]
    country = box(min_lon, min_lat, max_lon, max_lat)
    assert all(country.contains(poly) for poly in _departments().values())
    assert services_collection["extent"]["spatial"]["crs"].endswith("CRS84")
    items_links = [link for link in services_collection["links"] if link["rel"] == "items"]
    assert any(link["type"] == GEOJSON for link in items_links)
    missing = client.get("/ogc/collections/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM


def test_items_with_bbox_match_the_ground_truth(client: TestClient, network: list[Site]) -> None:
    window = (-91.53, 14.83, -91.50, 14.86)
    truth = {
        s.link_id
        for s in network
        if (point := _public_point(s)) is not None
        and window[0] <= point[1] <= window[2]
        and window[1] <= point[0] <= window[3]
    }
    assert truth  # the window holds some, not all
    response = client.get(
        "/ogc/collections/services/items",
        params={"bbox": ",".join(map(str, window)), "limit": 100},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(GEOJSON)
    page = response.json()
    assert page["type"] == "FeatureCollection"
    assert {f["id"] for f in page["features"]} == truth
    assert page["numberMatched"] == page["numberReturned"] == len(truth)
    assert page["timeStamp"].endswith("Z")
    assert _rel(page, "self") is not None
    assert _rel(page, "alternate") is not None
    assert _rel(page, "next") is None


def test_limit_and_next_links_page_to_the_end(client: TestClient, network: list[Site]) -> None:
    url: str | None = "/ogc/collections/services/items?limit=2"
    seen: list[str] = []
    matched = set()
    while url is not None:
        page = client.get(url).json()
        assert page["numberReturned"] == len(page["features"]) <= 2
        matched.add(page["numberMatched"])
        seen.extend(f["id"] for f in page["features"])
        following = _rel(page, "next")
        url = None if following is None else following["href"]
    assert sorted(seen) == sorted(s.link_id for s in _visible(network))  # each once
    assert matched == {len(_visible(network))}


def test_offset_and_prev(client: TestClient, network: list[Site]) -> None:
    everything = _get(client, "/ogc/collections/services/items", limit=100)["features"]
    page = _get(client, "/ogc/collections/services/items", limit=2, offset=3)
    assert [f["id"] for f in page["features"]] == [f["id"] for f in everything[3:5]]
    previous = _rel(page, "prev")
    assert previous is not None
    assert "offset=1" in previous["href"]


def test_property_filters(client: TestClient, network: list[Site]) -> None:
    legal = _get(client, "/ogc/collections/services/items", category="protection.legal_aid")
    truth = {s.link_id for s in _visible(network) if s.category == "protection.legal_aid"}
    assert {f["id"] for f in legal["features"]} == truth
    mam = _get(client, "/ogc/collections/services/items", language="mam", limit=100)
    assert {f["id"] for f in mam["features"]} == {
        s.link_id for s in _visible(network) if "mam" in s.languages
    }
    open_now = _get(client, "/ogc/collections/services/items", open_now="true", limit=100)
    assert {f["properties"]["name"] for f in open_now["features"]} == {
        s.name for s in _visible(network) if s.category.startswith("protection.shelter")
    }
    closed = client.get("/ogc/collections/services/items", params={"open_now": "false"})
    assert closed.status_code == 400
    wrong = client.get("/ogc/collections/departments/items", params={"category": "x"})
    assert wrong.status_code == 400
    assert wrong.headers["content-type"] == PROBLEM


def test_unknown_parameter_is_a_400_problem(client: TestClient) -> None:
    for path in ("/ogc", "/ogc/collections", "/ogc/collections/services/items"):
        response = client.get(path, params={"colour": "red"})
        assert response.status_code == 400, path
        assert response.headers["content-type"] == PROBLEM
        assert "colour" in response.json()["detail"]
    too_many = client.get("/ogc/collections/services/items", params={"limit": 10_001})
    assert too_many.status_code == 400
    assert too_many.headers["content-type"] == PROBLEM


def test_single_item_and_404(client: TestClient, network: list[Site]) -> None:
    site = next(s for s in network if s.visibility == "public")
    response = client.get(f"/ogc/collections/services/items/{site.link_id}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(GEOJSON)
    feature = response.json()
    assert feature["id"] == site.link_id
    assert feature["geometry"]["coordinates"] == pytest.approx([site.lon, site.lat])
    unknown = client.get("/ogc/collections/services/items/00000000-0000-0000-0000-000000000000")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == PROBLEM
    assert client.get("/ogc/collections/services/items/not-a-uuid").status_code == 404


def test_departments_and_municipalities_with_bbox(client: TestClient) -> None:
    window = (-91.6, 14.8, -91.4, 14.9)
    area = box(*window)
    truth = {c for c, poly in _municipalities().items() if poly.intersects(area)}
    page = _get(
        client, "/ogc/collections/municipalities/items", bbox=",".join(map(str, window)), limit=100
    )
    assert {f["id"] for f in page["features"]} == truth
    assert page["numberMatched"] == len(truth)
    departments = _get(client, "/ogc/collections/departments/items", limit=100)
    assert {f["id"] for f in departments["features"]} == set(_departments())
    assert departments["features"][0]["geometry"]["type"] == "MultiPolygon"
    in_09 = _get(client, "/ogc/collections/municipalities/items", department_code="09", limit=100)
    assert {f["id"] for f in in_09["features"]} == {c for c in _municipalities() if c[:2] == "09"}
    one = _get(client, "/ogc/collections/municipalities/items/0901")
    assert one["properties"]["code"] == "0901"
    assert client.get("/ogc/collections/departments/items/0901").status_code == 404


def test_html_view_is_escaped_and_offline(client: TestClient, network: list[Site]) -> None:
    response = client.get("/ogc/collections/services/items", params={"f": "html", "limit": 100})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "Albergue Xela &lt;b&gt;uno&lt;/b&gt;" in html
    assert "<b>uno</b>" not in html
    assert "http://cdn" not in html
    assert "<script" not in html
    assert '<link rel="stylesheet' not in html
    by_accept = client.get("/ogc/collections", headers={"Accept": "text/html,*/*;q=0.8"})
    assert by_accept.headers["content-type"].startswith("text/html")
    by_json = client.get("/ogc/collections", headers={"Accept": "application/json"})
    assert by_json.headers["content-type"].startswith("application/json")


def test_queryables(client: TestClient) -> None:
    response = client.get("/ogc/collections/services/queryables")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/schema+json")
    schema = response.json()
    assert set(schema["properties"]) == {"category", "language", "age", "open_now"}
    assert schema["properties"]["age"]["type"] == "integer"


def test_confidential_never_appears_and_restricted_only_at_its_municipality(
    app: FastAPI, client: TestClient, session: Session, network: list[Site]
) -> None:
    secret = next(s for s in network if s.visibility == "confidential")
    reserved = next(s for s in network if s.visibility == "restricted")
    for headers in ({}, _partner(session)):
        page = client.get("/ogc/collections/services/items", params={"limit": 100}, headers=headers)
        body = page.text
        assert secret.link_id not in body
        assert "Casa secreta" not in body
        features = {f["id"]: f for f in page.json()["features"]}
        assert page.json()["numberMatched"] == len(_visible(network))
        shown = features[reserved.link_id]
        lat, lon = _public_point(reserved) or (0, 0)
        assert shown["geometry"]["coordinates"] == pytest.approx([lon, lat])
        assert shown["properties"]["precision"] == "municipality"
        assert shown["properties"]["phones"] == ["+50255550100"]  # the intake phone alone
        points = [f["geometry"]["coordinates"] for f in features.values()]
        assert [reserved.lon, reserved.lat] not in points
        assert [secret.lon, secret.lat] not in points
        hidden = client.get(f"/ogc/collections/services/items/{secret.link_id}", headers=headers)
        unknown = client.get(
            "/ogc/collections/services/items/00000000-0000-0000-0000-000000000000",
            headers=headers,
        )
        assert hidden.status_code == unknown.status_code == 404
        assert hidden.json()["detail"] == unknown.json()["detail"]
        assert "Casa secreta" not in hidden.text
        html = client.get(
            "/ogc/collections/services/items", params={"f": "html", "limit": 100}, headers=headers
        )
        assert "Casa secreta" not in html.text
        assert secret.link_id not in html.text
        one = client.get(f"/ogc/collections/services/items/{reserved.link_id}", headers=headers)
        assert one.json()["geometry"]["coordinates"] == pytest.approx([lon, lat])
        in_box = client.get(
            "/ogc/collections/services/items",
            params={"bbox": _box_around(secret.lat, secret.lon)},
            headers=headers,
        ).json()
        assert in_box["numberMatched"] == 0
        assert in_box["features"] == []
    staff = bearer(app, make_user(session, Role.CASEWORKER))
    trusted = client.get("/ogc/collections/services/items", params={"limit": 100}, headers=staff)
    assert secret.link_id in {f["id"] for f in trusted.json()["features"]}


def _box_around(lat: float, lon: float, half: float = 0.001) -> str:
    return f"{lon - half},{lat - half},{lon + half},{lat + half}"


def _partner(session: Session) -> dict[str, str]:
    from referral_net.domain import keys

    _, raw = keys.create_key(session=session, name="ogc-partner")
    session.commit()
    return {"X-API-Key": raw}
