"""The audit trail on both backends: writes and exact reads of hidden sites are recorded with
who, role and endpoint; the chain verifies and catches edits and deletions; stewards query it;
it holds names of changed fields, never their values."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from referral_net.cli import app as cli_app
from referral_net.db import migrate
from referral_net.db.engine import make_engine
from referral_net.db.models import AuditEntry
from referral_net.domain import audit, organizations, users
from referral_net.schemas.directory import OrganizationCreate
from referral_net.security.roles import Principal, Role
from referral_net.settings import Settings
from tests.conftest import make_backend_settings, unavailable
from tests.factories import (
    QUETZALTENANGO,
    bearer,
    location_body,
    make_organization,
    make_user,
    service_body,
)

pytestmark = pytest.mark.db
LOCATIONS = "/api/v1/locations"
AUDIT = "/api/v1/audit"
SECRET_PHONE = "+502 5555 7391"


def _entries(session: Session, **where: Any) -> list[AuditEntry]:
    statement = select(AuditEntry).order_by(col(AuditEntry.seq))
    for field, value in where.items():
        statement = statement.where(getattr(AuditEntry, field) == value)
    return list(session.exec(statement.execution_options(populate_existing=True)))


def _steward_subject(app: FastAPI, session: Session) -> tuple[dict[str, str], str]:
    user = make_user(session, Role.STEWARD)
    return bearer(app, user), f"user:{user.username}"


def _create_location(
    client: TestClient, headers: dict[str, str], org_id: uuid.UUID, visibility: str
) -> str:
    response = client.post(
        LOCATIONS, json=location_body(org_id, visibility=visibility), headers=headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _bypass_append_only(connection: Connection) -> None:
    """Let the test tamper with the trail: the DDL rolls back with the test's transaction."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only"))
    else:
        connection.execute(text("DROP TRIGGER audit_entry_no_update"))
        connection.execute(text("DROP TRIGGER audit_entry_no_delete"))


def test_writes_through_the_api_record_actor_role_and_endpoint(
    app: FastAPI, client: TestClient, session: Session
) -> None:
    headers, subject = _steward_subject(app, session)
    org = make_organization(session)
    location_id = _create_location(client, headers, org.id, "public")
    patched = client.patch(
        f"{LOCATIONS}/{location_id}", json={"name": "Sede renombrada (ejemplo)"}, headers=headers
    )
    assert patched.status_code == 200, patched.text
    deleted = client.delete(f"{LOCATIONS}/{location_id}", headers=headers)
    assert deleted.status_code == 204, deleted.text

    rows = _entries(session, resource_id=location_id)
    assert [(r.action, r.endpoint) for r in rows] == [
        ("create", "POST /api/v1/locations"),
        ("update", "PATCH /api/v1/locations/{location_id}"),
        ("delete", "DELETE /api/v1/locations/{location_id}"),
    ]
    assert {(r.actor, r.role, r.resource_type) for r in rows} == {(subject, "steward", "location")}
    assert rows[1].detail == {"fields": ["name"]}
    assert "status" in (rows[2].detail or {})["fields"]
    assert audit.verify(session=session).ok


def test_writes_without_a_request_are_system_writes(session: Session) -> None:
    steward = Principal(role=Role.STEWARD, subject="user:seed")
    org = organizations.create(
        session=session, principal=steward, data=OrganizationCreate(name="Org (ejemplo)")
    )
    (row,) = _entries(session, resource_id=str(org.id))
    assert (row.actor, row.role, row.endpoint, row.action) == (
        "user:seed",
        "system",
        "cli",
        "create",
    )


def test_account_changes_are_audited_without_secrets(session: Session, unique: str) -> None:
    user = users.create_user(
        session=session,
        username=f"steward-{unique}",
        password="correct horse battery staple",
        role=Role.STEWARD,
    )
    users.disable_user(session=session, username=user.username)
    rows = _entries(session, resource_id=str(user.id))
    assert [(r.action, r.resource_type, r.role, r.endpoint) for r in rows] == [
        ("create", "user_account", "system", "cli"),
        ("update", "user_account", "system", "cli"),
    ]
    dumped = json.dumps([r.model_dump(mode="json") for r in rows])
    assert user.password_hash not in dumped
    assert "correct horse" not in dumped


def test_exact_reads_of_hidden_sites_are_audited(
    app: FastAPI, client: TestClient, session: Session, taxonomy_loaded: None
) -> None:
    steward_headers, _ = _steward_subject(app, session)
    caseworker = make_user(session, Role.CASEWORKER)
    caseworker_headers = bearer(app, caseworker)
    org = make_organization(session)
    confidential = _create_location(client, steward_headers, org.id, "confidential")
    restricted = _create_location(client, steward_headers, org.id, "restricted")
    public = _create_location(client, steward_headers, org.id, "public")
    service = client.post("/api/v1/services", json=service_body(org.id), headers=steward_headers)
    assert service.status_code == 201, service.text
    for location_id in (confidential, restricted, public):
        link = client.post(
            "/api/v1/service_at_locations",
            json={"service_id": service.json()["id"], "location_id": location_id},
            headers=steward_headers,
        )
        assert link.status_code == 201, link.text

    def reads(location_id: str) -> list[AuditEntry]:
        return _entries(session, resource_id=location_id, action="read_exact")

    before = {loc: len(reads(loc)) for loc in (confidential, restricted, public)}

    item = client.get(f"{LOCATIONS}/{confidential}", headers=caseworker_headers)
    assert item.status_code == 200
    assert item.json()["precision"] == "exact"
    (entry,) = reads(confidential)[before[confidential] :]
    assert entry.actor == f"user:{caseworker.username}"
    assert entry.role == "caseworker"
    assert entry.endpoint == "GET /api/v1/locations/{location_id}"
    assert entry.resource_type == "location"

    lat, lon = QUETZALTENANGO
    found = client.get(
        "/api/v1/search", params={"near": f"{lat},{lon}", "limit": 50}, headers=caseworker_headers
    )
    assert found.status_code == 200, found.text
    shown = {r["location"]["id"] for r in found.json()["contents"]}
    assert {confidential, restricted, public} <= shown
    assert [r.endpoint for r in reads(confidential)[before[confidential] + 1 :]] == [
        "GET /api/v1/search"
    ]
    assert len(reads(restricted)) == before[restricted] + 1
    assert len(reads(public)) == 0  # public sites are not sensitive reads

    # The public sees the restricted site coarsely: nothing exact was shown, nothing recorded.
    count = len(reads(restricted))
    coarse = client.get(f"{LOCATIONS}/{restricted}")
    assert coarse.status_code == 200
    assert coarse.json()["precision"] == "municipality"
    anonymous = client.get("/api/v1/search", params={"near": f"{lat},{lon}", "limit": 50})
    assert anonymous.status_code == 200
    assert len(reads(restricted)) == count
    assert _entries(session, actor="anonymous") == []
    assert audit.verify(session=session).ok


def test_changed_values_never_enter_the_trail(
    app: FastAPI, client: TestClient, session: Session
) -> None:
    headers, _ = _steward_subject(app, session)
    org = make_organization(session)
    location_id = _create_location(client, headers, org.id, "confidential")
    patched = client.patch(
        f"{LOCATIONS}/{location_id}",
        json={"phones": [{"number": SECRET_PHONE}], "intake_description": "Llamar antes"},
        headers=headers,
    )
    assert patched.status_code == 200, patched.text
    update = _entries(session, resource_id=location_id, action="update")[-1]
    assert update.detail == {"fields": ["intake_description", "phones"]}
    dumped = json.dumps([r.model_dump(mode="json") for r in _entries(session)], ensure_ascii=False)
    assert SECRET_PHONE not in dumped
    assert "Llamar antes" not in dumped
    assert "5555 0102" not in dumped  # the phone it was created with


def test_stewards_query_by_record_and_by_user(
    app: FastAPI, client: TestClient, session: Session
) -> None:
    headers, subject = _steward_subject(app, session)
    org = make_organization(session)
    first = _create_location(client, headers, org.id, "public")
    _create_location(client, headers, org.id, "public")

    by_record = client.get(AUDIT, params={"resource_id": first}, headers=headers)
    assert by_record.status_code == 200, by_record.text
    body = by_record.json()
    assert body["total_items"] == 1
    assert body["contents"][0]["resource_id"] == first
    assert body["contents"][0]["endpoint"] == "POST /api/v1/locations"

    by_user = client.get(AUDIT, params={"actor": subject, "per_page": 1}, headers=headers)
    assert by_user.status_code == 200
    body = by_user.json()
    assert body["total_items"] == 2
    assert body["size"] == 1
    assert body["contents"][0]["actor"] == subject
    assert body["contents"][0]["resource_id"] != first  # newest first

    verified = client.get(f"{AUDIT}/verify", headers=headers)
    assert verified.status_code == 200
    assert verified.json()["ok"] is True


@pytest.mark.parametrize("path", [AUDIT, f"{AUDIT}/verify"])
def test_only_stewards_read_the_trail(
    app: FastAPI, client: TestClient, session: Session, path: str
) -> None:
    assert client.get(path).status_code == 401
    for role in (Role.CASEWORKER, Role.JUSTICE, Role.ADMIN):
        assert client.get(path, headers=bearer(app, make_user(session, role))).status_code == 403
    org = make_organization(session)
    provider = make_user(session, Role.PROVIDER, organization_id=org.id)
    assert client.get(path, headers=bearer(app, provider)).status_code == 403


def _three_entries(session: Session) -> list[AuditEntry]:
    steward = Principal(role=Role.STEWARD, subject="user:tester")
    for name in ("Uno (ejemplo)", "Dos (ejemplo)", "Tres (ejemplo)"):
        organizations.create(session=session, principal=steward, data=OrganizationCreate(name=name))
    rows = _entries(session)
    assert len(rows) >= 3
    return rows[-3:]


def test_the_database_refuses_updates_and_deletes(session: Session, connection: Connection) -> None:
    _three_entries(session)
    for statement in (
        "UPDATE audit_entry SET actor = 'user:someone-else'",
        "DELETE FROM audit_entry",
    ):
        with pytest.raises(DBAPIError, match="append-only"), connection.begin_nested():
            connection.execute(text(statement))
    assert audit.verify(session=session).ok


def test_verify_detects_an_edited_entry(session: Session, connection: Connection) -> None:
    _, middle, _ = _three_entries(session)
    assert audit.verify(session=session).ok
    _bypass_append_only(connection)
    connection.execute(
        text("UPDATE audit_entry SET detail = :detail WHERE seq = :seq"),
        {"detail": json.dumps({"fields": []}), "seq": middle.seq},
    )
    report = audit.verify(session=session)
    assert not report.ok
    assert report.first_bad_seq == middle.seq
    assert "does not match its contents" in (report.reason or "")


def test_verify_detects_a_deleted_entry(session: Session, connection: Connection) -> None:
    _, middle, _ = _three_entries(session)
    _bypass_append_only(connection)
    connection.execute(text("DELETE FROM audit_entry WHERE seq = :seq"), {"seq": middle.seq})
    report = audit.verify(session=session)
    assert not report.ok
    assert report.first_bad_seq == middle.seq
    assert "missing" in (report.reason or "")


def test_verify_detects_a_relinked_chain(session: Session, connection: Connection) -> None:
    """Deleting an entry and renumbering the rest still breaks the links."""
    first, middle, last = _three_entries(session)
    _bypass_append_only(connection)
    connection.execute(text("DELETE FROM audit_entry WHERE seq = :seq"), {"seq": middle.seq})
    connection.execute(
        text("UPDATE audit_entry SET seq = :new WHERE seq = :old"),
        {"new": middle.seq, "old": last.seq},
    )
    report = audit.verify(session=session)
    assert not report.ok
    assert report.first_bad_seq == middle.seq
    assert report.entries == first.seq  # only the entries before the break count


@pytest.fixture(params=["spatialite", "postgis"])
def fresh_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A freshly migrated, otherwise empty database of each backend."""
    backend = str(request.param)
    try:
        settings = make_backend_settings(backend, tmp_path, suffix="_audit_cli")
        migrate.upgrade(settings)
    except Exception as exc:
        unavailable(request, backend, exc)
        raise
    return settings


def test_cli_verify_exit_codes(fresh_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFERRAL_NET_DATABASE_URL", fresh_settings.database_url)
    runner = CliRunner()

    result = runner.invoke(cli_app, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "audit chain intact: 0 entries" in result.output

    engine = make_engine(fresh_settings)
    try:
        with Session(engine) as session:
            _three_entries(session)
        result = runner.invoke(cli_app, ["audit", "verify"])
        assert result.exit_code == 0, result.output
        assert "audit chain intact: 3 entries" in result.output

        with engine.begin() as connection:
            _bypass_append_only(connection)
            connection.execute(
                text("UPDATE audit_entry SET actor = 'user:someone-else' WHERE seq = 2")
            )
        result = runner.invoke(cli_app, ["audit", "verify"])
        assert result.exit_code == 1
        assert "audit chain broken at entry 2" in result.output
    finally:
        engine.dispose()
