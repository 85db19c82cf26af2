"""Vector tiles (issue 16 item 3; docs/tiles.md), on both backends, through the test client.

Tiles are decoded with ``mapbox_vector_tile.decode`` and checked against ground truth that does
not come from the code under test: the sites the test places, the shipped boundary files and
places.csv (shapely), and the slippy-map formulas of WebMercatorQuad written out here.
"""

from __future__ import annotations

import csv
import json
import math
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pyproj import Geod
from shapely.geometry import MultiPolygon, Point, Polygon, box, shape
from sqlmodel import Session

from referral_net.domain import keys, locations, service_at_locations, services, tiles
from referral_net.schemas.directory import LocationCreate, ServiceAtLocationCreate, ServiceCreate
from referral_net.security.roles import Principal, Role
from tests.factories import GUATEMALA_CITY, QUETZALTENANGO, bearer, make_organization, make_user

pytestmark = pytest.mark.db
STEWARD = Principal(role=Role.STEWARD, subject="user:test")
DATA = Path(__file__).resolve().parents[1] / "src/referral_net/data/guatemala"
MVT = "application/vnd.mapbox-vector-tile"
PROBLEM = "application/problem+json"
EXTENT = 4096
GEOD = Geod(ellps="WGS84")
ALL_DAYS = "MO,TU,WE,TH,FR,SA,SU"
TILES_CONFORMANCE = {
    f"http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/{name}"
    for name in ("core", "tileset", "tilesets-list", "geodata-tilesets", "mvt")
}

# name, lat, lon, visibility, category
SITES = [
    ("Albergue Xela", 14.8400, -91.5200, "public", "protection.shelter.emergency"),
    ("Clinica Salcaja", 14.8850, -91.4580, "public", "protection.health.medical"),
    ("Asesoria legal Xela", 14.8330, -91.5170, "public", "protection.legal_aid"),
    ("Policia Huehue", 15.3197, -91.4710, "public", "prosecution.police"),
    ("Refugio reservado", 14.8710, -91.4920, "restricted", "protection.shelter.emergency"),
    ("Casa Xibalba secreta", 14.7750, -91.5150, "confidential", "protection.shelter.emergency"),
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


# --- ground truth: WebMercatorQuad by its formulas, the shipped data files ------------------------


def _tile_of(lat: float, lon: float, z: int) -> tuple[int, int]:
    """(x, y) of the tile holding the point (the slippy-map formula)."""
    n = 1 << z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def _lonlat(z: int, x: float, y: float) -> tuple[float, float]:
    """The lon/lat of a (fractional) tile corner."""
    n = 1 << z
    lon = x / n * 360.0 - 180.0
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / n))))
    return lon, lat


def _bounds(z: int, x: int, y: int, margin: float = 0.0) -> tuple[float, float, float, float]:
    """minLon, minLat, maxLon, maxLat of the tile grown by ``margin`` tile units."""
    pad = margin / EXTENT
    west, north = _lonlat(z, x - pad, y - pad)
    east, south = _lonlat(z, x + 1 + pad, y + 1 + pad)
    return west, south, east, north


def _pixel(lat: float, lon: float, z: int, x: int, y: int) -> tuple[float, float]:
    """Tile units (y down) of a point in tile (z, x, y)."""
    n = 1 << z
    gx = (lon + 180.0) / 360.0 * n
    gy = (1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n
    return (gx - x) * EXTENT, (gy - y) * EXTENT


def _in(bounds: tuple[float, float, float, float], lat: float, lon: float) -> bool:
    return bounds[0] <= lon <= bounds[2] and bounds[1] <= lat <= bounds[3]


@cache
def _lakes() -> dict[str, Any]:
    """The two lake polygons of the OCHA municipalities file, by code (0100, 0700)."""
    data = json.loads((DATA / "municipalities.geojson").read_text(encoding="utf-8"))
    return {
        f["properties"]["ine_code"]: shape(f["geometry"])
        for f in data["features"]
        if f["properties"]["ine_code"] in ("0100", "0700")
    }


@cache
def _areas(name: str) -> dict[str, Any]:
    data = json.loads((DATA / f"{name}.geojson").read_text(encoding="utf-8"))
    return {
        f["properties"]["ine_code"]: shape(f["geometry"])
        for f in data["features"]
        if f["properties"]["ine_code"] not in ("0100", "0700")
    }


@cache
def _representative_points() -> dict[str, tuple[float, float]]:
    with (DATA / "municipality_centroids.csv").open(encoding="utf-8") as fh:
        return {
            r["ine_code"]: (float(r["inside_lat"]), float(r["inside_lon"]))
            for r in csv.DictReader(fh)
        }


@cache
def _places() -> list[dict[str, str]]:
    with (DATA / "places.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _public_point(site: Site) -> tuple[float, float] | None:
    """(lat, lon) where the public sees a site; None where it does not exist for them."""
    if site.visibility == "public":
        return site.lat, site.lon
    if site.visibility == "restricted":
        (code,) = [
            c
            for c, poly in _areas("municipalities").items()
            if poly.intersects(Point(site.lon, site.lat))
        ]
        return _representative_points()[code]
    return None


# --- fixtures and helpers ---------------------------------------------------------------------


def _place(session: Session, org_id: uuid.UUID, site: tuple[str, float, float, str, str]) -> Site:
    name, lat, lon, visibility, category = site
    location = locations.create(
        session=session,
        principal=STEWARD,
        data=LocationCreate(
            organization_id=org_id,
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
            organization_id=org_id,
            name=name,
            categories=[category],
            languages=["spa"],
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
    return Site(str(link.id), name, lat, lon, visibility, category)


@pytest.fixture
def network(session: Session, taxonomy_loaded: None) -> list[Site]:
    """The sites above, built through the domain."""
    org = make_organization(session, "Red de mapas (ejemplo)")
    return [_place(session, org.id, site) for site in SITES]


@pytest.fixture
def crowd(session: Session, taxonomy_loaded: None) -> list[Site]:
    """24 public sites scattered around Guatemala City: one service at each of 24 locations."""
    org = make_organization(session, "Red dispersa (ejemplo)")
    lat0, lon0 = GUATEMALA_CITY
    points = [(lat0 - 0.06 + 0.02 * (i % 6), lon0 - 0.05 + 0.025 * (i // 6)) for i in range(24)]
    categories = ["protection.legal_aid", "prevention.awareness", "prosecution.police"]
    legal = services.create(
        session=session,
        principal=STEWARD,
        data=ServiceCreate(organization_id=org.id, name="Red legal", categories=[categories[0]]),
    )
    others = [
        services.create(
            session=session,
            principal=STEWARD,
            data=ServiceCreate(organization_id=org.id, name=f"Red {code}", categories=[code]),
        )
        for code in categories[1:]
    ]
    chosen = [legal, *others]
    sites = []
    for i, (lat, lon) in enumerate(points):
        location = locations.create(
            session=session,
            principal=STEWARD,
            data=LocationCreate(
                organization_id=org.id, name=f"Punto {i}", latitude=lat, longitude=lon
            ),
        )
        service = chosen[i % 3]
        link = service_at_locations.create(
            session=session,
            principal=STEWARD,
            data=ServiceAtLocationCreate(service_id=service.id, location_id=location.id),
        )
        sites.append(Site(str(link.id), service.name, lat, lon, "public", categories[i % 3]))
    return sites


def _decode(content: bytes) -> dict[str, Any]:
    """The layers of a tile, coordinates in tile units with y down."""
    decoded: dict[str, Any] = mapbox_vector_tile.decode(
        content, default_options={"y_coord_down": True}
    )
    return decoded


def _features(client: TestClient, layer: str, z: int, x: int, y: int, **headers: str) -> list[Any]:
    response = client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt", headers=headers)
    if response.status_code == 204:
        return []
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == MVT
    layers = _decode(response.content)
    assert set(layers) == {layer}
    assert layers[layer]["extent"] == EXTENT
    return list(layers[layer]["features"])


def _unit_lonlat(z: int, x: int, y: int, px: float, py: float) -> tuple[float, float]:
    return _lonlat(z, x + px / EXTENT, y + py / EXTENT)


def _polygon_lonlat(geometry: dict[str, Any], z: int, x: int, y: int) -> Any:
    def ring(coords: list[list[float]]) -> list[tuple[float, float]]:
        return [_unit_lonlat(z, x, y, px, py) for px, py in coords]

    if geometry["type"] == "Polygon":
        rings = geometry["coordinates"]
        return Polygon(ring(rings[0]), [ring(r) for r in rings[1:]])
    return MultiPolygon(
        [Polygon(ring(p[0]), [ring(r) for r in p[1:]]) for p in geometry["coordinates"]]
    )


# --- documents ------------------------------------------------------------------------------


def test_tileset_documents_and_conformance(client: TestClient) -> None:
    conformance = client.get("/ogc/conformance").json()["conformsTo"]
    assert set(conformance) >= TILES_CONFORMANCE
    listed = client.get("/ogc/collections").json()["collections"]
    assert [c["id"] for c in listed] == ["services", "departments", "municipalities", "places"]
    for collection in listed:
        rels = {link["rel"] for link in collection["links"]}
        assert "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector" in rels
        cid = collection["id"]
        tilesets = client.get(f"/ogc/collections/{cid}/tiles")
        assert tilesets.status_code == 200
        (tileset,) = tilesets.json()["tilesets"]
        assert tileset["tileMatrixSetURI"].endswith("/tilematrixset/OGC/1.0/WebMercatorQuad")
        assert tileset["dataType"] == "vector"
        metadata = client.get(f"/ogc/collections/{cid}/tiles/WebMercatorQuad").json()
        assert metadata["tileMatrixSetURI"] == (
            "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
        )
        (template,) = [link for link in metadata["links"] if link["rel"] == "item"]
        assert template["type"] == MVT
        assert template["templated"] is True
        assert template["href"].endswith(
            f"/ogc/collections/{cid}/tiles/WebMercatorQuad/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"
        )
        (layer,) = metadata["layers"]
        assert layer["id"] == cid
        assert (layer["minTileMatrix"], layer["maxTileMatrix"]) == ("0", "18")
        assert "name" in layer["propertiesSchema"]["properties"]
    assert client.get("/ogc/collections/nope/tiles").status_code == 404
    sets = client.get("/ogc/tileMatrixSets").json()["tileMatrixSets"]
    assert [s["id"] for s in sets] == ["WebMercatorQuad"]
    quad = client.get("/ogc/tileMatrixSets/WebMercatorQuad").json()
    matrices = quad["tileMatrices"]
    assert [m["id"] for m in matrices] == [str(z) for z in range(19)]
    assert matrices[12]["matrixWidth"] == 4096
    assert matrices[0]["pointOfOrigin"] == pytest.approx([-20037508.3427892, 20037508.3427892])
    assert matrices[0]["cellSize"] == pytest.approx(156543.03392804097)
    places = client.get("/ogc/collections/places/items", params={"limit": 1000}).json()
    assert places["numberMatched"] == len(_places())


# --- services -----------------------------------------------------------------------------


def test_services_at_high_zoom_are_the_visible_sites_in_the_tile(
    client: TestClient, network: list[Site]
) -> None:
    z = 12
    x, y = _tile_of(*QUETZALTENANGO, z)
    buffered = _bounds(z, x, y, margin=64)
    truth = {
        s.link_id: (s, point)
        for s in network
        if (point := _public_point(s)) is not None and _in(buffered, *point)
    }
    assert len(truth) >= 2  # the Xela sites, not Huehuetenango's
    features = _features(client, "services", z, x, y)
    by_id = {f["properties"]["id"]: f for f in features}
    assert set(by_id) == set(truth)
    for link_id, (site, (lat, lon)) in truth.items():
        feature = by_id[link_id]
        properties = feature["properties"]
        assert properties["name"] == site.name
        assert properties["top_category"] == site.category.split(".")[0]
        assert properties["precision"] == (
            "exact" if site.visibility == "public" else "municipality"
        )
        assert properties["open_now"] is site.category.startswith("protection.shelter")
        assert "cluster" not in properties
        expected = _pixel(lat, lon, z, x, y)
        assert feature["geometry"]["type"] == "Point"
        got = feature["geometry"]["coordinates"]
        assert math.dist(got, expected) <= 2, (got, expected)


def test_services_cluster_below_the_cluster_zoom(
    client: TestClient, network: list[Site], crowd: list[Site]
) -> None:
    z = 7
    x, y = _tile_of(*GUATEMALA_CITY, z)
    bounds = _bounds(z, x, y)
    inside = [
        (s, point)
        for s in [*network, *crowd]
        if (point := _public_point(s)) is not None and _in(bounds, *point)
    ]
    assert len(inside) >= 24
    features = _features(client, "services", z, x, y)
    assert all(f["properties"]["cluster"] is True for f in features)
    assert len(features) < len(inside)  # grouped, not one per site
    assert sum(f["properties"]["point_count"] for f in features) == len(inside)
    per_category: dict[str, int] = {}
    for site, _ in inside:
        top = site.category.split(".")[0]
        per_category[top] = per_category.get(top, 0) + 1
    decoded: dict[str, int] = {}
    for feature in features:
        properties = feature["properties"]
        counts = {k: v for k, v in properties.items() if k.startswith("count_")}
        assert sum(counts.values()) == properties["point_count"]
        assert "name" not in properties
        assert "id" not in properties
        for key, value in counts.items():
            decoded[key.removeprefix("count_")] = decoded.get(key.removeprefix("count_"), 0) + value
    assert decoded == per_category
    # Each cluster stands at the mean of its members' positions (the slippy-map formula here,
    # not the code's pyproj), in the cell of 512 tile units that holds them.
    members: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for _, (lat, lon) in inside:
        px, py = _pixel(lat, lon, z, x, y)
        members.setdefault((int(py) // 512, int(px) // 512), []).append((px, py))
    drawn = {
        (
            int(f["geometry"]["coordinates"][1]) // 512,
            int(f["geometry"]["coordinates"][0]) // 512,
        ): (
            f["geometry"]["coordinates"],
            f["properties"]["point_count"],
        )
        for f in features
    }
    assert drawn.keys() == members.keys()
    for cell, points in members.items():
        coordinates, count = drawn[cell]
        mean = (
            math.fsum(p[0] for p in points) / len(points),
            math.fsum(p[1] for p in points) / len(points),
        )
        assert count == len(points)
        assert math.dist(coordinates, mean) <= 1, (cell, coordinates, mean)
    # At zoom 14 the same crowd is one feature per service at a location.
    z = 14
    x, y = _tile_of(*GUATEMALA_CITY, z)
    buffered = _bounds(z, x, y, margin=64)
    truth = {s.link_id for s in crowd if _in(buffered, s.lat, s.lon)}
    assert truth
    individual = _features(client, "services", z, x, y)
    assert {f["properties"]["id"] for f in individual} == truth
    assert not any(f["properties"].get("cluster") for f in individual)


def test_a_tile_never_carries_a_hidden_site(
    app: FastAPI, client: TestClient, session: Session, network: list[Site]
) -> None:
    """The leak test of tiles: public and partner see no service within 500 m of a restricted
    or confidential site's real point, nor the confidential one's id or name; a caseworker sees
    the confidential site exactly."""
    _, raw = keys.create_key(session=session, name=f"partner-{uuid.uuid4().hex[:6]}")
    session.commit()
    hidden = [s for s in network if s.visibility != "public"]
    confidential = next(s for s in network if s.visibility == "confidential")
    for headers in ({}, {"X-API-Key": raw}):
        for site in hidden:
            for z in (6, 9, 11, 13, 16):
                x, y = _tile_of(site.lat, site.lon, z)
                response = client.get(f"/tiles/services/{z}/{x}/{y}.mvt", headers=headers)
                assert response.status_code in (200, 204)
                assert confidential.link_id.encode() not in response.content
                assert b"Xibalba" not in response.content
                layers = _decode(response.content) if response.status_code == 200 else {}
                for feature in layers.get("services", {}).get("features", []):
                    lon, lat = _unit_lonlat(z, x, y, *feature["geometry"]["coordinates"])
                    for secret in hidden:
                        _, _, metres = GEOD.inv(secret.lon, secret.lat, lon, lat)
                        assert metres > 500, (z, feature["properties"], metres)
                    assert feature["properties"].get("id") != confidential.link_id
                    assert "Xibalba" not in str(feature["properties"])
    caseworker = bearer(app, make_user(session, Role.CASEWORKER))
    z = 14
    x, y = _tile_of(confidential.lat, confidential.lon, z)
    response = client.get(f"/tiles/services/{z}/{x}/{y}.mvt", headers=caseworker)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "private, no-store"
    (seen,) = [
        f
        for f in _decode(response.content)["services"]["features"]
        if f["properties"]["id"] == confidential.link_id
    ]
    assert seen["properties"]["name"] == confidential.name
    assert seen["properties"]["precision"] == "exact"
    expected = _pixel(confidential.lat, confidential.lon, z, x, y)
    assert math.dist(seen["geometry"]["coordinates"], expected) <= 2


# --- the public fast path against today's path -----------------------------------------------

PUBLIC = Principal.anonymous()
PARTNER = Principal(role=Role.PARTNER, subject="key:test")


@pytest.fixture
def dense(session: Session, taxonomy_loaded: None) -> list[Site]:
    """150 services at 60 locations packed around Guatemala City (three services at some
    locations, so points coincide), of every visibility, one service without a category."""
    org = make_organization(session, "Red densa (ejemplo)")
    lat0, lon0 = GUATEMALA_CITY
    codes = ["protection.legal_aid", "prevention.awareness", "prosecution.police", ""]
    offered = [
        services.create(
            session=session,
            principal=STEWARD,
            data=ServiceCreate(
                organization_id=org.id,
                name=f"Densa {i:02d}",
                categories=[codes[i % 4]] if codes[i % 4] else [],
                schedules=[{"byday": ALL_DAYS, "opens_at": "00:00", "closes_at": "00:00"}]
                if i % 2
                else [],
            ),
        )
        for i in range(12)
    ]
    sites = []
    for i in range(60):
        lat = lat0 - 0.03 + 0.0061 * (i % 10) + 0.0004 * (i % 3)
        lon = lon0 - 0.04 + 0.013 * (i // 10)
        visibility = ("public", "public", "public", "restricted", "confidential")[i % 5]
        location = locations.create(
            session=session,
            principal=STEWARD,
            data=LocationCreate(
                organization_id=org.id,
                name=f"Punto denso {i}",
                latitude=lat,
                longitude=lon,
                visibility=visibility,
            ),
        )
        for service in offered[i % 12 : i % 12 + (3 if i % 4 == 0 else 2)]:
            link = service_at_locations.create(
                session=session,
                principal=STEWARD,
                data=ServiceAtLocationCreate(service_id=service.id, location_id=location.id),
            )
            sites.append(Site(str(link.id), service.name, lat, lon, visibility, ""))
    return sites


def _both_paths(session: Session, principal: Principal, z: int, x: int, y: int) -> list[Any]:
    """The services tile of the fast path and of today's path (search, ``places.audience``),
    decoded, each as a sorted list of (coordinates, properties)."""
    where = tiles.checked_tile(z, x, y)
    stale = timedelta(hours=72)
    built = [
        tiles._public_services_tile(session, principal, where, stale),
        tiles._services_tile(session, principal, where, stale),
    ]
    decoded = []
    for content in built:
        features = _decode(content)["services"]["features"] if content else []
        decoded.append(
            sorted(
                (tuple(f["geometry"]["coordinates"]), json.dumps(f["properties"], sort_keys=True))
                for f in features
            )
        )
    return decoded


@pytest.mark.parametrize("max_points", [tiles.MAX_POINT_FEATURES, 20])
def test_the_public_fast_path_draws_the_tiles_of_todays_path(
    session: Session,
    network: list[Site],
    dense: list[Site],
    monkeypatch: pytest.MonkeyPatch,
    max_points: int,
) -> None:
    """For the public and a partner, every services tile over the dense crowd is the tile of
    today's path: the same features, points, properties and clusters (with 20 points at most
    per tile, dense tiles cluster at every zoom)."""
    monkeypatch.setattr(tiles, "MAX_POINT_FEATURES", max_points)
    assert tiles.sees_public_points_only(PUBLIC)
    assert tiles.sees_public_points_only(PARTNER)
    assert not tiles.sees_public_points_only(STEWARD)
    checked = clustered = 0
    for z in (5, 7, 9, 10, 11, 12, 13, 14, 15):
        x0, y0 = _tile_of(*GUATEMALA_CITY, z)
        for x, y in {(x0 + dx, y0 + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)}:
            for principal in (PUBLIC, PARTNER):
                fast, today = _both_paths(session, principal, z, x, y)
                assert fast == today, (principal.role, z, x, y)
                checked += bool(fast)
                clustered += any('"cluster": true' in p for _, p in fast)
    assert checked >= 20
    assert clustered >= 4


def test_the_fast_path_places_hidden_sites_as_before(
    session: Session, network: list[Site], dense: list[Site]
) -> None:
    """A restricted site stands at its municipality's point with precision "municipality", a
    confidential one nowhere, in the fast path as in today's path."""
    confidential = {s.link_id for s in [*network, *dense] if s.visibility == "confidential"}
    restricted = [s for s in network if s.visibility == "restricted"]
    for site in restricted:
        point = _public_point(site)
        assert point is not None
        for z in (9, 12, 14, 16):
            x, y = _tile_of(*point, z)
            for principal in (PUBLIC, PARTNER):
                fast, today = _both_paths(session, principal, z, x, y)
                assert fast == today
                if z < tiles.CLUSTER_BELOW_ZOOM:
                    continue
                (seen,) = [(c, p) for c, p in fast if json.loads(p)["id"] == site.link_id]
                assert json.loads(seen[1])["precision"] == "municipality"
                assert math.dist(seen[0], _pixel(*point, z, x, y)) <= 2
                assert not {json.loads(p).get("id") for _, p in fast} & confidential


# --- areas and places -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "z", "inside"),
    [("departments", 7, "09"), ("municipalities", 11, "0901")],
)
def test_area_tiles_hold_the_areas_meeting_the_tile(
    client: TestClient, layer: str, z: int, inside: str
) -> None:
    lat, lon = QUETZALTENANGO
    x, y = _tile_of(lat, lon, z)
    areas = _areas(layer)
    meeting = {c for c, poly in areas.items() if poly.intersects(box(*_bounds(z, x, y)))}
    near = {c for c, poly in areas.items() if poly.intersects(box(*_bounds(z, x, y, 200)))}
    features = _features(client, layer, z, x, y)
    codes = {f["properties"]["code"] for f in features}
    assert meeting <= codes <= near
    names = {c: f["properties"]["name"] for f in features for c in [f["properties"]["code"]]}
    assert names[inside]
    (own,) = [f for f in features if f["properties"]["code"] == inside]
    assert own["geometry"]["type"] in ("Polygon", "MultiPolygon")
    polygon = _polygon_lonlat(own["geometry"], z, x, y)
    assert polygon.buffer(0).covers(Point(lon, lat))
    # Simplified per zoom, but still close to the boundary file inside the tile.
    tile_box = box(*_bounds(z, x, y))
    expected = areas[inside].intersection(tile_box)
    got = polygon.buffer(0).intersection(tile_box)
    assert got.symmetric_difference(expected).area / expected.area < 0.1


def test_lakes_tile_holds_the_lake_with_its_shape(client: TestClient) -> None:
    """The base map's lakes layer: Lago de Atitlán in a zoom-11 tile over it, close to the
    lake's polygon in the OCHA boundaries (simplified per zoom), named, and no lake in a tile of
    the highlands' dry land; the layer is not an OGC collection."""
    atitlan = _lakes()["0700"]
    in_the_lake = Point(-91.2, 14.69)
    assert atitlan.contains(in_the_lake)
    z = 11
    x, y = _tile_of(in_the_lake.y, in_the_lake.x, z)
    features = _features(client, "lakes", z, x, y)
    (lake,) = [f for f in features if f["properties"].get("name") == "Lago de Atitlán"]
    polygon = _polygon_lonlat(lake["geometry"], z, x, y).buffer(0)
    assert polygon.covers(in_the_lake)
    tile_box = box(*_bounds(z, x, y))
    expected = atitlan.intersection(tile_box)
    got = polygon.intersection(tile_box)
    assert got.symmetric_difference(expected).area / expected.area < 0.05
    dry_x, dry_y = _tile_of(*QUETZALTENANGO, 13)  # the city: no lake within the tile
    assert client.get(f"/tiles/lakes/13/{dry_x}/{dry_y}.mvt").status_code == 204
    for path in (
        "/ogc/collections/lakes/tiles",
        "/ogc/collections/lakes/tiles/WebMercatorQuad",
        f"/ogc/collections/lakes/tiles/WebMercatorQuad/{z}/{y}/{x}",
    ):
        assert client.get(path).status_code == 404, path


def test_places_tile_holds_the_towns_in_the_tile(client: TestClient) -> None:
    lat, lon = QUETZALTENANGO
    z = 10
    x, y = _tile_of(lat, lon, z)
    rows = _places()
    inside = {r["id"] for r in rows if _in(_bounds(z, x, y), float(r["lat"]), float(r["lon"]))}
    buffered = {
        r["id"] for r in rows if _in(_bounds(z, x, y, 64), float(r["lat"]), float(r["lon"]))
    }
    features = _features(client, "places", z, x, y)
    ids = {f["properties"]["id"] for f in features}
    assert inside
    assert inside <= ids <= buffered
    by_id = {r["id"]: r for r in rows}
    for feature in features:
        row = by_id[feature["properties"]["id"]]
        assert feature["properties"]["name"] == row["name"]
        assert feature["properties"]["population"] == int(row["population"])
        expected = _pixel(float(row["lat"]), float(row["lon"]), z, x, y)
        assert math.dist(feature["geometry"]["coordinates"], expected) <= 2
    # At zoom 5 only the cities (50,000 people or more) are labelled.
    x, y = _tile_of(lat, lon, 5)
    big = {f["properties"]["id"] for f in _features(client, "places", 5, x, y)}
    assert big
    assert all(int(by_id[i]["population"]) >= 50_000 for i in big)


# --- the HTTP surface ---------------------------------------------------------------------------


def test_empty_tile_is_204(client: TestClient, network: list[Site]) -> None:
    assert client.get("/tiles/lakes/10/0/0.mvt").status_code == 204  # the base map's alone
    for layer in ("services", "departments", "municipalities", "places"):
        response = client.get(f"/tiles/{layer}/10/0/0.mvt")  # the Arctic Ocean off Alaska
        assert response.status_code == 204, layer
        assert response.content == b""
        assert response.headers["cache-control"].startswith("public, max-age=")
        ogc = client.get(f"/ogc/collections/{layer}/tiles/WebMercatorQuad/10/0/0")
        assert ogc.status_code == 204


def test_bad_tile_addresses(client: TestClient) -> None:
    for path in (
        "/tiles/services/19/0/0.mvt",
        "/tiles/places/3/8/0.mvt",
        "/tiles/places/3/0/8.mvt",
        "/tiles/places/3/-1/0.mvt",
        "/tiles/roads/3/0/0.mvt",
        "/ogc/collections/places/tiles/WebMercatorQuad/3/8/0",
        "/ogc/collections/places/tiles/WebMercatorQuad/25/0/0",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == PROBLEM, path
        assert response.headers["cache-control"] == "no-store"
    for path in ("/tiles/places/a/0/0.mvt", "/ogc/collections/places/tiles/WebMercatorQuad/1/0/x"):
        assert client.get(path).status_code in (400, 422), path


def test_the_alias_serves_the_ogc_tile_bytes(client: TestClient, network: list[Site]) -> None:
    lat, lon = QUETZALTENANGO
    for layer, z in (("services", 12), ("services", 8), ("departments", 6), ("places", 9)):
        x, y = _tile_of(lat, lon, z)
        alias = client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt")
        ogc = client.get(f"/ogc/collections/{layer}/tiles/WebMercatorQuad/{z}/{y}/{x}")
        assert alias.status_code == ogc.status_code == 200, layer
        assert alias.content == ogc.content, layer
        assert ogc.headers["content-type"] == MVT


def test_caching_public_tiles_and_private_ones(
    app: FastAPI, client: TestClient, session: Session, network: list[Site]
) -> None:
    lat, lon = QUETZALTENANGO
    x, y = _tile_of(lat, lon, 12)
    path = f"/tiles/services/12/{x}/{y}.mvt"
    public = client.get(path)
    assert public.status_code == 200
    assert public.headers["cache-control"] == "public, max-age=60"
    vary = {v.strip().lower() for v in public.headers["vary"].split(",")}
    assert {"authorization", "x-api-key"} <= vary
    tag = public.headers["etag"]
    again = client.get(path, headers={"If-None-Match": tag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == tag
    _, raw = keys.create_key(session=session, name=f"partner-{uuid.uuid4().hex[:6]}")
    session.commit()
    caseworker = bearer(app, make_user(session, Role.CASEWORKER))
    for headers in ({"X-API-Key": raw}, caseworker):
        private = client.get(path, headers=headers)
        assert private.status_code == 200
        assert private.headers["cache-control"] == "private, no-store"
        vary = {v.strip().lower() for v in private.headers["vary"].split(",")}
        assert {"authorization", "x-api-key"} <= vary
    empty = client.get("/tiles/places/10/0/0.mvt")
    assert empty.status_code == 204
    assert (
        client.get(
            "/tiles/places/10/0/0.mvt", headers={"If-None-Match": empty.headers["etag"]}
        ).status_code
        == 304
    )
    # Anonymous /ogc documents are cached publicly and tagged too.
    document = client.get("/ogc/collections")
    assert document.headers["cache-control"] == "public, max-age=60"
    assert (
        client.get(
            "/ogc/collections", headers={"If-None-Match": document.headers["etag"]}
        ).status_code
        == 304
    )
