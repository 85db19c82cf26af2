"""Benchmark of POST /api/v1/match (3 and 6 needs) beside GET /api/v1/search, on PostGIS.

Run after ``bench/search_bench.py`` has built its databases (it keeps them):
``.venv/bin/python bench/match_bench.py --sizes 100000,1000000``

Both endpoints are measured over HTTP in the same run, by the same server and load generator
(uvicorn with 2 workers, wrk with random person points, bench/match_requests.lua), as a
caseworker. The ratio of the medians is the figure the target speaks of (match p50 under 3x one
search request). Results go to bench/results/match-<stamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from search_bench import existing_database, server  # noqa: E402
from sqlmodel import Session  # noqa: E402

from referral_net.db.engine import make_engine  # noqa: E402
from referral_net.db.models import UserAccount  # noqa: E402
from referral_net.domain import users  # noqa: E402
from referral_net.security import tokens  # noqa: E402
from referral_net.security.roles import Role  # noqa: E402
from referral_net.settings import Settings  # noqa: E402

SECRET = "bench-only-not-a-secret-0123456789"  # the key search_bench's server() runs with
LUA = ROOT / "bench" / "match_requests.lua"


@dataclass
class Series:
    """One measured request kind."""

    p50_ms: float
    p95_ms: float
    per_second: float


def caseworker_token(settings: Settings) -> str:
    """Create (once) a bench caseworker and sign a token the bench server accepts."""
    engine = make_engine(settings)
    with Session(engine) as session:
        user = session.query(UserAccount).filter(UserAccount.username == "bench-caseworker").first()
        if user is None:
            user = users.create_user(
                session=session,
                username="bench-caseworker",
                password="bench only, never a real account",
                role=Role.CASEWORKER,
            )
        token = tokens.issue_token(
            secret=SECRET,
            user_id=user.id,
            kind="access",
            token_version=user.token_version,
            lifetime=timedelta(hours=2),
        )
    engine.dispose()
    return token


def drive(base: str, needs: int, token: str, seconds: int, connections: int) -> Series:
    """Run wrk with the match (or search, needs=0) script."""
    env = {**os.environ, "BENCH_NEEDS": str(needs), "BENCH_TOKEN": token}
    command = ["wrk", "-t1", f"-c{connections}", "-s", str(LUA), "--timeout", "30s"]
    subprocess.run([*command, "-d3s", base], env=env, capture_output=True, check=True)
    result = subprocess.run(
        [*command, f"-d{seconds}s", base], env=env, capture_output=True, text=True, check=True
    )
    found = re.search(r"BENCH p50_us=(\d+) p95_us=(\d+) rps=([\d.]+) errors=(\d+)", result.stdout)
    if not found or int(found.group(4)):
        raise RuntimeError(result.stdout + result.stderr)
    return Series(int(found.group(1)) / 1000, int(found.group(2)) / 1000, float(found.group(3)))


def main() -> None:
    """Measure search, match-3 and match-6 at each size, side by side."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    results = []
    for size in [int(s) for s in args.sizes.split(",")]:
        settings = existing_database("postgis", size)
        if settings is None:
            print(
                f"no PostGIS bench database of {size}: run search_bench.py first", file=sys.stderr
            )
            continue
        token = caseworker_token(settings)
        with server(settings, args.workers) as base:
            row = {
                "size": size,
                "search": asdict(drive(base, 0, token, args.seconds, args.connections)),
                "match_3": asdict(drive(base, 3, token, args.seconds, args.connections)),
                "match_6": asdict(drive(base, 6, token, args.seconds, args.connections)),
            }
        for kind in ("match_3", "match_6"):
            row[f"{kind}_vs_search_p50"] = round(row[kind]["p50_ms"] / row["search"]["p50_ms"], 2)
        print(json.dumps(row), file=sys.stderr)
        results.append(row)
    out = ROOT / "bench" / "results" / f"match-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(
        "| N | search p50 / p95 ms | match 3 needs p50 / p95 ms | match 6 needs p50 / p95 ms |"
        " match 3 / search | match 6 / search |"
    )
    print("|---|---|---|---|---|---|")
    for r in results:
        s, m3, m6 = r["search"], r["match_3"], r["match_6"]
        print(
            f"| {r['size']:,} | {s['p50_ms']:.1f} / {s['p95_ms']:.1f} | {m3['p50_ms']:.1f} / "
            f"{m3['p95_ms']:.1f} | {m6['p50_ms']:.1f} / {m6['p95_ms']:.1f} | "
            f"{r['match_3_vs_search_p50']}x | {r['match_6_vs_search_p50']}x |"
        )


if __name__ == "__main__":
    main()
