"""Engine construction for both backends.

SpatiaLite needs three things the machine's ``sqlite3`` module cannot give: a driver that may load
extensions (``sqlean.py``), the ``mod_spatialite`` extension on every connection, and SQLAlchemy's
documented pysqlite transaction fix so that SAVEPOINTs (used by per-test rollback and by nested
writes) really work.

Concurrent writers on SpatiaLite (docs/performance.md, "Concurrent writers"):

- WAL journal, so that readers and the one writer proceed together (in rollback-journal mode
  readers in other processes starve a writer waiting to commit);
- write transactions begin ``IMMEDIATE`` (:func:`write_session`): a deferred transaction that
  reads and then writes cannot upgrade its lock while another connection writes, and SQLite
  refuses that upgrade at once instead of waiting, whatever ``busy_timeout`` says; the re-read
  that shapes the response after the commit is an ordinary read again;
- within one process, write transactions take turns on a lock (:class:`_WriterTurns`) before
  asking SQLite, so a waiting writer is woken the moment the previous one ends instead of
  polling SQLite's busy handler (which sleeps up to 100 ms between tries and leaves the lock
  idle); only one writer per worker process then competes for SQLite's own lock;
- a connection goes back to the pool outside any transaction, even after a failed COMMIT (the
  pool's own reset is skipped when SQLAlchemy believes the transaction already ended);
- a lock not had within the busy timeout is :class:`DatabaseBusy` (a 503 with Retry-After).

The SQL statements themselves (PRAGMAs, ``BEGIN IMMEDIATE``, the version queries) are the
engines' own and live in ``db/dialect/``; this module decides when to run them.

Reads on PostgreSQL (:func:`read_session`) run in autocommit: each statement is its own
transaction, which at PostgreSQL's READ COMMITTED is what a statement inside a transaction sees
anyway (a new snapshot per statement), without the BEGIN and ROLLBACK round trips around it. A
read that must write (the audit entry of an exact read) goes through :func:`begin_write`, which
moves it into a transaction. SQLite keeps its read transaction: there it is one snapshot for
every statement of the request.

Read replicas (PostGIS only, ``database_read_url``; docs/deploy-replicas.md): a read request's
session is on the replica (:func:`replica_session`) until it writes (:func:`begin_write` moves
it to the primary); commits on the primary report the primary's WAL position
(:func:`on_primary_commit`), which a later read may wait for (:func:`replica_has_replayed`).
Those two position statements are PostgreSQL's streaming replication, with no SpatiaLite twin
to swap, so they live here rather than in ``db/dialect/``.
"""

from __future__ import annotations

import logging
import re
import select
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import psycopg
import sqlean
from psycopg.pq import TransactionStatus
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session

from referral_net.db import dialect
from referral_net.db.dialect import spatialite
from referral_net.errors import DatabaseBusy, is_lock_timeout_message
from referral_net.settings import Backend, Settings

logger = logging.getLogger("referral_net.db")

# Execution option that marks a write transaction (``BEGIN IMMEDIATE`` on SQLite).
WRITE_TRANSACTION = "referral_net_write"
# How often a waiting writer asks SQLite for the write lock (see _begin_immediate).
_LOCK_POLL_SECONDS = 0.001
# Key in a pooled connection's info: it holds its process's writer turn.
_HOLDS_WRITER_TURN = "referral_net_writer_turn"


class _WriterTurns:
    """One SQLite write transaction at a time per process, handed over without polling."""

    def __init__(self, timeout_seconds: float) -> None:
        self._lock = threading.Lock()
        self._timeout = timeout_seconds

    def take(self, connection_info: dict[Any, Any]) -> None:
        """Wait for this process's turn to write (bounded: then the database is busy)."""
        if not self._lock.acquire(timeout=self._timeout):
            raise DatabaseBusy()
        connection_info[_HOLDS_WRITER_TURN] = True

    def give_back(self, connection_info: dict[Any, Any]) -> None:
        """End the turn, if this connection holds it (commit, rollback or check-in)."""
        if connection_info.pop(_HOLDS_WRITER_TURN, False):
            self._lock.release()


# Session settings of every PostgreSQL connection (why: see make_engine).
PG_CONNECT_OPTIONS = (
    "-c max_parallel_workers_per_gather=0 -c plan_cache_mode=force_custom_plan -c jit=off"
)


def _overflow(settings: Settings, *, default: int) -> int:
    chosen = settings.database_max_overflow
    return default if chosen is None else chosen


def make_engine(settings: Settings) -> Engine:
    """Create the SQLAlchemy engine for the configured backend.

    JSON columns are read with orjson on both engines: a search or match decodes each result's
    pre-rendered document (``search_entry.doc``), and the standard library's decoder took about
    a tenth of a match's time (py-spy, docs/performance.md).
    """
    if settings.backend is Backend.SPATIALITE:
        return _make_spatialite_engine(settings)
    engine = create_engine(
        settings.database_url,
        echo=settings.sql_echo,
        # The pre-ping is ours (_replace_if_the_server_spoke), not SQLAlchemy's round trip.
        pool_pre_ping=False,
        pool_size=settings.database_pool_size,
        max_overflow=_overflow(settings, default=10),
        pool_timeout=settings.database_pool_timeout_seconds,
        # API queries are small and index-driven: starting parallel workers costs more (about
        # 10 ms measured in bench/) than it saves, so each connection plans serially. Custom
        # plans always: once psycopg prepares a statement, a generic plan cannot use the query
        # point for the KNN order (seconds at 1M rows, docs/performance.md). No JIT: a dense
        # window's cost estimate crosses jit_above_cost and compiling took over a second of a
        # 10 km radius query at 1M rows, for a query that runs in milliseconds.
        connect_args={"options": PG_CONNECT_OPTIONS},
        json_deserializer=orjson.loads,
    )

    if settings.database_pool_pre_ping:
        event.listen(engine, "checkout", _replace_if_the_server_spoke)

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # As on SQLite (below): a COMMIT that failed leaves the server inside the transaction
        # while SQLAlchemy skips the pool's reset; the next request would then fail.
        if dbapi_connection is not None and (
            dbapi_connection.info.transaction_status != TransactionStatus.IDLE
        ):
            dbapi_connection.rollback()

    return engine


def _replace_if_the_server_spoke(
    dbapi_connection: Any, _record: ConnectionPoolEntry, _proxy: Any
) -> None:
    """The pool's pre-ping, without a round trip: a connection leaving the pool is replaced when
    the server closed it or sent anything on it while it sat idle.

    A server that restarts, a terminated backend and an idle-session timeout all send a FATAL
    message and close the socket, so the socket is readable; a healthy idle connection has
    nothing to read (this service does not LISTEN). SQLAlchemy's ``pool_pre_ping`` sends a
    ``SELECT 1`` on every checkout instead: a round trip per request on the hot path
    (docs/performance.md). Raising ``DisconnectionError`` here makes the pool discard the
    connection and check out another (SQLAlchemy's documented checkout hook).
    """
    try:
        readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error) as exc:  # closed already: no descriptor
        raise DisconnectionError("connection closed while idle in the pool") from exc
    if readable:
        raise DisconnectionError("the server spoke on an idle connection (closed or restarted)")


def _make_spatialite_engine(settings: Settings) -> Engine:
    url = make_url(settings.database_url)
    busy_seconds = settings.sqlite_busy_timeout_ms / 1000
    engine = create_engine(
        url,
        module=sqlean,
        echo=settings.sql_echo,
        connect_args={"check_same_thread": False, "timeout": busy_seconds},
        # Readers under WAL run side by side; a pool that runs dry makes them wait 30 s and fail
        # (seen at 32 writers + 16 readers per 2 workers before api/write_turns.py).
        pool_size=settings.database_pool_size,
        max_overflow=_overflow(settings, default=20),
        pool_timeout=settings.database_pool_timeout_seconds,
        json_deserializer=orjson.loads,
    )
    library = settings.spatialite_library
    synchronous = settings.sqlite_synchronous
    mmap_bytes = settings.sqlite_mmap_size_mb * 1024 * 1024
    busy_ms = settings.sqlite_busy_timeout_ms
    turns = _WriterTurns(busy_seconds)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        spatialite.prepare_connection(
            dbapi_connection,
            library=library,
            busy_timeout_ms=busy_ms,
            synchronous=synchronous,
            mmap_bytes=mmap_bytes,
        )

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if not connection.get_execution_options().get(WRITE_TRANSACTION):
            spatialite.begin_deferred(connection)
            return
        turns.take(connection.info)
        try:
            _begin_immediate(connection.connection.dbapi_connection, busy_seconds)
        except BaseException:
            turns.give_back(connection.info)
            raise

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(connection: Connection) -> None:
        turns.give_back(connection.info)

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        # The pool skips its reset-on-return when SQLAlchemy thinks the transaction ended, but
        # a COMMIT that failed on a busy lock leaves SQLite inside it, holding the write lock:
        # every other connection would then time out. Ask SQLite itself, and roll back.
        if dbapi_connection is not None and dbapi_connection.in_transaction:
            dbapi_connection.rollback()
        turns.give_back(record.info)

    return engine


def _begin_immediate(dbapi_connection: Any, wait_seconds: float) -> None:
    """Take SQLite's write lock first, trying every millisecond until ``wait_seconds`` pass.

    Hand-written rather than SQLite's busy handler, which sleeps up to 100 ms between tries: the
    other worker process holds the lock for a few milliseconds at a time and hands it to its own
    next writer at once, so a writer sleeping 100 ms lost most races and waited seconds (writer
    p99 9.2 s at 16 writers, docs/performance.md). Only one thread per process tries at a time
    (the write turns). Nothing of the transaction has run yet, so trying again is safe; a lock
    not had in time is a :class:`DatabaseBusy` (503 with Retry-After).
    """
    spatialite.set_busy_timeout(dbapi_connection, 0)
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                spatialite.begin_immediate(dbapi_connection)
                return
            except sqlean.OperationalError as exc:
                if not is_lock_timeout_message(str(exc)):
                    raise
                if time.monotonic() >= deadline:
                    raise DatabaseBusy() from exc
                time.sleep(_LOCK_POLL_SECONDS)
    finally:
        spatialite.set_busy_timeout(dbapi_connection, int(wait_seconds * 1000))


# Key in a read session's info: the engine its writes move to (see begin_write).
_PRIMARY = "referral_net_primary"
_AUTOCOMMIT_VARIANT = "_referral_net_autocommit_variant"


def _autocommit(engine: Engine) -> Engine:
    """The engine's autocommit variant, made once per engine (making one per request costs more
    than the round trips it saves)."""
    variant: Engine | None = getattr(engine, _AUTOCOMMIT_VARIANT, None)
    if variant is None:
        variant = engine.execution_options(isolation_level="AUTOCOMMIT")
        setattr(engine, _AUTOCOMMIT_VARIANT, variant)
    return variant


def read_session(engine: Engine) -> Session:
    """A read request's session: on PostgreSQL in autocommit, on SQLite in one read transaction.

    PostgreSQL: a read request's statements need no transaction around them (see the module's
    docstring), and the BEGIN before and the ROLLBACK after were two of the hot path's four round
    trips. A write such a request makes after all goes through :func:`begin_write`, which moves
    the session into a transaction on ``engine``.
    """
    if engine.dialect.name != "postgresql":
        return Session(engine, expire_on_commit=False)
    session = Session(_autocommit(engine), expire_on_commit=False)
    session.info[_PRIMARY] = engine
    return session


def write_bind(engine: Engine) -> Engine:
    """The engine a write request's session binds to: on SQLite it begins ``IMMEDIATE``.

    PostgreSQL ignores the option (its row locks need no upfront lock).
    """
    return engine.execution_options(**{WRITE_TRANSACTION: True})


def write_session(engine: Engine) -> Session:
    """A write request's session: its first transaction takes the write lock up front.

    Once that transaction commits, the session binds to the plain engine again: the re-read that
    shapes the response needs no lock, and holding it then would only queue other writers.
    """
    session = Session(write_bind(engine), expire_on_commit=False)

    def _reads_from_now_on(committed: Session) -> None:
        committed.bind = engine

    event.listen(session, "after_commit", _reads_from_now_on, once=True)
    return session


@contextmanager
def read_before_write(session: Session) -> Iterator[None]:
    """Reads that precede a write request's own work (the caller's account), without the lock.

    In a write session they run in a plain transaction that ends with the block, so the write
    lock is taken by the endpoint's first statement and held, within one thread-pool call, only
    until its commit. Held from the caller look-up instead, it spanned the hops between the
    event loop and the thread pool, and readers filling the loop made every write slow
    (docs/performance.md). Elsewhere the block changes nothing.
    """
    if not session.get_bind().get_execution_options().get(WRITE_TRANSACTION):
        yield
        return
    session.connection(execution_options={WRITE_TRANSACTION: False})
    try:
        yield
    finally:
        session.rollback()


def begin_write(session: Session) -> None:
    """End a session's read transaction and begin a write transaction in its place.

    For a read that must write afterwards (the audit entry of an exact read): on SQLite a
    deferred read transaction cannot be upgraded while another connection writes, so it is
    ended first and the write begins ``IMMEDIATE``. Inside an outer transaction (tests), the
    commit releases a SAVEPOINT and the new one is nested, as before.
    """
    session.commit()
    primary = session.info.pop(_PRIMARY, None)
    if isinstance(primary, Engine):
        # A read session (read_session, replica_session): its statements ran in autocommit, on
        # the replica perhaps; the write (and every read that shapes it, such as the audit
        # tail) runs in a transaction on the primary from here on.
        session.bind = primary
    session.connection(execution_options={WRITE_TRANSACTION: True})


# --- Read replicas (PostGIS only; docs/deploy-replicas.md) -------------------------------------
# A WAL position as PostgreSQL prints a pg_lsn: two hexadecimal halves.
_LSN = re.compile(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}")
# How often a read waits between two looks at the replica's replay position.
_REPLAY_POLL_SECONDS = 0.005
# The primary's WAL insert position: at or past the commit record of every transaction that
# committed before it is read (pg_current_wal_lsn, the *written* position, may lag behind a
# commit made with synchronous_commit off).
_WAL_POSITION_SQL = text("SELECT pg_current_wal_insert_lsn()::text")
# Whether a server shows every commit up to a WAL position. A standby does once it has replayed
# that far (a snapshot taken afterwards sees those commits); a server that is not in recovery is
# a primary and shows all its own commits.
_REPLAYED_SQL = text(
    "SELECT NOT pg_is_in_recovery() OR coalesce(pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn),"
    " false)"
)


def make_read_engine(settings: Settings) -> Engine | None:
    """The engine of the read replica (``database_read_url``), or None when there is none.

    Same pool settings as the primary's, per worker process.
    """
    if settings.database_read_url is None:
        return None
    replica = settings.model_copy(
        update={"database_url": settings.database_read_url, "database_read_url": None}
    )
    return make_engine(replica)


def replica_session(replica: Engine, primary: Engine) -> Session:
    """A read request's session on the replica, in autocommit as :func:`read_session`; a write
    it makes (:func:`begin_write`, e.g. the audit entry of an exact read) moves to the primary."""
    session = Session(_autocommit(replica), expire_on_commit=False)
    session.info[_PRIMARY] = primary
    return session


def is_wal_position(value: str) -> bool:
    """Whether ``value`` is a WAL position as PostgreSQL prints it (``0/3000060``)."""
    return _LSN.fullmatch(value) is not None


def on_primary_commit(session: Session, primary: Engine, sink: Callable[[str], None]) -> None:
    """After each commit this session makes on the primary, hand the primary's WAL position to
    ``sink``: a replica that has replayed that far shows the write (read-your-writes).

    The position is read on a connection of its own: the session's has just committed and
    SQLAlchemy emits nothing more on it inside the commit. A position that cannot be read is
    logged and skipped: the write stands; the caller's next reads may then lag behind it.
    """

    def _after_commit(committed: Session) -> None:
        if _PRIMARY in committed.info:
            return  # still on the replica: a read-only transaction ended
        try:
            with primary.connect() as connection:
                position = connection.execute(_WAL_POSITION_SQL).scalar_one()
        except SQLAlchemyError as exc:
            logger.warning("could not read the primary's WAL position: %s", type(exc).__name__)
            return
        sink(str(position))

    event.listen(session, "after_commit", _after_commit)


def replica_has_replayed(session: Session, position: str, *, wait_seconds: float) -> bool:
    """Whether the session's server shows every commit up to ``position``, waiting for a replica
    to replay that far for at most ``wait_seconds`` (False: it did not in time).

    Runs in the session's own transaction: PostgreSQL's READ COMMITTED takes a new snapshot per
    statement, so the request's queries that follow see what was replayed.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        if session.connection().execute(_REPLAYED_SQL, {"lsn": position}).scalar_one():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_REPLAY_POLL_SECONDS)


def close_session(session: Session) -> None:
    """Close a request's session, which rolls back whatever it left open.

    This runs after the answer went out (a yield dependency's teardown), so a database that
    dropped the connection meanwhile (a restart) is no error of the request: its transaction
    ended with the connection, which the pool discards. Raised from here it would only be a
    logged "unhandled" error under an answer that already succeeded.
    """
    try:
        session.close()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        logger.warning("a request's connection was lost before it was closed")


def spatial_version(engine: Engine) -> str:
    """Return the version of the spatial extension the engine talks to."""
    with engine.connect() as connection:
        return dialect.spatial_version(connection)
