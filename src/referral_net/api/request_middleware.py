"""Plain ASGI middleware for every request: the access log and the NUL-byte refusal.

They are written against ASGI directly rather than with ``@app.middleware("http")``: Starlette's
``BaseHTTPMiddleware`` runs each request through an extra task and memory stream, which cost
about a tenth of a millisecond per layer and request on the search benchmark's hot path.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from referral_net.errors import BadRequest, problem_response

request_logger = logging.getLogger("referral_net.requests")


class RequestLogMiddleware:
    """Log method, path, status and duration; never the query string (it may hold a location)."""

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
                request_logger.info(
                    "%s %s %s %.1fms",
                    scope.get("method", ""),
                    scope.get("path", ""),
                    status,
                    (time.perf_counter() - started) * 1000,
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
