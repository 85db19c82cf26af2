"""Migrations: round trip, no drift between models and migrations, spatial indexes present."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, SQLModel

from referral_net.db import migrate
from referral_net.db.engine import make_engine
from referral_net.domain import areas, seed
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


def _sample_slice(tmp_path: Path) -> Path:
    """A slice of the sample network: the organizations of its first services with service
    areas and of its first confidential sites, with all their locations, services and links.

    Loading the whole sample takes about 20 s on SpatiaLite; the slice holds every kind of row
    that a downgrade must get past (service areas with an R*Tree, links, hidden sites).
    """
    data: dict[str, Any] = json.loads(seed.default_path().read_text(encoding="utf-8"))
    with_areas = [s["organization_id"] for s in data["services"] if s.get("service_areas")]
    hidden = [loc["organization_id"] for loc in data["locations"] if loc["visibility"] != "public"]
    chosen = set(with_areas[:2]) | set(hidden[:2])
    locations = [loc for loc in data["locations"] if loc["organization_id"] in chosen]
    services = [svc for svc in data["services"] if svc["organization_id"] in chosen]
    location_ids = {loc["id"] for loc in locations}
    service_ids = {svc["id"] for svc in services}
    sliced = {
        "organizations": [o for o in data["organizations"] if o["id"] in chosen],
        "locations": locations,
        "services": services,
        "service_at_locations": [
            link
            for link in data["service_at_locations"]
            if link["location_id"] in location_ids and link["service_id"] in service_ids
        ],
    }
    path = tmp_path / "sample_slice.json"
    path.write_text(json.dumps(sliced), encoding="utf-8")
    return path


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_downgrade_to_base_with_the_sample_network_is_whole_or_nothing(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    """Issue 10 #15: a downgrade of a populated database failed half way on SpatiaLite."""
    migrate.upgrade(fresh_settings)
    engine = make_engine(fresh_settings)
    try:
        with Session(engine) as session:
            areas.load_areas(session=session)
            seed.load_sample(session=session, path=_sample_slice(tmp_path))
        head = migrate.current_revision(engine)
        held = {t: _count(engine, t) for t in ("service_area", "service_at_location", "phone")}
        assert all(held.values()), held

        # A table the migrations do not know, pointing at an organization, makes the last step
        # (dropping organization) fail: every step before it must be undone with it.
        uuid_type = "CHAR(32)" if engine.dialect.name == "sqlite" else "UUID"
        with engine.begin() as conn:
            conn.execute(
                text(
                    "CREATE TABLE operator_note (id INTEGER PRIMARY KEY,"
                    f" organization_id {uuid_type} REFERENCES organization (id))"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO operator_note (id, organization_id)"
                    " SELECT 1, id FROM organization LIMIT 1"
                )
            )
        with pytest.raises((SQLAlchemyError, RuntimeError)):
            migrate.downgrade(fresh_settings, "base")
        engine.dispose()
        assert migrate.current_revision(engine) == head
        assert {t: _count(engine, t) for t in held} == held
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE operator_note"))
        assert migrate.schema_differences(engine) == []

        migrate.downgrade(fresh_settings, "base")
        engine.dispose()
        assert set(inspect(engine).get_table_names()) & set(SQLModel.metadata.tables) == set()
        assert migrate.current_revision(engine) is None

        migrate.upgrade(fresh_settings)
        engine.dispose()
        assert migrate.current_revision(engine) == head
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
