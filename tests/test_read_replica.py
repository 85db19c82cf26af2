"""Reads on a streaming replica, writes on the primary (``REFERRAL_NET_DATABASE_READ_URL``).

A real replica: a throwaway primary cluster (``tests/pg_cluster.py``) is migrated, copied with
``pg_basebackup -R`` and the copy started on another loopback port, streaming from it. The app
runs with the primary as ``DATABASE_URL`` and the replica as ``DATABASE_READ_URL``. To prove which
server answers a read, the replica's replay is paused (``pg_wal_replay_pause()``): a write made
after that is on the primary only, so a read served by the replica cannot see it.

SpatiaLite has no replicas: there the setting is refused at start-up (the first test, on both
backends).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from referral_net.api.read_your_writes import COOKIE, HEADER
from referral_net.db import migrate
from referral_net.db.engine import make_engine
from referral_net.db.models import AuditEntry, UserAccount
from referral_net.domain import audit, taxonomy
from referral_net.main import create_app
from referral_net.security.roles import Role
from referral_net.settings import Settings
from tests.conftest import unavailable
from tests.factories import (
    QUETZALTENANGO,
    bearer,
    location_body,
    make_organization,
    make_user,
    service_body,
)
from tests.pg_cluster import (
    Cluster,
    base_backup_replica,
    cluster_root,
    running,
    start_primary,
    wait_for_replay,
)
from tests.served import TEST_SECRET_KEY

pytestmark = pytest.mark.db

DATABASE = "referral_net_replica"
# Short, so that a read waiting for a paused replica falls back to the primary quickly.
READ_WAIT_SECONDS = 0.5


@dataclass
class Replicated:
    """A primary and its streaming replica, with the migrated database and a steward on both."""

    primary: Cluster
    replica: Cluster
    settings: Settings
    primary_engine: Engine
    steward_id: uuid.UUID
    organization_id: uuid.UUID


@pytest.fixture(scope="module")
def replicated(request: pytest.FixtureRequest) -> Iterator[Replicated]:
    """Primary + replica clusters on loopback for this module; thrown away at its end."""
    with cluster_root() as root:
        try:  # server binaries of the running major, and its PostGIS (scripts/test)
            primary, primary_url = start_primary(root, DATABASE)
        except Exception as exc:
            unavailable(request, "postgis", exc)
            raise
        with running(primary, started=True):
            migrate.upgrade(Settings(database_url=primary_url))
            engine = make_engine(Settings(database_url=primary_url))
            with Session(engine, expire_on_commit=False) as session:
                taxonomy.load_taxonomy(session=session)
                steward = make_user(session, Role.STEWARD)
                organization = make_organization(session)
            replica = base_backup_replica(primary, root)
            with running(replica):
                wait_for_replay(primary, replica)
                settings = Settings(
                    database_url=primary_url,
                    database_read_url=replica.url(DATABASE),
                    database_read_wait_seconds=READ_WAIT_SECONDS,
                    secret_key=TEST_SECRET_KEY,
                    rate_limits_enabled=False,
                    import_worker=False,
                    referral_webhook_worker=False,
                )
                try:
                    yield Replicated(
                        primary, replica, settings, engine, steward.id, organization.id
                    )
                finally:
                    engine.dispose()


@pytest.fixture
def client(replicated: Replicated) -> Iterator[TestClient]:
    """The app on primary + replica; replay runs again (and has caught up) after each test."""
    with TestClient(create_app(replicated.settings), raise_server_exceptions=False) as client:
        yield client
    replicated.replica.execute("SELECT pg_wal_replay_resume()")
    wait_for_replay(replicated.primary, replicated.replica)


def _steward(client: TestClient, replicated: Replicated) -> dict[str, str]:
    with Session(replicated.primary_engine) as session:
        user = session.get_one(UserAccount, replicated.steward_id)
    return bearer(client.app, user)  # type: ignore[arg-type]


def test_a_read_url_needs_postgis(backend: str) -> None:
    replica = "postgresql://postgres@127.0.0.1:5999/referral_net"
    if backend == "spatialite":
        with pytest.raises(ValidationError, match="SpatiaLite has no read replicas"):
            Settings(database_url="sqlite:///directory.db", database_read_url=replica)
        return
    chosen = Settings(
        database_url="postgresql://postgres@127.0.0.1:5432/referral_net",
        database_read_url=replica,
    )
    assert chosen.database_read_url == "postgresql+psycopg://postgres@127.0.0.1:5999/referral_net"
    assert (
        Settings(database_url=chosen.database_url, database_read_url="").database_read_url is None
    )


def test_reads_go_to_the_replica_and_the_writer_reads_its_own_writes(
    client: TestClient, replicated: Replicated
) -> None:
    steward = _steward(client, replicated)
    created = client.post(
        "/api/v1/organizations", json={"name": "Replicada (ejemplo)"}, headers=steward
    )
    assert created.status_code == 201, created.text
    position = created.headers[HEADER]
    assert client.cookies.get(COOKIE) == position  # the writer's client keeps the position
    # The writer's next request sees its write, wherever it is served.
    again = client.get(f"/api/v1/organizations/{created.json()['id']}", headers=steward)
    assert again.status_code == 200, again.text
    assert again.json()["name"] == "Replicada (ejemplo)"

    # The replica stops replaying: what is written from now on is on the primary only.
    replicated.replica.execute("SELECT pg_wal_replay_pause()")
    later = client.post(
        "/api/v1/organizations", json={"name": "Solo en el primario (ejemplo)"}, headers=steward
    )
    assert later.status_code == 201, later.text
    later_path = f"/api/v1/organizations/{later.json()['id']}"

    # A read without the writer's position is the replica's: it has not seen the write.
    client.cookies.clear()
    stale = client.get(later_path, headers=steward)
    assert stale.status_code == 404, stale.text
    listed = client.get("/api/v1/organizations", params={"per_page": 100}, headers=steward)
    assert listed.status_code == 200
    names = {item["name"] for item in listed.json()["contents"]}
    assert "Replicada (ejemplo)" in names
    assert "Solo en el primario (ejemplo)" not in names

    # With the position (header or cookie), the read waits for the replica, which does not
    # catch up in time, so the primary answers it: read-your-writes holds under lag.
    fresh = client.get(later_path, headers={**steward, HEADER: later.headers[HEADER]})
    assert fresh.status_code == 200, fresh.text
    client.cookies.set(COOKIE, later.headers[HEADER])
    assert client.get(later_path, headers=steward).status_code == 200
    # A made-up position is ignored, not an error.
    client.cookies.clear()
    assert client.get(later_path, headers={**steward, HEADER: "not-a-position"}).status_code == 404

    # Replay resumes: the replica catches up and serves the write to everyone.
    replicated.replica.execute("SELECT pg_wal_replay_resume()")
    wait_for_replay(replicated.primary, replicated.replica)
    assert client.get(later_path, headers=steward).status_code == 200


def _tile_path(zoom: int) -> str:
    """The services tile over Quetzaltenango at ``zoom`` (XYZ, Web Mercator)."""
    latitude, longitude = QUETZALTENANGO
    scale = 2**zoom
    x = int((longitude + 180) / 360 * scale)
    y = int((1 - math.asinh(math.tan(math.radians(latitude))) / math.pi) / 2 * scale)
    return f"/tiles/services/{zoom}/{x}/{y}.mvt"


# One request of each kind of read: search, match (a read-only POST), OGC API items, a vector
# tile, HSDS reads and the export.
NEAR = f"{QUETZALTENANGO[0]},{QUETZALTENANGO[1]}"
READS: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "search": ("GET", f"/api/v1/search?near={NEAR}&limit=50", None),
    "match": (
        "POST",
        "/api/v1/match",
        {
            "location": {"latitude": QUETZALTENANGO[0], "longitude": QUETZALTENANGO[1]},
            "needs": [{"code": "protection.legal_aid"}],
        },
    ),
    "ogc items": ("GET", "/ogc/collections/services/items?limit=100", None),
    "tile": ("GET", _tile_path(12), None),
    "hsds services": ("GET", "/api/v1/services?per_page=100", None),
    "export": ("GET", "/api/v1/export", None),
}


def test_every_kind_of_read_is_served_by_the_replica(
    client: TestClient, replicated: Replicated
) -> None:
    steward = _steward(client, replicated)

    def read(kind: str, headers: dict[str, str]) -> bytes:
        method, path, body = READS[kind]
        answer = client.request(method, path, json=body, headers={**steward, **headers})
        assert answer.status_code in (200, 204), (kind, answer.text[:500])  # 204: empty tile
        return answer.content

    client.cookies.clear()
    before = {kind: read(kind, {}) for kind in READS}
    replicated.replica.execute("SELECT pg_wal_replay_pause()")
    name = f"Servicio {uuid.uuid4().hex[:8]} (ejemplo)"
    organization_id = replicated.organization_id
    location = client.post(
        "/api/v1/locations", json=location_body(organization_id), headers=steward
    )
    assert location.status_code == 201, location.text
    service = client.post(
        "/api/v1/services", json=service_body(organization_id, name=name), headers=steward
    )
    assert service.status_code == 201, service.text
    link = client.post(
        "/api/v1/service_at_locations",
        json={"service_id": service.json()["id"], "location_id": location.json()["id"]},
        headers=steward,
    )
    assert link.status_code == 201, link.text
    position = {HEADER: link.headers[HEADER]}
    client.cookies.clear()
    for kind in READS:
        # Served by the replica, which stopped replaying before the writes: as before them.
        if kind == "tile":
            assert read(kind, {}) == before[kind], kind
        else:
            assert name.encode() not in read(kind, {}), kind
        # With the writer's position the primary answers (the replica cannot catch up).
        if kind == "tile":
            assert read(kind, position) != before[kind], kind
        else:
            assert name.encode() in read(kind, position), kind


def test_an_audited_exact_read_on_the_replica_writes_its_entry_on_the_primary(
    client: TestClient, replicated: Replicated
) -> None:
    steward = _steward(client, replicated)
    body = location_body(replicated.organization_id, visibility="confidential")
    location = client.post("/api/v1/locations", json=body, headers=steward)
    assert location.status_code == 201, location.text
    location_id = location.json()["id"]
    wait_for_replay(replicated.primary, replicated.replica)
    client.cookies.clear()  # served by the replica, without waiting

    def exact_reads() -> int:
        with Session(replicated.primary_engine) as session:
            statement = select(func.count()).where(
                col(AuditEntry.action) == audit.READ_EXACT,
                col(AuditEntry.resource_id) == location_id,
            )
            return int(session.exec(statement).one())

    before = exact_reads()
    shown = client.get(f"/api/v1/locations/{location_id}", headers=steward)
    assert shown.status_code == 200, shown.text
    assert shown.json()["latitude"] == body["latitude"]  # the exact place, so it is audited
    assert exact_reads() == before + 1
    # The entry was written on the primary during a read: the writer gets its position too.
    assert HEADER in shown.headers
    with Session(replicated.primary_engine) as session:
        assert audit.verify(session=session).ok


def test_a_replica_that_is_down_is_a_503_and_not_ready(
    client: TestClient, replicated: Replicated
) -> None:
    steward = _steward(client, replicated)
    assert client.get("/ready").status_code == 200
    replicated.replica.stop("fast")
    try:
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.headers["content-type"].startswith("application/problem+json")
        assert "replica" in ready.json()["detail"]
        read = client.get("/api/v1/organizations", headers=steward)
        assert read.status_code == 503, read.text
        assert read.headers["content-type"].startswith("application/problem+json")
        assert "Traceback" not in read.text
        # Writes go to the primary, which is up.
        write = client.post(
            "/api/v1/organizations", json={"name": "Con la réplica caída"}, headers=steward
        )
        assert write.status_code == 201, write.text
    finally:
        replicated.replica.start()
    assert client.get("/ready").status_code == 200
