"""Alembic environment shared by both backends.

The URL comes from the caller (``config.attributes["connection"]`` or ``["settings"]``, as the
CLI and the tests pass it) or else from the environment through ``Settings``. The engine is built
by referral-net's own factory so SpatiaLite is loaded exactly as the application loads it.
GeoAlchemy2's Alembic helpers render spatial columns and indexes; SQLite runs in batch mode.
"""

from __future__ import annotations

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import Connection

from referral_net.db import models
from referral_net.db.engine import make_engine
from referral_net.db.migrate import include_object
from referral_net.settings import Settings

config = context.config
target_metadata = models.SQLModel.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        include_object=include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
        compare_type=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


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
