"""Concurrent writers and readers against a served app (2 worker processes), on both backends.

The embedded default once supported one writer: a second got a 500 ("database is locked").
Here several writers and readers run at once for a few seconds. No answer may be a 5xx (a busy
database is a 503, which would fail this too: the writes must get the lock within the wait),
every acknowledged write must be in the database afterwards, the audit chain must verify, and
no reader may wait longer than the busy timeout. Throughput is measured in bench/write_load.py,
not here.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from referral_net.db import migrate
from referral_net.db.engine import make_engine
from referral_net.db.models import Organization
from referral_net.domain import audit, users
from referral_net.security.roles import Role
from tests.conftest import make_backend_settings, unavailable
from tests.served import served

pytestmark = pytest.mark.db

WRITERS = 8
READERS = 4
SECONDS = 4.0
BUSY_TIMEOUT_MS = 5_000
PASSWORD = "concurrency test password 42"


@pytest.fixture(params=["spatialite", "postgis"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """A migrated database of each backend with a steward account, and its engine."""
    backend = str(request.param)
    try:
        settings = make_backend_settings(backend, tmp_path, suffix="_concurrency")
        migrate.upgrade(settings)
    except Exception as exc:
        unavailable(request, backend, exc)
        raise
    engine = make_engine(settings)
    with Session(engine) as session:
        users.create_user(
            session=session, username="steward-load", password=PASSWORD, role=Role.STEWARD
        )
    yield settings.database_url, engine
    engine.dispose()


def test_concurrent_writers_and_readers(  # noqa: PLR0915 - one end-to-end scenario, in order
    database: tuple[str, Engine], tmp_path: Path
) -> None:
    url, engine = database
    env = {"REFERRAL_NET_SQLITE_BUSY_TIMEOUT_MS": str(BUSY_TIMEOUT_MS)}
    with served(url, workers=2, env=env, log=tmp_path / "server.log") as base:
        token = httpx.post(
            f"{base}/api/v1/auth/token",
            data={"username": "steward-load", "password": PASSWORD},
            timeout=30,
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        org = httpx.post(
            f"{base}/api/v1/organizations", json={"name": "Load org"}, headers=auth, timeout=30
        )
        assert org.status_code == 201, org.text
        service = httpx.post(
            f"{base}/api/v1/services",
            json={"organization_id": org.json()["id"], "name": "Load shelter"},
            headers=auth,
            timeout=30,
        )
        assert service.status_code == 201, service.text
        capacity_url = f"{base}/api/v1/services/{service.json()['id']}/capacity"

        statuses: Counter[int] = Counter()
        acknowledged: list[uuid.UUID] = []
        reader_waits: list[float] = []
        lock = threading.Lock()
        stop_at = time.monotonic() + SECONDS

        def writer(number: int) -> None:
            with httpx.Client(base_url=base, headers=auth, timeout=60) as client:
                step = 0
                while time.monotonic() < stop_at:
                    step += 1
                    if step % 2:
                        answer = client.post(
                            "/api/v1/organizations", json={"name": f"W{number}-{step} (ejemplo)"}
                        )
                    else:
                        body = {
                            "capacity": [{"unit": "bed", "available": step % 99, "maximum": 99}]
                        }
                        answer = client.put(capacity_url, json=body)
                    with lock:
                        statuses[answer.status_code] += 1
                        if answer.status_code == 201:
                            acknowledged.append(uuid.UUID(answer.json()["id"]))

        def reader() -> None:
            with httpx.Client(base_url=base, timeout=60) as client:
                step = 0
                while time.monotonic() < stop_at:
                    step += 1
                    path = (
                        "/api/v1/organizations?per_page=5"
                        if step % 2
                        else "/api/v1/search?near=14.8347,-91.5181&limit=10"
                    )
                    started = time.monotonic()
                    answer = client.get(path)
                    waited = time.monotonic() - started
                    with lock:
                        statuses[answer.status_code] += 1
                        reader_waits.append(waited)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
        threads += [threading.Thread(target=reader) for _ in range(READERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

    server_errors = {code: n for code, n in statuses.items() if code >= 500}
    assert not server_errors, f"5xx answers under concurrent writes: {dict(statuses)}"
    assert set(statuses) <= {200, 201}, dict(statuses)
    assert len(acknowledged) >= WRITERS, dict(statuses)  # every writer got writes through
    assert reader_waits
    assert max(reader_waits) < BUSY_TIMEOUT_MS / 1000, max(reader_waits)

    with Session(engine) as session:
        stored = set(
            session.exec(select(Organization.id).where(col(Organization.id).in_(acknowledged)))
        )
        assert stored == set(acknowledged), f"{len(set(acknowledged) - stored)} acknowledged lost"
        report = audit.verify(session=session)
        assert report.ok, report.reason
