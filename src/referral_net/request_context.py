"""The id of the request being served, for logs and problem bodies.

``api/request_middleware.RequestContextMiddleware`` sets it for each HTTP request; anything that
runs inside the request (handlers, ``api.problems.problem_response``, log lines) reads it here.
It lives in its own module, importing nothing, so that any layer can use it.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar, Token

REQUEST_ID_HEADER = "X-Request-ID"

# What a client or a proxy may hand in as its own id: short, and harmless in a log line
# (no spaces, quotes or control characters that could forge or split a record).
_ACCEPTED_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{7,63}")

_request_id: ContextVar[str | None] = ContextVar("referral_net_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being served, or ``None`` outside a request."""
    return _request_id.get()


def set_request_id(value: str | None) -> Token[str | None]:
    """Make ``value`` the current request id; returns a token for :func:`reset_request_id`."""
    return _request_id.set(value)


def reset_request_id(token: Token[str | None]) -> None:
    """Restore the request id that was current before :func:`set_request_id`."""
    _request_id.reset(token)


def accept_or_new_request_id(offered: str | None) -> str:
    """The client's ``X-Request-ID`` if it matches the strict pattern, else a fresh random id."""
    if offered is not None and _ACCEPTED_ID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex
