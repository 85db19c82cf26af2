"""Connection hygiene and the busy answer, on a real database file/server (not a rolled-back test
transaction): a connection left in a failed state must not poison the pool, and on SpatiaLite a
write lock that cannot be had is a 503 with Retry-After, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlean
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session

from referral_net.db.engine import WRITE_TRANSACTION
from referral_net.main import create_app
from referral_net.security.roles import Role
from referral_net.settings import Settings
from tests.databases import QUIET_APP, fresh_migrated
from tests.factories import bearer, make_user

pytestmark = pytest.mark.db

BUSY_MS = 300


@pytest.fixture(params=["spatialite", "postgis"])
def served_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A migrated database of each backend, with a short busy timeout."""
    settings = fresh_migrated(request, tmp_path, suffix="_locking")
    return settings.model_copy(update={**QUIET_APP, "sqlite_busy_timeout_ms": BUSY_MS})


@pytest.fixture
def client(served_settings: Settings) -> Iterator[TestClient]:
    """A client of an app with its own engine and pool (no test transaction around it)."""
    with TestClient(create_app(served_settings), raise_server_exceptions=False) as test_client:
        yield test_client


def _steward(client: TestClient) -> dict[str, str]:
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    with Session(engine, expire_on_commit=False) as session:
        user = make_user(session, Role.STEWARD)
    return bearer(client.app, user)  # type: ignore[arg-type]


def test_a_connection_whose_commit_failed_does_not_poison_the_pool(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = _steward(client)
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    with engine.begin() as setup:
        setup.execute(text("CREATE TABLE hygiene_probe (x INTEGER)"))
    engine.dispose()
    # One pooled connection begins a write and its COMMIT fails, as a COMMIT that timed out on
    # a busy lock does: SQLAlchemy considers the transaction over, the database does not.
    with engine.connect().execution_options(**{WRITE_TRANSACTION: True}) as conn:
        conn.begin()
        conn.execute(text("INSERT INTO hygiene_probe VALUES (1)"))

        def failing_commit(_dbapi_connection: Any) -> None:
            raise sqlean.OperationalError("database is locked")

        monkeypatch.setattr(engine.dialect, "do_commit", failing_commit)
        with pytest.raises(Exception, match="database is locked"):
            conn.commit()
        monkeypatch.undo()
    # Back in the pool: the next write requests work, on that connection or any other.
    for number in range(3):
        answer = client.post(
            "/api/v1/organizations", json={"name": f"After {number}"}, headers=headers
        )
        assert answer.status_code == 201, answer.text
    with engine.connect() as conn:
        # The failed write was rolled back, not committed later by someone else's COMMIT.
        assert conn.execute(text("SELECT count(*) FROM hygiene_probe")).scalar_one() == 0


def test_a_held_write_lock_is_a_503_with_retry_after_then_the_retry_succeeds(
    client: TestClient, served_settings: Settings
) -> None:
    if not served_settings.database_url.startswith("sqlite"):
        # PostgreSQL has no database-wide write lock: a concurrent writer never blocks a write
        # to another row, so there is nothing to time out (the concurrent-writer test covers it).
        answer = client.post("/api/v1/organizations", json={"name": "x"}, headers=_steward(client))
        assert answer.status_code == 201
        return
    headers = _steward(client)
    path = served_settings.database_url.removeprefix("sqlite:///")
    holder = sqlean.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds SQLite's write lock
    try:
        answer = client.post("/api/v1/organizations", json={"name": "Busy"}, headers=headers)
        assert answer.status_code == 503
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.headers["retry-after"] == "1"
        assert answer.json()["type"].endswith(":database-busy")
        # Reads go on while the lock is held (WAL).
        assert client.get("/api/v1/organizations").status_code == 200
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    retried = client.post("/api/v1/organizations", json={"name": "Busy"}, headers=headers)
    assert retried.status_code == 201, retried.text
    listed = client.get("/api/v1/organizations", params={"per_page": 100}).json()
    assert [o["name"] for o in listed["contents"]].count("Busy") == 1  # the 503 wrote nothing
