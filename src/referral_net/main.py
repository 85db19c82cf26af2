"""Application factory: ``create_app(settings)`` builds the app; nothing happens at import."""

from __future__ import annotations

import gc
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from referral_net import __version__
from referral_net.api import metrics, openapi_document, ratelimit, read_your_writes
from referral_net.api.body_limit import BODY_LIMIT_OVERRIDES, BodyLimitMiddleware
from referral_net.api.caching import CachingMiddleware
from referral_net.api.cors import PartnerCorsMiddleware
from referral_net.api.docs_ui import DOCS_PAGES, install_docs
from referral_net.api.problems import install_error_handlers
from referral_net.api.request_middleware import (
    RefuseNulInQueryMiddleware,
    RequestContextMiddleware,
    RequestLogMiddleware,
)
from referral_net.api.routers import (
    audit,
    auth,
    embed,
    exports,
    health,
    history,
    imports,
    locations,
    match,
    ogc,
    organizations,
    profile,
    referrals,
    root,
    search,
    service_at_locations,
    services,
    taxonomy,
    tiles,
)
from referral_net.api.security_headers import SecurityHeadersMiddleware
from referral_net.api.write_turns import WriteTurnMiddleware
from referral_net.db.engine import make_engine, make_read_engine
from referral_net.domain.referrals_webhooks import start_webhook_worker
from referral_net.exchange.jobs import start_import_worker
from referral_net.schemas.common import PROBLEM_RESPONSES
from referral_net.settings import Backend, Settings, get_settings

logger = logging.getLogger("referral_net")

OPENAPI_TAGS = [
    {"name": "health", "description": "Liveness and readiness probes."},
    {"name": "auth", "description": "Staff log-in (OAuth2 password flow) and token refresh."},
    {"name": "organizations", "description": "HSDS organizations (providers of services)."},
    {"name": "services", "description": "HSDS services with eligibility, hours and capacity."},
    {"name": "locations", "description": "HSDS locations; visibility decides who sees the site."},
    {"name": "service_at_locations", "description": "Where each service is delivered."},
    {"name": "search", "description": "Geospatial search: nearest, radius, bbox, area, coverage."},
    {"name": "match", "description": "Needs matching: eligible services ranked, and a plan."},
    {"name": "taxonomy", "description": "The anti-trafficking taxonomy (four Ps), es/en."},
    {"name": "verification", "description": "Listings due for verification."},
    {"name": "history", "description": "HSDS metadata: the change history of a record."},
    {"name": "audit", "description": "The tamper-evident audit trail (stewards)."},
    {"name": "imports", "description": "File imports run as background jobs (stewards)."},
    {"name": "export", "description": "The public directory as HSDS: JSON, NDJSON or CSV."},
    {"name": "hsds", "description": "The HSDS API root: version, profile and OpenAPI URL."},
    {"name": "profile", "description": "The HSDS profile: merge patches, compiled schemas."},
    {"name": "ogc", "description": "OGC API - Features and Tiles: services, areas, places."},
    {"name": "tiles", "description": "Vector tiles (Mapbox Vector Tile), the short XYZ form."},
    {"name": "referrals", "description": "Referrals between organizations, with consent."},
    {"name": "embed", "description": "The embeddable map for partner sites (HTML pages)."},
]


# The collector's first threshold while serving (Python's default is 700 allocations): see
# create_served_app.
SERVED_GC_THRESHOLD = 20_000


def create_served_app() -> FastAPI:
    """The application as ``referral-net serve`` runs it, once in each worker process:
    :func:`create_app`, then the garbage collector tuned for a long-lived server.

    Everything built so far (the modules, the app, its routes and models) lives as long as the
    process, so it is moved out of the collector's reach (``gc.freeze``), and young objects are
    collected after 20,000 allocations instead of 700: a request allocates thousands, most of
    which die by reference counting before a collection would see them. The collector's scans
    were about 6 % of a loaded worker's CPU (``perf``, docs/performance.md). Not done in
    :func:`create_app`: a test process builds many apps, and frozen objects are never collected.
    """
    app = create_app()
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(SERVED_GC_THRESHOLD, older, oldest)
    return app


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application for the given settings (read from the environment if omitted)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if getattr(app.state, "engine", None) is None:
            app.state.engine = make_engine(settings)
            owns_engine = True
        else:  # tests may hand in an engine bound to their transaction
            owns_engine = False
        # Reads on a streaming replica when one is configured (api/deps.py get_session).
        app.state.read_engine = read_engine = make_read_engine(settings)
        # Imports submitted over HTTP run in this thread, never in a request (exchange/jobs.py).
        app.state.import_worker = worker = start_import_worker(app.state.engine, settings)
        # Referral webhooks are delivered from their queue table by this thread (docs/referrals.md).
        hooks = start_webhook_worker(app.state.engine, settings)
        try:
            yield
        finally:
            if hooks is not None:
                hooks.stop()
            if worker is not None:
                worker.stop()
            if owns_engine:
                app.state.engine.dispose()
            if read_engine is not None:
                read_engine.dispose()

    app = FastAPI(
        title="referral-net",
        version=__version__,
        summary="Referral directory and needs matching for anti-trafficking protection networks.",
        description=(
            "Open Referral HSDS 3.0 directory of protection services with geospatial search, "
            "needs matching and audience-tiered confidentiality. Errors are RFC 9457 "
            "`application/problem+json`."
        ),
        openapi_tags=OPENAPI_TAGS,
        license_info={"name": "Apache-2.0", "identifier": "Apache-2.0"},
        lifespan=lifespan,
        # FastAPI's pages load from CDNs: ours are served offline (api/docs_ui.py).
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.settings = settings
    app.state.engine = None
    app.state.read_engine = None
    app.state.session_source = None  # api/deps.session_source: set by an embedding program
    app.state.import_worker = None
    app.state.signing_key = _signing_key(settings)
    install_error_handlers(app)
    ratelimit.install(app, settings)
    _install_middleware(app, settings)
    install_docs(app)
    _include_routers(app, settings)
    openapi_document.install(app)  # errors documented as sent: problem+json, 409, 413, 503
    return app


def _install_middleware(app: FastAPI, settings: Settings) -> None:
    """Add the middleware stack, innermost first (docs/architecture.md, "Middleware")."""
    if settings.backend is Backend.SPATIALITE:
        # Innermost: write requests take their process's turn after every check outside it.
        app.add_middleware(WriteTurnMiddleware, wait_seconds=settings.sqlite_busy_timeout_ms / 1000)
    # With a read replica: the WAL position after a commit, for the writer's next read.
    read_your_writes.install(app, settings)
    # The RateLimit-* headers of the request's count, on every answer (api/ratelimit.py).
    app.add_middleware(ratelimit.RateLimitHeadersMiddleware)
    app.add_middleware(RequestLogMiddleware)
    app.add_middleware(RefuseNulInQueryMiddleware)
    # CORS per partner key (api/cors.py); inside the security headers, so preflights get them.
    app.add_middleware(PartnerCorsMiddleware)
    # The body cap runs before anything reads, parses or authenticates (api/body_limit.py).
    # Uploads to /api/v1/imports have their own cap; the rest of the API keeps the global one.
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        overrides={**BODY_LIMIT_OVERRIDES, imports.router.prefix: settings.import_max_bytes},
    )
    # Outside every answer it must label: the 413, the NUL 400, CORS refusals (api/caching.py).
    app.add_middleware(CachingMiddleware, public_max_age=settings.public_cache_max_age_seconds)
    # Request id and last-resort 500: outside everything that can raise, so that no exception
    # reaches Starlette's ServerErrorMiddleware and uvicorn, which print tracebacks.
    app.add_middleware(RequestContextMiddleware, debug_tracebacks=settings.debug_tracebacks)
    # Outermost of ours, so that the NUL refusal and every other answer carry the headers too.
    app.add_middleware(SecurityHeadersMiddleware, docs_paths=DOCS_PAGES)
    # GET /metrics and the request timer, outside all the rest (only with a metrics token).
    metrics.install(app, settings)


def _include_routers(app: FastAPI, settings: Settings) -> None:
    """Mount every router, each with its rate-limit budget.

    FastAPI tries the routers in the order they are included, and every route of each router
    before the one that matches: the hot paths (search, matching, map tiles, OGC items) come
    first. Searching behind ten other routers cost about 0.08 ms of CPU a request, measured
    in-process (docs/performance.md); none of their paths overlaps another router's.
    """
    # Every /api/v1 router is rate limited; tests/test_rate_limits.py fails if one is missed.
    limited = [Depends(ratelimit.enforce_rate_limit)]
    # search counts its own rate limit (api/hot_reads.py: no dependency tree to solve)
    app.include_router(search.router, responses=PROBLEM_RESPONSES)
    app.include_router(match.router, responses=PROBLEM_RESPONSES, dependencies=limited)
    # /tiles: vector tiles (docs/tiles.md), with their own budget (a map loads dozens per view).
    app.include_router(tiles.router, dependencies=[Depends(ratelimit.enforce_tile_rate_limit)])
    app.include_router(ogc.router, dependencies=limited)  # /ogc: OGC API - Features (docs/ogc.md)
    app.include_router(health.router, responses=PROBLEM_RESPONSES)
    app.include_router(root.router, responses=PROBLEM_RESPONSES, dependencies=limited)
    app.include_router(profile.router, responses=PROBLEM_RESPONSES)
    app.include_router(auth.router, responses=PROBLEM_RESPONSES, dependencies=limited)
    app.include_router(organizations.router, responses=PROBLEM_RESPONSES, dependencies=limited)
    app.include_router(services.router, responses=PROBLEM_RESPONSES, dependencies=limited)
    app.include_router(locations.router, responses=PROBLEM_RESPONSES, dependencies=limited)
    app.include_router(
        service_at_locations.router, responses=PROBLEM_RESPONSES, dependencies=limited
    )
    app.include_router(taxonomy.router, responses=PROBLEM_RESPONSES, dependencies=limited)
    app.include_router(
        services.verification_router, responses=PROBLEM_RESPONSES, dependencies=limited
    )
    for limited_router in (
        history.router,
        audit.router,
        imports.router,
        exports.router,
        referrals.router,
    ):
        app.include_router(limited_router, responses=PROBLEM_RESPONSES, dependencies=limited)
    # /embed: the embeddable map for partner sites, and its assets (docs/embed.md).
    app.include_router(embed.router, dependencies=limited)
    embed.install_assets(app, settings)


def _signing_key(settings: Settings) -> str:
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    logger.warning(
        "REFERRAL_NET_SECRET_KEY is not set: using a random per-process key; tokens will not "
        "survive a restart or be shared between workers"
    )
    return secrets.token_urlsafe(48)
