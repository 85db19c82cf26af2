"""CPU of one search request in-process: the ASGI app called directly, no HTTP, no wrk.

Not a test. Where ``request_cost.py`` measures whole servers, this measures the application's own
request path on one core, one request at a time, so that a change of a tenth of a millisecond is
visible: it builds the app for a database that ``search_bench.py`` loaded, sends ``--requests``
searches at random points (nearest-10 + category, as ``random_points.lua``) after a warm-up, and
prints the process CPU per request. ``--cached-page`` replaces the domain search by the first page
it answered, so only the request path is measured (middleware, routing, dependencies, the hop,
the response). With ``--before-src`` the same runs for an earlier tree, interleaved:

    .venv/bin/python bench/request_path_cost.py --size 10000 --cached-page --before-src DIR
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _query(rng: random.Random) -> bytes:
    latitude, longitude = rng.uniform(14.0, 16.5), rng.uniform(-92.2, -89.0)
    return f"near={latitude:.5f},{longitude:.5f}&category=protection.shelter&limit=10".encode()


async def _measure(database_url: str, requests: int, cached_page: bool) -> float:
    """CPU ms per request of the app served in this process."""
    os.environ.update(
        REFERRAL_NET_DATABASE_URL=database_url,
        REFERRAL_NET_RATE_LIMITS_ENABLED="false",
        REFERRAL_NET_SECRET_KEY="k" * 48,
    )
    import referral_net.api.routers.search as search_router  # noqa: PLC0415
    from referral_net.main import create_app  # noqa: PLC0415

    if cached_page:
        real = search_router.search_domain.search_page
        cached: dict[str, Any] = {}

        def first_page(**kwargs: Any) -> Any:
            if "page" not in cached:
                cached["page"] = real(**kwargs)
            return cached["page"]

        search_router.search_domain = type(
            "CachedSearch", (), {"search_page": staticmethod(first_page)}
        )
    app = create_app()
    rng = random.Random(1)

    async def one() -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/api/v1/search",
            "raw_path": b"/api/v1/search",
            "query_string": _query(rng),
            "root_path": "",
            "headers": [(b"host", b"localhost")],
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        if sent[0]["status"] != 200:
            raise RuntimeError(sent)

    async with app.router.lifespan_context(app):
        for _ in range(200):
            await one()
        started = time.process_time()
        for _ in range(requests):
            await one()
        return 1000 * (time.process_time() - started) / requests


def _run(src: Path, args: argparse.Namespace) -> float:
    """One measurement in a fresh interpreter with ``src`` first on the path."""
    command = [
        sys.executable,
        __file__,
        "--child",
        "--size",
        str(args.size),
        "--requests",
        str(args.requests),
    ]
    if args.cached_page:
        command.append("--cached-page")
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    return float(out.split()[-1])


def main() -> None:
    """Measure (interleaved with ``--before-src``) and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000, help="search_bench's database")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cached-page", action="store_true", help="measure the path only")
    parser.add_argument("--before-src", help="src/ of an earlier tree, measured beside")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    base = os.environ.get("BENCH_POSTGIS_BASE", "postgresql+psycopg://postgres@127.0.0.1:5432")
    url = f"{base}/referral_net_bench_{args.size}"
    if args.child:
        print(asyncio.run(_measure(url, args.requests, args.cached_page)))
        return
    trees = {"now": ROOT / "src"}
    if args.before_src:
        trees["before"] = Path(args.before_src).resolve()
    runs: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, src in trees.items():
            runs[name].append(_run(src, args))
    what = "request path (cached page)" if args.cached_page else "whole search"
    print(f"{args.size:,} rows, {what}, CPU ms per request, {args.rounds} rounds")
    for name, values in runs.items():
        shown = ", ".join(f"{v:.3f}" for v in values)
        print(f"| {name} | {shown} | median {statistics.median(values):.3f} |")


if __name__ == "__main__":
    main()
