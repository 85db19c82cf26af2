"""Leak test: hidden sites never reach an audience that may not see them.

Organization A runs a public office, a restricted shelter and a confidential safe house. A
national line is delivered at the office and at the safe house; one service is delivered only at
the safe house (so it is hidden too); another only at the restricted shelter. Every read path is
called as each audience that must not see the safe house exactly or at all:

* the public, and a partner key;
* a provider of another organization (B), and a provider account with no organization;
* an admin (admins manage accounts and keys, not casework: see docs/access.md), and an admin
  account that belongs to organization A itself (a user in the owning organization whose role is
  not a trusted one).

No response may carry a coordinate pair within 500 m of either hidden site, their addresses, their
site phones, or anything that names the safe house: its name, its id, the ids of its links, or the
id and name of the service delivered only there. Later read paths (GeoJSON, OGC API, tiles,
exports, the embed map) extend ``_paths`` when they are built; vector tiles are decoded to
lon/lat text first (``_mvt_text``), and tests/test_tiles.py checks their features one by one.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import mapbox_vector_tile
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pyproj import Geod
from sqlmodel import Session

from referral_net.db.models import Location, Service
from referral_net.domain import areas, keys, locations, service_at_locations, services
from referral_net.schemas.directory import (
    LocationCreate,
    ServiceAtLocationCreate,
    ServiceCreate,
)
from referral_net.security.roles import Principal, Role
from tests.factories import QUETZALTENANGO, bearer, location_body, make_organization, make_user

pytestmark = pytest.mark.db
GEOD = Geod(ellps="WGS84")
STEWARD = Principal(role=Role.STEWARD, subject="user:test")
SECRET_ADDRESS = "Calle Reservada 77-13"
# Words that appear only in the names of the safe house and of the service delivered only there.
SAFE_HOUSE_WORD = "Xibalba"
HIDDEN_SERVICE_WORD = "Ixchel"
AREA = {
    "type": "Polygon",
    "coordinates": [[[-91.7, 14.7], [-91.3, 14.7], [-91.3, 15.0], [-91.7, 15.0], [-91.7, 14.7]]],
}
AUDIENCES = (
    "public",
    "partner",
    "provider_other_org",
    "provider_without_org",
    "admin",
    "admin_of_owner_org",
)


@dataclass(frozen=True)
class Site:
    """A hidden site and the site-level facts that must never leak about it."""

    location_id: str
    lat: float
    lon: float
    phones: tuple[str, ...]
    visibility: str


@dataclass(frozen=True)
class World:
    """Organization A's network, and what each audience must never learn of it."""

    org_id: str
    other_org_id: str
    restricted: Site
    confidential: Site
    public_location_id: str
    national_service_id: str  # at the public office and at the safe house
    hidden_service_id: str  # only at the safe house
    restricted_service_id: str  # only at the restricted shelter
    restricted_link_id: str
    safe_house_link_ids: tuple[str, str]  # national line and hidden service at the safe house
    other_service_id: str  # organization B's own service

    @property
    def sites(self) -> list[Site]:
        """Both hidden sites."""
        return [self.restricted, self.confidential]

    @property
    def secret_strings(self) -> list[str]:
        """Text that names the safe house or its hidden service (compared case-insensitively)."""
        return [
            SAFE_HOUSE_WORD,
            HIDDEN_SERVICE_WORD,
            self.confidential.location_id,
            self.hidden_service_id,
            *self.safe_house_link_ids,
        ]


def _site(
    session: Session,
    org_id: uuid.UUID,
    name: str,
    point: tuple[float, float],
    visibility: str,
    phones: tuple[str, str],
) -> tuple[Location, Site]:
    intake, site_phone = phones
    location = locations.create(
        session=session,
        principal=STEWARD,
        data=LocationCreate(
            organization_id=org_id,
            name=name,
            latitude=point[0],
            longitude=point[1],
            visibility=visibility,
            intake_phone=intake,
            intake_description="Ingreso por la línea nacional",
            addresses=[
                {
                    "address_1": SECRET_ADDRESS,
                    "city": "Quetzaltenango",
                    "state_province": "Quetzaltenango",
                }
            ],
            phones=[{"number": site_phone}],
        ),
    )
    secret_phones = (site_phone,) if visibility == "restricted" else (intake, site_phone)
    digits = tuple(p.replace("-", "").replace(" ", "") for p in secret_phones)
    return location, Site(str(location.id), point[0], point[1], digits, visibility)


def _service(session: Session, org_id: uuid.UUID, name: str) -> Service:
    return services.create(
        session=session,
        principal=STEWARD,
        data=ServiceCreate(
            organization_id=org_id,
            name=name,
            categories=["protection.shelter.emergency"],
            languages=["spa"],
            schedules=[
                {"byday": "MO,TU,WE,TH,FR,SA,SU", "opens_at": "00:00", "closes_at": "00:00"}
            ],
            service_areas=[{"name": "cobertura", "extent": AREA}],
        ),
    )


def _link(session: Session, service: Service, location: Location) -> str:
    link = service_at_locations.create(
        session=session,
        principal=STEWARD,
        data=ServiceAtLocationCreate(service_id=service.id, location_id=location.id),
    )
    return str(link.id)


@pytest.fixture
def world(session: Session, taxonomy_loaded: None) -> World:
    """Organization A's office, restricted shelter and safe house in Quetzaltenango."""
    org = make_organization(session, "Red de albergues (ejemplo)")
    other = make_organization(session, "Otra organización (ejemplo)")
    office = locations.create(
        session=session,
        principal=STEWARD,
        data=LocationCreate.model_validate(
            location_body(org.id, name="Oficina pública (ejemplo)", phones=[])
        ),
    )
    shelter, restricted = _site(
        session,
        org.id,
        "Casa de acogida (ejemplo)",
        (14.8710, -91.4920),
        "restricted",
        ("5555-0000", "5555-9901"),
    )
    safe_house, confidential = _site(
        session,
        org.id,
        f"Casa {SAFE_HOUSE_WORD} (ejemplo)",
        (14.7750, -91.5150),
        "confidential",
        ("5555-9912", "5555-9902"),
    )
    national = _service(session, org.id, "Línea nacional de protección (ejemplo)")
    hidden_service = _service(session, org.id, f"Albergue {HIDDEN_SERVICE_WORD} (ejemplo)")
    restricted_service = _service(session, org.id, "Albergue de acogida (ejemplo)")
    other_service = _service(session, other.id, "Servicio de B (ejemplo)")
    _link(session, national, office)
    restricted_link = _link(session, restricted_service, shelter)
    safe_house_links = (
        _link(session, national, safe_house),
        _link(session, hidden_service, safe_house),
    )
    rep = areas.get_area(session=session, code="0901")
    assert rep is not None
    for site in (restricted, confidential):  # the shown municipality point is far from each site
        _, _, far = GEOD.inv(
            site.lon, site.lat, rep.representative_longitude, rep.representative_latitude
        )
        assert far > 1500
        _, _, office_far = GEOD.inv(site.lon, site.lat, QUETZALTENANGO[1], QUETZALTENANGO[0])
        assert office_far > 1500
    return World(
        org_id=str(org.id),
        other_org_id=str(other.id),
        restricted=restricted,
        confidential=confidential,
        public_location_id=str(office.id),
        national_service_id=str(national.id),
        hidden_service_id=str(hidden_service.id),
        restricted_service_id=str(restricted_service.id),
        restricted_link_id=restricted_link,
        safe_house_link_ids=safe_house_links,
        other_service_id=str(other_service.id),
    )


@pytest.fixture(params=AUDIENCES)
def audience(
    request: pytest.FixtureRequest, app: FastAPI, session: Session, world: World
) -> dict[str, str]:
    """Headers of one audience that may not see the safe house."""
    role = request.param
    if role == "public":
        return {}
    if role == "partner":
        _, raw = keys.create_key(session=session, name=f"partner-{uuid.uuid4().hex[:6]}")
        session.commit()
        return {"X-API-Key": raw}
    org_a, org_b = uuid.UUID(world.org_id), uuid.UUID(world.other_org_id)
    user = {
        "provider_other_org": lambda: make_user(session, Role.PROVIDER, org_b),
        "provider_without_org": lambda: make_user(session, Role.PROVIDER),
        "admin": lambda: make_user(session, Role.ADMIN),
        "admin_of_owner_org": lambda: make_user(session, Role.ADMIN, org_a),
    }[role]()
    return bearer(app, user)


# --- the detector -------------------------------------------------------------------------------

_DECIMAL = re.compile(r"-?\d{1,3}\.\d{3,}")
# The time of day in a timestamp ("18:02:14.773511"): its seconds are not a coordinate. Read as
# one, a record stamped at 14.77 s paired with the office's longitude 372 m from the safe house.
_TIME_OF_DAY = re.compile(r"\d{2}:\d{2}:\d{2}(?:\.\d+)?")


def _decimals(text: str) -> list[str]:
    """The decimal numbers written in a text, times of day left out."""
    return _DECIMAL.findall(_TIME_OF_DAY.sub(" ", text))


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
        for match in _decimals(node):
            yield float(match)


def _export_records(text: str) -> list[list[float]]:
    """The numbers of each record of an export (JSON: tables of records; NDJSON: a record a
    line), one list per record."""
    try:
        document = json.loads(text)
    except ValueError:
        return [list(_numbers(json.loads(line))) for line in text.splitlines() if line.strip()]
    if isinstance(document, dict) and all(isinstance(v, list) for v in document.values()):
        return [list(_numbers(record)) for table in document.values() for record in table]
    return [list(_numbers(document))]


def _assert_no_leak(
    text: str,
    world: World,
    where: str,
    *,
    sites: list[Site] | None = None,
    per_record: bool = False,
) -> None:
    """Fail if the text carries a hidden site's place, address or phones, or names the safe house.

    ``sites`` limits the place checks (the names and ids of the safe house are always checked).
    Coordinates are paired across the whole text (any latitude with any longitude), except with
    ``per_record`` (an export: the whole database the audience sees, where unrelated records'
    numbers would pair by chance): there, within each record, as a leaked site would be written.
    """
    compact = text.replace(" ", "").replace("-", "")
    lowered = text.lower()
    for secret in world.secret_strings:
        assert secret.lower() not in lowered, f"{where}: names the safe house ({secret})"
        assert secret.replace("-", "").lower() not in lowered.replace("-", ""), where
    for site in world.sites if sites is None else sites:
        assert SECRET_ADDRESS not in text, f"{where}: address of a hidden site"
        for phone in site.phones:
            assert phone not in compact, f"{where}: phone of a hidden site"
    if per_record:
        for numbers in _export_records(text):
            _assert_no_place(numbers, world, where, sites)
    else:
        try:
            numbers = list(_numbers(json.loads(text)))
        except ValueError:
            numbers = [float(m) for m in _decimals(text)]
        _assert_no_place(numbers, world, where, sites)


def _assert_no_place(
    numbers: list[float], world: World, where: str, sites: list[Site] | None
) -> None:
    """Fail if any latitude and longitude among ``numbers`` lie within 500 m of a hidden site."""
    lats = [n for n in numbers if 13.0 <= n <= 18.5]
    lons = [n for n in numbers if -93.0 <= n <= -88.0]
    for site in world.sites if sites is None else sites:
        for lat in lats:
            for lon in lons:
                _, _, metres = GEOD.inv(site.lon, site.lat, lon, lat)
                assert metres > 500, f"{where}: ({lat}, {lon}) is {metres:.0f} m from a hidden site"


# --- the read paths -----------------------------------------------------------------------------


def _paths(w: World) -> list[tuple[str, str, dict[str, Any] | None]]:
    restricted, confidential = w.restricted, w.confidential
    near = f"{confidential.lat},{confidential.lon}"
    safe_house = confidential.location_id
    paths: list[tuple[str, str, dict[str, Any] | None]] = [
        # locations
        ("GET", "/api/v1/locations?per_page=100", None),
        ("GET", "/api/v1/locations?per_page=100&include_defunct=true", None),
        ("GET", "/api/v1/locations?municipality=0901&per_page=100", None),
        ("GET", "/api/v1/locations?department=09&per_page=100", None),
        ("GET", f"/api/v1/locations?organization_id={w.org_id}&per_page=100", None),
        # services at locations
        ("GET", "/api/v1/service_at_locations?per_page=100", None),
        ("GET", f"/api/v1/service_at_locations?organization_id={w.org_id}&per_page=100", None),
        ("GET", f"/api/v1/service_at_locations?service_id={w.national_service_id}", None),
        ("GET", f"/api/v1/service_at_locations?service_id={w.hidden_service_id}", None),
        ("GET", f"/api/v1/service_at_locations?location_id={safe_house}", None),
        # services
        ("GET", "/api/v1/services?per_page=100", None),
        ("GET", "/api/v1/services?per_page=100&include_defunct=true", None),
        ("GET", f"/api/v1/services?organization_id={w.org_id}&per_page=100", None),
        ("GET", "/api/v1/services?category=protection.shelter&per_page=100", None),
        ("GET", "/api/v1/services?search=albergue&per_page=100", None),
        ("GET", "/api/v1/services?open_now=true&per_page=100", None),
        ("GET", f"/api/v1/services/{w.national_service_id}", None),
        ("GET", f"/api/v1/services/{w.restricted_service_id}", None),
        ("GET", f"/api/v1/services/{w.hidden_service_id}", None),
        # organizations (with their embedded records)
        ("GET", "/api/v1/organizations?per_page=100", None),
        ("GET", f"/api/v1/organizations/{w.org_id}", None),
        # the HSDS forms: nesting, minimal, streams, incremental sync
        ("GET", "/api/v1/", None),
        # the public export (the csv zip is checked unzipped in tests/test_export_hsds.py)
        ("GET", "/api/v1/export?format=json", None),
        ("GET", "/api/v1/export?format=ndjson", None),
        ("GET", "/api/v1/services?full=true&per_page=100", None),
        ("GET", "/api/v1/services?minimal=true&per_page=100", None),
        ("GET", "/api/v1/services?format=ndjson", None),
        ("GET", "/api/v1/services?modified_after=2000-01-01T00:00:00Z&per_page=100", None),
        ("GET", "/api/v1/organizations?full=true&per_page=100", None),
        ("GET", "/api/v1/organizations?full_service=true&per_page=100", None),
        ("GET", "/api/v1/organizations?format=ndjson&full_service=true", None),
        ("GET", f"/api/v1/organizations/{w.org_id}?full_service=true", None),
        ("GET", "/api/v1/service_at_locations?full=true&per_page=100", None),
        ("GET", "/api/v1/service_at_locations?format=ndjson&full=true", None),
        ("GET", "/api/v1/service_at_locations?search=albergue&full=true", None),
        ("GET", "/api/v1/service_at_locations?modified_after=2000-01-01T00:00:00Z", None),
        ("GET", "/api/v1/locations?modified_after=2000-01-01T00:00:00Z&per_page=100", None),
        # search, every mode and some filters
        ("GET", f"/api/v1/search?near={near}&limit=100", None),
        ("GET", f"/api/v1/search?near={near}&radius_m=2000&limit=100", None),
        ("GET", f"/api/v1/search?near={restricted.lat},{restricted.lon}&radius_m=800", None),
        ("GET", "/api/v1/search?bbox=-91.56,14.76,-91.48,14.88&limit=100", None),
        ("GET", "/api/v1/search?municipality=0901&limit=100", None),
        ("GET", "/api/v1/search?department=09&limit=100", None),
        ("GET", f"/api/v1/search?covers={near}&limit=100", None),
        ("GET", f"/api/v1/search?near={near}&q=albergue&category=protection.shelter", None),
        ("GET", f"/api/v1/search?near={near}&open_now=true&gender=woman&age=30", None),
        # search as GeoJSON (docs/geojson.md): by f= and by Accept (the header is sent by
        # _request for paths ending in #geojson)
        ("GET", f"/api/v1/search?near={near}&limit=100&f=geojson", None),
        ("GET", "/api/v1/search?bbox=-91.56,14.76,-91.48,14.88&limit=100&f=geojson", None),
        ("GET", f"/api/v1/search?covers={near}&limit=100&f=geojson", None),
        ("GET", "/api/v1/search?municipality=0901&limit=100#geojson", None),
        # OGC API - Features (docs/ogc.md): items, a window around the safe house, the safe
        # house's link by id (a 404 like an unknown id), the HTML view
        ("GET", "/ogc/collections/services/items?limit=1000", None),
        ("GET", "/ogc/collections/services/items?bbox=-91.56,14.76,-91.48,14.88&limit=1000", None),
        ("GET", f"/ogc/collections/services/items/{w.safe_house_link_ids[0]}", None),
        ("GET", f"/ogc/collections/services/items/{w.restricted_link_id}", None),
        ("GET", "/ogc/collections/services/items?limit=1000&f=html", None),
        # the embeddable map's pages (docs/embed.md): they hold no directory data, and what the
        # map then loads is the search and the tiles checked here
        ("GET", "/embed", None),
        ("GET", "/embed?lang=en&department=09&category=protection.shelter", None),
        ("GET", "/embed/snippet?category=protection", None),
        # vector tiles of services (docs/tiles.md), decoded to lon/lat text by _mvt_text: the
        # tiles holding each hidden site, clustered (z 8) and one feature per service (z 12, 15)
        *(
            ("GET", f"/tiles/services/{z}/{x}/{y}.mvt#mvt", None)
            for site in w.sites
            for z in (8, 12, 15)
            for x, y in [_tile_of(site.lat, site.lon, z)]
        ),
        *(
            ("GET", f"/ogc/collections/services/tiles/WebMercatorQuad/{z}/{y}/{x}#mvt", None)
            for z in (10, 14)
            for x, y in [_tile_of(confidential.lat, confidential.lon, z)]
        ),
        # matching (caseworkers only: everyone here is refused, and the refusal must not leak)
        (
            "POST",
            "/api/v1/match",
            {
                "location": {"latitude": confidential.lat, "longitude": confidential.lon},
                "needs": [{"code": "protection.shelter", "urgency": "emergency"}],
            },
        ),
        # steward-only views of records
        ("GET", "/api/v1/verification/due", None),
        ("GET", "/api/v1/verification/due?period_days=1", None),
        ("GET", f"/api/v1/audit?resource_id={safe_house}", None),
        # writes naming hidden records: the errors must not confirm them
        (
            "POST",
            "/api/v1/service_at_locations",
            {"service_id": w.other_service_id, "location_id": safe_house},
        ),
        (
            "POST",
            "/api/v1/locations",
            location_body(uuid.UUID(w.other_org_id), id=safe_house, phones=[]),
        ),
        ("PATCH", f"/api/v1/services/{w.hidden_service_id}", {"name": "x"}),
        ("DELETE", f"/api/v1/services/{w.hidden_service_id}", None),
        (
            "PUT",
            f"/api/v1/services/{w.hidden_service_id}/capacity",
            {"capacity": [{"unit": "bed", "available": 1}]},
        ),
        ("POST", f"/api/v1/services/{w.hidden_service_id}/verify", {}),
        ("GET", f"/api/v1/metadata?resource_id={w.hidden_service_id}", None),
    ]
    for link_id in (*w.safe_house_link_ids, w.restricted_link_id):
        paths += [
            ("GET", f"/api/v1/service_at_locations/{link_id}", None),
            ("PATCH", f"/api/v1/service_at_locations/{link_id}", {"description": "x"}),
            ("DELETE", f"/api/v1/service_at_locations/{link_id}", None),
            ("GET", f"/api/v1/metadata?resource_id={link_id}", None),
        ]
    for site in w.sites:
        paths += [
            ("GET", f"/api/v1/locations/{site.location_id}", None),
            ("GET", f"/api/v1/service_at_locations?location_id={site.location_id}", None),
            ("PATCH", f"/api/v1/locations/{site.location_id}", {"name": "x"}),
            ("PATCH", f"/api/v1/locations/{site.location_id}", {"visibility": "confidential"}),
            ("DELETE", f"/api/v1/locations/{site.location_id}", None),
            ("GET", f"/api/v1/metadata?resource_id={site.location_id}", None),
            ("GET", f"/api/v1/audit?resource_id={site.location_id}", None),
        ]
    return paths


def _tile_of(lat: float, lon: float, z: int) -> tuple[int, int]:
    """(x, y) of the WebMercatorQuad tile holding the point (the slippy-map formula)."""
    n = 1 << z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def _mvt_text(response: Any, path: str) -> str:
    """A vector tile as GeoJSON text with lon/lat coordinates, for the text-based detector: the
    tile's coordinates are tile units, which the detector could not read as places."""
    if response.status_code != 200:
        return _without_echo(response)
    parts = path.removesuffix(".mvt").split("/")
    if path.startswith("/tiles/"):
        z, x, y = (int(p) for p in parts[-3:])
    else:
        z, y, x = (int(p) for p in parts[-3:])
    n = 1 << z
    layers = mapbox_vector_tile.decode(response.content, default_options={"y_coord_down": True})
    features = []
    for layer in layers.values():
        for feature in layer["features"]:
            px, py = feature["geometry"]["coordinates"]
            lon = (x + px / layer["extent"]) / n * 360.0 - 180.0
            merc_y = math.pi * (1 - 2 * (y + py / layer["extent"]) / n)
            lat = math.degrees(math.atan(math.sinh(merc_y)))
            features.append({"coordinates": [lon, lat], "properties": feature["properties"]})
    return json.dumps(features, ensure_ascii=False)


# Members of a problem body that echo the caller's own request (its URL, a request id).
_ECHOED = ("instance", "request_id")


def _without_echo(response: Any) -> str:
    """The response text less what merely repeats the request back to the caller."""
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return str(response.text)
    problem = {k: v for k, v in response.json().items() if k not in _ECHOED}
    return json.dumps(problem, ensure_ascii=False)


def _with_fresh_ids(world: World, text: str) -> str:
    """The same request naming records that do not exist instead of the hidden ones."""
    for secret in world.secret_strings:
        if _is_uuid(secret):
            text = text.replace(secret, str(uuid.uuid4()))
    return text


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _assert_no_shared_caching(
    response: Any, method: str, *, credentialed: bool, where: str
) -> None:
    """A shared cache must never hand this answer to another audience (docs/access.md)."""
    cache_control = response.headers.get("cache-control", "")
    if credentialed:
        assert "private" in cache_control, where
        assert "no-store" in cache_control, where
    elif method != "GET" or response.status_code >= 400:
        assert "no-store" in cache_control, where
    else:
        assert cache_control.startswith("public, max-age="), where
    if method == "GET" and response.status_code < 400:
        vary = {v.strip().lower() for v in response.headers.get("vary", "").split(",")}
        assert {"authorization", "x-api-key"} <= vary, where


def test_no_hidden_place_reaches_an_audience_that_may_not_see_it(
    client: TestClient, world: World, audience: dict[str, str]
) -> None:
    checked = 0
    for method, listed, body in _paths(world):
        path, _, fragment = listed.partition("#")
        geojson = fragment == "geojson"
        headers = {**audience, "Accept": "application/geo+json"} if geojson else audience
        response = client.request(method, path, json=body, headers=headers)
        assert response.status_code < 500, (method, path, response.text)
        if geojson or "f=geojson" in path:  # the GeoJSON paths are checked as GeoJSON
            assert response.headers["content-type"] == "application/geo+json", path
        where = f"{method} {path}"
        text = _mvt_text(response, path) if fragment == "mvt" else _without_echo(response)
        exported = path.startswith("/api/v1/export")
        _assert_no_leak(text, world, where, per_record=exported)
        headers = {k: v for k, v in response.headers.items() if k.lower() != "x-request-id"}
        _assert_no_leak(json.dumps(headers), world, f"{where} (headers)")
        _assert_no_shared_caching(response, method, credentialed=bool(audience), where=where)
        # Naming a hidden record must answer exactly as naming one that does not exist.
        fresh_path = _with_fresh_ids(world, path)
        fresh_body = None if body is None else json.loads(_with_fresh_ids(world, json.dumps(body)))
        if (fresh_path, fresh_body) != (path, body):
            twin = client.request(method, fresh_path, json=fresh_body, headers=audience)
            assert twin.status_code == response.status_code, where
            if response.status_code >= 400:
                assert _without_echo(twin) == _without_echo(response), where
        checked += 1
    assert checked >= 65


def test_the_safe_house_is_absent_and_not_counted(
    client: TestClient, world: World, audience: dict[str, str]
) -> None:
    def get(path: str, **params: Any) -> Any:
        response = client.get(path, params=params, headers=audience)
        assert response.status_code == 200, (path, response.text)
        return response.json()

    for path in (
        f"/api/v1/locations/{world.confidential.location_id}",
        *(f"/api/v1/service_at_locations/{link}" for link in world.safe_house_link_ids),
        f"/api/v1/services/{world.hidden_service_id}",
    ):
        response = client.get(path, headers=audience)
        assert response.status_code == 404, (path, response.status_code)
    org = world.org_id
    # Office and restricted shelter; national line and the shelter's service; their two links.
    shown = get("/api/v1/locations", organization_id=org)
    assert {item["id"] for item in shown["contents"]} == {
        world.public_location_id,
        world.restricted.location_id,
    }
    assert shown["total_items"] == 2
    offered = get("/api/v1/services", organization_id=org)
    assert {item["id"] for item in offered["contents"]} == {
        world.national_service_id,
        world.restricted_service_id,
    }
    assert offered["total_items"] == 2
    linked = get("/api/v1/service_at_locations", organization_id=org)
    assert linked["total_items"] == 2
    assert world.restricted_link_id in {item["id"] for item in linked["contents"]}
    national = get("/api/v1/service_at_locations", service_id=world.national_service_id)
    assert [item["location_id"] for item in national["contents"]] == [world.public_location_id]
    assert national["total_items"] == 1
    hidden = get("/api/v1/service_at_locations", service_id=world.hidden_service_id)
    assert (hidden["total_items"], hidden["contents"]) == (0, [])
    found = get("/api/v1/search", municipality="0901", limit=100)
    ids = {r["service_at_location_id"] for r in found["contents"]}
    assert not ids & set(world.safe_house_link_ids)
    assert world.restricted_link_id in ids
    coarse = next(
        r for r in found["contents"] if r["service_at_location_id"] == world.restricted_link_id
    )
    assert coarse["location"]["precision"] == "municipality"
    assert coarse["location"]["intake_phone"] == "+50255550000"
    # A search with a radius of 50 m around the safe house finds nothing at all.
    near = f"{world.confidential.lat},{world.confidential.lon}"
    assert get("/api/v1/search", near=near, radius_m=50)["total_items"] == 0
    # The restricted shelter is shown, but only at its municipality, without address or phone.
    item = get(f"/api/v1/locations/{world.restricted.location_id}")
    assert item["precision"] == "municipality"
    _assert_no_leak(json.dumps(item), world, "restricted item", sites=[world.restricted])


@pytest.mark.parametrize("role", [Role.CASEWORKER, Role.JUSTICE, Role.STEWARD])
def test_the_detector_catches_what_a_trusted_role_may_see(
    app: FastAPI, client: TestClient, world: World, session: Session, role: Role
) -> None:
    """Guard against a blind test: a trusted answer does carry each secret, and is caught."""
    trusted = bearer(app, make_user(session, role))
    safe_house = client.get(f"/api/v1/locations/{world.confidential.location_id}", headers=trusted)
    assert safe_house.status_code == 200
    body = safe_house.json()
    assert body["precision"] == "exact"
    assert (body["latitude"], body["longitude"]) == (world.confidential.lat, world.confidential.lon)
    for site in world.sites:
        response = client.get(f"/api/v1/locations/{site.location_id}", headers=trusted)
        assert response.status_code == 200
        with pytest.raises(AssertionError):
            _assert_no_leak(response.text, world, "whole answer", sites=[site])
        point = {k: response.json()[k] for k in ("latitude", "longitude")}
        with pytest.raises(AssertionError, match="m from a hidden site"):
            _assert_no_leak(json.dumps(point), world, "point alone", sites=[site])
    checks = {
        f"/api/v1/service_at_locations?location_id={world.confidential.location_id}": "names",
        f"/api/v1/services/{world.hidden_service_id}": "names",
        f"/api/v1/service_at_locations/{world.safe_house_link_ids[0]}": "names",
    }
    for path, message in checks.items():
        response = client.get(path, headers=trusted)
        assert response.status_code == 200, path
        with pytest.raises(AssertionError, match=message):
            _assert_no_leak(response.text, world, path)


def test_the_detector_catches_each_kind_of_secret(world: World) -> None:
    """Each secret on its own trips the detector: names, ids in any case, phones, addresses."""
    site = world.confidential
    leaks = [
        json.dumps({"name": f"casa {SAFE_HOUSE_WORD.lower()}"}),
        json.dumps({"name": HIDDEN_SERVICE_WORD.upper()}),
        json.dumps({"id": site.location_id.upper()}),
        json.dumps({"id": site.location_id.replace("-", "")}),
        json.dumps({"ids": list(world.safe_house_link_ids)[1:]}),
        json.dumps({"service_id": world.hidden_service_id}),
        json.dumps({"phone": "+502 5555 9912"}),
        json.dumps({"address": SECRET_ADDRESS}),
        json.dumps({"point": [site.lon + 0.001, site.lat - 0.001]}),
        json.dumps({"detail": f"near {site.lat:.5f},{site.lon:.5f}"}),
    ]
    for text in leaks:
        with pytest.raises(AssertionError):
            _assert_no_leak(text, world, text)
    # An export is checked record by record: a record holding the site's point trips it, in
    # JSON (tables of records) and in NDJSON (a record a line).
    record = {"id": "x", "latitude": site.lat + 0.001, "longitude": site.lon}
    for text in (
        json.dumps({"locations": [{"id": "y"}, record]}),
        f'{{"id": "y"}}\n{json.dumps(record)}\n',
    ):
        with pytest.raises(AssertionError):
            _assert_no_leak(text, world, text, per_record=True)
    apart = json.dumps({"locations": [{"latitude": site.lat}, {"longitude": site.lon}]})
    _assert_no_leak(apart, world, "apart", per_record=True)  # two records' numbers never pair
    _assert_no_leak(json.dumps({"id": str(uuid.uuid4()), "lat": 14.8347}), world, "clean")
    # A timestamp whose seconds read like the site's latitude is a time, not a place.
    stamped = {"longitude": site.lon, "last_action_date": f"2026-12-04T18:02:{site.lat:09.6f}Z"}
    _assert_no_leak(json.dumps({"metadata": [stamped]}), world, "stamped", per_record=True)


def test_the_public_and_a_caseworker_never_share_a_cached_copy(
    app: FastAPI, client: TestClient, session: Session, world: World
) -> None:
    """The same URL as the public and as a caseworker: different bodies, so different ETags, and
    headers that keep a shared cache from serving one to the other."""
    caseworker = bearer(app, make_user(session, Role.CASEWORKER))
    for path in (
        f"/api/v1/locations/{world.restricted.location_id}",
        "/api/v1/search?municipality=0901&limit=100",
        f"/api/v1/locations?organization_id={world.org_id}",
    ):
        public = client.get(path)
        exact = client.get(path, headers=caseworker)
        assert public.status_code == exact.status_code == 200, path
        assert public.content != exact.content, path
        assert public.headers["etag"] != exact.headers["etag"], path
        assert public.headers["cache-control"].startswith("public, max-age="), path
        assert "private" in exact.headers["cache-control"], path
        assert "no-store" in exact.headers["cache-control"], path
        for response in (public, exact):
            vary = {v.strip().lower() for v in response.headers["vary"].split(",")}
            assert {"authorization", "x-api-key"} <= vary, path
        # A conditional request with the caseworker's tag is no shortcut to the exact copy.
        revalidated = client.get(path, headers={"If-None-Match": exact.headers["etag"]})
        assert revalidated.status_code == 200, path
        assert revalidated.content == public.content, path
