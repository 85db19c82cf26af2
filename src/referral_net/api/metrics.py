"""Prometheus metrics at ``GET /metrics``: requests per route template, latency, DB pool usage.

Off unless ``REFERRAL_NET_METRICS_TOKEN`` is set: then there is no route (a 404) and no
middleware, so an unmonitored deployment pays nothing. When it is set, a scrape must send
``Authorization: Bearer <token>``; anything else is a 401.

Series (docs/deploy.md, "Metrics"):

- ``referral_net_http_requests_total{method, route, status}``
- ``referral_net_http_request_duration_seconds{method, route, status}`` (a histogram)
- ``referral_net_db_pool_size{engine}``, ``..._checked_out{engine}``, ``..._overflow{engine}``

``route`` is the matched route's template (``/api/v1/locations/{location_id}``) or
``(no route)``, never a path: a path names a record, a confidential location included, and
would also make one series per id. ``engine`` is ``primary`` for ``app.state.engine`` and the
name before ``_engine`` for any other engine on ``app.state`` (``read`` for ``read_engine``).

Several workers: ``referral-net serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh
directory before it starts them (``server.py``). prometheus_client then keeps each worker's
values in files there, and a scrape, whichever worker answers it, reads them all: request
counts add up over workers, and each pool gauge is the sum over the live workers (``livesum``).
The metrics belong to the app (a registry each), not to the module, so apps built side by side
(tests) never share counts.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from sqlalchemy import Engine, event
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from referral_net.api.problems import route_template
from referral_net.errors import Unauthenticated
from referral_net.settings import Settings

METRICS_PATH = "/metrics"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_POOL_EVENTS = ("checkout", "checkin", "connect", "close")


class Metrics:
    """The app's metric objects and the registry they live in."""

    def __init__(self) -> None:
        """Create the metrics in a registry of their own."""
        self.registry = CollectorRegistry(auto_describe=True)
        # Decided by prometheus_client when it was first imported, from PROMETHEUS_MULTIPROC_DIR.
        self.multiprocess = values.ValueClass is not values.MutexValue
        labels = ("method", "route", "status")
        self.requests = Counter(
            "referral_net_http_requests",
            "HTTP requests answered, by method, route template and status.",
            labels,
            registry=self.registry,
        )
        self.duration = Histogram(
            "referral_net_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, in seconds.",
            labels,
            registry=self.registry,
        )
        self.pool_size = self._pool_gauge("size", "Connections the pool keeps open (its size).")
        self.pool_checked_out = self._pool_gauge(
            "checked_out", "Connections lent to requests right now."
        )
        self.pool_overflow = self._pool_gauge(
            "overflow", "Connections open beyond the pool size right now."
        )

    def _pool_gauge(self, name: str, documentation: str) -> Gauge:
        return Gauge(
            f"referral_net_db_pool_{name}",
            documentation,
            ("engine",),
            registry=self.registry,
            multiprocess_mode="livesum",
        )

    def observe(self, *, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        method = method if method in _METHODS else "other"
        labels = (method, route, str(status))
        self.requests.labels(*labels).inc()
        self.duration.labels(*labels).observe(seconds)

    def exposition(self) -> bytes:
        """The text exposition of every metric (of every worker, in multiprocess mode)."""
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Time every HTTP request and count it by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        """Wrap ``app``; record into ``metrics``."""
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request, then record it (a 500 if the app failed before answering)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            self.metrics.observe(
                method=str(scope.get("method", "")),
                route=route_template(scope),
                status=status,
                seconds=time.perf_counter() - started,
            )


def install(app: FastAPI, settings: Settings) -> None:
    """Serve ``/metrics`` and record requests and pool usage, if a metrics token is set.

    Call it after every other middleware is added: the timer is then the outermost layer and
    sees every answer, the 413s and 500s made by the other layers included.
    """
    if settings.metrics_token is None:
        return
    metrics = Metrics()
    app.state.metrics = metrics
    expected = settings.metrics_token.get_secret_value().encode("utf-8")

    def scrape(request: Request) -> Response:
        """The metrics, for a caller holding the metrics token."""
        offered = request.headers.get("authorization", "")
        scheme, _, token = offered.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            token.strip().encode("utf-8"), expected
        ):
            raise Unauthenticated(
                "GET /metrics needs the metrics bearer token.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        # Credentialed, so never stored by a cache (api/caching.py marks it no-store).
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route(METRICS_PATH, scrape, methods=["GET"], include_in_schema=False)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.router.lifespan_context = _watching_pools(app.router.lifespan_context, metrics)


def _watching_pools(
    inner: Callable[[Any], AbstractAsyncContextManager[Any]], metrics: Metrics
) -> Callable[[Any], AbstractAsyncContextManager[Any]]:
    """Wrap the app's lifespan: watch the pools of the engines it made, stop when it ends."""

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with inner(app) as state:
            # After the app's own start-up, so that every engine it makes is there to watch.
            unwatch = [watch_pool(metrics, label, engine) for label, engine in _engines(app)]
            try:
                yield state
            finally:
                for stop in unwatch:
                    stop()
                if metrics.multiprocess:
                    # This worker's live gauges leave the sums; its counters stay counted.
                    multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    return lifespan


def _engines(app: FastAPI) -> list[tuple[str, Engine]]:
    """Each engine on ``app.state`` with its label: ``engine`` is primary, ``x_engine`` is x."""
    found: dict[str, Any] = getattr(app.state, "_state", {})
    return [
        ("primary" if name == "engine" else name.removesuffix("_engine"), value)
        for name, value in found.items()
        if isinstance(value, Engine)
    ]


def watch_pool(metrics: Metrics, label: str, engine: Engine) -> Callable[[], None]:
    """Keep the pool gauges of ``engine`` current; returns the function that stops it.

    Pool events set them as connections move, in the worker that moves them, so that in
    multiprocess mode a scrape answered by another worker still reads this one's values.
    """
    pool: Any = engine.pool
    size = pool.size() if hasattr(pool, "size") else 0

    def update(*_args: Any) -> None:
        metrics.pool_size.labels(label).set(size)
        metrics.pool_checked_out.labels(label).set(pool.checkedout())
        # QueuePool counts overflow from -size up; below zero means none open beyond the size.
        metrics.pool_overflow.labels(label).set(max(0, pool.overflow()))

    if not hasattr(pool, "checkedout"):  # a pool without a queue: nothing to report
        return lambda: None
    for name in _POOL_EVENTS:
        event.listen(pool, name, update)
    update()

    def stop() -> None:
        for name in _POOL_EVENTS:
            event.remove(pool, name, update)

    return stop
