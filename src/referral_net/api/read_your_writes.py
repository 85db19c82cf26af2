"""Read-your-writes when reads go to a replica (``REFERRAL_NET_DATABASE_READ_URL``).

A streaming replica replays the primary's WAL a little later (milliseconds on a LAN; longer
under load). Without care, a caseworker who saves a change and reloads the page could be served
the old record by the replica. The rule here is stateless, so any worker behind a load
balancer can apply it:

- after a request commits on the primary, its answer carries the primary's WAL position at that
  moment (at or past the commit), in the header :data:`HEADER` and a short-lived cookie
  :data:`COOKIE` (``HttpOnly``, ``SameSite=Lax``; a WAL position is not a secret, nor personal);
- a read that brings a position back (the header, else the cookie) waits until the replica has
  replayed that far, at most ``REFERRAL_NET_DATABASE_READ_WAIT_SECONDS``; if it has not by then,
  the primary answers instead (``api/deps.py``). Reads without a position go to the replica at
  once: other people's writes show up there after the replication lag.

Browsers and cookie-keeping clients (``httpx.Client``, ``requests.Session``) get this for free;
a client that keeps no cookies echoes the header. A made-up position only costs its sender the
wait and then a read on the primary.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from referral_net.db.engine import is_wal_position
from referral_net.settings import Settings

HEADER = "Referral-Net-LSN"
COOKIE = "referral_net_lsn"
# Long enough to cover a replica's usual lag many times over; after that the position is
# replayed everywhere and the cookie would only cost a look at the replica per read.
COOKIE_MAX_AGE_SECONDS = 60
# Key in the request's ASGI state (shared by the scope copies of one request).
_STATE_KEY = "referral_net_write_position"


def _state(scope: Scope) -> dict[str, Any]:
    state: dict[str, Any] = scope.setdefault("state", {})
    return state


def recorder(request: Request) -> Callable[[str], None]:
    """Where a session reports the primary's WAL position after each commit of this request."""
    state = _state(request.scope)

    def _record(position: str) -> None:
        state[_STATE_KEY] = position

    return _record


def position_of(request: Request) -> str | None:
    """The WAL position a read must see (its caller's last write), if it brought a valid one."""
    value = request.headers.get(HEADER) or request.cookies.get(COOKIE)
    if value is None or not is_wal_position(value.strip()):
        return None
    return value.strip()


class ReadYourWritesMiddleware:
    """Puts the primary's WAL position after a request's commit on its answer (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap the inner application."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call; add the header and cookie when the request committed."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = _state(scope)

        async def _send(message: Message) -> None:
            position = state.get(_STATE_KEY)
            if message["type"] == "http.response.start" and isinstance(position, str):
                cookie = (
                    f"{COOKIE}={position}; Max-Age={COOKIE_MAX_AGE_SECONDS}; Path=/; HttpOnly;"
                    " SameSite=Lax"
                )
                headers = list(message.get("headers", []))
                headers.append((HEADER.lower().encode("latin-1"), position.encode("latin-1")))
                headers.append((b"set-cookie", cookie.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, _send)


def install(app: FastAPI, settings: Settings) -> None:
    """Add :class:`ReadYourWritesMiddleware` when reads go to a replica (else nothing to do)."""
    if settings.database_read_url is not None:
        app.add_middleware(ReadYourWritesMiddleware)
