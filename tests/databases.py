"""Databases of their own for tests whose code commits for real (imports, round trips).

A migrated template is built once per test module and backend; each test gets a copy of it: a
file copy on SpatiaLite, ``CREATE DATABASE ... TEMPLATE`` on PostGIS (dropped at the end of the
run by conftest's ``pytest_sessionfinish``).
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlmodel import Session

from referral_net.db import migrate
from referral_net.db.engine import make_engine
from referral_net.domain import areas, taxonomy
from referral_net.settings import Settings
from tests.conftest import (
    _created_databases,
    _fresh_postgis_database,
    make_backend_settings,
    postgis_url,
    unavailable,
)

# For an application on its own engine in a test: no rate limits, and no background worker, whose
# thread may hold a pooled connection when the test disposes the engine (a psycopg connection
# collected unclosed is a ResourceWarning, an error in this suite).
QUIET_APP = {"rate_limits_enabled": False, "import_worker": False, "referral_webhook_worker": False}


def fresh_migrated(request: pytest.FixtureRequest, tmp_path: Path, *, suffix: str) -> Settings:
    """A new, migrated database of the backend the fixture's ``request.param`` names (an
    unavailable backend skips on a laptop and fails under CI, as everywhere)."""
    backend = str(request.param)
    try:
        settings = make_backend_settings(backend, tmp_path, suffix=suffix)
        migrate.upgrade(settings)
    except Exception as exc:
        unavailable(request, backend, exc)
        raise
    return settings


def migrated_template(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    *,
    name: str,
    with_taxonomy: bool,
) -> Settings:
    """A migrated database holding the administrative areas (and, ``with_taxonomy``, our own
    taxonomy): what a deployment holds before its directory is imported."""
    try:
        if backend == "spatialite":
            path = tmp_path_factory.mktemp(name) / "template.db"
            settings = Settings(database_url=f"sqlite:///{path}")
        else:
            url = f"{postgis_url()}_{name}"
            _fresh_postgis_database(url)
            settings = Settings(database_url=url)
        migrate.upgrade(settings)
    except Exception as exc:
        unavailable(request, backend, exc)
        raise
    engine = make_engine(settings)
    with Session(engine) as session:
        areas.load_areas(session=session)
        if with_taxonomy:
            taxonomy.load_taxonomy(session=session)
        session.commit()
    engine.dispose()
    return settings


def copy_of(original: Settings, folder: Path) -> Settings:
    """A new database copied from ``original`` (nobody may be connected to it on PostGIS)."""
    url = make_url(original.database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        target = folder / f"db-{uuid.uuid4().hex[:8]}.db"
        shutil.copyfile(url.database, target)
        return Settings(database_url=f"sqlite:///{target}")
    name = f"{url.database}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{url.database}"'))
    finally:
        admin.dispose()
    copy = url.set(database=name).render_as_string(hide_password=False)
    _created_databases.append(copy)
    return Settings(database_url=copy)
