"""The connection pool follows its settings on both backends, and an exhausted pool is a 503
problem with Retry-After after the configured wait, never a 500 (issue 18: configurable pooling
with pre-ping)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import NullPool, QueuePool, create_engine, event, text

from referral_net.db.engine import _replace_if_the_server_spoke, make_engine
from referral_net.main import create_app
from referral_net.settings import Settings
from tests.databases import QUIET_APP, fresh_migrated

pytestmark = pytest.mark.db


@pytest.fixture(params=["spatialite", "postgis"])
def migrated(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A migrated database of each backend."""
    return fresh_migrated(request, tmp_path, suffix="_pool")


def test_the_pool_takes_its_settings(migrated: Settings) -> None:
    chosen = migrated.model_copy(
        update={
            "database_pool_size": 3,
            "database_max_overflow": 4,
            "database_pool_timeout_seconds": 7.5,
            "database_pool_pre_ping": False,
        }
    )
    engine = make_engine(chosen)
    try:
        pool = engine.pool
        assert isinstance(pool, QueuePool)
        assert pool.size() == 3
        assert pool._max_overflow == 4
        assert pool.timeout() == 7.5
        assert not event.contains(engine, "checkout", _replace_if_the_server_spoke)
    finally:
        engine.dispose()
    default = make_engine(migrated)
    try:
        pool = default.pool
        assert isinstance(pool, QueuePool)
        assert pool.size() == 10
        expected_overflow = 20 if migrated.database_url.startswith("sqlite") else 10
        assert pool._max_overflow == expected_overflow
        postgis = not migrated.database_url.startswith("sqlite")
        assert event.contains(default, "checkout", _replace_if_the_server_spoke) is postgis
    finally:
        default.dispose()


def test_an_exhausted_pool_is_a_503_after_the_configured_wait(migrated: Settings) -> None:
    tight = migrated.model_copy(
        update={
            **QUIET_APP,
            "database_pool_size": 1,
            "database_max_overflow": 0,
            "database_pool_timeout_seconds": 0.5,
        }
    )
    with TestClient(create_app(tight), raise_server_exceptions=False) as client:
        engine = client.app.state.engine  # type: ignore[attr-defined]
        with engine.connect() as held:  # the pool's only connection
            held.execute(text("SELECT 1"))
            started = time.monotonic()
            answer = client.get("/api/v1/organizations")
            waited = time.monotonic() - started
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.headers["retry-after"] == "2"
        assert waited >= 0.5
        # The connection back in the pool, the same request succeeds.
        assert client.get("/api/v1/organizations").status_code == 200


def _terminate_the_pool_connections(database_url: str) -> int:
    """End every other server process on the test's database, as a restart would; how many."""
    admin = create_engine(database_url, poolclass=NullPool)
    try:
        with admin.connect() as connection:
            ended = connection.execute(
                text(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM"
                    " pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
    finally:
        admin.dispose()
    time.sleep(0.2)  # the FATAL message and the close reach the pooled sockets
    return int(ended)


# The organizations list reads through SQLAlchemy Core; a nearest search's statement goes to
# psycopg's cursor itself on PostGIS (db.dialect.postgis.read_rows), which must fail the same way.
READS = ["/api/v1/organizations", "/api/v1/search?near=14.8347,-91.5181&limit=5"]


@pytest.mark.parametrize("path", READS)
@pytest.mark.parametrize("pre_ping", [True, False])
def test_a_connection_the_server_dropped_while_idle_costs_no_failed_request(
    migrated: Settings, pre_ping: bool, path: str
) -> None:
    # The pool's pre-ping without a round trip (db.engine._replace_if_the_server_spoke): the
    # server process of the pooled connection is terminated while it sits idle, and the next
    # request still succeeds; with the pre-ping off, that request is the one that fails (a 503,
    # never a 500), and the pool replaces the dropped connection. SpatiaLite has no server to
    # drop a connection: there the requests only show that nothing is in the way.
    settings = migrated.model_copy(update={**QUIET_APP, "database_pool_pre_ping": pre_ping})
    postgis = migrated.database_url.startswith("postgresql")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert client.get(path).status_code == 200
        if postgis:
            assert _terminate_the_pool_connections(migrated.database_url) >= 1
        first = client.get(path)
        then = [client.get(path).status_code for _ in range(3)]
    assert first.status_code == (200 if pre_ping or not postgis else 503)
    if first.status_code == 503:
        assert first.headers["content-type"] == "application/problem+json"
        assert first.headers["retry-after"] == "5"
    assert then == [200, 200, 200]


@pytest.mark.parametrize(
    ("megabytes", "expected"), [(None, 1024 * 1024 * 1024), (0, 0), (64, 64 << 20)]
)
def test_spatialite_reads_through_the_memory_map_its_setting_asks_for(
    tmp_path: Path, megabytes: int | None, expected: int
) -> None:
    """SpatiaLite only: PostGIS has no such setting (its server caches pages itself)."""
    chosen = {} if megabytes is None else {"sqlite_mmap_size_mb": megabytes}
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'mapped.db'}", **chosen)
    engine = make_engine(settings)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA mmap_size").scalar() == expected
    finally:
        engine.dispose()
