"""Shared FastAPI dependencies, as ``Annotated`` aliases.

Every dependency here is ``async def`` and sends only the database work it cannot avoid to the
thread pool: FastAPI runs each plain ``def`` dependency there, and each hop (a queue hand-off and
two thread switches under the GIL) cost about 0.1 ms of CPU, measured in-process; a public search
made six (docs/performance.md, "One thread hop and one round trip per read"). So the session is
opened without I/O, the public caller is known without I/O, and only a key, a token or a session
that touched the database costs a hop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractContextManager, asynccontextmanager
from typing import Annotated, TypeVar

import anyio
from fastapi import Depends, Request, Response
from fastapi.concurrency import contextmanager_in_threadpool, run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlmodel import Session

from referral_net.api import read_your_writes
from referral_net.db.engine import (
    close_session,
    on_primary_commit,
    read_before_write,
    read_session,
    replica_has_replayed,
    replica_session,
    write_session,
)
from referral_net.domain import audit, keys, users
from referral_net.errors import Forbidden, Unauthenticated
from referral_net.security import tokens
from referral_net.security.roles import Principal, Role
from referral_net.settings import Settings


async def get_settings(request: Request) -> Settings:
    """The settings the application was created with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(request: Request) -> Engine:
    """The engine created in the application's lifespan."""
    engine: Engine = request.app.state.engine
    return engine


# Methods whose requests only read. Every other request gets a write session (and, on SpatiaLite,
# waits for its process's write turn, api/write_turns.py), unless its endpoint is marked with
# @reads_only; the OpenAPI document documents a 409 on the others (api/openapi_document.py).
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_READS_ONLY_ATTRIBUTE = "__referral_net_reads_only__"
EndpointT = TypeVar("EndpointT", bound=Callable[..., object])


def reads_only(endpoint: EndpointT) -> EndpointT:
    """Mark a POST endpoint that only reads (matching), so it never queues behind writers."""
    setattr(endpoint, _READS_ONLY_ATTRIBUTE, True)
    return endpoint


def is_reads_only_endpoint(endpoint: object) -> bool:
    """Whether an endpoint was marked with :func:`reads_only`."""
    return bool(getattr(endpoint, _READS_ONLY_ATTRIBUTE, False))


def _is_write_request(request: Request) -> bool:
    if request.method in READ_METHODS:
        return False
    return not is_reads_only_endpoint(getattr(request.scope.get("route"), "endpoint", None))


def _replica_session(request: Request, replica: Engine, primary: Engine) -> Session:
    """A read's session: on the replica, unless it lags behind the caller's own last write for
    longer than the configured wait; then on the primary (see ``api/read_your_writes.py``)."""
    session = replica_session(replica, primary)
    position = read_your_writes.position_of(request)
    if position is None:
        return session
    settings: Settings = request.app.state.settings
    try:
        caught_up = replica_has_replayed(
            session, position, wait_seconds=settings.database_read_wait_seconds
        )
    except BaseException:
        session.close()
        raise
    if caught_up:
        return session
    session.close()
    return read_session(primary)


SessionSource = Callable[[], AbstractContextManager[Session]]


def session_source(app: object) -> SessionSource | None:
    """The session source a program embedding the application set on ``app.state``, if any.

    With one, every request's session comes from it instead of the engine: the tests run each
    request inside the test's transaction, rolled back after it. It is a field of ``app.state``
    and not a FastAPI dependency override because, while any override is set, FastAPI analyses
    every dependency of every request again (a simple request took twice as long in the test
    client).
    """
    source: SessionSource | None = getattr(getattr(app, "state", None), "session_source", None)
    return source


def _open_session(request: Request, engine: Engine) -> Session:
    """The request's session, by its kind (see :func:`get_session`); no I/O except a replica
    read that must first wait for the caller's own last write."""
    replica: Engine | None = getattr(request.app.state, "read_engine", None)
    if _is_write_request(request):
        opened = write_session(engine)
    elif replica is None:
        opened = read_session(engine)
    else:
        opened = _replica_session(request, replica, engine)
    if replica is not None:
        on_primary_commit(opened, engine, read_your_writes.recorder(request))
    return opened


async def _close(session: Session) -> None:
    """Close a request's session, in the thread pool only when it holds a connection.

    Shielded: a client that hangs up must not leave the connection checked out of the pool.
    """
    with anyio.CancelScope(shield=True):
        if session.in_transaction():
            await run_in_threadpool(close_session, session)
        else:
            close_session(session)  # no connection checked out: nothing to send


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session per request. Domain services commit explicitly; nothing commits here.

    A write request's transaction takes the write lock first (``BEGIN IMMEDIATE`` on SQLite,
    see ``db.engine``), because every write reads before it writes (the caller, the record).

    With a read replica (``REFERRAL_NET_DATABASE_READ_URL``), every request that only reads
    (GET, HEAD, OPTIONS and the :func:`reads_only` POSTs) is served by the replica; a write it
    makes after all (the audit entry of an exact read) moves to the primary (``db.engine``).
    Writes stay on the primary, and each commit there is reported for read-your-writes.

    Opening a session does no I/O (its connection is checked out by its first statement, in
    the endpoint's thread), so it happens here in the event loop; only a replica read that
    waits for the caller's last write goes to the thread pool.
    """
    engine: Engine = request.app.state.engine  # not get_engine: one dependency less to solve
    joined = session_source(request.app)
    if joined is not None:
        async with contextmanager_in_threadpool(joined()) as session:
            audit.use_key(session, request.app.state.settings.audit_key)
            yield session
        return
    if getattr(request.app.state, "read_engine", None) is not None and (
        read_your_writes.position_of(request) is not None
    ):
        opened = await run_in_threadpool(_open_session, request, engine)
    else:
        opened = _open_session(request, engine)
    try:
        # Audit entries appended through this session carry a MAC under the audit key.
        audit.use_key(opened, request.app.state.settings.audit_key)
        yield opened
    finally:
        await _close(opened)


async def in_one_hop(
    session: Session, work: Callable[[], Response], carried: Iterable[tuple[bytes, bytes]]
) -> Response:
    """Run a read endpoint's whole database work, answer included, in one thread-pool call,
    and give the session's connection back to the pool at the end of that same call.

    For the hot read paths: a plain ``def`` endpoint costs a hop for itself, one for its
    response model's validation and one for the session's close; ``work`` builds the finished
    ``Response`` instead, so the event loop only sends it. ``carried`` are raw headers to add
    to it, usually those set on the endpoint's injected response (match's ``Cache-Control``,
    ``Content-Language``), which FastAPI does not copy onto a returned ``Response`` (the
    ``RateLimit-*`` headers come from ``api.ratelimit.RateLimitHeadersMiddleware``).
    """

    def work_then_release() -> Response:
        try:
            return work()
        finally:
            close_session(session)

    answer = await run_in_threadpool(work_then_release)
    answer.headers.raw.extend(carried)
    return answer


# get_session for a route that declares no dependencies (api/hot_reads.py): ``async with``.
request_session = asynccontextmanager(get_session)

SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session)]


async def signing_key(request: Request) -> str:
    """The key that signs bearer tokens (set at start-up)."""
    key: str = request.app.state.signing_key
    return key


_bearer = HTTPBearer(auto_error=False, description="Staff access token from /api/v1/auth/token")
_api_key = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="Partner site key (read public data)"
)


def _principal_for_key(session: Session, raw_key: str) -> Principal:
    """The partner whose API key this is (401 when it is wrong or revoked)."""
    with read_before_write(session):
        return keys.principal_for_key(keys.authenticate_key(session=session, raw=raw_key))


def _principal_for_token(request: Request, session: Session, token: str) -> Principal:
    """The staff member whose access token this is (401 when it is invalid or outdated)."""
    try:
        claims = tokens.read_token(
            secret=request.app.state.signing_key, token=token, expected_kind="access"
        )
    except tokens.InvalidToken as exc:
        raise Unauthenticated(
            "Invalid or expired access token.", headers={"WWW-Authenticate": "Bearer"}
        ) from exc
    with read_before_write(session):
        user = users.current_user(
            session=session, user_id=claims.user_id, token_version=claims.token_version
        )
        if user is None:
            raise Unauthenticated(
                "Invalid or expired access token.", headers={"WWW-Authenticate": "Bearer"}
            )
        return users.principal_for(user)


async def get_principal(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    """Who is calling: staff with a bearer token, a partner with an API key, else the public;
    with their audit context (principal and route template) bound to the session.

    A bearer token wins over a key. A key that is presented but wrong or revoked is a 401, not
    a silent fall-back to the public: a partner whose key broke should find out at once. The
    public is known without the database, so only a token or a key costs a thread-pool hop.

    Every write and every exact read of a hidden site through this session is then audited with
    the caller's role and endpoint, e.g. ``PATCH /api/v1/locations/{location_id}`` (the template,
    never the concrete URL or its query string).
    """
    if credentials is not None:
        principal = await run_in_threadpool(
            _principal_for_token, request, session, credentials.credentials
        )
    elif api_key is not None:
        principal = await run_in_threadpool(_principal_for_key, session, api_key)
    else:
        principal = Principal.anonymous()
    route = request.scope.get("route")
    path = getattr(route, "path_format", None) or request.scope.get("path", "")
    audit.bind(
        session, audit.AuditContext(principal=principal, endpoint=f"{request.method} {path}")
    )
    return principal


async def principal_of(request: Request, session: Session) -> Principal:
    """:func:`get_principal` for a route that declares no dependencies (``api/hot_reads.py``):
    the same security schemes read the same headers."""
    return await get_principal(request, session, await _bearer(request), await _api_key(request))


def caller_security_requirements() -> list[dict[str, list[str]]]:
    """The OpenAPI security requirements ``PrincipalDep`` gives a route, as FastAPI writes them:
    a bearer token or an API key (or neither: the public)."""
    return [{_bearer.scheme_name: []}, {_api_key.scheme_name: []}]


# One dependency for the caller and their audit context: FastAPI solves a dependency's whole
# sub-tree again wherever it appears (the rate limit and the endpoint both need the caller),
# so a second layer around it was solved twice per request.
PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that admits only the given roles (401 for anonymous, 403 otherwise).

    ``async`` because it does no I/O: a plain function would cost a hop to the thread pool,
    and on SpatiaLite a write request holds the write lock across its hops.
    """
    allowed = frozenset(roles)

    async def _check(principal: PrincipalDep) -> Principal:
        if principal.role in allowed:
            return principal
        if principal.role is Role.PUBLIC:
            raise Unauthenticated("Log in to do this.", headers={"WWW-Authenticate": "Bearer"})
        raise Forbidden("Your role may not do this.")

    return _check
