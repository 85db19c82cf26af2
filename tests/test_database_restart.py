"""Faults: the database goes away and comes back (issue 18, "Faults").

- An unreachable database is a 503 problem+json with ``Retry-After``, never a 500 with a trace,
  and ``/ready`` says not ready (both backends: a PostgreSQL server that does not answer, a
  SpatiaLite file that cannot be opened).
- A PostgreSQL restart under load: the real server (``referral-net serve``, 2 workers) runs on a
  throwaway cluster (``tests/pg_cluster.py``; the shared server on 5432 is never touched) while
  threads read, write and probe ``/ready``. The cluster is restarted (``pg_ctl restart -m fast``),
  then stopped (``-m fast``) and held down for a few seconds, then started again. While it is
  down every answer is a 503 problem; from 5 s after it is back every answer is a success;
  every write acknowledged with a 201 is in the database, checked row by row, and every
  organization there is whole (its phone, its history rows, its one audit entry).
- A write interrupted mid-transaction leaves nothing: the write runs through the domain, with
  every row flushed, and its commit never comes (PostGIS: the server stops under it; SpatiaLite:
  the writing process dies).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import psycopg
import psycopg.errors
import pytest
import sqlean
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, func, select

from referral_net.db import migrate
from referral_net.db.engine import make_engine, write_session
from referral_net.db.models import AuditEntry, Metadata, Organization, Phone
from referral_net.domain import audit, organizations, users
from referral_net.main import create_app
from referral_net.schemas.directory import OrganizationCreate
from referral_net.security import tokens
from referral_net.security.roles import Principal, Role
from referral_net.settings import Settings
from tests.conftest import make_backend_settings, unavailable
from tests.factories import make_user, organization_body
from tests.pg_cluster import Cluster, cluster_root, running, start_primary
from tests.served import REPO, TEST_SECRET_KEY, free_port, served

pytestmark = pytest.mark.db

DATABASE = "referral_net_restart"
WRITERS = 3
READERS = 3
# Every answer sent this long after the database is back must succeed.
RECOVERY_SECONDS = 5.0
DOWN_SECONDS = 3.0
PHONE = "+50255550199"  # E.164, as stored


def _is_problem_503(response: httpx.Response) -> bool:
    return (
        response.status_code == 503
        and response.headers.get("content-type", "").startswith("application/problem+json")
        and response.json().get("status") == 503
        and "Retry-After" in response.headers
        and "Traceback" not in response.text
    )


def test_an_unreachable_database_is_a_503_problem(backend: str, tmp_path: Path) -> None:
    if backend == "spatialite":
        url = f"sqlite:///{tmp_path / 'no-such-directory' / 'directory.db'}"
    else:  # a loopback port nothing listens on once free_port's probe socket is closed
        url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/referral_net"
    settings = Settings(
        database_url=url,
        rate_limits_enabled=False,
        import_worker=False,
        referral_webhook_worker=False,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        answers = [
            client.get("/ready"),
            client.get("/api/v1/organizations"),
            client.get("/api/v1/search", params={"near": "14.8347,-91.5181"}),
            client.post("/api/v1/auth/token", data={"username": "ana", "password": "x" * 12}),
        ]
        assert client.get("/health").status_code == 200  # liveness touches no database
    for answer in answers:
        assert _is_problem_503(answer), (answer.status_code, answer.text)


# Driver errors as psycopg and sqlean raise them, and the status each must become.
DRIVER_ERRORS: dict[str, tuple[Exception, int]] = {
    "server down (connection refused)": (psycopg.OperationalError("connection failed"), 503),
    "server stopping (admin shutdown)": (psycopg.errors.AdminShutdown("terminating"), 503),
    "server starting up": (psycopg.errors.CannotConnectNow("starting up"), 503),
    "replica replay conflict": (psycopg.errors.SerializationFailure("conflict with recovery"), 503),
    "deadlock": (psycopg.errors.DeadlockDetected("deadlock detected"), 503),
    "a bug (undefined table)": (psycopg.errors.UndefinedTable("no such relation"), 500),
    "sqlite bug (no such table)": (sqlean.OperationalError("no such table: x"), 500),
}


@pytest.mark.parametrize("case", sorted(DRIVER_ERRORS))
def test_driver_errors_become_503_only_when_trying_again_can_help(
    case: str, tmp_path: Path
) -> None:
    error, status = DRIVER_ERRORS[case]
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'unused.db'}",
        import_worker=False,
        referral_webhook_worker=False,
    )
    app = create_app(settings)

    @app.get("/fault")
    def fault() -> None:
        raise OperationalError("SELECT 1", {}, error)

    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/fault")
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "Traceback" not in answer.text
    assert "SELECT" not in answer.text  # no SQL in an answer
    if status == 503:
        assert "Retry-After" in answer.headers


@dataclass
class Answer:
    """One request of the load: when it was sent and answered, what, and the outcome."""

    kind: str  # "read", "write" or "ready"
    sent: float
    done: float
    status: int  # -1: no HTTP answer at all (a transport error)
    problem_503: bool


@dataclass
class Migrated:
    """A throwaway cluster with a migrated database and a steward's access token."""

    cluster: Cluster
    url: str
    engine: Engine
    token: str


@pytest.fixture(scope="module")
def migrated(request: pytest.FixtureRequest) -> Iterator[Migrated]:
    """A migrated PostGIS database on a throwaway cluster this module may stop and restart."""
    with cluster_root() as root:
        try:  # server binaries of the running major, and its PostGIS (scripts/test)
            cluster, url = start_primary(root, DATABASE)
        except Exception as exc:
            unavailable(request, "postgis", exc)
            raise
        with running(cluster, started=True):
            migrate.upgrade(Settings(database_url=url))
            engine = make_engine(Settings(database_url=url))
            with Session(engine, expire_on_commit=False) as session:
                steward = make_user(session, Role.STEWARD)
            token = tokens.issue_token(
                secret=TEST_SECRET_KEY,
                user_id=steward.id,
                kind="access",
                token_version=steward.token_version,
                lifetime=timedelta(minutes=30),
            )
            try:
                yield Migrated(cluster, url, engine, token)
            finally:
                engine.dispose()


class Load:
    """Writer, reader and readiness threads against a served app, recording every answer."""

    def __init__(self, base: str, token: str) -> None:
        """Prepare the load against ``base`` with a steward's bearer ``token``."""
        self.base = base
        self.auth = {"Authorization": f"Bearer {token}"}
        self.answers: list[Answer] = []
        self.acknowledged: dict[uuid.UUID, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._writer, args=(n,)) for n in range(WRITERS)]
        self._threads += [threading.Thread(target=self._reader, args=(n,)) for n in range(READERS)]
        self._threads.append(threading.Thread(target=self._prober))

    def start(self) -> None:
        """Start every thread."""
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop every thread and wait for it."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)

    def _call(self, client: httpx.Client, kind: str, method: str, path: str, **kw: Any) -> None:
        sent = time.monotonic()
        try:
            response: httpx.Response | None = client.request(method, path, **kw)
        except httpx.HTTPError:
            response = None
        answer = Answer(
            kind=kind,
            sent=sent,
            done=time.monotonic(),
            status=-1 if response is None else response.status_code,
            problem_503=response is not None and _is_problem_503(response),
        )
        with self._lock:
            self.answers.append(answer)
            if response is not None and kind == "write" and response.status_code == 201:
                self.acknowledged[uuid.UUID(response.json()["id"])] = response.json()["name"]

    def _writer(self, number: int) -> None:
        with httpx.Client(base_url=self.base, headers=self.auth, timeout=60) as client:
            step = 0
            while not self._stop.is_set():
                step += 1
                body = organization_body(
                    name=f"Reinicio {number}-{step} (ejemplo)",
                    phones=[{"number": PHONE, "type": "voice"}],
                )
                self._call(client, "write", "POST", "/api/v1/organizations", json=body)

    def _reader(self, number: int) -> None:
        paths = ("/api/v1/organizations?per_page=5", "/api/v1/search?near=14.8347,-91.5181")
        with httpx.Client(base_url=self.base, headers=self.auth, timeout=60) as client:
            step = number
            while not self._stop.is_set():
                step += 1
                self._call(client, "read", "GET", paths[step % 2])

    def _prober(self) -> None:
        with httpx.Client(base_url=self.base, timeout=60) as client:
            while not self._stop.is_set():
                self._call(client, "ready", "GET", "/ready")
                time.sleep(0.05)


def test_a_database_restart_under_load(migrated: Migrated, tmp_path: Path) -> None:
    cluster = migrated.cluster
    log = tmp_path / "server.log"
    with served(migrated.url, workers=2, log=log) as base:
        load = Load(base, migrated.token)
        load.start()
        try:
            time.sleep(1.5)
            cluster.restart("fast")  # every pooled connection dies under the workers
            time.sleep(2.0)
            cluster.stop("fast")
            down_from = time.monotonic()
            time.sleep(DOWN_SECONDS)
            down_until = time.monotonic()
            cluster.start()  # returns once the server accepts connections
            back_at = time.monotonic()
            time.sleep(RECOVERY_SECONDS + 3.0)
        finally:
            load.stop()
            if not cluster.is_up():
                cluster.start()
    answers, acknowledged = load.answers, load.acknowledged
    server_log = log.read_text(errors="replace")

    statuses = sorted({a.status for a in answers})
    assert set(statuses) <= {200, 201, 503}, f"unexpected answers {statuses}:\n{server_log[-3000:]}"
    assert all(a.problem_503 for a in answers if a.status == 503), "a 503 that is no problem+json"
    assert "unhandled" not in server_log, server_log[-3000:]

    # While the database was down, every answer (reads, writes, readiness) was a 503 problem.
    down = [a for a in answers if a.sent >= down_from and a.done <= down_until]
    assert {a.kind for a in down} == {"read", "write", "ready"}, len(down)
    assert all(a.status == 503 for a in down), sorted({a.status for a in down})

    # From RECOVERY_SECONDS after it was back, every answer was a success.
    recovered = [a for a in answers if a.sent >= back_at + RECOVERY_SECONDS]
    assert {a.kind for a in recovered} == {"read", "write", "ready"}, len(recovered)
    assert all(a.status in (200, 201) for a in recovered), sorted({a.status for a in recovered})

    # Every acknowledged write is there, row by row; every organization there is whole.
    assert len(acknowledged) > WRITERS
    with Session(migrated.engine) as session:
        stored = {
            row.id: row
            for row in session.exec(
                select(Organization).where(col(Organization.name).startswith("Reinicio "))
            )
        }
        for organization_id, name in acknowledged.items():
            assert organization_id in stored, f"acknowledged write {organization_id} is missing"
            assert stored[organization_id].name == name
        _assert_whole(session, set(stored))
        assert audit.verify(session=session).ok


def _assert_whole(session: Session, organization_ids: set[uuid.UUID]) -> None:
    """Each organization has its phone, its history and one create entry; no entry is orphaned."""
    for organization_id in organization_ids:
        phones = session.exec(
            select(Phone.number).where(col(Phone.organization_id) == organization_id)
        ).all()
        assert phones == [PHONE], f"organization {organization_id} has phones {phones}"
        history = session.exec(
            select(func.count()).where(col(Metadata.resource_id) == organization_id)
        ).one()
        assert history > 0, f"organization {organization_id} has no history"
    created = session.exec(
        select(AuditEntry.resource_id).where(
            col(AuditEntry.resource_type) == organizations.RESOURCE,
            col(AuditEntry.action) == "create",
        )
    ).all()
    entries = [uuid.UUID(str(resource_id)) for resource_id in created]
    assert len(entries) == len(set(entries)), "an organization with two create entries"
    known = set(session.exec(select(Organization.id)).all())
    assert set(entries) <= known, "an audit entry for an organization that is not there"
    assert organization_ids <= set(entries), "an organization without its audit entry"


def _steward(session: Session) -> Principal:
    return users.principal_for(make_user(session, Role.STEWARD))


def test_a_write_interrupted_by_a_server_stop_leaves_nothing(migrated: Migrated) -> None:
    engine = make_engine(Settings(database_url=migrated.url))
    with Session(engine, expire_on_commit=False) as session:
        principal = _steward(session)
    session = write_session(engine)
    flushed = threading.Event()
    real_commit = session.commit

    def stop_before_commit() -> None:
        # Every row of the write is flushed: the organization, its phone, its history rows and
        # its audit entry. The server stops before the commit can reach it.
        flushed.set()
        migrated.cluster.stop("fast")
        real_commit()

    session.commit = stop_before_commit  # type: ignore[method-assign]
    data = OrganizationCreate.model_validate(
        organization_body(name="Interrumpida (ejemplo)", phones=[{"number": PHONE}])
    )
    try:
        with pytest.raises(OperationalError):
            organizations.create(session=session, principal=principal, data=data)
        assert flushed.is_set()
    finally:
        session.close()
        engine.dispose()
        migrated.cluster.start()
    _assert_nothing_of(migrated.engine, "Interrumpida (ejemplo)")


def _assert_nothing_of(engine: Engine, name: str) -> None:
    with Session(engine) as session:
        assert not session.exec(select(Organization).where(col(Organization.name) == name)).all()
        orphans = session.exec(
            select(func.count()).where(
                col(Phone.organization_id).is_not(None),
                col(Phone.organization_id).not_in(select(Organization.id)),
            )
        ).one()
        assert orphans == 0
        _assert_whole(session, set(session.exec(select(Organization.id)).all()) - _plain(session))
        assert audit.verify(session=session).ok


def _plain(session: Session) -> set[uuid.UUID]:
    """Organizations made without phones by fixtures (directly, not through the API)."""
    with_phone = select(Phone.organization_id).where(col(Phone.organization_id).is_not(None))
    return set(session.exec(select(Organization.id).where(col(Organization.id).not_in(with_phone))))


# The SpatiaLite variant runs in a child process that dies (os._exit) where the commit would be.
_DYING_WRITER = textwrap.dedent(
    """
    import os, sys
    from sqlmodel import Session
    from referral_net.db.engine import make_engine, write_session
    from referral_net.db.models import UserAccount
    from referral_net.domain import organizations, users
    from referral_net.schemas.directory import OrganizationCreate
    from referral_net.settings import Settings

    engine = make_engine(Settings(database_url=sys.argv[1]))
    with Session(engine) as session:
        user = session.get_one(UserAccount, __import__("uuid").UUID(sys.argv[2]))
        principal = users.principal_for(user)
    session = write_session(engine)
    session.commit = lambda: os._exit(17)
    data = OrganizationCreate.model_validate(
        {"name": "Interrumpida (ejemplo)", "phones": [{"number": sys.argv[3]}]}
    )
    organizations.create(session=session, principal=principal, data=data)
    """
)


def test_a_write_whose_process_dies_mid_transaction_leaves_nothing(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    try:
        settings = make_backend_settings("spatialite", tmp_path, suffix="_dying")
        migrate.upgrade(settings)
    except Exception as exc:
        unavailable(request, "spatialite", exc)
        raise
    engine = make_engine(settings)
    try:
        with Session(engine, expire_on_commit=False) as session:
            principal = _steward(session)
        result = subprocess.run(  # the checkout's interpreter, a fixed script
            [
                sys.executable,
                "-c",
                _DYING_WRITER,
                settings.database_url,
                str(principal.user_id),
                PHONE,
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 17, result.stderr[-3000:]
        _assert_nothing_of(engine, "Interrumpida (ejemplo)")
    finally:
        engine.dispose()
