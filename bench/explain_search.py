"""Print the statements one search sends, with their time and the engine's query plan.

Run against a database loaded by search_bench.py, e.g.:

    .venv/bin/python bench/explain_search.py postgresql+psycopg://postgres@127.0.0.1:5432/referral_net_bench_1000000 knn
    .venv/bin/python bench/explain_search.py sqlite:///bench/results/bench_100000.db radius

PostGIS gets ``EXPLAIN (ANALYZE, BUFFERS)``; SQLite gets ``EXPLAIN QUERY PLAN``.
"""  # noqa: E501

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from sqlmodel import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "src"))

from search_bench import _pg_dsn, _spatialite, core_statements  # noqa: E402

from referral_net.db.engine import PG_CONNECT_OPTIONS as PG_OPTIONS  # noqa: E402
from referral_net.db.engine import make_engine  # noqa: E402
from referral_net.settings import Settings  # noqa: E402


def explain(settings: Settings, statement: str, params: Any) -> str:
    """The plan of one statement, as text."""
    if settings.database_url.startswith("sqlite"):
        conn = _spatialite(settings.database_url.removeprefix("sqlite:///"))
        rows = conn.execute("EXPLAIN QUERY PLAN " + statement, params).fetchall()
        conn.close()
        return "\n".join(f"  {'  ' * 0}{row[-1]}" for row in rows)
    with psycopg.connect(_pg_dsn(settings), options=PG_OPTIONS) as conn:
        # Twice on one connection: the first run pays the backend's one-off costs (loading
        # PostGIS, catalogue caches), which a pooled server connection has long paid.
        conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params).fetchall()
        rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params).fetchall()
    return "\n".join(f"  {row[0]}" for row in rows)


def main() -> None:
    """Capture the core statements of one search at a point and explain each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url")
    parser.add_argument("mode", choices=["knn", "radius"])
    parser.add_argument("--at", default="15.5,-90.8", help="lat,lon")
    args = parser.parse_args()
    lat, lon = (float(v) for v in args.at.split(","))
    settings = Settings(database_url=args.url)
    engine = make_engine(settings)
    with Session(engine):
        statements = core_statements(engine, lat, lon, args.mode)
    engine.dispose()
    for statement, params in statements:
        started = time.perf_counter()
        plan = explain(settings, statement, params)
        elapsed = (time.perf_counter() - started) * 1000
        print(f"--- {elapsed:.1f} ms (with EXPLAIN) ---\n{' '.join(statement.split())}\n{plan}\n")


if __name__ == "__main__":
    main()
