"""Migrations: round trip, no drift between models and migrations, spatial indexes present."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text
from sqlmodel import SQLModel

from referral_net.db import migrate
from referral_net.db.engine import make_engine
from referral_net.settings import Settings
from tests.conftest import make_backend_settings, unavailable

pytestmark = pytest.mark.db


@pytest.fixture(params=["spatialite", "postgis"])
def fresh_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for an empty database, separate from the session's shared one."""
    backend = str(request.param)
    try:
        return make_backend_settings(backend, tmp_path, suffix="_migrations")
    except Exception as exc:
        unavailable(request, backend, exc)
        raise


def test_round_trip_upgrade_downgrade_upgrade(fresh_settings: Settings) -> None:
    engine = make_engine(fresh_settings)
    try:
        migrate.upgrade(fresh_settings)
        tables_after_first = set(inspect(engine).get_table_names())
        assert set(SQLModel.metadata.tables) <= tables_after_first

        migrate.downgrade(fresh_settings, "base")
        engine.dispose()
        remaining = set(inspect(engine).get_table_names()) & set(SQLModel.metadata.tables)
        assert remaining == set()
        assert migrate.current_revision(engine) is None

        migrate.upgrade(fresh_settings)
        engine.dispose()
        assert set(SQLModel.metadata.tables) <= set(inspect(engine).get_table_names())
        assert migrate.current_revision(engine) is not None
        assert migrate.schema_differences(engine) == []
    finally:
        engine.dispose()


def test_models_and_migrations_do_not_drift(engine: Engine) -> None:
    assert migrate.schema_differences(engine) == []


def test_location_point_has_a_spatial_index(engine: Engine) -> None:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            row = conn.execute(
                text(
                    "SELECT geometry_type, srid, spatial_index_enabled FROM geometry_columns"
                    " WHERE f_table_name = 'location' AND f_geometry_column = 'geom'"
                )
            ).one()
            assert tuple(row) == (1, 4326, 1)  # 1 = POINT, R*Tree enabled
        else:
            indexdefs = list(
                conn.execute(
                    text(
                        "SELECT indexdef FROM pg_indexes WHERE tablename = 'location'"
                        " AND indexdef ILIKE '%gist%'"
                    )
                ).scalars()
            )
            assert any(d.endswith("(geom)") for d in indexdefs)
            assert any(d.endswith("(public_geom)") for d in indexdefs)
            geom_type = conn.execute(
                text(
                    "SELECT type, srid FROM geometry_columns"
                    " WHERE f_table_name = 'location' AND f_geometry_column = 'geom'"
                )
            ).one()
            assert tuple(geom_type) == ("POINT", 4326)
