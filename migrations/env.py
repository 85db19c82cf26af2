"""Alembic environment shared by both backends.

The URL comes from the caller (``config.attributes["connection"]`` or ``["settings"]``, as the
CLI and the tests pass it) or else from the environment through ``Settings``. The engine is built
by referral-net's own factory so SpatiaLite is loaded exactly as the application loads it.
GeoAlchemy2's Alembic helpers render spatial columns and indexes; SQLite runs in batch mode.
"""

from __future__ import annotations

import logging

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import Connection
from sqlmodel import Session

from referral_net.db import models
from referral_net.db.engine import make_engine
from referral_net.db.migrate import include_object_on
from referral_net.settings import Settings

config = context.config
target_metadata = models.SQLModel.metadata
logger = logging.getLogger("referral_net.migrations")

# Set in config.attributes by a revision whose rows the search read model must be rebuilt from.
REBUILD_SEARCH_MODEL = "rebuild_search_model"


def _set_sqlite_foreign_keys(connection: Connection, *, on: bool) -> None:
    # PRAGMA foreign_keys is a no-op inside a transaction, and SQLAlchemy's execute() would
    # begin one (our engine emits BEGIN): set it on the driver connection, in autocommit.
    driver_connection = connection.connection.driver_connection
    assert driver_connection is not None
    driver_connection.execute(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")


def _check_sqlite_foreign_keys(connection: Connection) -> None:
    violations = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if violations:
        tables = sorted({str(row[0]) for row in violations})
        raise RuntimeError(f"migration left foreign key violations in: {', '.join(tables)}")


def _run(connection: Connection) -> None:
    # SQLite: with foreign keys on, DROP TABLE of a parent (a batch table copy, or a downgrade)
    # runs an implicit DELETE that cascades into the child tables: it wipes their rows, and
    # where a child has a SpatiaLite R*Tree index it fails with "database table is locked".
    # So foreign keys are off while migrating (Alembic's advice for batch mode) and checked
    # with PRAGMA foreign_key_check before the commit instead.
    sqlite = connection.dialect.name == "sqlite" and not connection.in_transaction()
    if sqlite:
        _set_sqlite_foreign_keys(connection, on=False)
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        include_object=include_object_on(connection.dialect.name),
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
        compare_type=True,
        # One transaction for the whole run: DDL is transactional on PostgreSQL and, with the
        # engine's pysqlite fix, on SQLite too (Alembic assumes it is not there, so say so). A
        # failing step leaves the database where it was, never half way to the target revision.
        transactional_ddl=True,
        transaction_per_migration=False,
    )
    try:
        with context.begin_transaction():
            context.run_migrations()
            _rebuild_search_model_if_asked(connection)
            if sqlite:
                _check_sqlite_foreign_keys(connection)
    finally:
        if sqlite and not connection.in_transaction():
            _set_sqlite_foreign_keys(connection, on=True)


def _rebuild_search_model_if_asked(connection: Connection) -> None:
    """Rebuild the search read model where a revision of this run asked for it.

    The rebuild is the application's own code, which reads and writes the newest schema: it runs
    once, after the last step and in the same transaction, only when the run has reached the
    head. A run that stops earlier says so; ``referral-net search rebuild`` (or the upgrade to
    the head) fills the model then.
    """
    if not config.attributes.pop(REBUILD_SEARCH_MODEL, False):
        return
    migration = context.get_context()
    heads = set(migration.script.get_heads()) if migration.script is not None else set()
    if set(migration.get_current_heads()) != heads:
        logger.warning("search read model not rebuilt: upgrade to the head to rebuild it")
        return
    from referral_net.domain import search_model  # noqa: PLC0415 - the domain, only when asked

    with Session(bind=connection) as session:
        search_model.rebuild(session)


def run_migrations_online() -> None:
    """Run migrations on a live connection."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    settings = config.attributes.get("settings") or Settings()
    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported: spatial DDL needs a live DB")
run_migrations_online()
