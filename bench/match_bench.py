"""Benchmark of POST /api/v1/match (3 and 6 needs) beside GET /api/v1/search (PostGIS default).

Run after ``bench/search_bench.py`` has built its databases (it keeps them):
``.venv/bin/python bench/match_bench.py --sizes 100000,1000000`` (or ``scripts/bench match``).

Both endpoints are measured over HTTP in the same run, by the same server and load generator
(uvicorn with 2 workers, wrk with random person points, bench/match_requests.lua), as a
caseworker, in ``--rounds`` rounds of the three series (search, match with 3 needs, with 6). The
ratio of the p50s within a round, and its median over the rounds, is the figure the target
speaks of (issue #13: match with 3 needs at most 3x the p50 of one search, at 100k and 1M). A
database loaded before the search read model is migrated and its read model rebuilt first.
Results go to bench/results/match-<stamp>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from search_bench import (  # noqa: E402
    SECRET,
    ensure_read_model,
    existing_database,
    server,
    verdict,
    warm_up,
)
from sqlmodel import Session  # noqa: E402

from referral_net.db.engine import make_engine  # noqa: E402
from referral_net.db.models import UserAccount  # noqa: E402
from referral_net.domain import users  # noqa: E402
from referral_net.security import tokens  # noqa: E402
from referral_net.security.roles import Role  # noqa: E402
from referral_net.settings import Settings  # noqa: E402

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
    parser.add_argument("--backends", default="postgis")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of the three series, one after another; ratios are taken within a round",
    )
    args = parser.parse_args()
    results = []
    for size in [int(s) for s in args.sizes.split(",")]:
        for backend in args.backends.split(","):
            row = measure(backend, size, args)
            if row is not None:
                print(json.dumps(row), file=sys.stderr)
                results.append(row)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = ROOT / "bench" / "results" / f"match-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    report = markdown(results, args.connections)
    out.with_suffix(".md").write_text(report)
    print(report)


def measure(backend: str, size: int, args: argparse.Namespace) -> dict[str, Any] | None:
    """Search, match-3 and match-6 on one database, side by side (None: no such database)."""
    settings = existing_database(backend, size)
    if settings is None:
        print(f"no {backend} bench database of {size}: run search_bench.py first", file=sys.stderr)
        return None
    ensure_read_model(settings, size)
    token = caseworker_token(settings)
    rounds: list[dict[str, Series]] = []
    with server(settings, args.workers) as base:
        warm_up(warm_up_requests(base, token))
        for _ in range(args.rounds):
            rounds.append(
                {
                    kind: drive(base, needs, token, args.seconds, args.connections)
                    for kind, needs in (("search", 0), ("match_3", 3), ("match_6", 6))
                }
            )
    row: dict[str, Any] = {"backend": backend, "size": size}
    for kind in ("search", "match_3", "match_6"):
        row[kind] = asdict(
            Series(
                p50_ms=statistics.median(r[kind].p50_ms for r in rounds),
                p95_ms=statistics.median(r[kind].p95_ms for r in rounds),
                per_second=statistics.median(r[kind].per_second for r in rounds),
            )
        )
    for kind in ("match_3", "match_6"):
        # Each round's ratio is of series a minute apart at most; the median of those is the
        # figure (the load of a shared host drifts between rounds more than within one).
        by_round = [round(r[kind].p50_ms / r["search"].p50_ms, 2) for r in rounds]
        row[f"{kind}_vs_search_by_round"] = by_round
        row[f"{kind}_vs_search_p50"] = round(statistics.median(by_round), 2)
    row["rounds"] = [{kind: asdict(series) for kind, series in r.items()} for r in rounds]
    return row


def warm_up_requests(base: str, token: str) -> list[urllib.request.Request]:
    """A search and a match-3 as the benchmark sends them, at a fixed point in Guatemala."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    needs = [
        {"code": "protection.shelter", "urgency": "emergency"},
        {"code": "protection.legal_aid"},
    ]
    body = {
        "location": {"latitude": 14.64, "longitude": -90.51},
        "age": 24,
        "gender": "woman",
        "languages": ["mam", "spa"],
        "needs": [*needs, {"code": "protection.health.medical", "urgency": "soon"}],
    }
    return [
        urllib.request.Request(
            f"{base}/api/v1/search?near=14.64,-90.51&category=protection.shelter&limit=10",
            headers=headers,
        ),
        urllib.request.Request(
            f"{base}/api/v1/match", data=json.dumps(body).encode(), headers=headers, method="POST"
        ),
    ]


def markdown(results: list[dict[str, Any]], connections: int) -> str:
    """The table for docs/performance.md and the target's verdict per size."""
    lines = [
        f"wrk -t1 -c{connections}, as a caseworker; p50 / p95 in ms, medians of the rounds;"
        " the ratios are the medians of each round's own.",
        "",
        "| backend | N | search p50 / p95 | match 3 needs p50 / p95 | match 6 needs p50 / p95"
        " | match 3 / search | match 3 / search by round | match 6 / search"
        " | target: match 3 <= 3x search |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s, m3, m6 = r["search"], r["match_3"], r["match_6"]
        lines.append(
            f"| {r['backend']} | {r['size']:,} | {s['p50_ms']:.1f} / {s['p95_ms']:.1f}"
            f" | {m3['p50_ms']:.1f} / {m3['p95_ms']:.1f} | {m6['p50_ms']:.1f} / {m6['p95_ms']:.1f}"
            f" | {r['match_3_vs_search_p50']}x"
            f" | {', '.join(f'{x}' for x in r['match_3_vs_search_by_round'])}"
            f" | {r['match_6_vs_search_p50']}x"
            f" | {verdict(r['match_3_vs_search_p50'], 3.0, at_least=False)} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
