"""Anchoring the audit trail outside the database, on both backends.

The attacks are a database administrator's: rewrite an entry and recompute every later SHA-256,
strip the MACs, delete the newest entries. The SHA-256 chain alone passes all of them (shown
first in each test); the audit key's MACs and the checkpoints do not."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Connection, text
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from referral_net.cli import app as cli_app
from referral_net.db import migrate
from referral_net.db.engine import make_engine
from referral_net.db.models import AuditEntry
from referral_net.domain import audit, organizations
from referral_net.schemas.directory import OrganizationCreate
from referral_net.security.roles import Principal, Role
from referral_net.settings import Settings
from tests.conftest import make_backend_settings, unavailable
from tests.test_audit import _bypass_append_only

pytestmark = pytest.mark.db
KEY = "audit-key-for-tests-only-0123456789abcdef"
OTHER_KEY = "another-audit-key-for-tests-0123456789abc"


def _entries(session: Session) -> list[AuditEntry]:
    statement = select(AuditEntry).order_by(col(AuditEntry.seq))
    return list(session.exec(statement.execution_options(populate_existing=True)))


def _write(session: Session, count: int) -> list[AuditEntry]:
    """Append ``count`` entries (one organization each) and return the newest ``count``."""
    steward = Principal(role=Role.STEWARD, subject="user:tester")
    for number in range(count):
        organizations.create(
            session=session,
            principal=steward,
            data=OrganizationCreate(name=f"Organización {number} (ejemplo)"),
        )
    return _entries(session)[-count:]


def _rewrite_from(connection: Connection, session: Session, seq: int, *, strip_mac: bool) -> None:
    """Edit entry ``seq`` and recompute every later SHA-256, as a DBA with write access could."""
    _bypass_append_only(connection)
    prev_hash = audit.GENESIS_HASH
    for entry in _entries(session):
        assert entry.seq is not None
        if entry.seq < seq:
            prev_hash = entry.entry_hash
            continue
        detail = {"fields": ["nothing-to-see"]} if entry.seq == seq else entry.detail
        new_hash = audit.compute_hash(
            seq=entry.seq,
            occurred_at=entry.occurred_at,
            actor=entry.actor,
            role=entry.role,
            action=entry.action,
            resource_type=entry.resource_type,
            resource_id=entry.resource_id,
            endpoint=entry.endpoint,
            detail=detail,
            prev_hash=prev_hash,
        )
        connection.execute(
            text(
                "UPDATE audit_entry SET detail = :detail, prev_hash = :prev, entry_hash = :hash"
                + (", entry_mac = NULL" if strip_mac else "")
                + " WHERE seq = :seq"
            ),
            {"detail": json.dumps(detail), "prev": prev_hash, "hash": new_hash, "seq": entry.seq},
        )
        prev_hash = new_hash


def _delete_newest(connection: Connection, count: int) -> None:
    _bypass_append_only(connection)
    connection.execute(
        text("DELETE FROM audit_entry WHERE seq > (SELECT MAX(seq) FROM audit_entry) - :count"),
        {"count": count},
    )


def test_an_intact_anchored_trail_passes(session: Session) -> None:
    before = len(_entries(session))
    _write(session, 2)  # unanchored: no key yet
    audit.use_key(session, SecretStr(KEY))
    anchored = _write(session, 3)
    assert all(e.entry_mac for e in anchored)
    report = audit.verify(session=session, key=KEY)
    assert report.ok
    assert report.mac_checked
    assert report.unanchored == before + 2
    assert (report.head_seq, report.head_mac) == (anchored[-1].seq, anchored[-1].entry_mac)
    checkpoint = audit.make_checkpoint(report=report, key=KEY)
    again = audit.verify(session=session, key=KEY, checkpoints=[checkpoint])
    assert again.ok
    assert again.checkpoints_checked == 1


def test_a_rewrite_with_recomputed_hashes_fails_with_the_key(
    session: Session, connection: Connection
) -> None:
    audit.use_key(session, KEY)
    _, target, *_ = _write(session, 4)
    assert target.seq is not None
    _rewrite_from(connection, session, target.seq, strip_mac=False)

    assert audit.verify(session=session).ok  # the SHA-256 chain alone is fooled
    report = audit.verify(session=session, key=KEY)
    assert not report.ok
    assert report.first_bad_seq == target.seq
    assert "entry_mac does not match" in (report.reason or "")


def test_stripping_the_macs_is_caught(session: Session, connection: Connection) -> None:
    audit.use_key(session, KEY)
    first, target, *_ = _write(session, 4)
    assert target.seq is not None
    _rewrite_from(connection, session, target.seq, strip_mac=True)
    report = audit.verify(session=session, key=KEY)
    assert not report.ok
    assert report.first_bad_seq == target.seq
    assert f"anchored from entry {first.seq} on" in (report.reason or "")


def test_a_whole_rewrite_without_macs_is_caught_by_a_checkpoint(
    session: Session, connection: Connection
) -> None:
    audit.use_key(session, KEY)
    first, *_ = _write(session, 3)
    checkpoint = audit.make_checkpoint(report=audit.verify(session=session, key=KEY), key=KEY)
    assert first.seq is not None
    _rewrite_from(connection, session, 1, strip_mac=True)  # as if never anchored
    assert audit.verify(session=session, key=KEY).ok  # only "unanchored" entries remain
    report = audit.verify(session=session, key=KEY, checkpoints=[checkpoint])
    assert not report.ok
    assert report.first_bad_seq == checkpoint.seq
    assert "differs from the checkpoint" in (report.reason or "")


def test_deleting_the_newest_entries_fails_against_a_checkpoint(
    session: Session, connection: Connection
) -> None:
    audit.use_key(session, KEY)
    entries = _write(session, 3)
    checkpoint = audit.make_checkpoint(report=audit.verify(session=session, key=KEY), key=KEY)
    _delete_newest(connection, 2)

    assert audit.verify(session=session, key=KEY).ok  # a shorter chain is still a valid chain
    report = audit.verify(session=session, key=KEY, checkpoints=[checkpoint])
    assert not report.ok
    assert report.first_bad_seq == entries[1].seq
    assert f"truncated: the trail ends at entry {entries[0].seq}" in (report.reason or "")
    assert f"recorded entry {entries[-1].seq}" in (report.reason or "")


def test_another_key_and_a_missing_key_are_refused(session: Session) -> None:
    audit.use_key(session, KEY)
    first, *_ = _write(session, 2)
    report = audit.verify(session=session, key=OTHER_KEY)
    assert not report.ok
    assert report.first_bad_seq == first.seq
    # A process without the key must not append MAC-less entries after anchored ones.
    audit.use_key(session, None)
    with pytest.raises(audit.AuditKeyMissing):
        _write(session, 1)
    session.rollback()


def test_checkpoint_lines_are_authenticated() -> None:
    report = audit.VerifyReport(ok=True, entries=7, head_hash="a" * 64, head_seq=7)
    checkpoint = audit.make_checkpoint(
        report=report, key=KEY, now=datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    )
    line = checkpoint.to_line()
    assert json.loads(line)["seq"] == 7
    assert json.loads(line)["mac"]
    assert audit.parse_checkpoints(text=line + "\n\n", key=KEY) == [checkpoint]
    forged = line.replace('"seq":7', '"seq":5')
    with pytest.raises(audit.CheckpointInvalid, match="line 1: its MAC does not match"):
        audit.parse_checkpoints(text=forged, key=KEY)
    with pytest.raises(audit.CheckpointInvalid, match="line 2 cannot be read"):
        audit.parse_checkpoints(text=line + "\nnot json", key=KEY)
    with pytest.raises(ValueError, match="broken trail"):
        audit.make_checkpoint(
            report=audit.VerifyReport(ok=False, entries=0, head_hash=""), key=None
        )


def test_the_api_checks_macs_with_the_servers_key(
    app: FastAPI,
    client: TestClient,
    session: Session,
    connection: Connection,
    steward_headers: dict[str, str],
) -> None:
    audit.use_key(session, KEY)
    _, target, _ = _write(session, 3)
    without_key = client.get("/api/v1/audit/verify", headers=steward_headers).json()
    assert without_key["ok"]
    assert not without_key["mac_checked"]
    app.state.settings = app.state.settings.model_copy(update={"audit_key": SecretStr(KEY)})
    intact = client.get("/api/v1/audit/verify", headers=steward_headers).json()
    assert intact["ok"]
    assert intact["mac_checked"]
    assert target.seq is not None
    assert intact["head_seq"] == target.seq + 1
    _rewrite_from(connection, session, target.seq, strip_mac=False)
    broken = client.get("/api/v1/audit/verify", headers=steward_headers).json()
    assert (broken["ok"], broken["first_bad_seq"]) == (False, target.seq)


@pytest.fixture(params=["spatialite", "postgis"])
def fresh_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A freshly migrated, otherwise empty database of each backend (the CLI commits)."""
    backend = str(request.param)
    try:
        settings = make_backend_settings(backend, tmp_path, suffix="_audit_anchor")
        migrate.upgrade(settings)
    except Exception as exc:
        unavailable(request, backend, exc)
        raise
    return settings


def test_cli_checkpoint_and_verify(
    fresh_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("REFERRAL_NET_DATABASE_URL", fresh_settings.database_url)
    monkeypatch.setenv("REFERRAL_NET_AUDIT_KEY", KEY)
    monkeypatch.delenv("REFERRAL_NET_AUDIT_CHECKPOINT_FILE", raising=False)
    checkpoints = tmp_path / "audit-checkpoints.jsonl"
    runner = CliRunner()

    missing = runner.invoke(cli_app, ["audit", "checkpoint"])
    assert missing.exit_code == 2
    assert "pass --path or set REFERRAL_NET_AUDIT_CHECKPOINT_FILE" in missing.output
    engine = make_engine(fresh_settings)
    try:
        with Session(engine) as session:
            audit.use_key(session, KEY)
            _write(session, 3)
        first = runner.invoke(cli_app, ["audit", "checkpoint", "--path", str(checkpoints)])
        assert first.exit_code == 0, first.output
        assert json.loads(first.output)["seq"] == 3
        with Session(engine) as session:
            audit.use_key(session, KEY)
            _write(session, 2)
        monkeypatch.setenv("REFERRAL_NET_AUDIT_CHECKPOINT_FILE", str(checkpoints))
        second = runner.invoke(cli_app, ["audit", "checkpoint"])
        assert second.exit_code == 0, second.output
        assert [json.loads(line)["seq"] for line in checkpoints.read_text().splitlines()] == [3, 5]

        intact = runner.invoke(cli_app, ["audit", "verify", "--checkpoint", str(checkpoints)])
        assert intact.exit_code == 0, intact.output
        assert "audit chain intact: 5 entries" in intact.output
        assert "MACs checked; 0 unanchored" in intact.output
        assert "checkpoints matched: 2 of 2" in intact.output

        with engine.begin() as connection:
            _delete_newest(connection, 1)
        monkeypatch.delenv("REFERRAL_NET_AUDIT_CHECKPOINT_FILE")
        assert runner.invoke(cli_app, ["audit", "verify"]).exit_code == 0  # fooled alone
        truncated = runner.invoke(cli_app, ["audit", "verify", "--checkpoint", str(checkpoints)])
        assert truncated.exit_code == 1
        assert "audit chain broken at entry 5: truncated" in truncated.output
        refused = runner.invoke(cli_app, ["audit", "checkpoint", "--path", str(checkpoints)])
        assert refused.exit_code == 1  # no checkpoint vouches for a truncated trail
        absent = runner.invoke(cli_app, ["audit", "verify", "--checkpoint", str(tmp_path / "x")])
        assert absent.exit_code == 2
        assert "checkpoint file not found" in absent.output
    finally:
        engine.dispose()
