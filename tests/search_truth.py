"""A pure-Python ground truth for search, computed from generated data only.

Nothing here imports the code under test: filters are re-stated from the documented rules,
distances come from pyproj's WGS 84 geodesics, containment from shapely over the boundary files,
the category hierarchy from the seed taxonomy file. The parity tests compare both database
backends against this, and against each other.
"""

from __future__ import annotations

import csv
import json
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import shapely
from pyproj import Geod
from shapely.geometry import MultiPolygon, Point, Polygon, shape

ROOT = Path(__file__).resolve().parents[1]
AREA_DIR = ROOT / "src" / "referral_net" / "data" / "guatemala"
TAXONOMY_FILE = ROOT / "seed" / "taxonomy.json"
LAKE_CODES = frozenset({"0100", "0700"})
GEOD = Geod(ellps="WGS84")
# Ground-truth distances closer than this are one tie, broken by id (see ``expected``).
NEAR_TIE_M = 1e-6
# The two audiences: trusted roles search exact points, everyone else the public ones.
TRUSTED = "trusted"
PUBLIC = "public"


# --- reference data read straight from the files -------------------------------------------


def _multipolygon(geometry: dict[str, Any]) -> MultiPolygon:
    geom = shape(geometry)
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    if isinstance(geom, MultiPolygon):
        return geom
    raise ValueError(f"expected a polygon, got {geom.geom_type}")


@cache
def municipality_shapes() -> dict[str, MultiPolygon]:
    """Municipality polygons by INE code, lakes left out."""
    data = json.loads((AREA_DIR / "municipalities.geojson").read_text(encoding="utf-8"))
    return {
        f["properties"]["ine_code"]: _multipolygon(f["geometry"])
        for f in data["features"]
        if f["properties"]["ine_code"] not in LAKE_CODES
    }


@cache
def department_shapes() -> dict[str, MultiPolygon]:
    """Department polygons by INE code."""
    data = json.loads((AREA_DIR / "departments.geojson").read_text(encoding="utf-8"))
    return {f["properties"]["ine_code"]: _multipolygon(f["geometry"]) for f in data["features"]}


def area_shape(code: str) -> MultiPolygon:
    """The polygon of a department (2 digits) or municipality (4 digits)."""
    return (department_shapes() if len(code) == 2 else municipality_shapes())[code]


@cache
def _tree(level: str) -> tuple[shapely.STRtree, tuple[str, ...]]:
    shapes = department_shapes() if level == "department" else municipality_shapes()
    codes = tuple(sorted(shapes))
    return shapely.STRtree([shapes[c] for c in codes]), codes


def _codes_at(level: str, lat: float, lon: float) -> list[str]:
    tree, codes = _tree(level)
    hits = tree.query(Point(lon, lat), predicate="intersects")
    return sorted(codes[int(i)] for i in hits)


def area_codes_at(lat: float, lon: float) -> tuple[str | None, str | None]:
    """(department, municipality) containing a point, boundary included; lowest code on a tie."""
    municipalities = _codes_at("municipality", lat, lon)
    departments = _codes_at("department", lat, lon)
    municipality = municipalities[0] if municipalities else None
    department = departments[0] if departments else None
    if department is None and municipality is not None:
        department = municipality[:2]
    return department, municipality


@cache
def representative_points() -> dict[str, tuple[float, float]]:
    """(lat, lon) shown for a restricted site, by area code.

    Municipalities: the inside point of ``municipality_centroids.csv``; departments: shapely's
    representative point rounded to 6 decimals (what the boundary loader stores).
    """
    points: dict[str, tuple[float, float]] = {}
    for code, geom in department_shapes().items():
        rep = geom.representative_point()
        points[code] = (round(rep.y, 6), round(rep.x, 6))
    with (AREA_DIR / "municipality_centroids.csv").open(encoding="utf-8", newline="") as handle:
        inside = {row["ine_code"]: row for row in csv.DictReader(handle)}
    for code, geom in municipality_shapes().items():
        row = inside.get(code)
        if row is not None:
            points[code] = (float(row["inside_lat"]), float(row["inside_lon"]))
        else:
            rep = geom.representative_point()
            points[code] = (rep.y, rep.x)
    return points


@cache
def _parents() -> dict[str, str | None]:
    data = json.loads(TAXONOMY_FILE.read_text(encoding="utf-8"))
    return {t["code"]: t.get("parent_code") for t in data["terms"]}


def category_matches(service_codes: Sequence[str], query_codes: Sequence[str]) -> bool:
    """True when a service code is one of the query codes or lies below one of them."""
    parents = _parents()
    wanted = set(query_codes)
    for code in service_codes:
        current: str | None = code
        while current is not None:
            if current in wanted:
                return True
            current = parents.get(current)
    return False


def fold(text: str) -> str:
    """Lower case, accents removed, single spaces (restated, not imported)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """WGS 84 geodesic distance in metres (pyproj, Karney)."""
    _, _, dist = GEOD.inv(lon1, lat1, lon2, lat2)
    return float(dist)


# --- the generated world -------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """One service at one location, flattened to what the search rules read."""

    link_id: uuid.UUID
    service_name: str
    service_description: str
    lat: float
    lon: float
    visibility: str
    department_code: str | None
    municipality_code: str | None
    categories: tuple[str, ...]
    languages: tuple[str, ...]
    min_age: int | None
    max_age: int | None
    minors_only: bool
    genders: tuple[str, ...] | None
    trans_inclusive: bool
    affirming: bool
    children: bool
    capacities: tuple[float, ...]
    service_areas: tuple[MultiPolygon, ...]
    service_active: bool = True
    location_defunct: bool = False
    organization_defunct: bool = False


@dataclass(frozen=True)
class TruthQuery:
    """The parts of a search query the ground truth reads."""

    mode: str
    latitude: float | None = None
    longitude: float | None = None
    radius_m: float | None = None
    box: tuple[float, float, float, float] | None = None
    area_code: str | None = None
    categories: tuple[str, ...] = ()
    language: str | None = None
    age: int | None = None
    gender: str | None = None
    lgbtiq_affirming: bool | None = None
    accepts_children: bool | None = None
    has_capacity: bool | None = None
    text: str | None = None
    limit: int = 10
    page: int = 1


@dataclass(frozen=True)
class Expected:
    """One page of ground truth: (link id, distance) in order, and the total."""

    rows: list[tuple[uuid.UUID, float | None]]
    total: int
    # Every match with its ground-truth distance, for diagnosing a failure.
    all_rows: list[tuple[uuid.UUID, float | None]] = field(default_factory=list)


def seen_point(site: Site, audience: str) -> tuple[float, float] | None:
    """Where an audience finds a site: exact for trusted roles and public sites, the area's
    representative point for a restricted site seen by the public, nowhere if confidential."""
    if audience == TRUSTED or site.visibility == "public":
        return site.lat, site.lon
    if site.visibility == "confidential":
        return None
    code = site.municipality_code or site.department_code
    return None if code is None else representative_points()[code]


def gender_allows(site: Site, gender: str) -> bool:
    """Open to all always; own gender when listed; trans women/men at women/men-only services
    that are trans-inclusive or LGBTIQ+-affirming; undisclosed only where open to all."""
    if site.genders is None:
        return True
    if gender == "undisclosed":
        return False
    if gender in site.genders:
        return True
    binary = {"trans_woman": "woman", "trans_man": "man"}.get(gender)
    return (
        binary is not None and binary in site.genders and (site.trans_inclusive or site.affirming)
    )


def passes_filters(site: Site, query: TruthQuery) -> bool:  # noqa: C901, PLR0911, PLR0912 - a flat oracle
    """The typed filters, restated."""
    if not site.service_active or site.location_defunct or site.organization_defunct:
        return False
    if query.categories and not category_matches(site.categories, query.categories):
        return False
    if query.language is not None and query.language not in site.languages:
        return False
    if query.age is not None:
        if site.min_age is not None and site.min_age > query.age:
            return False
        if site.max_age is not None and site.max_age < query.age:
            return False
        if site.minors_only and query.age >= 18:
            return False
    if query.gender is not None and not gender_allows(site, query.gender):
        return False
    if query.lgbtiq_affirming is not None and site.affirming != query.lgbtiq_affirming:
        return False
    if query.accepts_children is not None and site.children != query.accepts_children:
        return False
    if query.has_capacity is not None and (
        any(a > 0 for a in site.capacities) != query.has_capacity
    ):
        return False
    if query.text:
        document = fold(f"{site.service_name} {site.service_description}")
        if not all(token in document for token in fold(query.text).split()):
            return False
    return True


def in_mode(site: Site, point: tuple[float, float], query: TruthQuery) -> bool:
    """The geometric condition of the query's mode on the point the audience sees."""
    lat, lon = point
    if query.mode == "near":
        if query.radius_m is None:
            return True
        assert query.latitude is not None
        assert query.longitude is not None
        return distance_m(query.latitude, query.longitude, lat, lon) <= query.radius_m
    if query.mode == "bbox":
        assert query.box is not None
        min_lon, min_lat, max_lon, max_lat = query.box
        return min_lon <= lon <= max_lon and min_lat <= lat <= max_lat
    if query.mode in ("department", "municipality"):
        assert query.area_code is not None
        return bool(area_shape(query.area_code).intersects(Point(lon, lat)))
    if query.mode == "covers":
        assert query.latitude is not None
        assert query.longitude is not None
        target = Point(query.longitude, query.latitude)
        return any(area.intersects(target) for area in site.service_areas)
    raise ValueError(query.mode)


def order_near_ties(rows: list[tuple[uuid.UUID, float]]) -> list[tuple[uuid.UUID, float]]:
    """Sort by distance, treating distances within NEAR_TIE_M of a run's first as one tie."""
    ordered = sorted(rows, key=lambda r: (r[1], r[0].int))
    result: list[tuple[uuid.UUID, float]] = []
    i = 0
    while i < len(ordered):
        j = i + 1
        while j < len(ordered) and ordered[j][1] - ordered[i][1] < NEAR_TIE_M:
            j += 1
        result.extend(sorted(ordered[i:j], key=lambda r: r[0].int))
        i = j
    return result


def expected(sites: Sequence[Site], query: TruthQuery, audience: str) -> Expected:
    """The ordered page and total a search must return."""
    has_point = query.latitude is not None and query.longitude is not None
    matched: list[tuple[Site, tuple[float, float]]] = []
    for site in sites:
        point = seen_point(site, audience)
        if point is None or not passes_filters(site, query) or not in_mode(site, point, query):
            continue
        matched.append((site, point))
    rows: list[tuple[uuid.UUID, float | None]]
    if has_point:
        assert query.latitude is not None
        assert query.longitude is not None
        lat0, lon0 = query.latitude, query.longitude
        rows = list(
            order_near_ties([(s.link_id, distance_m(lat0, lon0, p[0], p[1])) for s, p in matched])
        )
    else:
        rows = [
            (s.link_id, None)
            for s, _ in sorted(matched, key=lambda m: (m[0].service_name, m[0].link_id.int))
        ]
    offset = (query.page - 1) * query.limit
    return Expected(rows=rows[offset : offset + query.limit], total=len(rows), all_rows=rows)


def radius_margin_m(sites: Sequence[Site], query: TruthQuery, audience: str) -> float:
    """How far the nearest seen point lies from the query's radius boundary (inf: no radius)."""
    if query.radius_m is None or query.latitude is None or query.longitude is None:
        return float("inf")
    margins = [
        abs(distance_m(query.latitude, query.longitude, p[0], p[1]) - query.radius_m)
        for p in (seen_point(s, audience) for s in sites)
        if p is not None
    ]
    return min(margins, default=float("inf"))


def boundary_vertices(
    departments: Sequence[str], box: tuple[float, float, float, float]
) -> tuple[tuple[float, float], ...]:
    """(lat, lon) vertices of the municipality rings of some departments, inside a box."""
    min_lon, min_lat, max_lon, max_lat = box
    found: set[tuple[float, float]] = set()
    for code, geom in municipality_shapes().items():
        if code[:2] not in departments:
            continue
        for polygon in geom.geoms:
            for lon, lat in polygon.exterior.coords:
                if min_lon <= lon <= max_lon and min_lat <= lat <= max_lat:
                    found.add((lat, lon))
    return tuple(sorted(found))
