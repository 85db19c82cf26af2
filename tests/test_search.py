"""Search: every mode and filter on both backends, checked against independent ground truth
(pyproj geodesic distances, shapely containment), the audience rule, and each bad query's 4xx."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pyproj import Geod
from shapely.geometry import Point, shape
from sqlmodel import Session

from referral_net.db.models import Service
from referral_net.domain import locations, service_at_locations, services
from referral_net.schemas.directory import (
    CapacityIn,
    LocationCreate,
    ServiceAtLocationCreate,
    ServiceCreate,
)
from referral_net.security.roles import Principal, Role
from tests.factories import bearer, make_organization, make_user
from tests.ground_truth import municipalities, municipality_of, representative_points

pytestmark = pytest.mark.db
GEOD = Geod(ellps="WGS84")
STEWARD = Principal(role=Role.STEWARD, subject="user:test")
XELA = (14.8347, -91.5181)
ALL_DAYS = "MO,TU,WE,TH,FR,SA,SU"


@dataclass(frozen=True)
class Site:
    """One generated service at one location, with what the ground truth needs."""

    link_id: str
    name: str
    lat: float
    lon: float
    visibility: str
    categories: tuple[str, ...]
    languages: tuple[str, ...]
    min_age: int | None
    max_age: int | None
    genders: tuple[str, ...] | None
    affirming: bool
    children: bool
    capacity: int | None
    area: dict[str, Any] | None


SITES = [
    # name, lat, lon, visibility, categories, languages, ages, genders, affirming, children, beds
    (
        "Albergue Xela psicológica",
        14.8400,
        -91.5200,
        "public",
        ("protection.shelter.emergency",),
        ("spa", "mam"),
        18,
        None,
        ("woman",),
        False,
        True,
        3,
    ),
    (
        "Albergue adolescentes",
        14.8600,
        -91.5000,
        "public",
        ("protection.shelter.children_adolescents",),
        ("spa",),
        12,
        17,
        None,
        True,
        False,
        0,
    ),
    (
        "Clinica Salcaja",
        14.8850,
        -91.4580,
        "public",
        ("protection.health.medical",),
        ("spa", "quc"),
        None,
        None,
        None,
        False,
        True,
        None,
    ),
    (
        "Asesoria legal Xela",
        14.8330,
        -91.5170,
        "public",
        ("protection.legal_aid",),
        ("spa", "mam"),
        None,
        None,
        None,
        True,
        True,
        None,
    ),
    (
        "Casa trans",
        14.8450,
        -91.5300,
        "public",
        ("protection.shelter.lgbtiq",),
        ("spa",),
        18,
        None,
        ("trans_woman", "non_binary"),
        True,
        False,
        2,
    ),
    (
        "Refugio reservado",
        14.8500,
        -91.5400,
        "restricted",
        ("protection.shelter.women",),
        ("spa", "mam"),
        18,
        None,
        ("woman",),
        True,
        True,
        5,
    ),
    (
        "Casa confidencial",
        14.8200,
        -91.5100,
        "confidential",
        ("protection.shelter.emergency",),
        ("spa",),
        None,
        None,
        None,
        True,
        True,
        4,
    ),
    (
        "Fiscalia Huehue",
        15.3197,
        -91.4710,
        "public",
        ("prosecution.prosecutors",),
        ("spa", "mam", "kjb"),
        None,
        None,
        None,
        False,
        True,
        None,
    ),
    (
        "Unidad movil",
        15.0000,
        -91.8000,
        "public",
        ("protection.health.mental_psychosocial",),
        ("spa", "mam"),
        None,
        None,
        None,
        False,
        True,
        None,
    ),
]
MOBILE_AREA = {
    "type": "Polygon",
    "coordinates": [[[-92.0, 14.7], [-91.3, 14.7], [-91.3, 15.5], [-92.0, 15.5], [-92.0, 14.7]]],
}


@pytest.fixture
def network(session: Session, taxonomy_loaded: None) -> list[Site]:
    """A small network around Quetzaltenango and Huehuetenango, built through the domain."""
    org = make_organization(session, "Red de prueba (ejemplo)")
    sites = []
    for row in SITES:
        (
            name,
            lat,
            lon,
            visibility,
            cats,
            langs,
            min_age,
            max_age,
            genders,
            affirming,
            kids,
            beds,
        ) = row
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
        area = MOBILE_AREA if name == "Unidad movil" else None
        service = services.create(
            session=session,
            principal=STEWARD,
            data=ServiceCreate(
                organization_id=org.id,
                name=name,
                categories=list(cats),
                languages=list(langs),
                eligibility={
                    "minimum_age": min_age,
                    "maximum_age": max_age,
                    "genders_served": list(genders) if genders else None,
                    "lgbtiq_affirming": affirming,
                    "accepts_accompanying_children": kids,
                    "trans_inclusive": False,
                },
                schedules=[{"byday": ALL_DAYS, "opens_at": "00:00", "closes_at": "00:00"}]
                if "Albergue" in name
                else [{"byday": "MO,TU,WE,TH,FR", "opens_at": "08:00", "closes_at": "16:00"}],
                service_areas=[{"name": "cobertura", "extent": area}] if area else [],
            ),
        )
        if beds is not None:
            services.set_capacity(
                session=session,
                principal=STEWARD,
                service=service,
                rows=[CapacityIn(unit="bed", available=beds, maximum=10)],
            )
        link = service_at_locations.create(
            session=session,
            principal=STEWARD,
            data=ServiceAtLocationCreate(service_id=service.id, location_id=location.id),
        )
        sites.append(
            Site(
                str(link.id),
                name,
                lat,
                lon,
                visibility,
                cats,
                langs,
                min_age,
                max_age,
                genders,
                affirming,
                kids,
                beds,
                area,
            )
        )
    return sites


def _search(
    client: TestClient, headers: dict[str, str] | None = None, **params: Any
) -> dict[str, Any]:
    response = client.get("/api/v1/search", params={"limit": 100, **params}, headers=headers or {})
    assert response.status_code == 200, response.text
    return dict(response.json())


def _ids(page: dict[str, Any]) -> list[str]:
    return [r["service_at_location_id"] for r in page["contents"]]


def _seen_point(site: Site, trusted: bool) -> tuple[float, float] | None:
    if site.visibility == "public" or trusted:
        return site.lat, site.lon
    if site.visibility == "restricted":
        return representative_points()[municipality_of(site.lat, site.lon)]
    return None


def _truth_near(
    sites: list[Site],
    lat: float,
    lon: float,
    trusted: bool,
    radius: float | None = None,
    keep: Any = None,
) -> list[tuple[str, float]]:
    out = []
    for site in sites:
        point = _seen_point(site, trusted)
        if point is None or (keep is not None and not keep(site)):
            continue
        _, _, dist = GEOD.inv(lon, lat, point[1], point[0])
        if radius is None or dist <= radius:
            out.append((site.link_id, dist))
    return sorted(out, key=lambda item: (item[1], uuid.UUID(item[0]).hex))


def _assert_matches(page: dict[str, Any], truth: list[tuple[str, float]]) -> None:
    assert _ids(page) == [t[0] for t in truth]
    for result, (_, dist) in zip(page["contents"], truth, strict=True):
        assert result["distance_m"] == pytest.approx(dist, abs=1.0)
    assert page["total_items"] == len(truth)


@pytest.fixture
def caseworker(app: FastAPI, session: Session) -> dict[str, str]:
    """Bearer headers of a caseworker (sees every site exactly)."""
    return bearer(app, make_user(session, Role.CASEWORKER))


def test_near_nearest_first_with_geodesic_distances(
    client: TestClient, network: list[Site], caseworker: dict[str, str]
) -> None:
    lat, lon = XELA
    for headers, trusted in ((caseworker, True), (None, False)):
        page = _search(client, headers, near=f"{lat},{lon}", q="")
        truth = list(_truth_near(network, lat, lon, trusted))
        ours = [t for t in truth if t[0] in {s.link_id for s in network}]
        got = [
            r
            for r in page["contents"]
            if r["service_at_location_id"] in {s.link_id for s in network}
        ]
        assert [r["service_at_location_id"] for r in got] == [t[0] for t in ours]
        for result, (_, dist) in zip(got, ours, strict=True):
            assert result["distance_m"] == pytest.approx(dist, abs=1.0)


def test_near_paginates_exactly(
    client: TestClient, network: list[Site], caseworker: dict[str, str]
) -> None:
    lat, lon = XELA
    everything = _ids(_search(client, caseworker, near=f"{lat},{lon}"))
    pages = [
        _ids(_search(client, caseworker, near=f"{lat},{lon}", limit=2, page=n)) for n in (1, 2, 3)
    ]
    assert pages[0] + pages[1] + pages[2] == everything[:6]


def test_radius_against_ground_truth(
    client: TestClient, network: list[Site], caseworker: dict[str, str]
) -> None:
    lat, lon = XELA
    for radius in (500.0, 2_500.0, 10_000.0, 80_000.0):
        page = _search(client, caseworker, near=f"{lat},{lon}", radius_m=radius)
        truth = _truth_near(network, lat, lon, True, radius=radius)
        ours = {s.link_id for s in network}
        got = {"contents": [r for r in page["contents"] if r["service_at_location_id"] in ours]}
        assert _ids(got) == [t[0] for t in truth]


def test_bbox_and_area_modes_against_shapely(
    client: TestClient, network: list[Site], caseworker: dict[str, str]
) -> None:
    ours = {s.link_id: s for s in network}
    box = (-91.53, 14.83, -91.49, 14.87)
    page = _search(client, caseworker, bbox=",".join(map(str, box)))
    expected = {
        s.link_id for s in network if box[0] <= s.lon <= box[2] and box[1] <= s.lat <= box[3]
    }
    assert {i for i in _ids(page) if i in ours} == expected
    polygons = municipalities()
    for code in ("0901", "1303"):
        page = _search(client, caseworker, municipality=code)
        expected = {s.link_id for s in network if polygons[code].intersects(Point(s.lon, s.lat))}
        assert {i for i in _ids(page) if i in ours} == expected
        assert expected  # the network puts sites in both
    department = _search(client, caseworker, department="09")
    expected = {
        s.link_id
        for s in network
        if any(
            c.startswith("09") and p.intersects(Point(s.lon, s.lat)) for c, p in polygons.items()
        )
    }
    assert {i for i in _ids(department) if i in ours} == expected


def test_covers_finds_services_whose_area_contains_the_point(
    client: TestClient, network: list[Site], caseworker: dict[str, str]
) -> None:
    mobile = next(s for s in network if s.name == "Unidad movil")
    inside = _search(client, caseworker, covers="15.2,-91.6")
    assert mobile.link_id in _ids(inside)
    assert shape(MOBILE_AREA).contains(Point(-91.6, 15.2))
    outside = _search(client, caseworker, covers="14.5,-90.5")
    assert mobile.link_id not in _ids(outside)
    (hit,) = [r for r in inside["contents"] if r["service_at_location_id"] == mobile.link_id]
    assert hit["distance_m"] == pytest.approx(
        GEOD.inv(-91.6, 15.2, mobile.lon, mobile.lat)[2], abs=1.0
    )


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        (
            {"category": "protection.shelter"},
            lambda s: s.categories[0].startswith("protection.shelter"),
        ),
        (
            {"category": ["protection.health", "prosecution"]},
            lambda s: s.categories[0].startswith(("protection.health", "prosecution")),
        ),
        ({"language": "mam"}, lambda s: "mam" in s.languages),
        ({"language": "es"}, lambda s: "spa" in s.languages),
        (
            {"age": 16},
            lambda s: (
                (s.min_age is None or s.min_age <= 16) and (s.max_age is None or s.max_age >= 16)
            ),
        ),
        ({"gender": "woman"}, lambda s: s.genders is None or "woman" in s.genders),
        (
            {"gender": "trans_woman"},
            lambda s: (
                s.genders is None
                or "trans_woman" in s.genders
                or ("woman" in s.genders and s.affirming)
            ),
        ),
        ({"gender": "undisclosed"}, lambda s: s.genders is None),
        ({"lgbtiq_affirming": True}, lambda s: s.affirming),
        ({"accepts_children": True}, lambda s: s.children),
        ({"has_capacity": True}, lambda s: (s.capacity or 0) > 0),
        ({"q": "PSICOLOGICA"}, lambda s: "psicológica" in s.name.lower()),
        (
            {"q": "albergue xela"},
            lambda s: "albergue" in s.name.lower() and "xela" in s.name.lower(),
        ),
        ({"verified_within_days": 30}, lambda s: False),
        ({"open_at": "2026-11-29T03:00:00-06:00"}, lambda s: "Albergue" in s.name),
        ({"open_at": "2026-11-27T10:00:00-06:00"}, lambda s: True),
    ],
)
def test_filters_against_ground_truth(
    client: TestClient,
    network: list[Site],
    caseworker: dict[str, str],
    params: dict[str, Any],
    keep: Any,
) -> None:
    lat, lon = XELA
    page = _search(client, caseworker, near=f"{lat},{lon}", radius_m=100_000, **params)
    ours = {s.link_id for s in network}
    got = [
        r["service_at_location_id"] for r in page["contents"] if r["service_at_location_id"] in ours
    ]
    truth = _truth_near(network, lat, lon, True, radius=100_000, keep=keep)
    assert got == [t[0] for t in truth]


def test_results_carry_the_promised_fields(
    client: TestClient, network: list[Site], caseworker: dict[str, str]
) -> None:
    page = _search(client, caseworker, near="14.84,-91.52", category="protection.shelter.emergency")
    result = next(
        r for r in page["contents"] if r["service"]["name"] == "Albergue Xela psicológica"
    )
    assert result["categories"][0]["code"] == "protection.shelter.emergency"
    assert {lang["code"] for lang in result["languages"]} == {"spa", "mam"}
    assert result["open_24h"] is True
    assert result["open_now"] is True
    assert result["capacity"][0]["available"] == 3
    assert result["capacity"][0]["stale"] is False
    assert "last_verified" in result
    assert result["location"]["precision"] == "exact"


def test_public_audience_sees_restricted_coarsely_and_never_confidential(
    client: TestClient, network: list[Site], caseworker: dict[str, str]
) -> None:
    restricted = next(s for s in network if s.visibility == "restricted")
    confidential = next(s for s in network if s.visibility == "confidential")
    for params in (
        {"near": "14.85,-91.54"},
        {"near": f"{confidential.lat},{confidential.lon}", "radius_m": 50},
        {"bbox": "-91.56,14.80,-91.50,14.86"},
        {"municipality": "0901"},
        {"covers": "15.2,-91.6"},
    ):
        page = _search(client, None, **params)
        assert confidential.link_id not in _ids(page)
        text = json.dumps(page)
        assert f"{confidential.lat}" not in text
        assert f"{restricted.lat}" not in text
        for result in page["contents"]:
            if result["service_at_location_id"] == restricted.link_id:
                assert result["location"]["precision"] == "municipality"
                rep = representative_points()[municipality_of(restricted.lat, restricted.lon)]
                assert (result["location"]["latitude"], result["location"]["longitude"]) == rep
                _, _, true_distance = GEOD.inv(restricted.lon, restricted.lat, rep[1], rep[0])
                assert true_distance > 500  # the shown point is far from the real site
    # counts exclude the confidential site for the public, include it for caseworkers
    public = _search(client, None, near=f"{confidential.lat},{confidential.lon}", radius_m=50)
    trusted = _search(
        client, caseworker, near=f"{confidential.lat},{confidential.lon}", radius_m=50
    )
    assert confidential.link_id in _ids(trusted)
    assert public["total_items"] == trusted["total_items"] - 1


def test_defunct_services_leave_search(
    client: TestClient, network: list[Site], caseworker: dict[str, str], session: Session
) -> None:
    site = next(s for s in network if s.name == "Clinica Salcaja")
    before = _ids(_search(client, caseworker, near="14.88,-91.46", radius_m=2000))
    assert site.link_id in before
    link = service_at_locations.get(
        session=session, principal=STEWARD, link_id=uuid.UUID(site.link_id)
    )
    service = session.get(Service, link.service_id)
    assert service is not None
    services.soft_delete(session=session, principal=STEWARD, service=service)
    after = _ids(_search(client, caseworker, near="14.88,-91.46", radius_m=2000))
    assert site.link_id not in after


@pytest.mark.parametrize(
    ("params", "status", "fragment"),
    [
        ({"near": "95,-91.5"}, 422, "latitude"),
        ({"near": "14.8,-191"}, 422, "longitude"),
        ({"near": "14.8"}, 422, "2 comma-separated"),
        ({"near": "abc,def"}, 422, "number"),
        ({"near": "14.8,-91.5", "radius_m": 600_000}, 422, "radius_m"),
        ({"near": "14.8,-91.5", "radius_m": -5}, 422, "radius_m"),
        ({"bbox": "-91.4,14.7,-91.6,14.9"}, 422, "antimeridian"),
        ({"bbox": "179,14,-179,15"}, 422, "antimeridian"),
        ({"bbox": "-91.6,14.9,-91.4,14.7"}, 422, "latitude"),
        ({"bbox": "-91.6,14.7,-91.4"}, 422, "4 comma-separated"),
        ({"municipality": "9999"}, 422, "unknown municipality"),
        ({"department": "99"}, 422, "unknown department"),
        ({"department": "0901"}, 422, "department"),
        ({"near": "14.8,-91.5", "category": "nope.nothing"}, 422, "unknown category code"),
        ({"near": "14.8,-91.5", "language": "xx"}, 422, "language"),
        ({"near": "14.8,-91.5", "bbox": "-91.6,14.7,-91.4,14.9"}, 400, "exactly one"),
        ({"municipality": "0901", "covers": "14.8,-91.5"}, 400, "exactly one"),
        ({"q": "albergue"}, 400, "exactly one"),
        ({"bbox": "-91.6,14.7,-91.4,14.9", "radius_m": 100}, 400, "radius_m goes with near"),
        ({"near": "14.8,-91.5", "limit": 1000}, 422, "limit"),
        ({"near": "14.8,-91.5", "limit": 100, "page": 101}, 422, "narrow the search"),
        ({"bbox": "-91.6,14.7,-91.4,14.9", "limit": 10, "page": 1001}, 422, "query.page"),
        ({"near": "14.8,-91.5", "catgory": "protection"}, 400, "catgory"),
        (
            {"near": "14.8,-91.5", "open_now": True, "open_at": "2026-11-29T10:00:00Z"},
            400,
            "open_now",
        ),
        ({"near": "14.8,-91.5", "gender": "robot"}, 422, "gender"),
        ({"near": "14.8,-91.5", "age": 300}, 422, "age"),
    ],
)
def test_bad_queries_get_specific_problems(
    client: TestClient, params: dict[str, Any], status: int, fragment: str, taxonomy_loaded: None
) -> None:
    response = client.get("/api/v1/search", params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert fragment in response.text


def test_the_deepest_allowed_page_still_answers(client: TestClient, taxonomy_loaded: None) -> None:
    deepest = client.get("/api/v1/search", params={"near": "14.8,-91.5", "limit": 100, "page": 100})
    assert deepest.status_code == 200, deepest.text
    assert deepest.json()["page_number"] == 100


@pytest.fixture
def dense_cluster(session: Session, taxonomy_loaded: None) -> list[Site]:
    """Twenty public shelters on a 5 x 4 grid about 300 m apart, south-east of Xela."""
    org = make_organization(session, "Red densa (ejemplo)")
    sites = []
    for i in range(20):
        lat, lon = 14.80 + (i // 5) * 0.0027, -91.49 + (i % 5) * 0.0028
        location = locations.create(
            session=session,
            principal=STEWARD,
            data=LocationCreate(
                organization_id=org.id, name=f"Sede densa {i}", latitude=lat, longitude=lon
            ),
        )
        service = services.create(
            session=session,
            principal=STEWARD,
            data=ServiceCreate(
                organization_id=org.id,
                name=f"Albergue denso {i}",
                categories=["protection.shelter.emergency"],
            ),
        )
        link = service_at_locations.create(
            session=session,
            principal=STEWARD,
            data=ServiceAtLocationCreate(service_id=service.id, location_id=location.id),
        )
        sites.append(
            Site(
                str(link.id),
                f"Albergue denso {i}",
                lat,
                lon,
                "public",
                ("protection.shelter.emergency",),
                (),
                None,
                None,
                None,
                False,
                False,
                None,
                None,
            )
        )
    return sites


def test_counts_stop_at_their_caps_and_say_so(
    client: TestClient, dense_cluster: list[Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small caps stand in for 200 / 1,000 so that a 20-site cluster crosses them.
    from referral_net.domain.search import count as search_count

    monkeypatch.setattr(search_count, "NEAREST_COUNT_CAP", 7)
    monkeypatch.setattr(search_count, "COUNT_CAP", 12)
    lat, lon = 14.8041, -91.4843  # inside the cluster
    shelters = "protection.shelter"
    truth = _truth_near(dense_cluster, lat, lon, trusted=False)
    assert len(truth) == 20

    nearest = _search(client, near=f"{lat},{lon}", category=shelters, limit=5, page=2)
    assert (nearest["total_items"], nearest["total_is_lower_bound"]) == (7, True)
    assert _ids(nearest) == [t[0] for t in truth[5:10]]  # the page itself is never capped
    for result, (_, dist) in zip(nearest["contents"], truth[5:10], strict=True):
        assert result["distance_m"] == pytest.approx(dist, abs=1.0)

    wide = _search(client, near=f"{lat},{lon}", radius_m=2_000, category=shelters, limit=3)
    assert (wide["total_items"], wide["total_is_lower_bound"]) == (7, True)
    assert _ids(wide) == [t[0] for t in truth[:3]]

    tight_radius = 420.0  # the ground truth decides how many sites that holds
    inside = _truth_near(dense_cluster, lat, lon, trusted=False, radius=tight_radius)
    assert 1 < len(inside) < 7
    tight = _search(client, near=f"{lat},{lon}", radius_m=tight_radius, category=shelters)
    assert (tight["total_items"], tight["total_is_lower_bound"]) == (len(inside), False)
    _assert_matches(tight, inside)

    box = _search(client, bbox="-91.50,14.79,-91.47,14.82", category=shelters)
    assert (box["total_items"], box["total_is_lower_bound"]) == (12, True)
    small_box = _search(client, bbox="-91.4901,14.7999,-91.4843,14.8028", category=shelters)
    in_small_box = [
        s for s in dense_cluster if -91.4901 <= s.lon <= -91.4843 and 14.7999 <= s.lat <= 14.8028
    ]
    assert (small_box["total_items"], small_box["total_is_lower_bound"]) == (
        len(in_small_box),
        False,
    )


def test_a_radius_across_the_antimeridian_counts_and_finds_both_sides(
    client: TestClient, session: Session, taxonomy_loaded: None, caseworker: dict[str, str]
) -> None:
    """Longitudes wrap there, so the cheap order that decides most of a radius elsewhere
    (``bound.ring``) measures nothing: every row gets the exact distance (pyproj's truth)."""
    org = make_organization(session, "Red del Pacifico (ejemplo)")
    sides = {}
    # Metres from the query point, one on each side of the line: a point across it lies
    # nearer the line than every sample of the radius's circle that crossed it.
    for lon in (179.9998, -179.999999):
        location = locations.create(
            session=session,
            principal=STEWARD,
            data=LocationCreate(
                organization_id=org.id,
                name=f"Sede {lon}",
                latitude=-17.7,
                longitude=lon,
                outside_country=True,
            ),
        )
        service = services.create(
            session=session,
            principal=STEWARD,
            data=ServiceCreate(
                organization_id=org.id, name=f"Refugio {lon}", categories=["protection.shelter"]
            ),
        )
        link = service_at_locations.create(
            session=session,
            principal=STEWARD,
            data=ServiceAtLocationCreate(service_id=service.id, location_id=location.id),
        )
        sides[str(link.id)] = GEOD.inv(179.9999, -17.7, lon, -17.7)[2]
    assert sorted(sides.values())[-1] < 50.0  # both within the radius, one across
    page = _search(client, caseworker, near="-17.7,179.9999", radius_m=50)
    assert page["total_items"] == 2
    assert not page["total_is_lower_bound"]
    assert {r["service_at_location_id"]: r["distance_m"] for r in page["contents"]} == {
        link: pytest.approx(distance, abs=1.0) for link, distance in sides.items()
    }
