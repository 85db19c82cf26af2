"""Benchmark of the OGC items and the services tiles beside tipg and raw SQL (issue 16, "Speed").

Not a test: speed is measured here, never in timed tests. Run from the repository root (or as
``scripts/bench ogc``, which installs wrk and PostGIS first):

    .venv/bin/python bench/ogc_bench.py --size 1000000 --tipg-python ../tipg-venv/bin/python

On the PostGIS database of ``search_bench.py`` for that size (built if missing: N synthetic
public services over Guatemala, read model filled), in ONE run:

- ``referral-net serve --workers 2`` (rate limits off) and **tipg** (uvicorn, 2 workers, its
  own virtualenv, not a dependency of the project) pointed at a view over the same rows
  (``bench_tipg.services``: id, name, category, geom of the read model's listed public points);
- a check that both answer the same boxes and tiles with comparable features (counts printed);
- wrk with bench/ogc_paths.lua, the same fixed-seed sequence for both servers, interleaved,
  with 16 connections (throughput) and with 1 (latency), ``--rounds`` times:
  ``/ogc/collections/services/items?bbox=<10 km box>&limit=50`` against tipg's
  ``/collections/bench_tipg.services/items?bbox=...&limit=50``, and the z12 tile
  ``/tiles/services/12/x/y.mvt`` against tipg's ``/collections/.../tiles/WebMercatorQuad/12/x/y``;
- through the driver, one connection, sequentially, the same boxes and tiles: **endpoint SQL**,
  every statement our endpoint sends (captured from ``domain.ogc.items`` / ``domain.tiles.tile``,
  replayed on a raw connection of the app's engine), and **hand-written SQL**, one statement
  answering the same question (the page of 50 by name with the capped count, GeoJSON built in
  SQL; the tile's points by ``ST_AsMVT``): the ceiling.

Boxes and tiles are centred where services are (the generator's distribution: 80 % around
towns, 20 % uniform over the populated box), the places a map is looked at. It prints markdown
tables ready for docs/performance.md and writes bench/results/ogc-<stamp>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import psycopg
from sqlalchemy.engine import Engine
from sqlmodel import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import search_bench as sb  # noqa: E402

from referral_net.db.engine import make_engine  # noqa: E402
from referral_net.domain import ogc, tiles  # noqa: E402
from referral_net.domain.search import count  # noqa: E402
from referral_net.security.roles import Principal  # noqa: E402
from referral_net.settings import Settings  # noqa: E402

RESULTS = ROOT / "bench" / "results"
LUA = ROOT / "bench" / "ogc_paths.lua"
ZOOM = 12
PAGE = 50
HALF_BOX_M = 5_000.0  # a 10 km box
METRES_PER_DEGREE = 111_320.0
# tipg is no dependency of the project: its own virtualenv, beside the checkout by default.
TIPG_VENV = ROOT.parent / "tipg-venv"
TIPG_SCHEMA = "bench_tipg"
TIPG_COLLECTION = f"{TIPG_SCHEMA}.services"
# The view tipg serves: the rows our anonymous caller sees (listed, with a public point).
TIPG_VIEW = f"""
CREATE SCHEMA IF NOT EXISTS {TIPG_SCHEMA};
CREATE OR REPLACE VIEW {TIPG_COLLECTION} AS
SELECT service_at_location_id AS id, service_name AS name,
       doc -> 'categories' -> 'es' -> 0 ->> 'code' AS category, public_geom AS geom
FROM search_entry WHERE listed AND public_geom IS NOT NULL
"""
# Hand-written items: the same question as the endpoint's (listed public points in the box,
# by name in code-point order then id, 50, the count capped as search caps it), the GeoJSON
# built by PostgreSQL.
HAND_ITEMS = """
WITH page AS (
    SELECT service_at_location_id AS id, service_name AS name, category_codes, public_geom
    FROM search_entry
    WHERE listed AND public_geom && ST_MakeEnvelope(%(w)s, %(s)s, %(e)s, %(n)s, 4326)
      AND ST_X(public_geom) BETWEEN %(w)s AND %(e)s AND ST_Y(public_geom) BETWEEN %(s)s AND %(n)s
    ORDER BY service_name COLLATE "C", service_at_location_id
    LIMIT %(limit)s
)
SELECT json_build_object(
    'type', 'FeatureCollection',
    'numberMatched', (SELECT count(*) FROM (
        SELECT 1 FROM search_entry
        WHERE listed AND public_geom && ST_MakeEnvelope(%(w)s, %(s)s, %(e)s, %(n)s, 4326)
          AND ST_X(public_geom) BETWEEN %(w)s AND %(e)s
          AND ST_Y(public_geom) BETWEEN %(s)s AND %(n)s
        LIMIT %(cap)s) capped),
    'features', coalesce(json_agg(json_build_object(
        'type', 'Feature', 'id', page.id,
        'geometry', ST_AsGeoJSON(page.public_geom)::json,
        'properties', json_build_object('name', page.name, 'category_codes', page.category_codes)
    )), '[]'::json))::text
FROM page
"""
# Hand-written tile: the listed public points in the tile and its buffer, one MVT layer.
HAND_TILE = """
SELECT ST_AsMVT(t, 'services', 4096, 'geom') FROM (
    SELECT service_at_location_id::text AS id, service_name AS name,
           ST_AsMVTGeom(ST_Transform(public_geom, 3857), ST_TileEnvelope(%(z)s, %(x)s, %(y)s),
                        4096, 64, true) AS geom
    FROM search_entry
    WHERE listed AND public_geom && ST_Transform(
        ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 64.0 / 4096), 4326)
    LIMIT 10000
) t
"""


@dataclass
class Series:
    """One wrk series of one server: req/s and p50 per round."""

    per_second: list[float] = field(default_factory=list)
    p50_ms: list[float] = field(default_factory=list)
    p95_ms: list[float] = field(default_factory=list)

    def add(self, figures: sb.Figures) -> None:
        """Record one round."""
        self.per_second.append(figures.per_second)
        self.p50_ms.append(figures.p50_ms)
        self.p95_ms.append(figures.p95_ms)

    def rate(self) -> float | None:
        """The median req/s over the rounds."""
        return statistics.median(self.per_second) if self.per_second else None

    def p50(self) -> float | None:
        """The median p50 over the rounds (ms)."""
        return statistics.median(self.p50_ms) if self.p50_ms else None


@dataclass
class Result:
    """Everything one run measured."""

    size: int
    commit: str
    rounds: int
    http: dict[str, Series] = field(default_factory=dict)  # "<kind> <server> c<n>"
    sql: dict[str, sb.Figures] = field(default_factory=dict)  # "<kind> endpoint|hand"
    sql_parallel: dict[str, float] = field(default_factory=dict)  # req/s on 2 connections
    statements: dict[str, int] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)


# --- the requests ------------------------------------------------------------------------------


def centres(count: int, seed: int) -> list[tuple[float, float]]:
    """Fixed-seed points (lat, lon) where services are: the generator's own distribution."""
    rng = random.Random(seed)
    return [(lat, lon) for lat, lon, _ in sb.synthetic_points(count, rng)]


def box_around(lat: float, lon: float) -> tuple[float, float, float, float]:
    """The 10 km box (west, south, east, north) centred on a point."""
    d_lat = HALF_BOX_M / METRES_PER_DEGREE
    d_lon = HALF_BOX_M / (METRES_PER_DEGREE * math.cos(math.radians(lat)))
    return (
        round(lon - d_lon, 5),
        round(lat - d_lat, 5),
        round(lon + d_lon, 5),
        round(lat + d_lat, 5),
    )


def tile_at(lat: float, lon: float, z: int = ZOOM) -> tuple[int, int, int]:
    """The XYZ tile (z, x, y; rows from the north) holding a point."""
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return z, x, y


def _bbox_text(box: tuple[float, float, float, float]) -> str:
    return ",".join(f"{v:.5f}" for v in box)


def paths(
    kind: str, server: str, boxes: list[tuple[float, float, float, float]], cells: list[Any]
) -> list[str]:
    """The request paths of one kind (items, tile) for one server (ours, tipg)."""
    if kind == "items":
        if server == "ours":
            return [
                f"/ogc/collections/services/items?bbox={_bbox_text(b)}&limit={PAGE}" for b in boxes
            ]
        return [
            f"/collections/{TIPG_COLLECTION}/items?bbox={_bbox_text(b)}&limit={PAGE}" for b in boxes
        ]
    if server == "ours":
        return [f"/tiles/services/{z}/{x}/{y}.mvt" for z, x, y in cells]
    return [
        f"/collections/{TIPG_COLLECTION}/tiles/WebMercatorQuad/{z}/{x}/{y}" for z, x, y in cells
    ]


# --- servers -----------------------------------------------------------------------------------


@contextmanager
def serving(command: list[str], env: dict[str, str], *, name: str, ready: str) -> Iterator[str]:
    """Run an HTTP server command (``{port}`` replaced) until ``ready`` answers 200; yield its
    base URL; stop its process group at the end (tipg has no /ready, hence this variant of
    ``search_bench.serving``)."""
    port = sb._free_port()
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
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{base}{ready}", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start; see {log_path}") from None
                time.sleep(0.3)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def tipg_server(settings: Settings, python: str, workers: int) -> Any:
    """tipg (uvicorn, ``workers``) on the view of the same database, from its own virtualenv."""
    env = {
        **os.environ,
        "DATABASE_URL": sb._pg_dsn(settings),
        "TIPG_NAME": "tipg (bench)",
        "TIPG_DB_SCHEMAS": json.dumps([TIPG_SCHEMA]),
        "TIPG_DB_SPATIAL_EXTENT": "false",  # no extent scan of 1M rows at start-up
        "TIPG_DB_DATETIME_EXTENT": "false",
    }
    command = [python, "-m", "uvicorn", "tipg.main:app", "--port", "{port}"]
    command += ["--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    return serving(command, env, name="ogc-tipg", ready="/healthz")


def create_view(settings: Settings) -> None:
    """The view tipg serves (recreated each run; a view holds no data)."""
    with psycopg.connect(sb._pg_dsn(settings), autocommit=True) as conn:
        conn.execute(TIPG_VIEW)


# --- HTTP ----------------------------------------------------------------------------------------


def wrk(base: str, path_file: Path, seconds: int, threads: int, connections: int) -> sb.Figures:
    """Drive a server with wrk over the paths of a file; a short unmeasured warm-up first."""
    env = {**os.environ, "BENCH_PATHS": str(path_file), "BENCH_THREADS": str(threads)}
    command = ["wrk", f"-t{threads}", f"-c{connections}", "-s", str(LUA), "--timeout", "30s"]
    subprocess.run([*command, "-d3s", base], env=env, capture_output=True, check=True)
    result = subprocess.run(
        [*command, f"-d{seconds}s", base], env=env, capture_output=True, text=True, check=True
    )
    found = re.search(r"BENCH p50_us=(\d+) p95_us=(\d+) rps=([\d.]+) errors=(\d+)", result.stdout)
    if not found:
        raise RuntimeError(result.stdout + result.stderr)
    if int(found.group(4)):
        raise RuntimeError(f"{found.group(4)} failed requests ({path_file}):\n{result.stdout}")
    rps = float(found.group(3))
    return sb.Figures(
        p50_ms=int(found.group(1)) / 1000,
        p95_ms=int(found.group(2)) / 1000,
        per_second=rps,
        samples=round(rps * seconds),
    )


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=120) as response:
        return response.status, response.read()


def _tile_features(data: bytes) -> tuple[int, int]:
    """(features inside the tile proper, of which clusters) of a tile's layers: the servers'
    buffers differ (ours reads 64 of 4096 units around the tile, tipg clips to the tile), so
    the features in the buffer are left out."""
    if not data:
        return 0, 0
    layers = mapbox_vector_tile.decode(data)
    features = [
        f
        for layer in layers.values()
        for f in layer["features"]
        if all(0 <= c <= 4096 for c in f["geometry"]["coordinates"])
    ]
    clusters = sum(1 for f in features if f["properties"].get("cluster"))
    return len(features), clusters


def compare(
    ours: str, tipg: str, boxes: list[Any], cells: list[Any], count: int, *, cap: int
) -> list[str]:
    """Both servers on the first ``count`` boxes and tiles: matched / returned features and
    tile features, printed; a difference in what exists (returned features, an empty tile on
    one side only) is kept as a note."""
    notes: list[str] = []
    print("box | ours matched/returned | tipg matched/returned", file=sys.stderr)
    for box, ours_path, tipg_path in zip(
        boxes[:count],
        paths("items", "ours", boxes[:count], []),
        paths("items", "tipg", boxes[:count], []),
        strict=True,
    ):
        mine = json.loads(_get(ours + ours_path)[1])
        theirs = json.loads(_get(tipg + tipg_path)[1])
        # Ours leaves numberMatched out past search's count cap (only a lower bound is known).
        matched = mine.get("numberMatched")
        line = (
            f"{_bbox_text(box)} | {'>' + str(cap - 1) if matched is None else matched}"
            f"/{mine['numberReturned']} | {theirs['numberMatched']}/{theirs['numberReturned']}"
        )
        print(line, file=sys.stderr)
        if mine["numberReturned"] != theirs["numberReturned"] or (
            theirs["numberMatched"] < cap if matched is None else matched != theirs["numberMatched"]
        ):
            notes.append(f"items differ: {line}")
    print("tile | ours features (clusters) | tipg features", file=sys.stderr)
    for cell, ours_path, tipg_path in zip(
        cells[:count],
        paths("tile", "ours", [], cells[:count]),
        paths("tile", "tipg", [], cells[:count]),
        strict=True,
    ):
        mine_n, mine_c = _tile_features(_get(ours + ours_path)[1])
        theirs_n, _ = _tile_features(_get(tipg + tipg_path)[1])
        line = f"{'/'.join(map(str, cell))} | {mine_n} ({mine_c}) | {theirs_n}"
        print(line, file=sys.stderr)
        if (mine_n == 0) != (theirs_n == 0) or (mine_c == 0 and mine_n != theirs_n):
            notes.append(f"tile differs: {line}")
    return notes


def measure_http(
    result: Result,
    bases: dict[str, str],
    files: dict[tuple[str, str], Path],
    args: argparse.Namespace,
) -> None:
    """wrk on both servers, interleaved (the order alternates per round), c16 then c1."""
    for number in range(args.rounds):
        servers = list(bases)
        order = servers[number % len(servers) :] + servers[: number % len(servers)]
        for kind in ("items", "tile"):
            for threads, connections, seconds in (
                (args.threads, args.connections, args.seconds),
                (1, 1, args.seconds_single),
            ):
                for server in order:
                    key = f"{kind} {server} c{connections}"
                    figures = wrk(
                        bases[server], files[(kind, server)], seconds, threads, connections
                    )
                    result.http.setdefault(key, Series()).add(figures)
                    print(
                        f"round {number + 1} {key}: {figures.per_second:.1f} req/s,"
                        f" p50 {figures.p50_ms:.1f} ms",
                        file=sys.stderr,
                        flush=True,
                    )


# --- SQL -----------------------------------------------------------------------------------------


def endpoint_statements(engine: Engine, kind: str, target: Any) -> list[tuple[str, Any]]:
    """Every query our endpoint's domain call sends for one box or tile (anonymous caller)."""
    with Session(engine) as session, sb.captured(engine) as log:
        if kind == "items":
            ogc.items(
                session=session,
                principal=Principal.anonymous(),
                request=ogc.ItemsRequest(collection="services", bbox=target, limit=PAGE),
            )
        else:
            z, x, y = target
            tiles.tile(
                session=session, principal=Principal.anonymous(), layer_id="services", z=z, x=x, y=y
            )
    return [(s, p) for s, p in log if sb._is_query(s)]


def hand_statement(kind: str, target: Any, cap: int) -> tuple[str, dict[str, Any]]:
    """The hand-written statement and its parameters for one box or tile."""
    if kind == "items":
        w, s, e, n = target
        return HAND_ITEMS, {"w": w, "s": s, "e": e, "n": n, "limit": PAGE, "cap": cap}
    z, x, y = target
    return HAND_TILE, {"z": z, "x": x, "y": y}


def _replay(cursor: Any, plan: list[tuple[str, Any]]) -> None:
    for statement, params in plan:
        cursor.execute(statement, params)
        cursor.fetchall()


def time_sql(
    settings: Settings, kind: str, targets: list[Any], budget: float, cap: int
) -> tuple[sb.Figures, sb.Figures, int]:
    """Endpoint SQL and hand-written SQL, alternating per target on one raw connection of the
    app's engine (its session settings), sequentially; at most ``budget`` seconds each."""
    engine = make_engine(settings)
    endpoint_statements(engine, kind, targets[0])  # warm-up: connection, in-process caches
    raw = engine.raw_connection()
    cursor = raw.cursor()
    ours: list[float] = []
    hand: list[float] = []
    statements = 0
    for target in targets:
        plan = endpoint_statements(engine, kind, target)  # untimed
        statements = max(statements, len(plan))
        started = time.perf_counter()
        _replay(cursor, plan)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        _replay(cursor, [hand_statement(kind, target, cap)])
        hand.append(time.perf_counter() - started)
        if sum(ours) > budget and len(ours) >= 5:
            break
    cursor.close()
    raw.rollback()
    raw.close()
    engine.dispose()
    return sb.figures(ours), sb.figures(hand), statements


def parallel_sql(
    settings: Settings, kind: str, targets: list[Any], seconds: float, cap: int
) -> float:
    """The hand-written statement on 2 connections at once (2 cores): queries per second."""
    done = [0, 0]
    stop = time.perf_counter() + seconds

    def loop(slot: int) -> None:
        with psycopg.connect(sb._pg_dsn(settings), autocommit=True) as conn:
            conn.execute("SET jit = off")
            index = slot
            while time.perf_counter() < stop:
                statement, params = hand_statement(kind, targets[index % len(targets)], cap)
                conn.execute(statement, params).fetchall()
                done[slot] += 1
                index += 2

    started = time.perf_counter()
    workers = [threading.Thread(target=loop, args=(slot,)) for slot in (0, 1)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return round(sum(done) / (time.perf_counter() - started), 1)


# --- report --------------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def markdown(result: Result) -> str:
    """The run's tables, ready for docs/performance.md."""
    out = [
        f"Code: {result.commit}. {result.size:,} rows, PostGIS; {result.rounds} interleaved"
        " rounds (medians); times in ms.",
        "",
        "| request | server | c16 req/s | c16 p50 | c1 p50 | c1 req/s |",
        "|---|---|---|---|---|---|",
    ]
    for kind in ("items", "tile"):
        for server in ("ours", "before", "tipg"):
            if f"{kind} {server} c16" not in result.http:
                continue
            c16 = result.http.get(f"{kind} {server} c16")
            c1 = result.http.get(f"{kind} {server} c1")
            out.append(
                f"| {kind} | {server} | {_fmt(c16 and c16.rate())} | {_fmt(c16 and c16.p50())}"
                f" | {_fmt(c1 and c1.p50(), 2)} | {_fmt(c1 and c1.rate())} |"
            )
    out += [
        "",
        "| request | endpoint SQL p50 / p95 (statements) | hand-written SQL p50 / p95 |"
        " hand-written, 2 connections, q/s |",
        "|---|---|---|---|",
    ]
    for kind in ("items", "tile"):
        mine = result.sql.get(f"{kind} endpoint")
        hand = result.sql.get(f"{kind} hand")
        out.append(
            f"| {kind} | {_fmt(mine and mine.p50_ms, 2)} / {_fmt(mine and mine.p95_ms, 2)}"
            f" ({result.statements.get(kind, '-')}) | {_fmt(hand and hand.p50_ms, 2)} /"
            f" {_fmt(hand and hand.p95_ms, 2)} | {_fmt(result.sql_parallel.get(kind))} |"
        )
    out += [
        "",
        "| request | ours / tipg req/s (c16) | tipg / ours p50 (c1) | ours c16 req/s / hand SQL"
        " 2-conn q/s | our c1 p50 / endpoint SQL p50 | endpoint SQL / hand SQL p50 |"
        " target: ours >= 2x tipg |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind in ("items", "tile"):
        ours16 = result.http.get(f"{kind} ours c16")
        tipg16 = result.http.get(f"{kind} tipg c16")
        ours1 = result.http.get(f"{kind} ours c1")
        tipg1 = result.http.get(f"{kind} tipg c1")
        mine = result.sql.get(f"{kind} endpoint")
        hand = result.sql.get(f"{kind} hand")
        rate_ours = ours16.rate() if ours16 else None
        rate_tipg = tipg16.rate() if tipg16 else None
        met = "-"
        if rate_ours is not None and rate_tipg:
            ratio = rate_ours / rate_tipg
            met = "met" if ratio >= 2 else f"missed ({ratio:.2f}x)"
        out.append(
            f"| {kind} | {_ratio(rate_ours, rate_tipg)}"
            f" | {_ratio(tipg1 and tipg1.p50(), ours1 and ours1.p50())}"
            f" | {_ratio(rate_ours, result.sql_parallel.get(kind))}"
            f" | {_ratio(ours1 and ours1.p50(), mine and mine.p50_ms)}"
            f" | {_ratio(mine and mine.p50_ms, hand and hand.p50_ms)} | {met} |"
        )
    if any(key.endswith("before c16") for key in result.http):
        out += [
            "",
            "| request | ours / before req/s (c16) | before / ours p50 (c1) |",
            "|---|---|---|",
        ]
        for kind in ("items", "tile"):
            now16, was16 = (
                result.http.get(f"{kind} ours c16"),
                result.http.get(f"{kind} before c16"),
            )
            now1, was1 = result.http.get(f"{kind} ours c1"), result.http.get(f"{kind} before c1")
            out.append(
                f"| {kind} | {_ratio(now16 and now16.rate(), was16 and was16.rate())}"
                f" | {_ratio(was1 and was1.p50(), now1 and now1.p50())} |"
            )
    if result.checks:
        out += ["", "Differences found by the check:", *[f"- {c}" for c in result.checks]]
    return "\n".join(out)


# --- main ----------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> Result:
    """Prepare the database, serve both, check, measure HTTP and SQL."""
    settings = sb.existing_database("postgis", args.size)
    if settings is None or sb.read_model_rows(settings) != args.size:
        # Missing, or loaded before the read model: build or migrate it as search_bench does.
        settings, _, _ = sb.prepared_database("postgis", args.size, reuse=True)
    create_view(settings)
    points = centres(args.requests, args.seed)
    boxes = [box_around(lat, lon) for lat, lon in points]
    cells = [tile_at(lat, lon) for lat, lon in points]
    result = Result(size=args.size, commit=sb.git_commit(), rounds=args.rounds)
    folder = RESULTS / "ogc-paths"
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[tuple[str, str], Path] = {}
    for kind in ("items", "tile"):
        for server in ("ours", "tipg"):
            path = folder / f"{kind}-{server}.txt"
            path.write_text("\n".join(paths(kind, server, boxes, cells)) + "\n")
            files[(kind, server)] = path
    if not args.skip_http:
        before: AbstractContextManager[str | None] = nullcontext(None)
        if args.before_src:
            # The same CLI with another tree's package first on the path: the code before a change.
            extra = {"PYTHONPATH": str(Path(args.before_src).resolve())}
            before = sb.server(settings, args.workers, extra_env=extra, name="ogc-before")
            for kind in ("items", "tile"):
                files[(kind, "before")] = files[(kind, "ours")]
        with (
            sb.server(settings, args.workers, name="ogc-server") as ours,
            tipg_server(settings, args.tipg_python, args.workers) as tipg,
            before as earlier,
        ):
            bases = {"ours": ours, "tipg": tipg} | ({"before": earlier} if earlier else {})
            result.checks = compare(ours, tipg, boxes, cells, args.check, cap=search_cap())
            measure_http(result, bases, files, args)
    cap = search_cap()
    for kind, targets in (("items", boxes), ("tile", cells)):
        mine, hand, statements = time_sql(settings, kind, targets, args.sql_seconds, cap)
        result.sql[f"{kind} endpoint"] = mine
        result.sql[f"{kind} hand"] = hand
        result.statements[kind] = statements
        result.sql_parallel[kind] = parallel_sql(settings, kind, targets, args.sql_seconds / 2, cap)
        print(f"SQL {kind}: endpoint {mine}, hand {hand}", file=sys.stderr, flush=True)
    return result


def search_cap() -> int:
    """The capped count's bound parameter search uses for a box (the cap plus one)."""
    query = ogc._search_query(
        ogc.ItemsRequest(collection="services", bbox=(0.0, 0.0, 1.0, 1.0), limit=PAGE)
    )
    return count.cap_parameter(query)["cap"]


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run, save and print the results."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="scripts/bench ogc runs this after installing wrk and PostGIS; see bench/README.md.",
    )
    parser.add_argument("--size", type=int, default=1_000_000, help="rows (search_bench's db)")
    parser.add_argument(
        "--tipg-python",
        default=os.environ.get("BENCH_TIPG_PYTHON", str(TIPG_VENV / "bin" / "python")),
        help="python of a virtualenv with tipg and uvicorn (env BENCH_TIPG_PYTHON)",
    )
    parser.add_argument("--seconds", type=int, default=15, help="wrk duration, c16")
    parser.add_argument("--seconds-single", type=int, default=8, help="wrk duration, c1")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (both servers)")
    parser.add_argument("--requests", type=int, default=2000, help="boxes / tiles in the sequence")
    parser.add_argument("--seed", type=int, default=16, help="seed of the boxes and tiles")
    parser.add_argument("--check", type=int, default=10, help="boxes and tiles compared")
    parser.add_argument("--sql-seconds", type=float, default=15.0, help="time cap per SQL series")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument(
        "--before-src",
        help="also serve this tree's src/ (the package before a change), HTTP only, interleaved",
    )
    args = parser.parse_args(argv)
    if not args.skip_http and not Path(args.tipg_python).exists():
        parser.error(
            f"no tipg python at {args.tipg_python}: python3 -m venv {TIPG_VENV} &&"
            f" {TIPG_VENV}/bin/pip install 'tipg==1.6.1' uvicorn (see bench/README.md)"
        )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    result = run(args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = markdown(result)
    (RESULTS / f"ogc-{stamp}.json").write_text(json.dumps(asdict(result), indent=1))
    (RESULTS / f"ogc-{stamp}.md").write_text(text + "\n")
    print(text)
    print(f"saved {RESULTS / f'ogc-{stamp}.json'} and .md", file=sys.stderr)


if __name__ == "__main__":
    main()
