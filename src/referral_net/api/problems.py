"""problem+json responses (RFC 9457) for every error, and their registration on the app.

The exception tree and its statuses live in ``referral_net.errors``, below the domain; this module
is the web side of it. Messages never carry SQL, stack traces, non-public coordinates or personal
data: see ``errors.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from referral_net.errors import (
    Conflict,
    DatabaseBusy,
    InvalidInput,
    ReferralNetError,
    ServiceUnavailable,
    is_lock_timeout_message,
    status_for,
    validation_errors,
)
from referral_net.request_context import current_request_id

PROBLEM_MEDIA_TYPE = "application/problem+json"
_TYPE_PREFIX = "urn:referral-net:problem:"

logger = logging.getLogger("referral_net.errors")


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


async def _handle_pool_timeout(request: Request, exc: Exception) -> JSONResponse:
    # Every pooled connection stayed busy for the pool's whole wait: overload, not a bug.
    logger.warning("connection pool exhausted on %s", route_template(request.scope))
    error = ServiceUnavailable(
        "The service is overloaded; try again shortly.", headers={"Retry-After": "2"}
    )
    return await _handle_domain_error(request, error)


# PostgreSQL SQLSTATEs of a server going away or not there yet: 57P01 admin shutdown (a fast
# stop or restart ends each session), 57P02 crash shutdown, 57P03 cannot connect now (starting
# up or shutting down). Class 08 is a connection exception.
_SERVER_GONE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})
# Statements PostgreSQL cancelled, to be tried again: 40001, which a hot standby raises when
# replaying the primary's changes cancels a query that reads them ("conflict with recovery"),
# and 40P01, a deadlock.
_TRY_AGAIN_SQLSTATES = frozenset({"40001", "40P01"})
# SQLite's SQLITE_CANTOPEN: the database file cannot be opened.
_SQLITE_CANTOPEN = 14


def database_unreachable(exc: DBAPIError) -> bool:
    """Whether a driver error means the database server cannot be reached (a 503, not a bug).

    A connection SQLAlchemy invalidated was lost mid-request. A connection that could not even
    be made (the server is down: "connection refused") is not marked so: psycopg raises it with
    no SQLSTATE. On SQLite, only a database file that cannot be opened counts.
    """
    if exc.connection_invalidated:
        return True
    sqlite_code = getattr(exc.orig, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        # The database file cannot be opened (a missing volume, say); extended codes keep the
        # primary code in the low byte.
        return sqlite_code & 0xFF == _SQLITE_CANTOPEN
    if not hasattr(exc.orig, "sqlstate"):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in _SERVER_GONE_SQLSTATES


async def _handle_operational_error(request: Request, exc: Exception) -> JSONResponse:
    # Busy or unreachable databases are the client's cue to retry (503), not bugs (500).
    assert isinstance(exc, DBAPIError)
    if is_lock_timeout_message(str(exc.orig)):
        logger.warning("database busy on %s %s", request.method, route_template(request.scope))
        return await _handle_domain_error(request, DatabaseBusy())
    if database_unreachable(exc):
        logger.warning("database unreachable on %s", route_template(request.scope))
        error = ServiceUnavailable(
            "The database is unreachable; try again shortly.", headers={"Retry-After": "5"}
        )
        return await _handle_domain_error(request, error)
    if getattr(exc.orig, "sqlstate", None) in _TRY_AGAIN_SQLSTATES:
        logger.warning("statement cancelled by the database on %s", route_template(request.scope))
        error = ServiceUnavailable(
            "The database cancelled this request; try again.", headers={"Retry-After": "1"}
        )
        return await _handle_domain_error(request, error)
    return await _handle_unexpected(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    """Register the problem+json handlers on the application."""
    app.add_exception_handler(ReferralNetError, _handle_domain_error)
    app.add_exception_handler(IntegrityError, _handle_integrity_error)
    app.add_exception_handler(DataError, _handle_data_error)
    app.add_exception_handler(OperationalError, _handle_operational_error)
    # A connection closed under the driver ("the connection is closed") is an InterfaceError.
    app.add_exception_handler(InterfaceError, _handle_operational_error)
    app.add_exception_handler(PoolTimeout, _handle_pool_timeout)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_error)
    app.add_exception_handler(Exception, _handle_unexpected)
