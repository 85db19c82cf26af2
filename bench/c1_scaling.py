"""How p50 at one connection grows from 10k to 1M rows: issue 13's scaling targets, by hand.

Not a test. The benchmark (search_bench.py) measures each size's c1 series once, minutes apart;
on these shared machines a whole series can run 30 % slow. This serves the endpoint on both
PostGIS databases that search_bench.py loaded (one worker each), and, with ``--before-src``, an
earlier tree beside it, then runs interleaved rounds: for each query and server, a warm-up at
``wrk -c8`` (3 s) and ``wrk -t1 -c1`` for ``--seconds`` (bench/random_points.lua). It prints
each round's p50 and the ratio of the medians, 1M against 10k:

    .venv/bin/python bench/c1_scaling.py --rounds 5 --before-src DIR
"""

from __future__ import annotations

import argparse
import statistics
import sys
from contextlib import AbstractContextManager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from search_bench import existing_database, server, wrk  # noqa: E402

SIZES = (10_000, 1_000_000)
QUERIES = {"radius": "10 km radius", "knn": "nearest-10 + category"}


def main() -> None:
    """Measure and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--before-src", help="src/ of an earlier tree, served as 'before'")
    args = parser.parse_args()
    trees: dict[str, dict[str, str]] = {"now": {}}
    if args.before_src:
        trees["before"] = {"PYTHONPATH": str(Path(args.before_src).resolve())}
    servers: dict[tuple[str, int], AbstractContextManager[str]] = {}
    for size in SIZES:
        settings = existing_database("postgis", size)
        if settings is None:
            raise SystemExit(f"no PostGIS bench database of {size} rows: run search_bench first")
        for tree, env in trees.items():
            servers[tree, size] = server(settings, 1, extra_env=env, name=f"c1-{tree}-{size}")
    bases = {key: context.__enter__() for key, context in servers.items()}
    p50s: dict[tuple[str, str, int], list[float]] = {}
    try:
        for _ in range(args.rounds):
            for mode in QUERIES:
                for (tree, size), base in bases.items():
                    wrk(base, mode, 3, threads=1, connections=8)  # warm caches and pool
                    figures = wrk(base, mode, args.seconds, threads=1, connections=1)
                    p50s.setdefault((mode, tree, size), []).append(figures.p50_ms)
    finally:
        for context in servers.values():
            context.__exit__(None, None, None)
    print(f"HTTP c1 p50 (ms), {args.rounds} interleaved rounds of {args.seconds} s, 1 worker each")
    print("| query | code | 10k by round | 1M by round | 1M / 10k by round | medians' ratio |")
    print("|---|---|---|---|---|---|")
    for mode, label in QUERIES.items():
        for tree in trees:
            small, large = p50s[mode, tree, SIZES[0]], p50s[mode, tree, SIZES[1]]
            by_round = ", ".join(f"{b / a:.2f}" for a, b in zip(small, large, strict=True))
            ratio = statistics.median(large) / statistics.median(small)
            print(
                f"| {label} | {tree} | {', '.join(f'{v:.2f}' for v in small)} "
                f"| {', '.join(f'{v:.2f}' for v in large)} | {by_round} | {ratio:.2f}x |"
            )


if __name__ == "__main__":
    main()
