"""Run Alembic migrations from code (the CLI and the tests use this, never ``create_all``)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from geoalchemy2 import alembic_helpers
from sqlalchemy import Connection, Engine
from sqlmodel import SQLModel

import referral_net.db.models  # noqa: F401 - registers the tables on SQLModel.metadata
from referral_net.resources import resource_path
from referral_net.settings import Settings

# Tables and virtual tables SpatiaLite creates for itself; they are not ours to migrate.
_SPATIALITE_OWN_TABLES = frozenset(
    {
        "spatial_ref_sys",
        "spatial_ref_sys_aux",
        "spatialite_history",
        "sql_statements_log",
        "data_licenses",
        "geometry_columns",
        "geometry_columns_auth",
        "geometry_columns_field_infos",
        "geometry_columns_statistics",
        "geometry_columns_time",
        "views_geometry_columns",
        "views_geometry_columns_auth",
        "views_geometry_columns_field_infos",
        "views_geometry_columns_statistics",
        "virts_geometry_columns",
        "virts_geometry_columns_auth",
        "virts_geometry_columns_field_infos",
        "virts_geometry_columns_statistics",
        "ElementaryGeometries",
        "SpatialIndex",
        "KNN",
        "KNN2",
    }
)


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Tell autogenerate to ignore the spatial engines' own tables and indexes."""
    engine_owned = name is not None and (
        name in _SPATIALITE_OWN_TABLES or name.startswith(("idx_", "sqlite_"))
    )
    if type_ == "table" and reflected and compare_to is None and engine_owned:
        return False
    return bool(alembic_helpers.include_object(obj, name, type_, reflected, compare_to))  # type: ignore[no-untyped-call]


def include_object_on(dialect_name: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """``include_object`` for one engine: the models' objects made on other engines only (their
    ``info["engines"]``, such as PostGIS's GIN indexes of the search read model) are left out."""

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        engines = None if reflected else getattr(obj, "info", {}).get("engines")
        if engines is not None and dialect_name not in engines:
            return False
        return include_object(obj, name, type_, reflected, compare_to)

    return include


def alembic_config(settings: Settings, connection: Connection | None = None) -> Config:
    """Build an Alembic config pointing at this project's migrations (packaged or checkout).

    Upgrading, downgrading and reading the head need only the script location, so no
    ``alembic.ini`` is read: that file serves developers' ``alembic revision`` in the checkout,
    and the wheel does not carry it.
    """
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["settings"] = settings
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Migrate the database up to ``revision``."""
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str = "-1") -> None:
    """Migrate the database down to ``revision`` (one step by default)."""
    command.downgrade(alembic_config(settings), revision)


def current_revision(engine: Engine) -> str | None:
    """Return the revision the database is at, or None for an empty database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


# PostGIS-only expression indexes (``info["engines"]``): Alembic's SQLite comparison warns that it
# skips them before ``include_object`` leaves them out; there is nothing to compare on SQLite.
_SKIPPED_ON_SQLITE = (
    r"autogenerate skipping metadata-specified expression-based index"
    r" 'ix_search_entry_(public|exact)_(count_window|nearest)'; dialect 'sqlite'"
)


def schema_differences(engine: Engine) -> list[Any]:
    """Compare the live schema with the models; an empty list means they agree."""
    with engine.connect() as connection, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_SKIPPED_ON_SQLITE, category=UserWarning)
        context = MigrationContext.configure(
            connection,
            opts={
                "include_object": include_object_on(connection.dialect.name),
                "compare_type": True,
            },
        )
        return list(compare_metadata(context, SQLModel.metadata))


def migrations_dir() -> Path:
    """The Alembic script folder (``env.py`` and ``versions/``): the copy shipped in the wheel,
    else ``migrations/`` of the source checkout."""
    return resource_path("migrations")
