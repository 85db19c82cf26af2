"""A read request's session, on a real engine (no test transaction around it), both backends.

On PostgreSQL a read runs in autocommit (``db.engine.read_session``): no BEGIN or ROLLBACK around
its statements. A read that writes after all (the audit entry of an exact read) still writes in
one transaction, committed and chained; and every connection goes back to the pool idle. On
SQLite a read keeps its one read transaction (one snapshot for the request).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg.pq import TransactionStatus
from sqlalchemy import Engine, event
from sqlmodel import Session, col, select

from referral_net.db.models import AuditEntry
from referral_net.domain import audit, taxonomy
from referral_net.main import create_app
from referral_net.security.roles import Role
from referral_net.settings import Settings
from tests.databases import QUIET_APP, fresh_migrated
from tests.factories import QUETZALTENANGO, bearer, location_body, make_user, service_body

pytestmark = pytest.mark.db
NEAR = f"{QUETZALTENANGO[0]},{QUETZALTENANGO[1]}"


@pytest.fixture(params=["spatialite", "postgis"])
def migrated(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A migrated database of each backend with the taxonomy loaded, committed."""
    return fresh_migrated(request, tmp_path, suffix="_reads").model_copy(update=QUIET_APP)


@pytest.fixture
def client(migrated: Settings) -> Iterator[TestClient]:
    """The application on its own engine, as deployed: no session source."""
    with TestClient(create_app(migrated), raise_server_exceptions=False) as test_client:
        with Session(_engine(test_client)) as session:
            taxonomy.load_taxonomy(session=session)
            session.commit()
        yield test_client


def _engine(client: TestClient) -> Engine:
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    return engine


def _site(client: TestClient, visibility: str = "restricted") -> str:
    """A site (restricted unless said) with a legal-aid service, made through the API: its id."""
    with Session(_engine(client)) as session:
        steward = bearer(client.app, make_user(session, Role.STEWARD))  # type: ignore[arg-type]
        organization = client.post(
            "/api/v1/organizations", json={"name": "Org (ejemplo)"}, headers=steward
        )
    assert organization.status_code == 201, organization.text
    org_id = organization.json()["id"]
    location = client.post(
        "/api/v1/locations", json=location_body(org_id, visibility=visibility), headers=steward
    )
    assert location.status_code == 201, location.text
    service = client.post("/api/v1/services", json=service_body(org_id), headers=steward)
    assert service.status_code == 201, service.text
    link = client.post(
        "/api/v1/service_at_locations",
        json={"service_id": service.json()["id"], "location_id": location.json()["id"]},
        headers=steward,
    )
    assert link.status_code == 201, link.text
    return str(location.json()["id"])


def _exact_reads(session: Session, location_id: str) -> list[AuditEntry]:
    statement = select(AuditEntry).where(
        col(AuditEntry.action) == audit.READ_EXACT, col(AuditEntry.resource_id) == location_id
    )
    return list(session.exec(statement.order_by(col(AuditEntry.seq))))


def _in_transaction(dbapi_connection: Any) -> bool:
    """Whether a statement about to run on this DBAPI connection runs inside a transaction."""
    if hasattr(dbapi_connection, "autocommit") and hasattr(dbapi_connection, "info"):
        return not dbapi_connection.autocommit  # psycopg: BEGIN is sent before the statement
    return bool(dbapi_connection.in_transaction)  # sqlite3


def test_a_search_reads_without_a_transaction_on_postgis_and_in_one_on_sqlite(
    client: TestClient, migrated: Settings
) -> None:
    _site(client, visibility="public")
    seen: list[bool] = []

    def note(conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if "search_entry" in statement:
            seen.append(_in_transaction(conn.connection.dbapi_connection))

    event.listen(_engine(client), "before_cursor_execute", note)
    try:
        answer = client.get("/api/v1/search", params={"near": NEAR})
    finally:
        event.remove(_engine(client), "before_cursor_execute", note)
    assert answer.status_code == 200, answer.text
    assert answer.json()["total_items"] == 1
    postgis = migrated.database_url.startswith("postgresql")
    assert seen, "the search read no search_entry"
    assert set(seen) == ({False} if postgis else {True})


def test_an_exact_read_writes_its_audit_entry_in_a_transaction(client: TestClient) -> None:
    location_id = _site(client)
    with Session(_engine(client)) as session:
        caseworker = bearer(client.app, make_user(session, Role.CASEWORKER))  # type: ignore[arg-type]
    with Session(_engine(client)) as session:
        before = len(_exact_reads(session, location_id))
    writes: list[bool] = []

    def note(conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO AUDIT_ENTRY"):
            writes.append(_in_transaction(conn.connection.dbapi_connection))

    event.listen(_engine(client), "before_cursor_execute", note)
    try:
        answer = client.get("/api/v1/search", params={"near": NEAR}, headers=caseworker)
    finally:
        event.remove(_engine(client), "before_cursor_execute", note)
    assert answer.status_code == 200, answer.text
    assert location_id in answer.text  # the caseworker saw the exact site
    assert writes  # the search wrote the audit entry of its exact view ...
    assert all(writes)  # ... inside a transaction
    with Session(_engine(client)) as session:
        entries = _exact_reads(session, location_id)
        # The steward's creation showed the site exactly too; the search adds one entry.
        assert [entry.endpoint for entry in entries[before:]] == ["GET /api/v1/search"]
        assert audit.verify(session=session).ok


def test_connections_go_back_to_the_pool_idle(client: TestClient, migrated: Settings) -> None:
    _site(client)
    for _ in range(3):
        assert client.get("/api/v1/search", params={"near": NEAR}).status_code == 200
        assert client.get("/api/v1/search", params={"near": "x"}).status_code in {400, 422}
    engine = _engine(client)
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    if migrated.database_url.startswith("postgresql"):
        with engine.connect() as connection:
            dbapi = connection.connection.dbapi_connection
            assert dbapi is not None
            assert dbapi.info.transaction_status == TransactionStatus.IDLE
            assert not dbapi.autocommit  # the pool's next user gets a plain connection
