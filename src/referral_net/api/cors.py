"""CORS bound to partner keys: a browser may read the API cross-origin only with a key for its site.

Rules (docs/access.md, "Partner API keys"):

- **Preflight** (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``): browsers do
  not send the key on a preflight, so it is answered for any origin that some *active* key lists
  in ``allowed_origins``, for the read methods only. Other origins get a 403 problem without CORS
  headers.
- **Actual request** with ``Origin`` and ``X-API-Key``: ``Access-Control-Allow-Origin`` is set to
  the origin only when *that* key is active and bound to it. A key copied into someone else's
  page therefore does not work from their browsers (it still works from a server, where CORS
  means nothing: the key's rate limit and revocation are the controls there).
- **Anonymous requests** (no key) get no CORS headers at all. The public embeddable map will be
  served from this host (same origin), and third-party sites are meant to come with a key, which
  names them in the audit trail and gives them their own limits.
- Never ``*``, and never ``Access-Control-Allow-Credentials``: the key travels in a header, not
  a cookie, so credentialed CORS is never needed and a reflected origin can never be combined
  with the browser's cookies.
- ``Vary: Origin`` on every response whose CORS headers depend on the origin, so that shared
  caches do not hand one site's answer to another.

The middleware looks keys up itself (one indexed query, only for cross-origin browser calls) so
that CORS does not depend on whether an endpoint resolved the caller. It opens its session the
way the API does, from the session source of ``app.state`` when one is set (the tests' transaction).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from referral_net.api.deps import session_source
from referral_net.api.problems import problem_response
from referral_net.domain import keys
from referral_net.errors import Forbidden, Unauthenticated

# Partner keys only read, so only the read methods are offered to browsers.
ALLOWED_METHODS = ("GET", "HEAD")
ALLOWED_HEADERS = ("X-API-Key", "Accept", "Accept-Language", "Content-Type", "If-None-Match")
EXPOSED_HEADERS = (
    "ETag",
    "X-Request-ID",
    "Content-Language",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
)
# Browsers cap this anyway (Chromium at 2 hours); 10 minutes bounds how long a revoked key's
# origin keeps passing preflights from a browser's cache.
PREFLIGHT_MAX_AGE_SECONDS = 600


@contextmanager
def _session(app: Any) -> Iterator[Session]:
    joined = session_source(app)
    if joined is not None:
        with joined() as session:
            yield session
        return
    # A key look-up only reads: a plain (deferred) session, outside any request.
    with Session(app.state.engine, expire_on_commit=False) as session:
        yield session


def _origin_bound(app: Any, origin: str) -> bool:
    with _session(app) as session:
        return keys.origin_is_bound(session=session, origin=origin)


def _key_allows(app: Any, raw_key: str, origin: str) -> bool:
    with _session(app) as session:
        try:
            key = keys.authenticate_key(session=session, raw=raw_key)
        except Unauthenticated:
            return False  # the endpoint answers 401 itself; no CORS for a bad key
        return origin in key.allowed_origins


class PartnerCorsMiddleware:
    """Pure ASGI middleware answering preflights and adding CORS headers per partner key."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap the inner application."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call: preflight here, actual requests through the inner app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:  # same-origin or not a browser: CORS does not apply
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(scope, receive, send, origin, headers)
            return
        raw_key = headers.get("x-api-key")
        if raw_key is None:  # anonymous: deliberately no CORS (see the module docstring)
            await self.app(scope, receive, send)
            return
        try:
            allowed = await run_in_threadpool(_key_allows, scope["app"], raw_key, origin)
        except SQLAlchemyError:
            allowed = False  # the endpoint reports the outage itself (503)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                response_headers.add_vary_header("Origin")
                if allowed:
                    response_headers["Access-Control-Allow-Origin"] = origin
                    response_headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSED_HEADERS)
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(
        self, scope: Scope, receive: Receive, send: Send, origin: str, headers: Headers
    ) -> None:
        method = headers["access-control-request-method"].strip().upper()
        bound = method in ALLOWED_METHODS and await run_in_threadpool(
            _origin_bound, scope["app"], origin
        )
        if not bound:
            refused = problem_response(
                403,
                slug=Forbidden.slug,
                title=Forbidden.title,
                detail="Cross-origin requests need a partner key bound to this origin; "
                "partner keys only read (GET, HEAD).",
                instance=scope.get("path"),
                headers={"Vary": "Origin"},
            )
            await refused(scope, receive, send)
            return
        response = Response(
            status_code=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": ", ".join(ALLOWED_METHODS),
                "Access-Control-Allow-Headers": ", ".join(ALLOWED_HEADERS),
                "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
                "Vary": "Origin",
            },
        )
        await response(scope, receive, send)
