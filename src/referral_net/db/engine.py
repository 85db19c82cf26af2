"""Engine construction for both backends.

SpatiaLite needs three things the machine's ``sqlite3`` module cannot give: a driver that may load
extensions (``sqlean.py``), the ``mod_spatialite`` extension on every connection, and SQLAlchemy's
documented pysqlite transaction fix so that SAVEPOINTs (used by per-test rollback and by nested
writes) really work.
"""

from __future__ import annotations

from typing import Any

import sqlean
from geoalchemy2.admin.dialects.sqlite import init_spatialite
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry

from referral_net.settings import Backend, Settings

# Session settings of every PostgreSQL connection (why: see make_engine).
PG_CONNECT_OPTIONS = (
    "-c max_parallel_workers_per_gather=0 -c plan_cache_mode=force_custom_plan -c jit=off"
)


def make_engine(settings: Settings) -> Engine:
    """Create the SQLAlchemy engine for the configured backend."""
    if settings.backend is Backend.SPATIALITE:
        return _make_spatialite_engine(settings)
    return create_engine(
        settings.database_url,
        echo=settings.sql_echo,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        # API queries are small and index-driven: starting parallel workers costs more (about
        # 10 ms measured in bench/) than it saves, so each connection plans serially. Custom
        # plans always: once psycopg prepares a statement, a generic plan cannot use the query
        # point for the KNN order (seconds at 1M rows, docs/performance.md). No JIT: a dense
        # window's cost estimate crosses jit_above_cost and compiling took over a second of a
        # 10 km radius query at 1M rows, for a query that runs in milliseconds.
        connect_args={"options": PG_CONNECT_OPTIONS},
    )


def _make_spatialite_engine(settings: Settings) -> Engine:
    url = make_url(settings.database_url)
    engine = create_engine(
        url,
        module=sqlean,
        echo=settings.sql_echo,
        connect_args={"check_same_thread": False, "timeout": 30},
    )
    library = settings.spatialite_library

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # pysqlite's own transaction handling emits no BEGIN before DDL and breaks SAVEPOINT;
        # disable it and let SQLAlchemy emit BEGIN (SQLAlchemy docs, "Serializable isolation /
        # Savepoints / Transactional DDL").
        dbapi_connection.isolation_level = None
        dbapi_connection.enable_load_extension(True)
        dbapi_connection.load_extension(library)
        dbapi_connection.enable_load_extension(False)
        dbapi_connection.execute("PRAGMA foreign_keys = ON")
        dbapi_connection.execute("PRAGMA busy_timeout = 30000")
        # WGS84-only metadata keeps a new file small and fast to create.
        init_spatialite(dbapi_connection, transaction=True, init_mode="WGS84")

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")

    return engine


def spatial_version(engine: Engine) -> str:
    """Return the version of the spatial extension the engine talks to."""
    query = (
        "SELECT spatialite_version()"
        if engine.dialect.name == "sqlite"
        else "SELECT postgis_lib_version()"
    )
    with engine.connect() as connection:
        return str(connection.execute(text(query)).scalar_one())
