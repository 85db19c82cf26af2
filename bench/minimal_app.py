"""The anchor: a minimal FastAPI + asyncpg app that answers the benchmark's two searches.

It answers ``GET /search`` (and the same at ``/api/v1/search``, so the benchmark's wrk scripts
drive it unchanged) with ONE hand-written statement over the search read model
(``search_entry``) on PostGIS, and shapes nothing: it returns each entry's pre-rendered ``doc``
with its geodesic distance. It is what the read model allows at best on this machine, served
beside the real endpoint on the same database in the same run (``bench/search_bench.py``), so
every run reports the endpoint's throughput and latency as a ratio of the anchor's.

The question is the endpoint's, for an anonymous caller (the public point set):

- ``near=lat,lon&category=protection.shelter&limit=10``: the 10 listed entries nearest by
  geodesic distance (ties by id) whose category codes (each entry holds its categories and all
  their ancestors) include the one asked for;
- ``near=lat,lon&radius_m=10000&limit=10``: the same without a category, within 10 km.

Nearest by geodesic distance, exactly, in one statement: KNN ``<->`` on the GiST index gives the
k nearest in planar degrees; the largest geodesic distance among them, D, bounds the k-th nearest
geodesic distance (any k rows do); the page is then every listed row within D (an index window
``&&`` a lon/lat box that holds the geodesic circle, then ``ST_DWithin`` on ``geography``), ordered
by geodesic distance and id. With a radius, D is at most the radius.

Run it (the benchmark does this itself)::

    BENCH_ANCHOR_DSN=postgresql://postgres@127.0.0.1:5432/referral_net_bench_10000 \\
        .venv/bin/uvicorn minimal_app:app --app-dir bench --workers 2 --port 8100 --no-access-log
    curl '127.0.0.1:8100/search?near=14.64,-90.51&category=protection.shelter&limit=10'
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import asyncpg
from fastapi import FastAPI, Query, Request
from fastapi.responses import Response

DSN = os.environ.get("BENCH_ANCHOR_DSN", "postgresql://postgres@127.0.0.1:5432/referral_net_bench")
# Connections per worker process: wrk's 16 connections over 2 workers is 8 each.
POOL_SIZE = int(os.environ.get("BENCH_ANCHOR_POOL", "8"))
# The session settings of the app's own engine (db/engine.py, PG_CONNECT_OPTIONS), so both
# servers ask PostgreSQL under the same conditions. plan_cache_mode: asyncpg prepares every
# statement, and after 5 runs PostgreSQL may switch to a generic plan; the app forces custom plans.
SERVER_SETTINGS = {
    "jit": "off",
    "max_parallel_workers_per_gather": "0",
    "plan_cache_mode": os.environ.get("BENCH_ANCHOR_PLAN_CACHE_MODE", "force_custom_plan"),
}

# The KNN order: "geometry" (the anchor the issue set: PostGIS's ``<->`` on the point's own GiST
# index, which tests each entry's category on its heap row), or "point" (PostgreSQL's ``point``
# distance on the read model's ``ix_search_entry_public_nearest``, an index-only KNN scan, as
# the endpoint walks since 2026-12-07): the anchor at its best on today's read model.
KNN_KEY = os.environ.get("BENCH_ANCHOR_KNN_KEY", "geometry")
_ORDER = {
    "geometry": "e.public_geom <-> ST_SetSRID(ST_MakePoint($2::float8, $1::float8), 4326)",
    "point": "point(ST_X(e.public_geom), ST_Y(e.public_geom)) <-> point($2::float8, $1::float8)",
}[KNN_KEY]

# $1 latitude, $2 longitude, $3 page size k, $4 radius in metres (NULL: none), then $5 the
# category codes (any of them) in the category variant. The point is written out where it is
# used, not taken from a CTE: KNN ``<->`` uses the GiST index only against a constant.
_POINT = "ST_SetSRID(ST_MakePoint($2::float8, $1::float8), 4326)"
_DISTANCE = f"ST_Distance(e.public_geom::geography, {_POINT}::geography)"
_STATEMENT = f"""
WITH nearest AS (
    SELECT {_DISTANCE} AS d
    FROM search_entry e
    WHERE e.listed AND e.public_geom IS NOT NULL {{category}}
    ORDER BY {_ORDER}
    LIMIT $3
), reach AS (
    -- LEAST ignores NULLs: no radius -> the k-th bound; no rows at all -> the radius (or none).
    SELECT LEAST(max(nearest.d), $4::float8) AS m FROM nearest
)
SELECT e.service_at_location_id, {_DISTANCE} AS distance_m, e.doc::text AS doc
FROM reach, search_entry e
WHERE e.listed {{recheck}}
  -- A lon/lat box holding the geodesic circle of radius m (metres per degree: at least 110,574
  -- along a meridian, at least 111,320 cos(latitude) along a parallel, at the circle's most
  -- poleward latitude), widened by 1 %: the GiST index pre-selects, the distance decides (the
  -- endpoint's own test: ST_DWithin on geography can drop the row at exactly m).
  AND e.public_geom && ST_Expand(
        {_POINT},
        reach.m * 1.01
            / (111320.0 * cos(radians(LEAST(89.0, abs($1::float8) + reach.m / 110574.0))))
            + 1e-6,
        reach.m * 1.01 / 110574.0 + 1e-6)
  AND {_DISTANCE} <= reach.m
ORDER BY distance_m, e.service_at_location_id
LIMIT $3
"""
_CATEGORY = "AND e.category_codes && $5::text[]"
KNN_WITH_CATEGORY = _STATEMENT.format(
    category=_CATEGORY,
    # In the window the category is a recheck of a few rows: written so that the planner cannot
    # AND the GIN index in (a bitmap of every shelter in the country, for about 10 rows).
    recheck=f"AND ({_CATEGORY.removeprefix('AND ')}) IS TRUE",
)
WITHOUT_CATEGORY = _STATEMENT.format(category="", recheck="")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """One connection pool per worker process, opened before the first request."""
    app.state.pool = await asyncpg.create_pool(
        DSN, min_size=POOL_SIZE, max_size=POOL_SIZE, server_settings=SERVER_SETTINGS
    )
    try:
        yield
    finally:
        await app.state.pool.close()


app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)


def _point(near: str) -> tuple[float, float]:
    latitude, longitude = (float(part) for part in near.split(","))
    return latitude, longitude


@app.get("/search")
@app.get("/api/v1/search")
async def search(
    request: Request,
    near: str,
    category: Annotated[list[str] | None, Query()] = None,
    radius_m: float | None = None,
    limit: int = 10,
) -> Response:
    """The nearest ``limit`` listed entries (with a category, within a radius), nearest first."""
    latitude, longitude = _point(near)
    arguments: list[Any] = [latitude, longitude, limit, radius_m]
    if category:
        statement = KNN_WITH_CATEGORY
        arguments.append(category)
    else:
        statement = WITHOUT_CATEGORY
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as connection:
        rows = await connection.fetch(statement, *arguments)
    # asyncpg returns the doc as JSON text: splice it, no parse and re-serialise.
    items = ",".join(
        f'{{"service_at_location_id":"{row[0]}","distance_m":{row[1]!r},"doc":{row[2]}}}'
        for row in rows
    )
    body = f'{{"size":{len(rows)},"contents":[{items}]}}'
    return Response(content=body, media_type="application/json")


@app.get("/ready")
async def ready(request: Request) -> Response:
    """200 once the pool answers (the benchmark waits for it)."""
    await request.app.state.pool.fetchval("SELECT 1")
    return Response(content='{"status":"ready"}', media_type="application/json")
