"""Plain ASGI middleware for every request: the request id and last-resort error handling, the
access log, and the NUL-byte refusal.

They are written against ASGI directly rather than with ``@app.middleware("http")``: Starlette's
``BaseHTTPMiddleware`` runs each request through an extra task and memory stream, which cost
about a tenth of a millisecond per layer and request on the search benchmark's hot path.
"""

from __future__ import annotations

import logging
import time

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from referral_net.api.problems import (
    internal_error_response,
    log_unexpected,
    problem_response,
    route_template,
)
from referral_net.errors import BadRequest
from referral_net.request_context import (
    REQUEST_ID_HEADER,
    accept_or_new_request_id,
    current_request_id,
    reset_request_id,
    set_request_id,
)

request_logger = logging.getLogger("referral_net.requests")


class RequestContextMiddleware:
    """Give every request an id, and turn any unexpected exception into one log line and a 500.

    The id is the client's ``X-Request-ID`` when it matches a strict pattern (a proxy's id then
    joins both logs), else a fresh one. It is sent back as ``X-Request-ID`` on every response,
    put in ``scope["state"]["request_id"]`` and in ``referral_net.request_context``, and goes into
    the log line and the body of a 500.

    This must be the outermost middleware that can see an exception. Starlette's
    ``ServerErrorMiddleware`` (outside all user middleware) re-raises every exception after
    answering, and uvicorn then prints the full traceback, SQL included. Caught here, the error
    is logged once (class, route template, request id; traceback only with ``debug_tracebacks``)
    and never reaches them.
    """

    def __init__(self, app: ASGIApp, debug_tracebacks: bool = False) -> None:
        """Wrap ``app``; ``debug_tracebacks`` also logs the traceback of unexpected errors."""
        self.app = app
        self.debug_tracebacks = debug_tracebacks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request with its id bound; answer 500 for anything that escapes."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = accept_or_new_request_id(Headers(scope=scope).get(REQUEST_ID_HEADER))
        scope.setdefault("state", {})["request_id"] = request_id
        token = set_request_id(request_id)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # noqa: BLE001 - the last resort: logged, answered 500
            log_unexpected(
                exc,
                method=str(scope.get("method", "")),
                route=route_template(scope),
                request_id=request_id,
                traceback=self.debug_tracebacks,
            )
            if not started:
                response = internal_error_response(scope.get("path") or None)
                await response(scope, receive, send_with_id)
            # Not re-raised, on purpose (see the class docstring). A response that had already
            # started is left cut short; the server closes the connection.
        finally:
            reset_request_id(token)


class RequestLogMiddleware:
    """The access log: method, route template, status and duration, one line per request.

    The route template (``/api/v1/locations/{location_id}``), never the path or the query string:
    a ``near=lat,lon`` locates whoever a caseworker searches for, and a path names the record
    looked at, a restricted or confidential location included. The fields also go on the record
    as ``extra``, for the JSON log format (``referral_net.logging_config``).
    """

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request and log one line when its response starts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before starting a response

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            if request_logger.isEnabledFor(logging.INFO):
                method = str(scope.get("method", ""))
                route = route_template(scope)
                duration_ms = round((time.perf_counter() - started) * 1000, 1)
                request_logger.info(
                    "%s %s %s %.1fms request_id=%s",
                    method,
                    route,
                    status,
                    duration_ms,
                    current_request_id() or "-",
                    extra={
                        "method": method,
                        "route": route,
                        "status": status,
                        "duration_ms": duration_ms,
                    },
                )


class RefuseNulInQueryMiddleware:
    """Answer 400 to a query string holding a NUL byte, raw or percent-encoded.

    A NUL can never be meant in a query parameter, and PostgreSQL refuses it mid-query.
    """

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse the request, or pass it on untouched."""
        if scope["type"] == "http":
            raw: bytes = scope.get("query_string", b"")
            if b"\x00" in raw or b"%00" in raw:
                response = problem_response(
                    400,
                    slug=BadRequest.slug,
                    title=BadRequest.title,
                    detail="Query parameters may not contain NUL characters.",
                    instance=scope.get("path", ""),
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
