"""The one exception tree of referral-net, its status table, and the problem+json handlers.

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
the traceback only with ``REFERRAL_NET_DEBUG_TRACEBACKS=true``. The outermost middleware
(``api/request_middleware.RequestContextMiddleware``) does this and keeps the exception from
Starlette and uvicorn, which would print the traceback anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from referral_net.request_context import current_request_id

PROBLEM_MEDIA_TYPE = "application/problem+json"
_TYPE_PREFIX = "urn:referral-net:problem:"

logger = logging.getLogger("referral_net.errors")


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


def problem_response(
    status: int,
    *,
    slug: str,
    title: str,
    detail: str,
    instance: str | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """Build an RFC 9457 problem+json response."""
    body: dict[str, Any] = {
        "type": _TYPE_PREFIX + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = list(errors)
    request_id = current_request_id()
    if status >= 500 and request_id is not None:
        body["request_id"] = request_id  # what an operator greps the log for
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


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


async def _handle_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ReferralNetError)
    status = status_for(exc)
    return problem_response(
        status,
        slug=exc.slug,
        title=exc.title,
        detail=exc.detail,
        instance=request.url.path,
        errors=exc.errors,
        headers=exc.headers,
    )


async def _handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc.errors())
    fields = ", ".join(e["field"] for e in errors) or "request"
    return problem_response(
        422,
        slug=InvalidInput.slug,
        title=InvalidInput.title,
        detail=f"Invalid values in: {fields}",
        instance=request.url.path,
        errors=errors,
    )


async def _handle_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    detail = exc.detail if isinstance(exc.detail, str) else phrase
    return problem_response(
        status,
        slug=phrase.lower().replace(" ", "-"),
        title=phrase,
        detail=detail,
        instance=request.url.path,
        headers=getattr(exc, "headers", None),
    )


def route_template(scope: Mapping[str, Any]) -> str:
    """The matched route's template (``/api/v1/locations/{location_id}``), never the URL."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(template) if template else "(no route)"


def log_unexpected(
    exc: BaseException, *, method: str, route: str, request_id: str | None, traceback: bool
) -> None:
    """Log an unexpected error as one line: class, route template and request id.

    The message is left out on purpose: driver errors carry SQL and bound values. The traceback
    (which holds them too) only when ``traceback`` is set (``REFERRAL_NET_DEBUG_TRACEBACKS``).
    """
    logger.error(
        "unhandled %s in %s %s request_id=%s",
        type(exc).__name__,
        method,
        route,
        request_id or "-",
        exc_info=exc if traceback else None,
    )


def internal_error_response(instance: str | None) -> JSONResponse:
    """The 500 problem of an unexpected error (with the request id, from the context)."""
    return problem_response(
        500,
        slug=ReferralNetError.slug,
        title=ReferralNetError.title,
        detail="An unexpected error occurred. It has been logged without request data.",
        instance=instance,
    )


async def _handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # A fallback: in the app, RequestContextMiddleware catches the error before Starlette's
    # ServerErrorMiddleware calls this (which then re-raises, so the server prints a traceback).
    settings = getattr(request.app.state, "settings", None)
    log_unexpected(
        exc,
        method=request.method,
        route=route_template(request.scope),
        request_id=current_request_id(),
        traceback=bool(getattr(settings, "debug_tracebacks", False)),
    )
    return internal_error_response(request.url.path)


async def _handle_integrity_error(request: Request, exc: Exception) -> JSONResponse:
    # A constraint the validation layer did not anticipate: the write is refused and rolled
    # back. Only the class is logged; the driver's message holds SQL and values.
    logger.warning("constraint violation on %s %s", request.method, request.url.path)
    return problem_response(
        409,
        slug=Conflict.slug,
        title=Conflict.title,
        detail="The request conflicts with existing data and was not applied.",
        instance=request.url.path,
    )


async def _handle_data_error(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("value refused by the database on %s %s", request.method, request.url.path)
    return problem_response(
        422,
        slug=InvalidInput.slug,
        title=InvalidInput.title,
        detail="A value is outside what the database accepts; nothing was written.",
        instance=request.url.path,
    )


# SQLite's messages for a lock it could not get in time (SQLITE_BUSY, SQLITE_LOCKED).
_LOCK_TIMEOUT_MESSAGES = ("database is locked", "database table is locked", "database is busy")


def is_lock_timeout_message(message: str) -> bool:
    """Whether a SQLite driver message says a lock was not had in time (retry, not a bug)."""
    return any(part in message for part in _LOCK_TIMEOUT_MESSAGES)


async def _handle_pool_timeout(request: Request, exc: Exception) -> JSONResponse:
    # Every pooled connection stayed busy for the pool's whole wait: overload, not a bug.
    logger.warning("connection pool exhausted on %s", route_template(request.scope))
    error = ServiceUnavailable(
        "The service is overloaded; try again shortly.", headers={"Retry-After": "2"}
    )
    return await _handle_domain_error(request, error)


async def _handle_operational_error(request: Request, exc: Exception) -> JSONResponse:
    # Busy or unreachable databases are the client's cue to retry (503), not bugs (500).
    assert isinstance(exc, OperationalError)
    if is_lock_timeout_message(str(exc.orig)):
        logger.warning("database busy on %s %s", request.method, route_template(request.scope))
        return await _handle_domain_error(request, DatabaseBusy())
    if exc.connection_invalidated:
        logger.warning("database unreachable on %s", route_template(request.scope))
        error = ServiceUnavailable(
            "The database is unreachable; try again shortly.", headers={"Retry-After": "5"}
        )
        return await _handle_domain_error(request, error)
    return await _handle_unexpected(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    """Register the problem+json handlers on the application."""
    app.add_exception_handler(ReferralNetError, _handle_domain_error)
    app.add_exception_handler(IntegrityError, _handle_integrity_error)
    app.add_exception_handler(DataError, _handle_data_error)
    app.add_exception_handler(OperationalError, _handle_operational_error)
    app.add_exception_handler(PoolTimeout, _handle_pool_timeout)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_error)
    app.add_exception_handler(Exception, _handle_unexpected)
