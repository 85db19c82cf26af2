"""The one exception tree of referral-net and its status table (no web framework here).

Every error leaves the API as RFC 9457 ``application/problem+json``::

    ReferralNetError                 500  (never raised directly)
    ├── BadRequest                   400  a query that makes no sense
    ├── InvalidInput                 422  a well-formed request with invalid values
    ├── Unauthenticated              401  no or bad credentials
    ├── Forbidden                    403  known caller, not allowed
    ├── NotFound                     404  absent, or not the caller's to know about
    ├── Conflict                     409  clashes with the current state
    ├── PreconditionFailed           412  stale If-Match
    ├── ContentTooLarge              413  request body over the cap (api/body_limit.py)
    ├── PreconditionRequired         428  a conditional request was required
    ├── RateLimited                  429  too many requests (carries Retry-After)
    └── ServiceUnavailable           503  a dependency (the database) is down
        └── DatabaseBusy             503  SQLite's write lock not had in time (Retry-After)

A database constraint violation (``IntegrityError``) that validation did not catch first becomes
a 409 too, with a generic message; a value the database refuses (``DataError``) a 422.
Anything else unexpected is a 500 (and a bug).

Messages are written for the caller and must never carry SQL, stack traces, coordinates of
non-public locations or personal data. An unexpected error is logged as one line: its class,
the route template and the request id (``X-Request-ID``, also in the body of every 5xx problem);
the traceback only with ``REFERRAL_NET_DEBUG_TRACEBACKS=true``. ``api/problems.py`` turns
these into responses; the outermost middleware
(``api/request_middleware.RequestContextMiddleware``) does the logging and keeps the exception from
Starlette and uvicorn, which would print the traceback anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class ReferralNetError(Exception):
    """Base of every error the API reports on purpose."""

    slug = "internal-error"
    title = "Internal server error"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Keep the problem's ``detail``, its per-field ``errors`` and extra response headers."""
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors) if errors else None
        self.headers = dict(headers) if headers else {}


class BadRequest(ReferralNetError):
    """The request makes no sense (conflicting or impossible parameters)."""

    slug = "bad-request"
    title = "Bad request"


class InvalidInput(ReferralNetError):
    """One or more values failed validation."""

    slug = "validation-error"
    title = "Invalid input"


class Unauthenticated(ReferralNetError):
    """Missing or invalid credentials."""

    slug = "unauthenticated"
    title = "Authentication required"


class Forbidden(ReferralNetError):
    """The caller is known but may not do this."""

    slug = "forbidden"
    title = "Forbidden"


class NotFound(ReferralNetError):
    """The resource does not exist, or is not the caller's to know about."""

    slug = "not-found"
    title = "Not found"


class Conflict(ReferralNetError):
    """The request clashes with the current state of the resource."""

    slug = "conflict"
    title = "Conflict"


class PreconditionFailed(ReferralNetError):
    """``If-Match`` named a version that is no longer current."""

    slug = "precondition-failed"
    title = "Precondition failed"


class ContentTooLarge(ReferralNetError):
    """The request body is larger than the route accepts."""

    slug = "content-too-large"
    title = "Content too large"


class PreconditionRequired(ReferralNetError):
    """The write must be conditional on the current version."""

    slug = "precondition-required"
    title = "Precondition required"


class RateLimited(ReferralNetError):
    """Too many requests; retry after the given number of seconds."""

    slug = "rate-limited"
    title = "Too many requests"


class ServiceUnavailable(ReferralNetError):
    """A dependency, usually the database, is not reachable."""

    slug = "service-unavailable"
    title = "Service unavailable"


class DatabaseBusy(ServiceUnavailable):
    """The embedded database's write lock could not be had in time; try again shortly."""

    slug = "database-busy"
    title = "Database busy"

    def __init__(self, detail: str = "The database is busy with other writes; try again.") -> None:
        """Ask the client, through ``Retry-After``, to try again in one second."""
        super().__init__(detail, headers={"Retry-After": "1"})


STATUS_BY_ERROR: dict[type[ReferralNetError], int] = {
    ReferralNetError: 500,
    BadRequest: 400,
    InvalidInput: 422,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PreconditionFailed: 412,
    ContentTooLarge: 413,
    PreconditionRequired: 428,
    RateLimited: 429,
    ServiceUnavailable: 503,
}


def status_for(error: ReferralNetError) -> int:
    """Look up the HTTP status of an error through its class hierarchy."""
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def validation_errors(raw: Sequence[Any]) -> list[dict[str, Any]]:
    """Turn Pydantic errors into ``{field, message, type}``, dropping the input values.

    The rejected input is left out on purpose: it may be a victim's location or a confidential
    value, and problem bodies end up in logs.
    """
    out: list[dict[str, Any]] = []
    for err in raw:
        loc = [str(part) for part in err.get("loc", ())]
        out.append(
            {
                "field": ".".join(loc),
                "location": loc[0] if loc else None,
                "message": str(err.get("msg", "invalid value")),
                "type": str(err.get("type", "value_error")),
            }
        )
    return out


# SQLite's messages for a lock it could not get in time (SQLITE_BUSY, SQLITE_LOCKED).
_LOCK_TIMEOUT_MESSAGES = ("database is locked", "database table is locked", "database is busy")


def is_lock_timeout_message(message: str) -> bool:
    """Whether a SQLite driver message says a lock was not had in time (retry, not a bug)."""
    return any(part in message for part in _LOCK_TIMEOUT_MESSAGES)
