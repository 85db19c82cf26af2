"""A cap on request bodies, enforced at the ASGI layer before anything parses or authenticates.

Without it FastAPI reads and parses a JSON body before it resolves the dependencies that
authenticate the caller: an anonymous 50 MB array to ``/api/v1/match`` cost 2.5 s and about
330 MB of memory before its 401. Here a body larger than the cap is refused with a 413 problem:

- at once, without reading a byte of it, when ``Content-Length`` says it is too large;
- otherwise (chunked, or a ``Content-Length`` that lies) as soon as the bytes received pass the
  cap; the rest is never read, and whatever the application was doing is replaced by the 413.

The cap is ``REFERRAL_NET_MAX_BODY_BYTES`` (1 MiB by default). Routes that need more (bulk
imports) get their own cap by path prefix in ``overrides``; the longest matching prefix wins.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from referral_net.api.problems import problem_response
from referral_net.errors import ContentTooLarge

BODY_LIMIT_OVERRIDES: dict[str, int] = {}
"""Per-path-prefix caps above the default, e.g. ``{"/api/v1/imports": 64 * 1024 * 1024}``."""


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once the body passes the cap.

    An ``HTTPException`` because FastAPI re-raises those from its body reading (any other error
    there becomes a 400); the middleware answers the 413 itself either way.
    """

    def __init__(self, limit: int) -> None:
        """Remember the cap that was passed."""
        super().__init__(status_code=413, detail=_detail(limit))
        self.limit = limit


def _detail(limit: int) -> str:
    return f"The request body is larger than the {limit} bytes this endpoint accepts."


def _declares_more_than(scope: Scope, limit: int) -> bool:
    """True if the request's ``Content-Length`` announces a body larger than ``limit``."""
    declared = Headers(scope=scope).get("content-length")
    return declared is not None and declared.strip().isdigit() and int(declared) > limit


class _CountedBody:
    """The ``receive`` and ``send`` of one request whose body may hold at most ``limit`` bytes."""

    def __init__(self, receive: Receive, send: Send, limit: int) -> None:
        """Count what arrives through ``receive``; hold back what goes to ``send`` once over."""
        self._receive = receive
        self._send = send
        self.limit = limit
        self.received = 0
        self.exceeded = False
        self.started = False

    async def receive(self) -> Message:
        """The next message; BodyTooLarge once the body has passed the cap, and after."""
        if self.exceeded:  # never read past the cap
            raise BodyTooLarge(self.limit)
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.exceeded = True
                raise BodyTooLarge(self.limit)
        return message

    async def send(self, message: Message) -> None:
        """Pass a message on, unless the body passed the cap before the response started."""
        if self.exceeded and not self.started:
            return  # the application's own answer is replaced by the 413 of the middleware
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


class BodyLimitMiddleware:
    """Refuse request bodies over the cap with a 413 problem (see the module docstring)."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, overrides: Mapping[str, int] | None = None
    ) -> None:
        """Wrap ``app`` with a default cap of ``max_bytes`` and per-prefix ``overrides``."""
        self.app = app
        self.max_bytes = max_bytes
        # Longest prefix first, so that a specific route beats a general one.
        self.overrides = sorted((overrides or {}).items(), key=lambda kv: -len(kv[0]))

    def limit_for(self, path: str) -> int:
        """The cap that applies to ``path``."""
        for prefix, limit in self.overrides:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check ``Content-Length``, then count the body as it arrives."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        if _declares_more_than(scope, limit):
            await self._refuse(scope, receive, send, limit)
            return
        body = _CountedBody(receive, send, limit)
        try:
            await self.app(scope, body.receive, body.send)
        except BodyTooLarge:
            if body.started:
                return  # the response was under way before the body ran over; nothing to add
        if body.exceeded and not body.started:
            await self._refuse(scope, receive, send, limit)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem_response(
            413,
            slug=ContentTooLarge.slug,
            title=ContentTooLarge.title,
            detail=_detail(limit),
            instance=scope.get("path", ""),
            # The unread rest of the body makes the connection unusable for another request.
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)
