"""Benchmark of GET /api/v1/search beside an anchor app and raw SQL, on PostGIS and SpatiaLite.

Not a test: speed is measured here, never in timed tests. Run from the repository root (or through
``scripts/bench``, which installs wrk and PostGIS first):

    .venv/bin/python bench/search_bench.py --backends postgis,spatialite \
        --sizes 10000,100000,1000000

For each backend and size it builds a fresh database (migrations, areas, taxonomy), bulk-loads N
synthetic public service locations over Guatemala (clustered around towns, a weighted mix of
category leaves, Spanish plus the region's Mayan languages, the weekly hours of a sample-network
service of the same category), fills the search read model with
``referral-net search rebuild`` (timed), runs ANALYZE, then measures in the same run:

- the endpoint over HTTP: ``referral-net serve`` (uvicorn, 2 workers) driven by wrk with random
  points (bench/random_points.lua) for nearest-10 with one category filter and for a 10 km radius,
  with 16 connections (throughput) and with 1 (the latency of one request on an idle server);
- on PostGIS, the anchor over HTTP: bench/minimal_app.py (FastAPI + asyncpg, one hand-written
  statement over the read model, the same 2 workers), served beside the endpoint on the same
  database and driven by the same wrk runs, interleaved with the endpoint's;
- the endpoint's SQL through the driver: every statement the search sends for the same query
  (captured from SQLAlchemy, replayed on one raw connection of the app's engine, sequentially);
- the anchor's statement through its driver (PostGIS: asyncpg), or on SpatiaLite a hand-written
  R*Tree-window statement over the read model: what the indexes allow at best;
- on SpatiaLite from 100k rows, the nearest-10 query as a full scan (no R*Tree window).

It then takes the ratios the targets of issue #13 speak of (endpoint / anchor throughput, p50 at
the largest size / p50 at the smallest, SpatiaLite / PostGIS p50 at 100k) and writes
bench/results/search-<stamp>.json and .md (a markdown table ready for docs/performance.md).
Absolute times on this shared 2-core machine are noisy; read the ratios, taken side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import sqlean
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import minimal_app  # noqa: E402

from referral_net.db import migrate  # noqa: E402
from referral_net.db.engine import make_engine  # noqa: E402
from referral_net.domain import areas, search_model, taxonomy  # noqa: E402
from referral_net.domain import search as search_domain  # noqa: E402
from referral_net.security.roles import Principal  # noqa: E402
from referral_net.settings import Settings  # noqa: E402

RESULTS = ROOT / "bench" / "results"
LUA = ROOT / "bench" / "random_points.lua"
CLI = ROOT / ".venv" / "bin" / "referral-net"
UVICORN = ROOT / ".venv" / "bin" / "uvicorn"
PG_BASE = os.environ.get("BENCH_POSTGIS_BASE", "postgresql+psycopg://postgres@127.0.0.1:5432")
# The key every bench server runs with (bench/match_bench.py signs its tokens with it).
SECRET = "bench-only-not-a-secret-0123456789"
# Populated box of Guatemala used for query points (same as random_points.lua).
LAT_RANGE = (14.0, 16.5)
LON_RANGE = (-92.2, -89.0)
CATEGORY = "protection.shelter"
RADIUS_M = 10_000.0
PAGE = 10
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
# Opening hours come from the sample network (seed/sample_network.json, every service with a
# weekly schedule): each synthetic service takes the hours of a sample service of its category,
# so shelters are mostly open around the clock and offices keep office hours, as in a directory.
# A directory without hours would make every emergency need in bench/match_bench.py fall through
# to matching's fallback gather (no candidate is open now), which is not the common case.
SAMPLE_NETWORK = ROOT / "seed" / "sample_network.json"


@dataclass
class Figures:
    """One measured series: latency percentiles and throughput."""

    p50_ms: float
    p95_ms: float
    per_second: float
    samples: int


@dataclass
class Run:
    """Everything measured for one backend and size.

    ``http*``: the endpoint over HTTP (c16 and c1); ``anchor*``: bench/minimal_app.py over HTTP
    (PostGIS only); ``core_*``: the endpoint's statements replayed through the raw driver;
    ``sql_*``: the anchor's statement through asyncpg (PostGIS) or a hand-written R*Tree-window
    statement over the read model (SpatiaLite).
    """

    backend: str
    size: int
    load_seconds: float
    rebuild_seconds: float = 0.0
    http_knn: Figures | None = None
    http_radius: Figures | None = None
    http1_knn: Figures | None = None
    http1_radius: Figures | None = None
    anchor_knn: Figures | None = None
    anchor_radius: Figures | None = None
    anchor1_knn: Figures | None = None
    anchor1_radius: Figures | None = None
    core_knn: Figures | None = None
    core_radius: Figures | None = None
    sql_knn: Figures | None = None
    sql_radius: Figures | None = None
    sql_knn_full_scan: Figures | None = None
    http_health: Figures | None = None
    statements_knn: int = 0
    statements_radius: int = 0
    commit: str = ""
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


Hours = tuple[tuple[str, str, str, str, str], ...]


def sample_hours() -> dict[str, list[Hours]]:
    """Per category code, the weekly schedules of each sample service filed under it:
    (freq, byday, opens_at, closes_at, description) per schedule."""
    network = json.loads(SAMPLE_NETWORK.read_text(encoding="utf-8"))
    hours: dict[str, list[Hours]] = {}
    for service in network["services"]:
        schedules = tuple(
            (s["freq"], s["byday"], f"{s['opens_at']}:00", f"{s['closes_at']}:00", s["description"])
            for s in service["schedules"]
        )
        for code in service["categories"]:
            hours.setdefault(code, []).append(schedules)
    return hours


def generate_rows(n: int, terms: dict[str, str], seed: int = 7) -> Iterator[dict[str, Any]]:
    """The synthetic directory: one active service at one public location per row, with the
    weekly hours of a sample service of its category."""
    rng = random.Random(seed)
    # Hours draw from their own generator, so the points, categories and languages stay those
    # of the runs before the data had hours.
    hours_rng = random.Random(seed + 1)
    hours = sample_hours()
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
            "schedules": [
                (uuid.UUID(int=hours_rng.getrandbits(128)), *schedule)
                for schedule in hours_rng.choice(hours[code])
            ],
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
        with cur.copy(
            "COPY schedule (id, service_id, freq, byday, opens_at, closes_at, description)"
            " FROM STDIN"
        ) as cp:
            for r in rows:
                for schedule_id, *schedule in r["schedules"]:
                    cp.write_row((schedule_id, r["service"], *schedule))
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
    conn.executemany(
        "INSERT INTO schedule (id, service_id, freq, byday, opens_at, closes_at, description)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            (schedule_id.hex, r["service"].hex, *schedule)
            for r in rows
            for schedule_id, *schedule in r["schedules"]
        ),
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


# --- the read model ------------------------------------------------------------------------------


def bench_env(settings: Settings) -> dict[str, str]:
    """The environment of the CLI and the servers the benchmark runs against a database."""
    return {
        **os.environ,
        "REFERRAL_NET_DATABASE_URL": settings.database_url,
        "REFERRAL_NET_RATE_LIMITS_ENABLED": "false",
        "REFERRAL_NET_SECRET_KEY": SECRET,
    }


def read_model_rows(settings: Settings) -> int:
    """Entries in the search read model (-1 when the table is missing)."""
    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM search_entry")).scalar_one())
    except Exception:  # noqa: BLE001 - no table yet (a database loaded before the read model)
        return -1
    finally:
        engine.dispose()


def analyze(settings: Settings) -> None:
    """Fresh planner statistics after a bulk change (PostGIS: VACUUM too, for visibility maps)."""
    if settings.database_url.startswith("sqlite"):
        conn = _spatialite(settings.database_url.removeprefix("sqlite:///"))
        conn.execute("ANALYZE")
        conn.close()
        return
    with psycopg.connect(_pg_dsn(settings), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def rebuild_read_model(settings: Settings) -> float:
    """Fill the read model from the tables (what ``referral-net search rebuild`` runs); seconds.

    The synthetic data is inserted with bulk SQL that bypasses the session hooks keeping the
    model in step, so the benchmark rebuilds it, as an operator would after a bulk import. Timed
    in-process, rebuild and commit only (the CLI's start-up is seconds on a loaded host).
    """
    engine = make_engine(settings)
    with Session(engine) as session:
        started = time.perf_counter()
        search_model.rebuild(session)
        session.commit()
        elapsed = round(time.perf_counter() - started, 1)
    engine.dispose()
    analyze(settings)  # not timed: the figure is the rebuild itself
    return elapsed


def prepared_database(backend: str, size: int, *, reuse: bool) -> tuple[Settings, float, float]:
    """A loaded database with its read model filled: settings, load and rebuild seconds.

    With ``reuse`` a database of this size loaded by an earlier run is kept; it is migrated to
    the head (a database from before the read model gets its table) and rebuilt when the model
    does not hold one entry per row.
    """
    settings = existing_database(backend, size) if reuse else None
    load_seconds = 0.0
    if settings is None:
        settings = fresh_database(backend, size)
        started = time.perf_counter()
        (load_postgis if backend == "postgis" else load_spatialite)(settings, size)
        load_seconds = round(time.perf_counter() - started, 1)
        print(f"{backend} {size}: loaded in {load_seconds} s", file=sys.stderr, flush=True)
    return settings, load_seconds, ensure_read_model(settings, size)


def ensure_read_model(settings: Settings, size: int) -> float:
    """Migrate to the head and rebuild the read model unless it holds one entry per row.

    Returns the rebuild's seconds (0 when nothing was rebuilt). A database loaded before the read
    model existed gets its table from the migration, then its entries from the rebuild.
    """
    had = read_model_rows(settings)
    engine = make_engine(settings)
    try:
        revision_before = migrate.current_revision(engine)
        started = time.perf_counter()
        migrate.upgrade(settings)
        upgraded = round(time.perf_counter() - started, 1)
        migrated = migrate.current_revision(engine) != revision_before
    finally:
        engine.dispose()
    if read_model_rows(settings) == size:
        if had == size:
            if migrated:  # a revision may have filled tables (the category side table)
                analyze(settings)
            return 0.0
        # The read model's migration filled it (its backfill is the rebuild).
        analyze(settings)
        return upgraded
    seconds = rebuild_read_model(settings)
    print(f"{settings.database_url}: read model in {seconds} s", file=sys.stderr, flush=True)
    return seconds


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
            mode="near", latitude=lat, longitude=lon, categories=(CATEGORY,), limit=PAGE
        )
    return search_domain.SearchQuery(
        mode="near", latitude=lat, longitude=lon, radius_m=RADIUS_M, limit=PAGE
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


def _is_query(statement: str) -> bool:
    return statement.lstrip().upper().startswith(("SELECT", "WITH"))


def core_statements(engine: Engine, lat: float, lon: float, mode: str) -> list[tuple[str, Any]]:
    """Every statement the endpoint's search sends for one query (what GET /api/v1/search runs).

    Captured from ``search.search`` for an anonymous caller; only queries are kept (no
    transaction control, no connection set-up).
    """
    with Session(engine) as session:
        query = _query(lat, lon, mode)
        with captured(engine) as log:
            search_domain.search(session=session, principal=Principal.anonymous(), query=query)
    return [(s, p) for s, p in log if _is_query(s)]


def time_core(
    settings: Settings, points: list[tuple[float, float]], mode: str, budget: float
) -> tuple[Figures, int]:
    """Replay the endpoint's SQL through the raw driver, one connection, sequentially.

    The connection is a raw one of the app's own engine (db/engine.py): the same session
    settings, SpatiaLite set-up and driver statement preparation as the server's. For each point
    the statements are captured from the search itself (untimed), then replayed (timed). Stops
    after ``budget`` seconds of wall time with at least 5 samples.
    """
    engine = make_engine(settings)
    core_statements(engine, *points[0], mode)  # warm-up: connection set-up, in-process caches
    raw = engine.raw_connection()
    cursor = raw.cursor()
    samples: list[float] = []
    statements = 0
    deadline = time.perf_counter() + budget
    for lat, lon in points:
        plan = core_statements(engine, lat, lon, mode)
        statements = max(statements, len(plan))
        started = time.perf_counter()
        for statement, params in plan:
            cursor.execute(statement, params)
            cursor.fetchall()
        samples.append(time.perf_counter() - started)
        if time.perf_counter() > deadline and len(samples) >= 5:
            break
    cursor.close()
    raw.rollback()
    raw.close()
    engine.dispose()
    return figures(samples), statements


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


def anchor_arguments(mode: str, lat: float, lon: float) -> list[Any]:
    """The anchor statement and its arguments for one query (as bench/minimal_app.py runs it)."""
    if mode == "knn":
        return [minimal_app.KNN_WITH_CATEGORY, lat, lon, PAGE, None, [CATEGORY]]
    return [minimal_app.WITHOUT_CATEGORY, lat, lon, PAGE, RADIUS_M]


def anchor_sql_postgis(
    settings: Settings, points: list[tuple[float, float]], budget: float
) -> dict[str, Figures]:
    """The anchor's statement through asyncpg, one connection, sequentially (no HTTP)."""

    async def measure() -> dict[str, Figures]:
        conn = await asyncpg.connect(_pg_dsn(settings), server_settings=minimal_app.SERVER_SETTINGS)
        out: dict[str, Figures] = {}
        try:
            for mode in ("knn", "radius"):
                samples: list[float] = []
                deadline = time.perf_counter() + budget
                for lat, lon in points:
                    statement, *arguments = anchor_arguments(mode, lat, lon)
                    started = time.perf_counter()
                    await conn.fetch(statement, *arguments)
                    samples.append(time.perf_counter() - started)
                    if time.perf_counter() > deadline and len(samples) >= 5:
                        break
                out[mode] = figures(samples)
        finally:
            await conn.close()
        return out

    return asyncio.run(measure())


# SpatiaLite, hand-written over the read model: an R*Tree window (SpatiaLite's SpatialIndex
# virtual table) drives, the category side table only filters, ellipsoidal distance orders.
_SPATIALITE_WINDOW = (
    "SELECT e.service_at_location_id, ST_Distance(e.public_geom, MakePoint(:lon, :lat, 4326), 1)"
    " AS d FROM search_entry e WHERE e.listed = 1 {category} AND e.rowid IN (SELECT rowid FROM"
    " SpatialIndex WHERE f_table_name = 'search_entry' AND f_geometry_column = 'public_geom'"
    "   AND search_frame = BuildMbr(:lon - :dx, :lat - :dy, :lon + :dx, :lat + :dy, 4326))"
    " {within} ORDER BY d, e.service_at_location_id LIMIT 10"
)
_SPATIALITE_SCAN = (
    "SELECT e.service_at_location_id, ST_Distance(e.public_geom, MakePoint(:lon, :lat, 4326), 1)"
    " AS d FROM search_entry e WHERE e.listed = 1 AND e.public_geom IS NOT NULL {category}"
    " ORDER BY d, e.service_at_location_id LIMIT 10"
)
_SPATIALITE_CATEGORY = (
    "AND EXISTS (SELECT 1 FROM search_entry_category c WHERE c.code = :code"
    " AND c.service_at_location_id = e.service_at_location_id)"
)


def minimal_sql_spatialite(
    settings: Settings, points: list[tuple[float, float]], budget: float, full_scan: int
) -> dict[str, Figures]:
    """Hand-written over the read model: a growing R*Tree window, then exact order; a full scan."""
    knn_sql = _SPATIALITE_WINDOW.format(category=_SPATIALITE_CATEGORY, within="")
    radius_sql = _SPATIALITE_WINDOW.format(
        category="",
        within="AND PtDistWithin(e.public_geom, MakePoint(:lon, :lat, 4326), :radius, 1) = 1",
    )
    scan_sql = _SPATIALITE_SCAN.format(category=_SPATIALITE_CATEGORY)
    engine = make_engine(settings)
    raw = engine.raw_connection()
    cursor = raw.cursor()

    def rows(sql: str, **params: Any) -> list[Any]:
        cursor.execute(sql, params)
        return list(cursor.fetchall())

    def knn(lat: float, lon: float) -> None:
        # A window that grows x4 until it holds 10 rows; then one exact pass over a window whose
        # half-width covers the 10th distance (a degree of latitude is over 110 km, of longitude
        # over 106 km here), which is what makes the nearest-10 exact, as in the endpoint.
        size = 0.01
        while True:
            found = rows(knn_sql, lat=lat, lon=lon, dx=size, dy=size, code=CATEGORY)
            if len(found) == PAGE or size > 4:
                break
            size *= 4
        if len(found) == PAGE:
            reach = found[-1][1] / 100_000.0
            if reach > size:
                rows(knn_sql, lat=lat, lon=lon, dx=reach, dy=reach, code=CATEGORY)

    def radius(lat: float, lon: float) -> None:
        # The 10 km window sorted whole (the naive form: no bound by the 10th nearest).
        rows(radius_sql, lat=lat, lon=lon, dx=0.1, dy=0.1, radius=RADIUS_M)

    def full(lat: float, lon: float) -> None:
        rows(scan_sql, lat=lat, lon=lon, code=CATEGORY)

    out = {"knn": _timed(knn, points, budget), "radius": _timed(radius, points, budget)}
    if full_scan:
        out["knn_full_scan"] = _timed(full, points[:full_scan], 0.0)
    cursor.close()
    raw.rollback()
    raw.close()
    engine.dispose()
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(command: list[str], env: dict[str, str], *, name: str) -> Iterator[str]:
    """Run an HTTP server command (``{port}`` in it is replaced); yield its base URL when ready.

    The server runs in its own process group, stopped with SIGTERM (SIGKILL after 30 s) at the
    end; its output goes to bench/results/<name>.log.
    """
    port = _free_port()
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_path = RESULTS / f"{name}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [part.replace("{port}", str(port)) for part in command],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start; see {log_path}") from None
                time.sleep(0.2)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # slow requests still running: do not wait for them
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


@contextmanager
def server(
    settings: Settings,
    workers: int,
    *,
    command: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
    name: str = "server",
    app_pool: bool = False,
) -> Iterator[str]:
    """Run `referral-net serve` (uvicorn) against the database; yield its base URL.

    ``command`` replaces the CLI (bench/write_bench.py runs an older checkout's with it). On
    PostGIS the server keeps the anchor's pool (``SERVER_POOL``); ``app_pool`` leaves it the
    app's default instead.
    """
    cli = command or [str(CLI)]
    pool = {} if app_pool else _pool_env(settings)
    env = {**bench_env(settings), **pool, **(extra_env or {})}
    serve = [*cli, "serve", "--port", "{port}", "--workers", str(workers)]
    with serving(serve, env, name=name) as base:
        yield base


# Connections each server process keeps to PostgreSQL: the anchor's asyncpg pool
# (bench/minimal_app.py, min = max = this) and the endpoint's, so both ask PostgreSQL with the
# same number of connections. The endpoint's default pool (10 kept, 10 more on demand) closes an
# extra connection as soon as it is returned: with wrk's 16 connections spread unevenly over 2
# workers (4/12 is common), PostgreSQL started 191 backends in 8 rounds against 13
# (bench/request_cost.py --default-pool; docs/performance.md).
SERVER_POOL = 8


def _pool_env(settings: Settings) -> dict[str, str]:
    """The endpoint's pool on PostGIS: SERVER_POOL connections, opened once, none on demand."""
    if settings.database_url.startswith("sqlite"):
        return {}
    return {
        "REFERRAL_NET_DATABASE_POOL_SIZE": str(SERVER_POOL),
        "REFERRAL_NET_DATABASE_MAX_OVERFLOW": "0",
    }


@contextmanager
def anchor_server(settings: Settings, workers: int) -> Iterator[str]:
    """Run bench/minimal_app.py with uvicorn against the same database; yield its base URL."""
    env = {
        **os.environ,
        "BENCH_ANCHOR_DSN": _pg_dsn(settings),
        "BENCH_ANCHOR_POOL": str(SERVER_POOL),
    }
    command = [str(UVICORN), "minimal_app:app", "--app-dir", str(ROOT / "bench"), "--port"]
    command += ["{port}", "--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    with serving(command, env, name="anchor") as base:
        yield base


def wrk(base: str, mode: str, seconds: int, threads: int, connections: int) -> Figures:
    """Drive a server with wrk and the random-point script; a short warm-up first."""
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


def warm_up(requests: list[urllib.request.Request], rounds: int = 6) -> None:
    """Send each request a few times, one at a time, before any timing.

    A worker's first requests pay one-off costs (imports, caches, pooled connections): seconds
    each on a loaded host, which wrk's 3 s warm-up may not absorb.
    """
    for _ in range(rounds):
        for request in requests:
            with urllib.request.urlopen(request, timeout=120) as response:
                response.read()


def search_requests(base: str, path: str = "/api/v1/search") -> list[urllib.request.Request]:
    """One request of each benchmark query at a fixed point."""
    return [
        urllib.request.Request(f"{base}{path}?near=14.64,-90.51&category={CATEGORY}&limit={PAGE}"),
        urllib.request.Request(f"{base}{path}?near=14.64,-90.51&radius_m={RADIUS_M:.0f}&limit=10"),
    ]


def same_answers(endpoint: str, anchor: str, points: list[tuple[float, float]]) -> list[str]:
    """Differences between the endpoint's and the anchor's pages (ids and order), if any.

    The anchor must ask the same question as the endpoint for its figures to mean anything.
    """
    problems = []
    for lat, lon in points:
        for query in (
            f"near={lat:.5f},{lon:.5f}&category={CATEGORY}&limit={PAGE}",
            f"near={lat:.5f},{lon:.5f}&radius_m={RADIUS_M:.0f}&limit={PAGE}",
        ):
            with urllib.request.urlopen(f"{endpoint}/api/v1/search?{query}", timeout=60) as r:
                ours = [item["service_at_location_id"] for item in json.load(r)["contents"]]
            with urllib.request.urlopen(f"{anchor}/search?{query}", timeout=60) as r:
                theirs = [item["service_at_location_id"] for item in json.load(r)["contents"]]
            if ours != theirs:
                problems.append(f"{query}: endpoint {ours} != anchor {theirs}")
    return problems


def measure_http(run: Run, settings: Settings, args: argparse.Namespace) -> None:
    """The endpoint (and on PostGIS the anchor, served beside it) over HTTP, interleaved."""
    with_anchor = run.backend == "postgis" and not args.skip_anchor
    with (
        server(settings, args.workers) as base,
        anchor_server(settings, args.workers) if with_anchor else nullcontext("") as anchor,
    ):
        warm_up(search_requests(base))
        if anchor:
            warm_up(search_requests(anchor, "/search"))
            mismatches = same_answers(base, anchor, random_points(args.check_points, seed=5))
            if mismatches:
                run.notes.append("anchor answers differ: " + "; ".join(mismatches[:3]))
                print("WARNING " + run.notes[-1], file=sys.stderr, flush=True)
        # The database's caches first, for every server alike: otherwise the first series (the
        # endpoint's c1) pays for the pages the later ones then find cached. At 1M, right after
        # a load, the endpoint's c1 p50 was 6.6 ms that way against 3.8 ms warm
        # (docs/performance.md, "The nearest statement on psycopg's cursor").
        for mode in ("knn", "radius"):
            for target in (base, anchor) if anchor else (base,):
                wrk(target, mode, min(args.seconds, 5), args.threads, args.connections)
        time.sleep(5)  # let the backlog drain
        # One connection next: the latency of a request on an otherwise idle server (after
        # the long saturating runs, slow requests still queued in the workers would distort it).
        one = (args.seconds_single, 1, 1)
        run.http1_knn = wrk(base, "knn", *one)
        if anchor:
            run.anchor1_knn = wrk(anchor, "knn", *one)
        run.http1_radius = wrk(base, "radius", *one)
        if anchor:
            run.anchor1_radius = wrk(anchor, "radius", *one)
        many = (args.seconds, args.threads, args.connections)
        for mode in ("knn", "radius"):
            setattr(run, f"http_{mode}", wrk(base, mode, *many))
            time.sleep(5)  # let the backlog drain
            if anchor:
                setattr(run, f"anchor_{mode}", wrk(anchor, mode, *many))
                time.sleep(5)
        # The ceiling of the stack itself (uvicorn, FastAPI, our middleware; no database).
        run.http_health = wrk(base, "health", *many)


def git_commit() -> str:
    """The checkout's commit, with ``+dirty`` when the work tree has changes."""
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return head + ("+dirty" if dirty else "")


def run_one(backend: str, size: int, args: argparse.Namespace) -> Run:
    """Build (or reuse), load, rebuild the read model and measure one backend at one size."""
    settings, load_seconds, rebuild_seconds = prepared_database(backend, size, reuse=args.reuse)
    run = Run(
        backend=backend,
        size=size,
        load_seconds=load_seconds,
        rebuild_seconds=rebuild_seconds,
        commit=git_commit(),
    )
    if args.load_only:
        return run
    if backend == "postgis":
        # Database-level, so every connection gets it (the app's engine sets force_custom_plan
        # on its own connections, and so does the anchor's pool, whatever this says).
        mode = "force_custom_plan" if args.pg_force_custom_plan else "auto"
        with psycopg.connect(_pg_dsn(settings), autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE referral_net_bench_{size} SET plan_cache_mode = {mode}")
    if not args.skip_http:
        measure_http(run, settings, args)
    points = random_points(args.iterations)
    run.core_knn, run.statements_knn = time_core(settings, points, "knn", args.sql_seconds)
    run.core_radius, run.statements_radius = time_core(settings, points, "radius", args.sql_seconds)
    if backend == "postgis":
        sql = anchor_sql_postgis(settings, points, args.sql_seconds)
    else:
        scans = args.full_scan if size >= args.full_scan_from else 0
        sql = minimal_sql_spatialite(settings, points, args.sql_seconds, scans)
    run.sql_knn, run.sql_radius = sql["knn"], sql["radius"]
    run.sql_knn_full_scan = sql.get("knn_full_scan")
    print(json.dumps(asdict(run)), file=sys.stderr, flush=True)
    return run


# --- reporting -----------------------------------------------------------------------------------

QUERIES = (("knn", "nearest-10 + category"), ("radius", "10 km radius"))


def _pair(f: Figures | None) -> str:
    return "-" if f is None else f"{f.p50_ms:.2f} / {f.p95_ms:.2f}"


def _p50(f: Figures | None) -> str:
    return "-" if f is None else f"{f.p50_ms:.2f}"


def _rate(f: Figures | None) -> str:
    return "-" if f is None else f"{f.per_second:,.0f}"


def _value(a: float | None, b: float | None) -> float | None:
    return None if not a or not b else a / b


def _ratio(a: float | None, b: float | None) -> str:
    value = _value(a, b)
    return "-" if value is None else f"{value:.2f}x"


def _p50_of(f: Figures | None) -> float | None:
    return None if f is None else f.p50_ms


def _rate_of(f: Figures | None) -> float | None:
    return None if f is None else f.per_second


def verdict(value: float | None, limit: float, *, at_least: bool) -> str:
    """'met', or 'missed by N %' (how far the value is from the limit), or '-' without data."""
    if value is None:
        return "-"
    if (value >= limit) if at_least else (value <= limit):
        return "met"
    shortfall = (1 - value / limit) if at_least else (value / limit - 1)
    return f"missed by {shortfall:.0%}"


def targets(runs: list[Run]) -> list[tuple[str, str, str]]:
    """The issue #13 targets this run measures: (target, measured, verdict)."""
    by = {(r.backend, r.size): r for r in runs}
    rows: list[tuple[str, str, str]] = []
    pg_sizes = sorted(size for backend, size in by if backend == "postgis")
    for size in pg_sizes:
        r = by[("postgis", size)]
        value = _value(_rate_of(r.http_knn), _rate_of(r.anchor_knn))
        rows.append(
            (
                f"PostGIS nearest-10 + category at {size:,}, HTTP c16: endpoint >= 0.5x the "
                "anchor's throughput",
                f"{_rate(r.http_knn)} / {_rate(r.anchor_knn)} req/s = {_ratio(*_rates(r))}",
                verdict(value, 0.5, at_least=True),
            )
        )
    if len(pg_sizes) > 1:
        small, large = by[("postgis", pg_sizes[0])], by[("postgis", pg_sizes[-1])]
        for mode, label in QUERIES:
            a, b = getattr(large, f"http1_{mode}"), getattr(small, f"http1_{mode}")
            value = _value(_p50_of(a), _p50_of(b))
            rows.append(
                (
                    f"PostGIS {label}, HTTP c1: p50 at {large.size:,} <= 1.5x p50 at "
                    f"{small.size:,}",
                    f"{_p50(a)} / {_p50(b)} ms = {_ratio(_p50_of(a), _p50_of(b))}",
                    verdict(value, 1.5, at_least=False),
                )
            )
    common = sorted(s for b, s in by if b == "spatialite" and ("postgis", s) in by)
    for size in [100_000] if 100_000 in common else common:
        sl, pg = by[("spatialite", size)], by[("postgis", size)]
        for mode, label in QUERIES:
            a, b = getattr(sl, f"http1_{mode}"), getattr(pg, f"http1_{mode}")
            value = _value(_p50_of(a), _p50_of(b))
            rows.append(
                (
                    f"{label} at {size:,}, HTTP c1: SpatiaLite p50 <= 2x PostGIS p50",
                    f"{_p50(a)} / {_p50(b)} ms = {_ratio(_p50_of(a), _p50_of(b))}",
                    verdict(value, 2.0, at_least=False),
                )
            )
    return rows


def _rates(r: Run) -> tuple[float | None, float | None]:
    return _rate_of(r.http_knn), _rate_of(r.anchor_knn)


def markdown(runs: list[Run]) -> str:
    """Tables of the figures, the ratios taken in this run and the targets' verdicts."""
    out = io.StringIO()
    commits = sorted({r.commit for r in runs if r.commit})
    out.write(f"Code: {', '.join(commits) or 'not recorded'}. Times in ms (p50 / p95).\n\n")
    out.write(
        "| backend | N | query | HTTP c16 req/s | HTTP c16 p50 / p95 | HTTP c1 p50 / p95"
        " | anchor c16 req/s | anchor c16 p50 / p95 | anchor c1 p50 / p95"
        " | endpoint SQL p50 / p95 (statements) | anchor SQL p50 / p95 |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    for r in runs:
        for mode, label in QUERIES:
            http, http1 = getattr(r, f"http_{mode}"), getattr(r, f"http1_{mode}")
            anchor, anchor1 = getattr(r, f"anchor_{mode}"), getattr(r, f"anchor1_{mode}")
            core, sql = getattr(r, f"core_{mode}"), getattr(r, f"sql_{mode}")
            statements = getattr(r, f"statements_{mode}")
            out.write(
                f"| {r.backend} | {r.size:,} | {label} | {_rate(http)} | {_pair(http)}"
                f" | {_pair(http1)} | {_rate(anchor)} | {_pair(anchor)} | {_pair(anchor1)}"
                f" | {_pair(core)} ({statements}) | {_pair(sql)} |\n"
            )
        if r.sql_knn_full_scan:
            out.write(
                f"| {r.backend} | {r.size:,} | nearest-10 + category, FULL SCAN | - | - | - | - "
                f"| - | - | - | {_pair(r.sql_knn_full_scan)} |\n"
            )
    out.write(
        "\nAnchor SQL: bench/minimal_app.py's statement through asyncpg on PostGIS; on SpatiaLite"
        " a hand-written R*Tree-window statement over the read model (no anchor app: asyncpg is"
        " PostgreSQL's).\n\n| backend | N | load s | read model rebuild s | rebuild rows/s |"
        " `/health` c16 req/s |\n|---|---|---|---|---|---|\n"
    )
    for r in runs:
        per_second = f"{r.size / r.rebuild_seconds:,.0f}" if r.rebuild_seconds else "-"
        out.write(
            f"| {r.backend} | {r.size:,} | {r.load_seconds or '-'} | {r.rebuild_seconds or '-'}"
            f" | {per_second} | {_rate(r.http_health)} |\n"
        )
    out.write(
        "\nRatios taken in this run:\n\n| backend | N | query | endpoint / anchor req/s (c16)"
        " | HTTP c1 / anchor c1 p50 | HTTP c1 / endpoint SQL p50 | endpoint SQL / anchor SQL"
        " p50 |\n|---|---|---|---|---|---|---|\n"
    )
    for r in runs:
        for mode, _label in QUERIES:
            http, http1 = getattr(r, f"http_{mode}"), getattr(r, f"http1_{mode}")
            anchor, anchor1 = getattr(r, f"anchor_{mode}"), getattr(r, f"anchor1_{mode}")
            core, sql = getattr(r, f"core_{mode}"), getattr(r, f"sql_{mode}")
            out.write(
                f"| {r.backend} | {r.size:,} | {mode}"
                f" | {_ratio(_rate_of(http), _rate_of(anchor))}"
                f" | {_ratio(_p50_of(http1), _p50_of(anchor1))}"
                f" | {_ratio(_p50_of(http1), _p50_of(core))}"
                f" | {_ratio(_p50_of(core), _p50_of(sql))} |\n"
            )
    lines = []
    by = {(r.backend, r.size): r for r in runs}
    for backend in ("postgis", "spatialite"):
        sizes = sorted(s for b, s in by if b == backend)
        if len(sizes) > 1:
            small, large = by[(backend, sizes[0])], by[(backend, sizes[-1])]
            for series in ("http", "http1", "anchor", "anchor1", "core", "sql"):
                for mode, _label in QUERIES:
                    a, b = getattr(large, f"{series}_{mode}"), getattr(small, f"{series}_{mode}")
                    if a and b:
                        lines.append(
                            f"- {backend} {_SERIES[series]} {mode}: p50 at {large.size:,} / p50"
                            f" at {small.size:,} = {_ratio(a.p50_ms, b.p50_ms)}"
                        )
    for r in runs:
        if r.sql_knn_full_scan and r.sql_knn and r.core_knn:
            lines.append(
                f"- {r.backend} at {r.size:,}: full scan / indexed nearest-10 p50 = "
                f"{_ratio(r.sql_knn_full_scan.p50_ms, r.sql_knn.p50_ms)} (hand-written), "
                f"{_ratio(r.sql_knn_full_scan.p50_ms, r.core_knn.p50_ms)} (endpoint's SQL)"
            )
    if lines:
        out.write("\n" + "\n".join(lines) + "\n")
    out.write(
        "\nTargets (issue #13), this run:\n\n| target | measured | verdict |\n|---|---|---|\n"
    )
    for target, measured, outcome in targets(runs):
        out.write(f"| {target} | {measured} | {outcome} |\n")
    for r in runs:
        for note in r.notes:
            out.write(f"\nNote ({r.backend}, {r.size:,}): {note}\n")
    return out.getvalue()


_SERIES = {
    "http": "HTTP c16",
    "http1": "HTTP c1",
    "anchor": "anchor c16",
    "anchor1": "anchor c1",
    "core": "endpoint SQL",
    "sql": "anchor SQL",
}


def load_runs(path: Path) -> list[Run]:
    """Runs saved in a results file (files of earlier versions load with empty new fields)."""
    known = {f.name for f in fields(Run)}
    runs = []
    for item in json.loads(path.read_text()):
        kept = {key: value for key, value in item.items() if key in known}
        for key, value in kept.items():
            if isinstance(value, dict):
                kept[key] = Figures(**value)
        runs.append(Run(**kept))
    return runs


def main() -> None:
    """Parse arguments, run every size and backend, save and print the results."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="scripts/bench runs this after installing wrk and PostGIS; see bench/README.md.",
    )
    parser.add_argument("--backends", default="postgis,spatialite")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--seconds", type=int, default=15, help="wrk duration per query")
    parser.add_argument("--seconds-single", type=int, default=8, help="wrk -c1 duration")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (both servers)")
    parser.add_argument("--iterations", type=int, default=300, help="raw SQL queries per series")
    parser.add_argument("--sql-seconds", type=float, default=20.0, help="time cap per SQL series")
    parser.add_argument("--full-scan", type=int, default=5, help="full-scan queries (SpatiaLite)")
    parser.add_argument("--full-scan-from", type=int, default=100_000)
    parser.add_argument(
        "--check-points", type=int, default=20, help="points where endpoint and anchor must agree"
    )
    parser.add_argument("--reuse", action="store_true", help="reuse loaded databases of size N")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-anchor", action="store_true", help="no anchor app over HTTP")
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
    print(f"saved {RESULTS / f'search-{stamp}.json'} and .md", file=sys.stderr)


if __name__ == "__main__":
    main()
