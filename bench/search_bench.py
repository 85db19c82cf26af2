"""Benchmark of GET /api/v1/search against raw SQL, on PostGIS and SpatiaLite, at several sizes.

Not a test: speed is measured here, never in timed tests. Run from the repository root:

    .venv/bin/python bench/search_bench.py --backends postgis,spatialite \
        --sizes 10000,100000,1000000

For each backend and size it builds a fresh database (migrations, areas, taxonomy), bulk-loads N
synthetic public service locations over Guatemala (clustered around towns, a weighted mix of
category leaves, Spanish plus the region's Mayan languages), runs ANALYZE, then measures in the
same run:

- the endpoint over HTTP: ``referral-net serve`` (uvicorn, 2 workers) driven by wrk with random
  points (bench/random_points.lua) for nearest-10 with one category filter and for a 10 km radius;
- the endpoint's core SQL through the driver: the exact statements the search issues for the same
  query (captured from SQLAlchemy, replayed on one raw connection, sequentially), timed per query;
- a hand-written single-statement version of each query (what the indexes can do at best);
- on SpatiaLite, the nearest-10 query as a full scan (no R*Tree window), for the index speed-up.

Results go to bench/results/search-<stamp>.json and .md. Absolute times on this shared 2-core
machine are noisy; read the ratios, which are taken side by side in one run.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import sqlean
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from referral_net.db import migrate  # noqa: E402
from referral_net.db.engine import make_engine  # noqa: E402
from referral_net.domain import areas, taxonomy  # noqa: E402
from referral_net.domain import search as search_domain  # noqa: E402
from referral_net.security.roles import Principal  # noqa: E402
from referral_net.settings import Settings  # noqa: E402

RESULTS = ROOT / "bench" / "results"
LUA = ROOT / "bench" / "random_points.lua"
PG_BASE = os.environ.get("BENCH_POSTGIS_BASE", "postgresql+psycopg://postgres@127.0.0.1:5432")
# Populated box of Guatemala used for query points (same as random_points.lua).
LAT_RANGE = (14.0, 16.5)
LON_RANGE = (-92.2, -89.0)
CATEGORY = "protection.shelter"
RADIUS_M = 10_000.0
# Leaf categories and how common they are among service locations (shelters ~10 %).
CATEGORY_WEIGHTS = {
    "protection.shelter.emergency": 4,
    "protection.shelter.children_adolescents": 2,
    "protection.shelter.women": 2,
    "protection.shelter.long_term": 1,
    "protection.shelter.lgbtiq": 1,
    "protection.health.medical": 14,
    "protection.health.mental_psychosocial": 10,
    "protection.legal_aid": 12,
    "protection.migration": 5,
    "protection.education": 8,
    "protection.livelihoods": 8,
    "protection.hotline": 3,
    "prosecution.police": 10,
    "prosecution.prosecutors": 6,
    "prevention.awareness": 9,
    "partnerships.networks": 5,
}
# Mayan languages (ISO 639-3) most spoken in each department (INE code); Spanish is always offered.
MAYAN_BY_DEPARTMENT = {
    "01": ["cak"],
    "03": ["cak"],
    "04": ["cak"],
    "07": ["cak", "tzj", "quc"],
    "08": ["quc"],
    "09": ["mam", "quc"],
    "10": ["quc", "tzj"],
    "12": ["mam"],
    "13": ["mam", "kjb", "jac"],
    "14": ["quc", "ixl"],
    "15": ["acr", "quc"],
    "16": ["kek", "poh"],
    "17": ["kek"],
    "18": ["kek"],
    "20": ["caa"],
}
ALL_MAYAN = sorted({code for codes in MAYAN_BY_DEPARTMENT.values() for code in codes})


@dataclass
class Figures:
    """One measured series: latency percentiles and throughput."""

    p50_ms: float
    p95_ms: float
    per_second: float
    samples: int


@dataclass
class Run:
    """Everything measured for one backend and size."""

    backend: str
    size: int
    load_seconds: float
    http_knn: Figures | None = None
    http_radius: Figures | None = None
    http1_knn: Figures | None = None
    http1_radius: Figures | None = None
    core_knn: Figures | None = None
    core_radius: Figures | None = None
    sql_knn: Figures | None = None
    sql_radius: Figures | None = None
    sql_knn_full_scan: Figures | None = None
    http_health: Figures | None = None
    statements_knn: int = 0
    statements_radius: int = 0
    notes: list[str] = field(default_factory=list)


# --- synthetic data ------------------------------------------------------------------------------


def towns() -> list[tuple[float, float, float, str]]:
    """Town points with a weight (square root of population) and their department code."""
    with (ROOT / "seed" / "places.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [
        (
            float(r["lat"]),
            float(r["lon"]),
            max(1.0, float(r["population"] or 0) ** 0.5),
            r["adm1_ine"] or "",
        )
        for r in rows
    ]


def synthetic_points(n: int, rng: random.Random) -> Iterator[tuple[float, float, str]]:
    """80 % clustered around towns (Gaussian, sigma ~3 km), 20 % uniform over the populated box."""
    places = towns()
    cumulative: list[float] = []
    total = 0.0
    for _, _, weight, _ in places:
        total += weight
        cumulative.append(total)
    for _ in range(n):
        if rng.random() < 0.8:
            lat, lon, _, department = rng.choices(places, cum_weights=cumulative)[0]
            yield (
                min(17.8, max(13.8, lat + rng.gauss(0, 0.03))),
                min(-88.3, max(-92.2, lon + rng.gauss(0, 0.03))),
                department,
            )
        else:
            yield rng.uniform(*LAT_RANGE), rng.uniform(*LON_RANGE), ""


def generate_rows(n: int, terms: dict[str, str], seed: int = 7) -> Iterator[dict[str, Any]]:
    """The synthetic directory: one active service at one public location per row."""
    rng = random.Random(seed)
    codes = list(CATEGORY_WEIGHTS)
    cumulative: list[float] = []
    total = 0.0
    for weight in CATEGORY_WEIGHTS.values():
        total += weight
        cumulative.append(total)
    orgs = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(max(1, n // 50))]
    for index, (lat, lon, department) in enumerate(synthetic_points(n, rng)):
        code = rng.choices(codes, cum_weights=cumulative)[0]
        local = MAYAN_BY_DEPARTMENT.get(department, ALL_MAYAN if not department else [])
        extra = rng.sample(local, k=min(len(local), rng.choice([0, 1, 1, 2])))
        yield {
            "org": orgs[index % len(orgs)],
            "location": uuid.UUID(int=rng.getrandbits(128)),
            "service": uuid.UUID(int=rng.getrandbits(128)),
            "link": uuid.UUID(int=rng.getrandbits(128)),
            "attribute": uuid.UUID(int=rng.getrandbits(128)),
            "term": terms[code],
            "languages": [(uuid.UUID(int=rng.getrandbits(128)), c) for c in ["spa", *extra]],
            "lat": round(lat, 6),
            "lon": round(lon, 6),
            "name": f"Servicio {index} (sintético)",
            "min_age": rng.choice([None, None, 0, 12, 18]),
        }


def postgis_url(size: int) -> str:
    """The SQLAlchemy URL of the PostGIS benchmark database for one size."""
    return f"{PG_BASE}/referral_net_bench_{size}"


def spatialite_path(size: int) -> Path:
    """The SpatiaLite benchmark file for one size (bench/results is gitignored)."""
    return RESULTS / f"bench_{size}.db"


def fresh_database(backend: str, size: int) -> Settings:
    """Create and migrate an empty database, with areas and the taxonomy loaded."""
    if backend == "postgis":
        name = f"referral_net_bench_{size}"
        admin = create_engine(f"{PG_BASE}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        engine = create_engine(postgis_url(size), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("CREATE EXTENSION postgis"))
        engine.dispose()
        settings = Settings(database_url=postgis_url(size))
    else:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = spatialite_path(size)
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        settings = Settings(database_url=f"sqlite:///{path}")
    migrate.upgrade(settings)
    engine = make_engine(settings)
    with Session(engine) as session:
        areas.load_areas(session=session)
        taxonomy.load_taxonomy(session=session)
        session.commit()
    engine.dispose()
    return settings


def existing_database(backend: str, size: int) -> Settings | None:
    """Settings for an already loaded benchmark database of this size, if there is one."""
    url = postgis_url(size) if backend == "postgis" else f"sqlite:///{spatialite_path(size)}"
    if backend == "spatialite" and not spatialite_path(size).exists():
        return None
    settings = Settings(database_url=url)
    try:
        engine = make_engine(settings)
        with engine.connect() as conn:
            count = conn.execute(text("SELECT count(*) FROM service_at_location")).scalar_one()
        engine.dispose()
    except Exception:  # noqa: BLE001 - any failure means "not there": build it
        return None
    return settings if count == size else None


def term_ids(settings: Settings) -> dict[str, str]:
    """Taxonomy code -> term id as the driver returns it (hex on SQLite, canonical on PG)."""
    engine = make_engine(settings)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT code, id FROM taxonomy_term")).all()
    engine.dispose()
    return {code: str(term_id) for code, term_id in rows}


def _pg_dsn(settings: Settings) -> str:
    return settings.database_url.replace("postgresql+psycopg://", "postgresql://")


def load_postgis(settings: Settings, n: int) -> None:
    """Bulk-load with COPY (EWKT geometry text is accepted by PostGIS), then VACUUM ANALYZE."""
    rows = list(generate_rows(n, term_ids(settings)))
    with psycopg.connect(_pg_dsn(settings)) as conn, conn.cursor() as cur:
        orgs = sorted({r["org"] for r in rows})
        with cur.copy(
            "COPY organization (id, name, description, status, version) FROM STDIN"
        ) as cp:
            for org in orgs:
                cp.write_row((org, f"Org {org.hex[:6]} (sintética)", "", "active", 1))
        with cur.copy(
            "COPY location (id, location_type, organization_id, name, latitude, longitude, geom,"
            " public_geom, visibility, outside_country, status, version) FROM STDIN"
        ) as cp:
            for r in rows:
                point = f"SRID=4326;POINT({r['lon']} {r['lat']})"
                cp.write_row(
                    (r["location"], "physical", r["org"], r["name"], r["lat"], r["lon"], point,
                     point, "public", False, "active", 1)
                )  # fmt: skip
        with cur.copy(
            "COPY service (id, organization_id, name, status, minimum_age, trans_inclusive,"
            " lgbtiq_affirming, accepts_accompanying_children, minors_only, version, search_text)"
            " FROM STDIN"
        ) as cp:
            for r in rows:
                cp.write_row(
                    (r["service"], r["org"], r["name"], "active", r["min_age"], False, False,
                     True, False, 1, r["name"].lower())
                )  # fmt: skip
        with cur.copy("COPY service_at_location (id, service_id, location_id) FROM STDIN") as cp:
            for r in rows:
                cp.write_row((r["link"], r["service"], r["location"]))
        with cur.copy(
            "COPY attribute (id, link_id, taxonomy_term_id, link_type, link_entity) FROM STDIN"
        ) as cp:
            for r in rows:
                cp.write_row((r["attribute"], r["service"], r["term"], "category", "service"))
        with cur.copy("COPY language (id, service_id, code) FROM STDIN") as cp:
            for r in rows:
                for lang_id, code in r["languages"]:
                    cp.write_row((lang_id, r["service"], code))
        conn.commit()
        conn.autocommit = True
        cur.execute("VACUUM ANALYZE")


def _spatialite(path: str) -> Any:
    conn = sqlean.connect(path)
    conn.enable_load_extension(True)
    conn.load_extension("mod_spatialite")
    return conn


def load_spatialite(settings: Settings, n: int) -> None:
    """Bulk-load in one transaction (the R*Tree triggers keep both spatial indexes), ANALYZE."""
    terms = term_ids(settings)
    conn = _spatialite(settings.database_url.removeprefix("sqlite:///"))
    conn.isolation_level = None
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -1000000")
    rows = list(generate_rows(n, terms))
    orgs = sorted({r["org"] for r in rows})
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO organization (id, name, description, status, version) VALUES (?,?,?,?,1)",
        [(o.hex, f"Org {o.hex[:6]} (sintética)", "", "active") for o in orgs],
    )
    conn.executemany(
        "INSERT INTO location (id, location_type, organization_id, name, latitude, longitude,"
        " geom, public_geom, visibility, outside_country, status, version) VALUES"
        " (?, 'physical', ?, ?, ?, ?, MakePoint(?, ?, 4326), MakePoint(?, ?, 4326), 'public', 0,"
        " 'active', 1)",
        (
            (r["location"].hex, r["org"].hex, r["name"], r["lat"], r["lon"], r["lon"], r["lat"],
             r["lon"], r["lat"])
            for r in rows
        ),
    )  # fmt: skip
    conn.executemany(
        "INSERT INTO service (id, organization_id, name, status, minimum_age, trans_inclusive,"
        " lgbtiq_affirming, accepts_accompanying_children, minors_only, version, search_text)"
        " VALUES (?, ?, ?, 'active', ?, 0, 0, 1, 0, 1, ?)",
        (
            (r["service"].hex, r["org"].hex, r["name"], r["min_age"], r["name"].lower())
            for r in rows
        ),
    )
    conn.executemany(
        "INSERT INTO service_at_location (id, service_id, location_id) VALUES (?, ?, ?)",
        ((r["link"].hex, r["service"].hex, r["location"].hex) for r in rows),
    )
    conn.executemany(
        "INSERT INTO attribute (id, link_id, taxonomy_term_id, link_type, link_entity)"
        " VALUES (?, ?, ?, 'category', 'service')",
        ((r["attribute"].hex, r["service"].hex, uuid.UUID(r["term"]).hex) for r in rows),
    )
    conn.executemany(
        "INSERT INTO language (id, service_id, code) VALUES (?, ?, ?)",
        ((lang_id.hex, r["service"].hex, code) for r in rows for lang_id, code in r["languages"]),
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


# --- measuring -----------------------------------------------------------------------------------


def figures(samples: list[float]) -> Figures:
    """p50, p95 (nearest rank) and sequential throughput of a list of durations in seconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return Figures(
        p50_ms=round(statistics.median(ordered) * 1000, 3),
        p95_ms=round(p95 * 1000, 3),
        per_second=round(len(ordered) / sum(ordered), 1),
        samples=len(ordered),
    )


def random_points(count: int, seed: int = 99) -> list[tuple[float, float]]:
    """Query points (lat, lon), uniform over Guatemala's populated box, as in random_points.lua."""
    rng = random.Random(seed)
    return [(rng.uniform(*LAT_RANGE), rng.uniform(*LON_RANGE)) for _ in range(count)]


def _query(lat: float, lon: float, mode: str) -> search_domain.SearchQuery:
    if mode == "knn":
        return search_domain.SearchQuery(
            mode="near", latitude=lat, longitude=lon, categories=(CATEGORY,), limit=10
        )
    return search_domain.SearchQuery(
        mode="near", latitude=lat, longitude=lon, radius_m=RADIUS_M, limit=10
    )


@contextmanager
def captured(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Record (statement, parameters) of every statement the engine sends to the driver."""
    log: list[tuple[str, Any]] = []

    def before(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        log.append((statement, params))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield log
    finally:
        event.remove(engine, "before_cursor_execute", before)


def core_statements(engine: Engine, lat: float, lon: float, mode: str) -> list[tuple[str, Any]]:
    """The statements the endpoint's search core sends: capped count, nearest bound, page.

    Captured from ``search.search`` (what GET /api/v1/search runs), keeping the statements over
    ``service_at_location``; the taxonomy look-ups and the shaping of the page are left out.
    """
    with Session(engine) as session:
        query = _query(lat, lon, mode)
        with captured(engine) as log:
            search_domain.search(session=session, principal=Principal.anonymous(), query=query)
    return [(s, p) for s, p in log if "FROM service_at_location" in s]


def time_core(
    settings: Settings, points: list[tuple[float, float]], mode: str, budget: float
) -> tuple[Figures, int]:
    """Replay the endpoint's core SQL through the raw driver, one connection, sequentially.

    For each point the statements are captured from the search itself (untimed), then replayed
    (timed). Stops after ``budget`` seconds of wall time with at least 5 samples.
    """
    engine = make_engine(settings)
    if settings.database_url.startswith("sqlite"):
        conn = _spatialite(settings.database_url.removeprefix("sqlite:///"))
    else:
        # No server-side prepare: the app's SQLAlchemy connections get custom plans (see
        # docs/performance.md); a prepared generic plan of the nearest bound is ~100x slower.
        # Same session settings as the app's engine (db/engine.py): no parallel workers.
        conn = psycopg.connect(
            _pg_dsn(settings),
            autocommit=True,
            prepare_threshold=None,
            options="-c max_parallel_workers_per_gather=0",
        )
    samples: list[float] = []
    statements = 0
    deadline = time.perf_counter() + budget
    for lat, lon in points:
        plan = core_statements(engine, lat, lon, mode)
        statements = max(statements, len(plan))
        started = time.perf_counter()
        for statement, params in plan:
            conn.execute(statement, params).fetchall()
        samples.append(time.perf_counter() - started)
        if time.perf_counter() > deadline and len(samples) >= 5:
            break
    conn.close()
    engine.dispose()
    return figures(samples), statements


SHELTER_CODES = (
    "protection.shelter",
    "protection.shelter.emergency",
    "protection.shelter.children_adolescents",
    "protection.shelter.women",
    "protection.shelter.long_term",
    "protection.shelter.lgbtiq",
)


def _timed(
    run: Callable[[float, float], None], points: list[tuple[float, float]], budget: float
) -> Figures:
    samples: list[float] = []
    deadline = time.perf_counter() + budget
    for lat, lon in points:
        started = time.perf_counter()
        run(lat, lon)
        samples.append(time.perf_counter() - started)
        if time.perf_counter() > deadline and len(samples) >= min(5, len(points)):
            break
    return figures(samples)


def minimal_sql_postgis(
    settings: Settings, points: list[tuple[float, float]], budget: float
) -> dict[str, Figures]:
    """Hand-written single statements: KNN on the GiST index; a 10 km geography window."""
    knn = (
        "SELECT sal.id, ST_Distance(l.public_geom::geography, p.g::geography) AS d"
        " FROM (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) AS g) p,"
        " service_at_location sal JOIN service s ON s.id = sal.service_id"
        " JOIN location l ON l.id = sal.location_id"
        " WHERE s.status = 'active' AND s.id IN (SELECT a.link_id FROM attribute a"
        "   JOIN taxonomy_term t ON t.id = a.taxonomy_term_id WHERE a.link_entity = 'service'"
        "   AND t.code = ANY(%(codes)s))"
        " ORDER BY l.public_geom <-> p.g LIMIT 10"
    )
    radius = (
        "SELECT sal.id, ST_Distance(l.public_geom::geography, p.g::geography) AS d"
        " FROM (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) AS g) p,"
        " service_at_location sal JOIN service s ON s.id = sal.service_id"
        " JOIN location l ON l.id = sal.location_id"
        " WHERE s.status = 'active'"
        "   AND ST_DWithin(l.public_geom::geography, p.g::geography, 10000)"
        "   AND l.public_geom && ST_Expand(p.g, 0.1)"
        " ORDER BY d, sal.id LIMIT 10"
    )
    out: dict[str, Figures] = {}
    with psycopg.connect(_pg_dsn(settings), autocommit=True) as conn:
        for name, sql in (("knn", knn), ("radius", radius)):

            def run(lat: float, lon: float, sql: str = sql) -> None:
                params = {"lat": lat, "lon": lon, "codes": list(SHELTER_CODES)}
                conn.execute(sql, params).fetchall()

            out[name] = _timed(run, points, budget)
    return out


def minimal_sql_spatialite(
    settings: Settings, points: list[tuple[float, float]], budget: float, full_scan: int
) -> dict[str, Figures]:
    """Hand-written: an R*Tree window (SpatialIndex) then ellipsoidal distance; and a full scan."""
    category = (
        "AND s.id IN (SELECT a.link_id FROM attribute a JOIN taxonomy_term t"
        " ON t.id = a.taxonomy_term_id WHERE a.link_entity = 'service' AND t.code IN ({}))".format(
            ",".join(f"'{c}'" for c in SHELTER_CODES)
        )
    )
    # CROSS JOIN fixes SQLite's join order: the R*Tree window drives, categories only filter.
    window = (
        "SELECT sal.id, ST_Distance(l.public_geom, MakePoint(:lon, :lat, 4326), 1) AS d"
        " FROM location l CROSS JOIN service_at_location sal CROSS JOIN service s"
        " WHERE sal.location_id = l.id AND s.id = sal.service_id"
        " AND s.status = 'active' {category} AND l.rowid IN (SELECT rowid FROM SpatialIndex"
        "   WHERE f_table_name = 'location' AND f_geometry_column = 'public_geom'"
        "   AND search_frame = BuildMbr(:lon - :dx, :lat - :dy, :lon + :dx, :lat + :dy, 4326))"
        "   {within}"
        " ORDER BY d, sal.id LIMIT 10"
    )
    scan = (
        "SELECT sal.id, ST_Distance(l.public_geom, MakePoint(:lon, :lat, 4326), 1) AS d"
        " FROM service_at_location sal JOIN service s ON s.id = sal.service_id"
        f" JOIN location l ON l.id = sal.location_id WHERE s.status = 'active' {category}"
        " ORDER BY d, sal.id LIMIT 10"
    )
    conn = _spatialite(settings.database_url.removeprefix("sqlite:///"))
    # Correlated, so that SQLite does not push the id list into the join (it would probe the
    # (service_id, location_id) index once per listed service for every location in the window).
    correlated = (
        "AND EXISTS (SELECT 1 FROM attribute a WHERE a.link_entity = 'service'"
        " AND a.link_id = s.id AND a.taxonomy_term_id IN (SELECT t.id FROM taxonomy_term t"
        " WHERE t.code IN ({})))".format(",".join(f"'{c}'" for c in SHELTER_CODES))
    )
    knn_sql = window.format(category=correlated, within="")
    radius_sql = window.format(
        category="",
        within="AND PtDistWithin(l.public_geom, MakePoint(:lon, :lat, 4326), 10000, 1) = 1",
    )

    def knn(lat: float, lon: float) -> None:
        # A window that grows x4 until it holds 10 rows; then one exact pass over a window whose
        # half-width covers the 10th distance (degrees of latitude ~ 111 km; longitude ~ 107 km
        # here), which is what makes the nearest-10 exact, as in the endpoint.
        size = 0.05
        while True:
            rows = conn.execute(
                knn_sql, {"lat": lat, "lon": lon, "dx": size, "dy": size}
            ).fetchall()
            if len(rows) == 10 or size > 4:
                break
            size *= 4
        if len(rows) == 10:
            reach = rows[-1][1] / 100_000.0
            if reach > size:
                conn.execute(knn_sql, {"lat": lat, "lon": lon, "dx": reach, "dy": reach}).fetchall()

    def radius(lat: float, lon: float) -> None:
        conn.execute(radius_sql, {"lat": lat, "lon": lon, "dx": 0.1, "dy": 0.1}).fetchall()

    def full(lat: float, lon: float) -> None:
        conn.execute(scan, {"lat": lat, "lon": lon}).fetchall()

    out = {"knn": _timed(knn, points, budget), "radius": _timed(radius, points, budget)}
    if full_scan:
        out["knn_full_scan"] = _timed(full, points[:full_scan], 0.0)
    conn.close()
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(settings: Settings, workers: int) -> Iterator[str]:
    """Run `referral-net serve` (uvicorn) against the database; yield its base URL."""
    port = _free_port()
    env = {
        **os.environ,
        "REFERRAL_NET_DATABASE_URL": settings.database_url,
        "REFERRAL_NET_RATE_LIMITS_ENABLED": "false",
        "REFERRAL_NET_SECRET_KEY": "bench-only-not-a-secret-0123456789",
    }
    command = [str(ROOT / ".venv/bin/referral-net"), "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                with urllib.request.urlopen(f"{base}/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # slow requests still running: do not wait for them
            process.kill()
            process.wait(timeout=30)


def wrk(base: str, mode: str, seconds: int, threads: int, connections: int) -> Figures:
    """Drive the endpoint with wrk and the random-point script; a short warm-up first."""
    env = {**os.environ, "BENCH_MODE": mode}
    command = ["wrk", f"-t{threads}", f"-c{connections}", "-s", str(LUA), "--timeout", "30s"]
    subprocess.run([*command, "-d3s", base], env=env, capture_output=True, check=True)
    result = subprocess.run(
        [*command, f"-d{seconds}s", base], env=env, capture_output=True, text=True, check=True
    )
    found = re.search(r"BENCH p50_us=(\d+) p95_us=(\d+) rps=([\d.]+) errors=(\d+)", result.stdout)
    if not found:
        raise RuntimeError(result.stdout + result.stderr)
    if int(found.group(4)):
        raise RuntimeError(f"{found.group(4)} failed requests ({mode}):\n{result.stdout}")
    rps = float(found.group(3))
    return Figures(
        p50_ms=int(found.group(1)) / 1000,
        p95_ms=int(found.group(2)) / 1000,
        per_second=rps,
        samples=round(rps * seconds),
    )


def run_one(backend: str, size: int, args: argparse.Namespace) -> Run:
    """Build (or reuse), load and measure one backend at one size."""
    settings = existing_database(backend, size) if args.reuse else None
    load_seconds = 0.0
    if settings is None:
        settings = fresh_database(backend, size)
        started = time.perf_counter()
        (load_postgis if backend == "postgis" else load_spatialite)(settings, size)
        load_seconds = round(time.perf_counter() - started, 1)
        print(f"{backend} {size}: loaded in {load_seconds} s", file=sys.stderr, flush=True)
    run = Run(backend=backend, size=size, load_seconds=load_seconds)
    if args.load_only:
        return run
    if backend == "postgis":
        # Database-level, so the server's connections get it too: custom plans every time
        # (psycopg prepares after 5 runs of a statement; PostgreSQL may then pick a generic plan).
        mode = "force_custom_plan" if args.pg_force_custom_plan else "auto"
        with psycopg.connect(_pg_dsn(settings), autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE referral_net_bench_{size} SET plan_cache_mode = {mode}")
        run.notes.append(f"plan_cache_mode={mode}")
    if not args.skip_http:
        with server(settings, args.workers) as base:
            # One connection first: the latency of a request on an otherwise idle server (after
            # a saturating run, slow requests still queued in the workers would distort it).
            run.http1_knn = wrk(base, "knn", args.seconds_single, 1, 1)
            run.http1_radius = wrk(base, "radius", args.seconds_single, 1, 1)
            run.http_knn = wrk(base, "knn", args.seconds, args.threads, args.connections)
            time.sleep(5)  # let the backlog drain
            run.http_radius = wrk(base, "radius", args.seconds, args.threads, args.connections)
            time.sleep(5)
            # The ceiling of the stack itself (uvicorn, FastAPI, our middleware; no database).
            run.http_health = wrk(base, "health", args.seconds, args.threads, args.connections)
    points = random_points(args.iterations)
    run.core_knn, run.statements_knn = time_core(settings, points, "knn", args.sql_seconds)
    run.core_radius, run.statements_radius = time_core(settings, points, "radius", args.sql_seconds)
    if backend == "postgis":
        sql = minimal_sql_postgis(settings, points, args.sql_seconds)
    else:
        scans = args.full_scan if size >= args.full_scan_from else 0
        sql = minimal_sql_spatialite(settings, points, args.sql_seconds, scans)
    run.sql_knn, run.sql_radius = sql["knn"], sql["radius"]
    run.sql_knn_full_scan = sql.get("knn_full_scan")
    print(json.dumps(asdict(run)), file=sys.stderr, flush=True)
    return run


# --- reporting -----------------------------------------------------------------------------------


def _label(r: Run) -> str:
    return r.backend + (" (custom plans)" if "plan_cache_mode=force_custom_plan" in r.notes else "")


def _pair(f: Figures | None) -> str:
    return "-" if f is None else f"{f.p50_ms:.2f} / {f.p95_ms:.2f}"


def _rate(f: Figures | None) -> str:
    return "-" if f is None else f"{f.per_second:,.0f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.2f}x"


def markdown(runs: list[Run]) -> str:
    """Tables of the figures and of the ratios taken in this run."""
    out = io.StringIO()
    out.write(
        "| backend | N | query | HTTP c16 p50 / p95 ms | HTTP c16 req/s | HTTP c1 p50 / p95 ms"
        " | core SQL p50 / p95 ms | core SQL q/s | minimal SQL p50 / p95 ms | minimal SQL q/s |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    for r in runs:
        for label, http, http1, core, sql in (
            ("nearest-10 + category", r.http_knn, r.http1_knn, r.core_knn, r.sql_knn),
            ("10 km radius", r.http_radius, r.http1_radius, r.core_radius, r.sql_radius),
        ):
            out.write(
                f"| {_label(r)} | {r.size:,} | {label} | {_pair(http)} | {_rate(http)}"
                f" | {_pair(http1)} | {_pair(core)} | {_rate(core)} | {_pair(sql)}"
                f" | {_rate(sql)} |\n"
            )
        if r.sql_knn_full_scan:
            f = r.sql_knn_full_scan
            out.write(
                f"| {_label(r)} | {r.size:,} | nearest-10 + category, FULL SCAN | - | - | - | - "
                f"| - | {_pair(f)} | {_rate(f)} |\n"
            )
    for r in runs:
        if r.http_health:
            out.write(
                f"\n{_label(r)} at {r.size:,}: the same server answers `GET /health` (no DB) at"
                f" {_rate(r.http_health)} req/s with wrk c16 (p50 {r.http_health.p50_ms:.2f} ms):"
                " the ceiling of uvicorn + FastAPI + our middleware on this machine.\n"
            )
    out.write("\nRatios taken in this run (p50):\n\n")
    out.write(
        "| backend | N | query | HTTP c1 / core SQL | HTTP c1 / minimal SQL"
        " | core SQL / minimal SQL |\n|---|---|---|---|---|---|\n"
    )
    for r in runs:
        for label, http1, core, sql in (
            ("knn", r.http1_knn, r.core_knn, r.sql_knn),
            ("radius", r.http1_radius, r.core_radius, r.sql_radius),
        ):
            out.write(
                f"| {_label(r)} | {r.size:,} | {label}"
                f" | {_ratio(http1 and http1.p50_ms, core and core.p50_ms)}"
                f" | {_ratio(http1 and http1.p50_ms, sql and sql.p50_ms)}"
                f" | {_ratio(core and core.p50_ms, sql and sql.p50_ms)} |\n"
            )
    by = {(r.backend, r.size): r for r in runs}
    sizes = sorted({r.size for r in runs})
    lines = []
    for backend in ("postgis", "spatialite"):
        small, large = by.get((backend, sizes[0])), by.get((backend, sizes[-1]))
        if small and large and small is not large:
            for label, attr in (("HTTP c16 knn", "http_knn"), ("HTTP c16 radius", "http_radius"),
                                ("HTTP c1 knn", "http1_knn"), ("HTTP c1 radius", "http1_radius"),
                                ("core SQL knn", "core_knn"), ("core SQL radius", "core_radius"),
                                ("minimal SQL knn", "sql_knn")):  # fmt: skip
                a, b = getattr(large, attr), getattr(small, attr)
                lines.append(
                    f"- {backend} {label}: p50 at {large.size:,} / p50 at {small.size:,} = "
                    f"{_ratio(a and a.p50_ms, b and b.p50_ms)}"
                )
    for size in sizes:
        sl, pg = by.get(("spatialite", size)), by.get(("postgis", size))
        if sl and pg:
            for label, attr in (("HTTP c16 knn", "http_knn"), ("HTTP c16 radius", "http_radius"),
                                ("HTTP c1 knn", "http1_knn"), ("HTTP c1 radius", "http1_radius"),
                                ("core SQL knn", "core_knn"),
                                ("core SQL radius", "core_radius")):  # fmt: skip
                a, b = getattr(sl, attr), getattr(pg, attr)
                lines.append(
                    f"- SpatiaLite / PostGIS at {size:,}, {label} p50: "
                    f"{_ratio(a and a.p50_ms, b and b.p50_ms)}"
                )
    for r in runs:
        if r.sql_knn_full_scan and r.sql_knn and r.core_knn:
            lines.append(
                f"- {r.backend} at {r.size:,}: full scan / indexed nearest-10 p50 = "
                f"{_ratio(r.sql_knn_full_scan.p50_ms, r.sql_knn.p50_ms)} (minimal SQL), "
                f"{_ratio(r.sql_knn_full_scan.p50_ms, r.core_knn.p50_ms)} (endpoint's core SQL)"
            )
    out.write("\n" + "\n".join(lines) + "\n")
    return out.getvalue()


def load_runs(path: Path) -> list[Run]:
    """Runs saved in a results file."""
    runs = []
    for item in json.loads(path.read_text()):
        for key, value in item.items():
            if isinstance(value, dict):
                item[key] = Figures(**value)
        runs.append(Run(**item))
    return runs


def main() -> None:
    """Parse arguments, run every size and backend, save and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="postgis,spatialite")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--seconds", type=int, default=15, help="wrk duration per query")
    parser.add_argument("--seconds-single", type=int, default=8, help="wrk -c1 duration")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers")
    parser.add_argument("--iterations", type=int, default=300, help="raw SQL queries per series")
    parser.add_argument("--sql-seconds", type=float, default=20.0, help="time cap per SQL series")
    parser.add_argument("--full-scan", type=int, default=5, help="full-scan queries (SpatiaLite)")
    parser.add_argument("--full-scan-from", type=int, default=100_000)
    parser.add_argument("--reuse", action="store_true", help="reuse loaded databases of size N")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--load-only", action="store_true", help="build databases, measure nothing")
    parser.add_argument(
        "--pg-force-custom-plan",
        action="store_true",
        help="ALTER DATABASE ... SET plan_cache_mode = force_custom_plan (what-if for a fix)",
    )
    parser.add_argument(
        "--report", nargs="+", metavar="JSON", help="only merge earlier result files and print"
    )
    args = parser.parse_args()
    if args.report:
        print(markdown([run for name in args.report for run in load_runs(Path(name))]))
        return
    runs: list[Run] = []
    stamp = time.strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(parents=True, exist_ok=True)
    for size in [int(s) for s in args.sizes.split(",")]:
        for backend in args.backends.split(","):
            runs.append(run_one(backend, size, args))
            (RESULTS / f"search-{stamp}.json").write_text(
                json.dumps([asdict(r) for r in runs], indent=1)
            )
            (RESULTS / f"search-{stamp}.md").write_text(markdown(runs))
    print(markdown(runs))


if __name__ == "__main__":
    main()
