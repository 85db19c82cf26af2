"""CPU per request: how much the server and the database each spend on one search request.

Not a test. Throughput on these 2 cores is the CPU every request costs, split between the
server's Python, PostgreSQL's backends and wrk; this measures the first two directly, for the
endpoint, for the anchor app (bench/minimal_app.py) and, with ``--before-src``, for an earlier
tree, on a database that search_bench.py loaded:

    .venv/bin/python bench/request_cost.py --size 10000 --before-src ../old/src
    .venv/bin/python bench/request_cost.py --size 1000000 --workers 2 --connections 16 \\
        --rounds 6 --before-src ../old/src     # issue 13's c16 comparison, interleaved
    .venv/bin/python bench/request_cost.py --size 1000000 --workers 2 --connections 16 \\
        --rounds 8 --default-pool              # the benchmark's fixed pool against the default

Each server runs with one worker (``--workers``); ``wrk -t1 -c4`` (``--connections``) drives
it with the random-point script (bench/random_points.lua, nearest-10 + category unless ``--mode
radius``) for ``--seconds``, the servers interleaved for ``--rounds`` rounds, the order
alternating. The CPU time (user + system) of the server's processes and of the PostgreSQL
backends connected to the database is read from /proc before and after each run and divided by
the requests served. The figures are medians of the rounds. The endpoint runs with the
benchmark's pool (``search_bench.SERVER_POOL``, the anchor's); ``--default-pool`` adds it with
the app's default pool, and the last column counts the PostgreSQL backends started during
the measured runs (a pool opening connections under load).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from contextlib import AbstractContextManager
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from search_bench import (  # noqa: E402
    LUA,
    _pg_dsn,
    anchor_server,
    existing_database,
    server,
)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (those that are gone count nothing)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / CLOCK_TICKS


def _server_pids(port: int) -> list[int]:
    """The processes of the server listening on ``port``: the one started with it, and its
    children (uvicorn's worker)."""
    found = subprocess.run(
        ["pgrep", "-f", f"port {port}"], capture_output=True, text=True, check=False
    ).stdout.split()
    parents = [int(pid) for pid in found]
    children: list[int] = []
    for parent in parents:
        out = subprocess.run(
            ["pgrep", "-P", str(parent)], capture_output=True, text=True, check=False
        ).stdout
        children += [int(pid) for pid in out.split()]
    return parents + children


def _backend_pids(dsn: str, database: str) -> list[int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return [int(row[0]) for row in rows]


def _sessions_started(dsn: str, database: str) -> int:
    """Backends PostgreSQL has started for the database so far (``pg_stat_database.sessions``)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = %s", (database,)
        ).fetchone()
    return int(row[0]) if row else 0


def measure(
    base: str, dsn: str, database: str, mode: str, seconds: int, *, connections: int = 4
) -> tuple[float, ...]:
    """One wrk run against ``base``: requests per second, server and database CPU ms/request,
    and the backends started during the run (a pool that opens and closes connections under
    load; their CPU is not in the database column, which reads the backends alive at the start).
    """
    port = int(base.rsplit(":", 1)[1])
    env = {**os.environ, "BENCH_MODE": mode}
    threads = "-t2" if connections > 4 else "-t1"
    command = ["wrk", threads, f"-c{connections}", "-s", str(LUA), "--timeout", "30s"]
    subprocess.run([*command, "-d2s", base], env=env, capture_output=True, check=True)
    servers, backends = _server_pids(port), _backend_pids(dsn, database)
    started = _sessions_started(dsn, database)
    before = _cpu_seconds(servers), _cpu_seconds(backends)
    result = subprocess.run(
        [*command, f"-d{seconds}s", base], env=env, capture_output=True, text=True, check=True
    )
    after = _cpu_seconds(servers), _cpu_seconds(backends)
    opened = _sessions_started(dsn, database) - started
    found = re.search(r"rps=([\d.]+) errors=(\d+)", result.stdout)
    if not found or int(found.group(2)):
        raise RuntimeError(result.stdout + result.stderr)
    requests = float(found.group(1)) * seconds
    return (
        float(found.group(1)),
        1000 * (after[0] - before[0]) / requests,
        1000 * (after[1] - before[1]) / requests,
        float(opened),
    )


def main() -> None:
    """Measure and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000, help="search_bench's database")
    parser.add_argument("--mode", choices=["knn", "radius"], default="knn")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before-src", help="src/ of an earlier tree, served as 'before'")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers per server")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections")
    parser.add_argument(
        "--default-pool",
        action="store_true",
        help="also serve the endpoint with the app's default pool (search_bench.SERVER_POOL "
        "is the benchmark's: the anchor's size, no overflow)",
    )
    args = parser.parse_args()
    settings = existing_database("postgis", args.size)
    if settings is None:
        raise SystemExit(f"no PostGIS bench database of {args.size} rows: run search_bench first")
    dsn = _pg_dsn(settings)
    database = dsn.rsplit("/", 1)[1]
    servers: dict[str, AbstractContextManager[str]] = {
        "endpoint": server(settings, args.workers, name="cost-endpoint"),
        "anchor": anchor_server(settings, args.workers),
    }
    if args.default_pool:
        servers["endpoint, default pool"] = server(
            settings, args.workers, name="cost-default-pool", app_pool=True
        )
    if args.before_src:
        before_env = {"PYTHONPATH": str(Path(args.before_src).resolve())}
        servers["before"] = server(settings, args.workers, extra_env=before_env, name="cost-before")
    bases = {name: context.__enter__() for name, context in servers.items()}
    try:
        runs: dict[str, list[tuple[float, ...]]] = {name: [] for name in bases}
        for round_number in range(args.rounds):
            # Alternate the order, so that no server always runs after the same one.
            order = list(bases.items())
            for name, base in order if round_number % 2 == 0 else reversed(order):
                runs[name].append(
                    measure(
                        base, dsn, database, args.mode, args.seconds, connections=args.connections
                    )
                )
    finally:
        for context in servers.values():
            context.__exit__(None, None, None)
    print(
        f"{args.size:,} rows, {args.mode}, wrk -c{args.connections}, {args.workers} worker(s), "
        f"medians of {args.rounds} interleaved rounds"
    )
    print(
        "| server | req/s | req/s by round | server CPU ms/request | PostgreSQL CPU ms/request "
        "| backends started, all rounds |"
    )
    print("|---|---|---|---|---|---|")
    for name, measured in runs.items():
        rate, python, database_cpu, _ = (
            statistics.median(column) for column in zip(*measured, strict=True)
        )
        rounds = ", ".join(f"{run[0]:,.0f}" for run in measured)
        opened = sum(int(run[3]) for run in measured)
        print(f"| {name} | {rate:,.0f} | {rounds} | {python:.2f} | {database_cpu:.2f} | {opened} |")


if __name__ == "__main__":
    main()
