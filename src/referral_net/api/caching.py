"""HTTP caching headers that keep one audience's view out of another's cache.

The same URL answers differently by audience: ``GET /api/v1/locations/{id}`` of a restricted
site is exact for a caseworker and coarse for the public, and search results differ the same
way. A URL-keyed cache in front of the service (nginx ``proxy_cache``, a CDN) must therefore
never store a credentialed answer, and must know which request headers select the variant. This
middleware decides, for every response:

==============================================================  ==============================
request / response                                              ``Cache-Control``
==============================================================  ==============================
carries ``Authorization`` or ``X-API-Key`` (any non-public      ``private, no-store``
caller, and a bad credential too)
any method but GET/HEAD, any status >= 400, ``/api/v1/auth/``   ``no-store``
anonymous GET under ``/api/v1``, ``/ogc`` or ``/tiles`` that    ``public, max-age=N`` (unless
succeeded                                                       the route chose otherwise)
anything else (health probes, documentation pages)              left to the route
==============================================================  ==============================

``N`` is ``REFERRAL_NET_PUBLIC_CACHE_MAX_AGE_SECONDS`` (60 by default). Every GET under
``/api/v1`` and ``/ogc`` also says ``Vary: Authorization, X-API-Key, Accept-Language``: the
audience and the label language select the body; vector tiles under ``/tiles`` carry no label,
so ``Vary: Authorization, X-API-Key`` (a name already in the route's ``Vary`` is not repeated),
and so do the embeddable map's pages and assets under ``/embed`` (their language is in the URL).

Every successful GET under those prefixes (200, and 204 for an empty tile) carries an ETag
derived from the bytes sent (``etag.representation_etag``): the route's record tag, if it set
one, plus a hash of the body. Two views never share a tag, and ``If-None-Match`` is answered
with a 304 only for the caller's own view. ``If-Match`` on writes still compares record
versions (``api/etag.py``).

A plain ASGI middleware (no ``BaseHTTPMiddleware``); it holds the body of the responses it tags,
which FastAPI has built in memory in one piece anyway. A streamed response is passed through
untagged.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from referral_net.api.etag import representation_etag
from referral_net.api.security_headers import AUTH_PATH_PREFIX, app_path

API_PREFIX = "/api/v1"
OGC_PREFIX = "/ogc"
TILES_PREFIX = "/tiles"
EMBED_PREFIX = "/embed"  # the embeddable map's pages and assets: the same for every audience
CREDENTIAL_HEADERS = ("authorization", "x-api-key")
VARY_HEADERS = ("Authorization", "X-API-Key", "Accept-Language")
TILE_VARY_HEADERS = ("Authorization", "X-API-Key")
# Successful statuses whose body is tagged (204: an empty vector tile).
_TAGGED_STATUSES = (200, 204)
PRIVATE = "private, no-store"
NO_STORE = "no-store"
# Headers a 304 must not carry: it has no body (RFC 9110, section 15.4.5).
_BODY_HEADERS = ("content-length", "content-type", "content-encoding")


def _weak_equal(offered: str, tag: str) -> bool:
    """``If-None-Match`` uses the weak comparison: ``W/`` is ignored on both sides."""
    candidates = {t.strip().removeprefix("W/") for t in offered.split(",")}
    return "*" in candidates or tag.removeprefix("W/") in candidates


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _vary_for(path: str) -> tuple[str, ...]:
    """The ``Vary`` names of a path the middleware caches; () for the others."""
    if _under(path, API_PREFIX) or _under(path, OGC_PREFIX):
        return VARY_HEADERS
    if _under(path, TILES_PREFIX) or _under(path, EMBED_PREFIX):
        return TILE_VARY_HEADERS
    return ()


def _add_vary(headers: MutableHeaders, names: tuple[str, ...]) -> None:
    """Add the names to ``Vary`` that it does not hold yet (compared case-insensitively)."""
    present = {
        part.strip().lower() for value in headers.getlist("vary") for part in value.split(",")
    }
    for name in names:
        if name.lower() not in present:
            headers.add_vary_header(name)
            present.add(name.lower())


@dataclass(frozen=True)
class _Request:
    """What of a request decides how its response may be cached."""

    credentialed: bool
    method: str
    vary: tuple[str, ...]  # empty: not a path this middleware caches
    auth: bool
    if_none_match: str | None

    @classmethod
    def of(cls, scope: Scope) -> _Request:
        """Read the request's credentials, method, path and ``If-None-Match`` from its scope."""
        headers = Headers(scope=scope)
        path = app_path(scope)
        return cls(
            credentialed=any(name in headers for name in CREDENTIAL_HEADERS),
            method=scope.get("method", "GET"),
            vary=_vary_for(path),
            auth=path.startswith(AUTH_PATH_PREFIX),
            if_none_match=headers.get("if-none-match"),
        )

    @property
    def api(self) -> bool:
        """Under ``/api/v1``, ``/ogc`` or ``/tiles``: cached publicly when anonymous, tagged."""
        return bool(self.vary)

    @property
    def read(self) -> bool:
        """A GET or HEAD."""
        return self.method in ("GET", "HEAD")


def _set_cache_headers(
    headers: MutableHeaders, request: _Request, status: int, public_cache_control: str
) -> None:
    """``Cache-Control`` and ``Vary`` by the table of the module docstring."""
    if request.credentialed:
        headers["Cache-Control"] = PRIVATE
    elif not request.read or status >= 400 or request.auth:
        headers["Cache-Control"] = NO_STORE
    elif request.api:
        headers.setdefault("Cache-Control", public_cache_control)
    if request.api and request.read:
        _add_vary(headers, request.vary)


class _DecoratingSend:
    """The ``send`` of one request: sets the caching headers, and holds a body to tag it."""

    def __init__(self, send: Send, request: _Request, public_cache_control: str) -> None:
        """Decorate what the application sends through ``send`` in answer to ``request``."""
        self.send = send
        self.request = request
        self.public_cache_control = public_cache_control
        self.held: Message | None = None

    async def __call__(self, message: Message) -> None:
        """Pass one message on, decorated, or hold a response start until its body arrives."""
        if message["type"] == "http.response.start":
            await self._start(message)
        elif self.held is not None and message["type"] == "http.response.body":
            start, self.held = self.held, None
            await self._tagged(start, message)
        else:
            await self.send(message)

    async def _start(self, message: Message) -> None:
        request = self.request
        status = int(message["status"])
        headers = MutableHeaders(scope=message)
        _set_cache_headers(headers, request, status, self.public_cache_control)
        if request.api and request.method == "GET" and status in _TAGGED_STATUSES:
            self.held = message  # the ETag depends on the body: wait for it
            return
        if request.api and request.read and "etag" in headers:
            # Not tagged from its body (HEAD, or a status without one): a record tag alone would
            # be shared by every audience's view.
            del headers["etag"]
        await self.send(message)

    async def _tagged(self, start: Message, message: Message) -> None:
        headers = MutableHeaders(scope=start)
        if message.get("more_body", False):
            # Streamed: it cannot be hashed without holding all of it.
            if "etag" in headers:
                del headers["etag"]
            await self.send(start)
            await self.send(message)
            return
        body: bytes = message.get("body", b"")
        tag = representation_etag(body, headers.get("etag"))
        headers["ETag"] = tag
        offered = self.request.if_none_match
        if offered is not None and _weak_equal(offered, tag):
            start["status"] = 304
            for name in _BODY_HEADERS:
                if name in headers:
                    del headers[name]
            await self.send(start)
            await self.send({"type": "http.response.body", "body": b""})
            return
        await self.send(start)
        await self.send(message)


class CachingMiddleware:
    """Set ``Cache-Control``, ``Vary`` and per-representation ETags (see the module docstring)."""

    def __init__(self, app: ASGIApp, public_max_age: int = 60) -> None:
        """Wrap ``app``; anonymous API reads may be cached for ``public_max_age`` seconds."""
        self.app = app
        self.public_cache_control = f"public, max-age={public_max_age}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Decorate the response of an HTTP request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        decorating_send = _DecoratingSend(send, _Request.of(scope), self.public_cache_control)
        await self.app(scope, receive, decorating_send)
