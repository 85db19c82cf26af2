"""The request context of a hot read route, opened by one explicit call instead of a dependency
tree.

Other routes declare the session, the caller and the rate limit as FastAPI dependencies
(``api/deps.py``, ``api/ratelimit.py``). FastAPI solves a route's dependency tree again on every
request, and a search's had 15 nodes (the rate limit; the caller with its two security schemes;
the session; the known parameters; the parameters and their locale): about 0.19 ms of the
0.65 ms its request path cost outside the database, measured in-process (docs/performance.md).
A route marked :func:`explicit_context` declares none and opens :func:`rate_limited_caller`,
which calls the same functions in the order FastAPI called them, so its answers and refusals
are the same:

1. the session (``get_session``: a read session, no I/O);
2. the caller (``get_principal``: 401 for a bad token or key, the audit context bound);
3. the rate limit (``enforce_rate_limit``: 429 when spent);
4. the known parameters (``refuse_unknown_query``: 400 for a name the route does not read).

Its OpenAPI operation gets what FastAPI wrote from those dependencies (:func:`openapi_extra`),
and ``tests/test_rate_limits.py`` counts it among the limited routes by its mark.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel
from sqlmodel import Session

from referral_net.api.deps import caller_security_requirements, principal_of, request_session
from referral_net.api.i18n import accept_language_parameter
from referral_net.api.params import query_model_parameters, reads_query_model, refuse_unknown_query
from referral_net.api.ratelimit import enforce_rate_limit
from referral_net.security.roles import Principal

EndpointT = TypeVar("EndpointT", bound=Callable[..., object])

_EXPLICIT_ATTRIBUTE = "__referral_net_explicit_context__"


@dataclass(frozen=True)
class Caller:
    """Who asks, and the session the route reads through (its audit context bound)."""

    session: Session
    principal: Principal


def explicit_context(query_model: type[BaseModel]) -> Callable[[EndpointT], EndpointT]:
    """Mark an endpoint that opens :func:`rate_limited_caller` itself and reads its query string
    as ``query_model`` (so the unknown-parameter refusal knows the model's names)."""

    def mark(endpoint: EndpointT) -> EndpointT:
        setattr(endpoint, _EXPLICIT_ATTRIBUTE, True)
        return reads_query_model(query_model)(endpoint)

    return mark


def has_explicit_context(endpoint: object) -> bool:
    """Whether an endpoint was marked with :func:`explicit_context`."""
    return bool(getattr(endpoint, _EXPLICIT_ATTRIBUTE, False))


def openapi_extra(query_model: type[BaseModel]) -> dict[str, Any]:
    """The route's OpenAPI parameters and security, as FastAPI wrote them from the dependencies
    the route no longer declares: ``Accept-Language`` first, then the query model's fields."""
    return {
        "parameters": [accept_language_parameter(), *query_model_parameters(query_model)],
        "security": caller_security_requirements(),
    }


@asynccontextmanager
async def rate_limited_caller(request: Request) -> AsyncIterator[Caller]:
    """The session, the caller and the rate limit of one request, in FastAPI's order (see the
    module's docstring); the session is closed on the way out, whatever happens."""
    async with request_session(request) as session:
        principal = await principal_of(request, session)
        await enforce_rate_limit(request, principal)
        await refuse_unknown_query(request)
        yield Caller(session=session, principal=principal)
