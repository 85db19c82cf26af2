"""Referrals (issue 17) through the API on both backends: create, consent, minimal data, the
encrypted note, inbox/outbox isolation, every transition, If-Match, overdue, audited reads,
places for emergencies, the retention purge and the suppressed report."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import update
from sqlmodel import Session, col, select

from referral_net.db.models import (
    AuditEntry,
    Referral,
    ReferralTransition,
    SearchEntry,
    ServiceCapacity,
)
from referral_net.domain import referrals
from referral_net.domain.referral_workflow import TRANSITIONS, Side, Status
from referral_net.errors import Conflict, PreconditionFailed
from referral_net.security.roles import Principal, Role
from tests.factories import (
    bearer,
    make_organization,
    make_referral_target,
    make_user,
    referral_body,
)

pytestmark = pytest.mark.db
NOTE_KEY = Fernet.generate_key().decode("ascii")
NOTE = "Llega con su hija; prefiere hablar mam."


@dataclass
class Net:
    """Three organizations: a sender, a receiver with a shelter, a stranger; and their staff."""

    link_id: uuid.UUID
    sender_org: uuid.UUID
    receiver_org: uuid.UUID
    sender: dict[str, str]
    receiver: dict[str, str]
    stranger: dict[str, str]
    steward: dict[str, str]


@pytest.fixture
def net(app: FastAPI, session: Session, taxonomy_loaded: None) -> Net:
    """The three organizations, with the note key set on the running app."""
    app.state.settings = app.state.settings.model_copy(
        update={"referral_note_key": SecretStr(NOTE_KEY)}
    )
    sender_org = make_organization(session, "Defensoría (ejemplo)")
    receiver_org = make_organization(session, "Refugio (ejemplo)")
    stranger_org = make_organization(session, "Otra ONG (ejemplo)")
    link_id = make_referral_target(session, receiver_org, beds=2, maximum=2)
    return Net(
        link_id=link_id,
        sender_org=sender_org.id,
        receiver_org=receiver_org.id,
        sender=bearer(app, make_user(session, Role.CASEWORKER, sender_org.id)),
        receiver=bearer(app, make_user(session, Role.PROVIDER, receiver_org.id)),
        stranger=bearer(app, make_user(session, Role.CASEWORKER, stranger_org.id)),
        steward=bearer(app, make_user(session, Role.STEWARD)),
    )


def _send(client: TestClient, net: Net, **overrides: Any) -> dict[str, Any]:
    response = client.post(
        "/api/v1/referrals", json=referral_body(net.link_id, **overrides), headers=net.sender
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def _move(
    client: TestClient,
    headers: dict[str, str],
    referral_id: str,
    status: str,
    *,
    reason: str | None = None,
    if_match: str | None = None,
) -> Any:
    body: dict[str, Any] = {"status": status}
    if reason is not None:
        body["reason"] = reason
    extra = {"If-Match": if_match} if if_match is not None else {}
    return client.post(
        f"/api/v1/referrals/{referral_id}/transitions", json=body, headers={**headers, **extra}
    )


# The legal path to each state, and who makes each step.
_PATH: dict[Status, list[Status]] = {
    Status.SENT: [],
    Status.RECEIVED: [Status.RECEIVED],
    Status.ACCEPTED: [Status.RECEIVED, Status.ACCEPTED],
    Status.DECLINED: [Status.RECEIVED, Status.DECLINED],
    Status.IN_PROGRESS: [Status.RECEIVED, Status.ACCEPTED, Status.IN_PROGRESS],
    Status.COMPLETED: [Status.RECEIVED, Status.ACCEPTED, Status.IN_PROGRESS, Status.COMPLETED],
    Status.CLOSED: [Status.RECEIVED, Status.ACCEPTED, Status.CLOSED],
    Status.CANCELLED: [Status.CANCELLED],
}


def _headers_for(net: Net, target: Status) -> dict[str, str]:
    return net.sender if target is Status.CANCELLED else net.receiver


def _reason_for(target: Status) -> str | None:
    return "no_capacity" if target is Status.DECLINED else None


def _drive(client: TestClient, net: Net, state: Status, **overrides: Any) -> dict[str, Any]:
    created = _send(client, net, **overrides)
    current = created
    for step in _PATH[state]:
        response = _move(
            client, _headers_for(net, step), created["id"], step.value, reason=_reason_for(step)
        )
        assert response.status_code == 200, response.text
        current = response.json()
    assert current["status"] == state.value
    return current


# --- create, minimal data, note ---------------------------------------------------------------


def test_a_referral_is_created_with_a_case_code_history_and_encrypted_note(
    client: TestClient, session: Session, net: Net
) -> None:
    created = _send(client, net, note=NOTE)
    assert created["status"] == "sent"
    assert created["version"] == 1
    assert created["case_code"].startswith("RN-")
    assert len(created["case_code"]) == 22
    assert created["sender_organization_id"] == str(net.sender_org)
    assert created["receiver_organization_id"] == str(net.receiver_org)
    assert created["note"] == NOTE
    assert created["traits"]["languages"] == ["mam", "spa"]
    assert created["consent"]["given"] is True
    assert created["consent"]["recorded_by"].startswith("user:")
    assert [(h["from_status"], h["to_status"]) for h in created["history"]] == [(None, "sent")]
    stored = session.get(Referral, uuid.UUID(created["id"]))
    assert stored is not None
    assert stored.note_ciphertext is not None
    assert NOTE.encode() not in stored.note_ciphertext
    assert "mam" not in stored.note_ciphertext.decode("ascii")
    # The receiver reads the same note in clear.
    read = client.get(f"/api/v1/referrals/{created['id']}", headers=net.receiver)
    assert read.status_code == 200
    assert read.json()["note"] == NOTE
    # The record tag, followed by the hash of this representation (api/etag.py).
    assert read.headers["ETag"].startswith(f'"{uuid.UUID(created["id"]).hex}-1.')
    assert "no-store" in read.headers["Cache-Control"]


def test_case_codes_are_random_and_distinct() -> None:
    codes = {referrals.make_case_code() for _ in range(500)}
    assert len(codes) == 500


@pytest.mark.parametrize(
    "extra",
    [
        {"name": "María"},
        {"document_number": "1234 56789 0101"},
        {"phone": "5555-0101"},
        {"traits": {"age": 20, "full_name": "María"}},
        {"traits": {"age": 20, "dpi": "1234567890101"}},
        {"consent": {"given": True, "given_on": "2026-01-01", "signature": "x"}},
    ],
)
def test_identifying_fields_are_refused(
    client: TestClient, session: Session, net: Net, extra: dict[str, Any]
) -> None:
    response = client.post(
        "/api/v1/referrals", json={**referral_body(net.link_id), **extra}, headers=net.sender
    )
    assert response.status_code == 422, response.text
    assert session.exec(select(Referral)).first() is None


def test_a_note_without_a_key_is_refused_and_nothing_is_stored(
    app: FastAPI, client: TestClient, session: Session, net: Net
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"referral_note_key": None})
    response = client.post(
        "/api/v1/referrals", json=referral_body(net.link_id, note=NOTE), headers=net.sender
    )
    assert response.status_code == 422
    assert "REFERRAL_NET_REFERRAL_NOTE_KEY" in response.json()["detail"]
    assert session.exec(select(Referral)).first() is None
    # Without a note the referral goes through.
    assert _send(client, net)["note"] is None


def test_a_note_under_a_rotated_key_still_reads(app: FastAPI, client: TestClient, net: Net) -> None:
    created = _send(client, net, note=NOTE)
    newer = Fernet.generate_key().decode("ascii")
    app.state.settings = app.state.settings.model_copy(
        update={"referral_note_key": SecretStr(f"{newer},{NOTE_KEY}")}
    )
    read = client.get(f"/api/v1/referrals/{created['id']}", headers=net.sender).json()
    assert read["note"] == NOTE
    app.state.settings = app.state.settings.model_copy(
        update={"referral_note_key": SecretStr(newer)}
    )
    read = client.get(f"/api/v1/referrals/{created['id']}", headers=net.sender).json()
    assert read["note"] is None
    assert read["note_unreadable"] is True


def test_unknown_needs_and_targets_are_refused(client: TestClient, net: Net) -> None:
    bad_need = client.post(
        "/api/v1/referrals",
        json=referral_body(net.link_id, needs=["no.such.code"]),
        headers=net.sender,
    )
    assert bad_need.status_code == 422
    no_target = client.post(
        "/api/v1/referrals", json=referral_body(uuid.uuid4()), headers=net.sender
    )
    assert no_target.status_code == 404


def test_only_caseworkers_and_justice_staff_of_an_organization_send(
    app: FastAPI, client: TestClient, session: Session, net: Net
) -> None:
    body = referral_body(net.link_id)
    assert client.post("/api/v1/referrals", json=body).status_code == 401
    assert client.post("/api/v1/referrals", json=body, headers=net.steward).status_code == 403
    assert client.post("/api/v1/referrals", json=body, headers=net.receiver).status_code == 403
    orphan = bearer(app, make_user(session, Role.CASEWORKER))
    assert client.post("/api/v1/referrals", json=body, headers=orphan).status_code == 403
    justice_org = make_organization(session, "Fiscalía (ejemplo)")
    justice = bearer(app, make_user(session, Role.JUSTICE, justice_org.id))
    assert client.post("/api/v1/referrals", json=body, headers=justice).status_code == 201


# --- consent ----------------------------------------------------------------------------------


def _today() -> date:
    return datetime.now(UTC).date()


@pytest.mark.parametrize(
    "consent",
    [
        None,
        {"given": False, "given_on": "TODAY"},
        {"given": True, "given_on": "TODAY", "expires_on": "YESTERDAY"},
        {"given": True, "given_on": "TOMORROW"},
        {"given": True, "given_on": "LAST_MONTH", "expires_on": "YESTERDAY"},
    ],
)
def test_a_referral_without_current_consent_is_refused(
    client: TestClient, session: Session, net: Net, consent: dict[str, Any] | None
) -> None:
    days = {
        "TODAY": _today(),
        "YESTERDAY": _today() - timedelta(days=1),
        "TOMORROW": _today() + timedelta(days=1),
        "LAST_MONTH": _today() - timedelta(days=30),
    }
    body = referral_body(net.link_id)
    if consent is None:
        del body["consent"]
    else:
        body["consent"] = {
            key: days[value].isoformat() if isinstance(value, str) else value
            for key, value in consent.items()
        }
    response = client.post("/api/v1/referrals", json=body, headers=net.sender)
    assert response.status_code == 422, response.text
    assert session.exec(select(Referral)).first() is None


def test_consent_expiring_today_is_still_current(client: TestClient, net: Net) -> None:
    today = _today().isoformat()
    created = _send(client, net, consent={"given": True, "given_on": today, "expires_on": today})
    assert created["emergency_override"] is False


def test_an_emergency_override_needs_a_reason_and_an_emergency_and_is_audited(
    client: TestClient, session: Session, net: Net
) -> None:
    body = referral_body(net.link_id, urgency="emergency")
    del body["consent"]
    no_reason = client.post(
        "/api/v1/referrals", json={**body, "emergency_override": {}}, headers=net.sender
    )
    assert no_reason.status_code == 422
    free_text = client.post(
        "/api/v1/referrals",
        json={**body, "emergency_override": {"reason": "ella dijo que sí por teléfono"}},
        headers=net.sender,
    )
    assert free_text.status_code == 422
    routine = client.post(
        "/api/v1/referrals",
        json={**body, "urgency": "routine", "emergency_override": {"reason": "imminent_danger"}},
        headers=net.sender,
    )
    assert routine.status_code == 422
    created = client.post(
        "/api/v1/referrals",
        json={**body, "emergency_override": {"reason": "imminent_danger"}},
        headers=net.sender,
    )
    assert created.status_code == 201, created.text
    data = created.json()
    assert data["emergency_override"] is True
    assert data["override_reason"] == "imminent_danger"
    assert data["consent"]["given"] is False
    entries = session.exec(
        select(AuditEntry).where(
            col(AuditEntry.resource_id) == data["id"], col(AuditEntry.action) == "consent_override"
        )
    ).all()
    assert len(entries) == 1
    assert entries[0].detail == {"reason": "imminent_danger"}
    assert entries[0].endpoint == "POST /api/v1/referrals"


def test_an_override_with_current_consent_is_no_override(client: TestClient, net: Net) -> None:
    created = _send(
        client, net, urgency="emergency", emergency_override={"reason": "imminent_danger"}
    )
    assert created["emergency_override"] is False
    assert created["override_reason"] is None


# --- who sees what ----------------------------------------------------------------------------


def test_inbox_and_outbox_are_isolated_between_organizations(
    app: FastAPI, client: TestClient, session: Session, net: Net
) -> None:
    created = _send(client, net)
    rid = created["id"]

    def ids(headers: dict[str, str], box: str) -> list[str]:
        response = client.get("/api/v1/referrals", params={"box": box}, headers=headers)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["contents"]]

    assert ids(net.sender, "outbox") == [rid]
    assert ids(net.sender, "inbox") == []
    assert ids(net.receiver, "inbox") == [rid]
    assert ids(net.receiver, "outbox") == []
    assert ids(net.stranger, "inbox") == []
    assert ids(net.stranger, "outbox") == []
    # A colleague of the sender sees it too (it is the organization's referral).
    colleague = bearer(app, make_user(session, Role.CASEWORKER, net.sender_org))
    assert ids(colleague, "outbox") == [rid]

    for headers in (net.sender, net.receiver, colleague):
        assert client.get(f"/api/v1/referrals/{rid}", headers=headers).status_code == 200
    stranger_read = client.get(f"/api/v1/referrals/{rid}", headers=net.stranger)
    assert stranger_read.status_code == 404
    unknown = client.get(f"/api/v1/referrals/{uuid.uuid4()}", headers=net.stranger)
    assert unknown.json()["detail"] == stranger_read.json()["detail"]
    assert _move(client, net.stranger, rid, "cancelled").status_code == 404
    assert client.get(f"/api/v1/referrals/{rid}", headers=net.steward).status_code == 403
    assert client.get("/api/v1/referrals", headers=net.steward).status_code == 403
    assert client.get(f"/api/v1/referrals/{rid}").status_code == 401


def test_every_read_of_a_referral_is_audited(
    client: TestClient, session: Session, net: Net
) -> None:
    first = _send(client, net)["id"]
    second = _send(client, net)["id"]

    def reads() -> list[AuditEntry]:
        return list(
            session.exec(
                select(AuditEntry)
                .where(
                    col(AuditEntry.resource_type) == "referral", col(AuditEntry.action) == "read"
                )
                .order_by(col(AuditEntry.seq))
            )
        )

    assert reads() == []
    client.get(f"/api/v1/referrals/{first}", headers=net.receiver)
    client.get("/api/v1/referrals", params={"box": "outbox"}, headers=net.sender)
    entries = reads()
    assert len(entries) == 2
    assert entries[0].resource_id == first
    assert entries[0].endpoint == "GET /api/v1/referrals/{referral_id}"
    assert entries[0].role == "provider"
    assert entries[1].detail is not None
    assert sorted(entries[1].detail["referral_ids"]) == sorted([first, second])
    # A stranger's refused read shows nothing and records no read.
    client.get(f"/api/v1/referrals/{first}", headers=net.stranger)
    assert len(reads()) == 2


# --- the workflow -----------------------------------------------------------------------------


@pytest.mark.parametrize("state", list(Status), ids=lambda s: s.value)
def test_every_transition_legal_and_illegal(
    client: TestClient, session: Session, net: Net, state: Status
) -> None:
    """From each state, every target: the legal ones (by the right side) succeed and are
    recorded with who and when; every other is a 409 that changes nothing."""
    for target in Status:
        if target is Status.SENT:
            continue
        referral = _drive(client, net, state)
        rid = referral["id"]
        side = TRANSITIONS.get((state, target))
        headers = _headers_for(net, target)
        response = _move(client, headers, rid, target.value, reason=_reason_for(target))
        if side is None:
            assert response.status_code == 409, (state, target, response.text)
            after = client.get(f"/api/v1/referrals/{rid}", headers=net.sender).json()
            assert after["status"] == state.value
            assert after["version"] == referral["version"]
            continue
        assert response.status_code == 200, (state, target, response.text)
        moved = response.json()
        assert moved["status"] == target.value
        assert moved["version"] == referral["version"] + 1
        last = moved["history"][-1]
        assert (last["from_status"], last["to_status"]) == (state.value, target.value)
        assert last["actor"].startswith("user:")
        assert last["role"] == ("caseworker" if side is Side.SENDER else "provider")
        # The same legal move by the other side is refused.
        other = _drive(client, net, state)
        wrong = net.receiver if side is Side.SENDER else net.sender
        refused = _move(client, wrong, other["id"], target.value, reason=_reason_for(target))
        assert refused.status_code == 409, (state, target)


def test_transitions_stamp_times_and_a_decline_needs_a_listed_reason(
    client: TestClient, net: Net
) -> None:
    rid = _send(client, net)["id"]
    received = _move(client, net.receiver, rid, "received").json()
    assert received["received_at"] is not None
    assert _move(client, net.receiver, rid, "declined").status_code == 422
    assert _move(client, net.receiver, rid, "declined", reason="she is far").status_code == 422
    declined = _move(client, net.receiver, rid, "declined", reason="not_eligible").json()
    assert declined["decline_reason"] == "not_eligible"
    assert declined["finished_at"] is not None
    other = _drive(client, net, Status.ACCEPTED)
    assert other["accepted_at"] is not None


def test_if_match_stale_is_412_current_and_absent_pass(client: TestClient, net: Net) -> None:
    created = _send(client, net)
    rid = created["id"]
    tag_v1 = client.get(f"/api/v1/referrals/{rid}", headers=net.receiver).headers["ETag"]
    moved = _move(client, net.receiver, rid, "received", if_match=tag_v1)
    assert moved.status_code == 200
    assert moved.headers["ETag"] == f'"{uuid.UUID(rid).hex}-2"'
    stale = _move(client, net.receiver, rid, "accepted", if_match=tag_v1)
    assert stale.status_code == 412
    assert stale.json()["status"] == 412
    assert _move(client, net.receiver, rid, "accepted").status_code == 200


def test_a_concurrent_move_on_a_stale_version_is_refused_not_lost(
    app: FastAPI, session: Session, net: Net, client: TestClient
) -> None:
    """The compare-and-set: a move whose version was overtaken between read and write."""
    rid = uuid.UUID(_send(client, net)["id"])
    receiver = Principal(
        role=Role.PROVIDER, subject="user:receiver", organization_id=net.receiver_org
    )
    policy = referrals.ReferralPolicy.from_settings(app.state.settings)
    referral = session.get(Referral, rid)
    assert referral is not None
    assert referral.version == 1
    # Another writer moves it on after this session read version 1: the identity map still
    # holds version 1, so the move compares against it and must find the row changed.
    session.execute(
        update(Referral)
        .where(col(Referral.id) == rid)
        .values(version=2, status="received")
        .execution_options(synchronize_session=False)
    )
    session.commit()
    with pytest.raises(Conflict, match="changed while"):
        referrals.transition(
            session=session,
            principal=receiver,
            referral_id=rid,
            target=Status.RECEIVED,
            reason=None,
            expected_version=None,
            policy=policy,
        )
    with pytest.raises(PreconditionFailed):
        referrals.transition(
            session=session,
            principal=receiver,
            referral_id=rid,
            target=Status.ACCEPTED,
            reason=None,
            expected_version=1,
            policy=policy,
        )


# --- overdue ----------------------------------------------------------------------------------


def test_overdue_lists_referrals_not_acknowledged_in_time(
    client: TestClient, session: Session, net: Net
) -> None:
    routine = _send(client, net, urgency="routine")["id"]
    emergency = _send(client, net, urgency="emergency")["id"]
    fresh = _send(client, net, urgency="emergency")["id"]
    acknowledged = _send(client, net, urgency="emergency")["id"]
    _move(client, net.receiver, acknowledged, "received")
    three_hours_ago = datetime.now(UTC) - timedelta(hours=3)
    for rid in (routine, emergency, acknowledged):
        session.execute(
            update(Referral)
            .where(col(Referral.id) == uuid.UUID(rid))
            .values(created_at=three_hours_ago)
        )
    session.commit()
    listed = client.get(
        "/api/v1/referrals", params={"box": "inbox", "overdue": "true"}, headers=net.receiver
    ).json()
    assert [item["id"] for item in listed["contents"]] == [emergency]
    assert listed["contents"][0]["overdue"] is True
    session.execute(
        update(Referral)
        .where(col(Referral.id) == uuid.UUID(routine))
        .values(created_at=datetime.now(UTC) - timedelta(hours=25))
    )
    session.commit()
    listed = client.get(
        "/api/v1/referrals", params={"box": "outbox", "overdue": "true"}, headers=net.sender
    ).json()
    assert sorted(item["id"] for item in listed["contents"]) == sorted([routine, emergency])
    assert fresh not in [item["id"] for item in listed["contents"]]


# --- places -----------------------------------------------------------------------------------


def _free_beds(session: Session, link_id: uuid.UUID) -> tuple[float, bool]:
    entry = session.get(SearchEntry, link_id)
    assert entry is not None
    row = session.exec(
        select(ServiceCapacity).where(col(ServiceCapacity.service_id) == entry.service_id)
    ).one()
    session.refresh(row)
    session.refresh(entry)
    return row.available, entry.has_capacity


def test_accepting_an_emergency_takes_a_place_and_finishing_gives_it_back(
    client: TestClient, session: Session, net: Net
) -> None:
    assert _free_beds(session, net.link_id) == (2, True)
    first = _drive(client, net, Status.ACCEPTED, urgency="emergency")
    assert first["place_reserved"] is True
    assert _free_beds(session, net.link_id) == (1, True)
    second = _drive(client, net, Status.ACCEPTED, urgency="emergency")
    # The last place is gone: the search read model says so too.
    assert _free_beds(session, net.link_id) == (0, False)
    third = _drive(client, net, Status.RECEIVED, urgency="emergency")
    full = _move(client, net.receiver, third["id"], "accepted")
    assert full.status_code == 409
    assert "place" in full.json()["detail"]
    # A routine referral takes no place.
    routine = _drive(client, net, Status.ACCEPTED, urgency="routine")
    assert routine["place_reserved"] is False
    # Completing, closing or cancelling gives the place back, never above the maximum.
    _move(client, net.receiver, first["id"], "in_progress")
    done = _move(client, net.receiver, first["id"], "completed").json()
    assert done["place_reserved"] is False
    assert _free_beds(session, net.link_id) == (1, True)
    assert _move(client, net.sender, second["id"], "cancelled").status_code == 200
    assert _free_beds(session, net.link_id) == (2, True)
    assert _move(client, net.receiver, third["id"], "accepted").status_code == 200
    assert _move(client, net.receiver, third["id"], "closed").status_code == 200
    assert _free_beds(session, net.link_id) == (2, True)


# --- retention --------------------------------------------------------------------------------


def test_the_purge_erases_note_and_traits_of_old_finished_referrals_only(
    client: TestClient, session: Session, net: Net
) -> None:
    old_done = _drive(client, net, Status.COMPLETED, note=NOTE)["id"]
    old_cancelled = _drive(client, net, Status.CANCELLED, note=NOTE)["id"]
    recent_done = _drive(client, net, Status.COMPLETED, note=NOTE)["id"]
    old_open = _drive(client, net, Status.IN_PROGRESS, note=NOTE)["id"]
    long_ago = datetime.now(UTC) - timedelta(days=200)
    for rid in (old_done, old_cancelled, old_open):
        session.execute(
            update(Referral)
            .where(col(Referral.id) == uuid.UUID(rid))
            .values(finished_at=long_ago if rid != old_open else None, created_at=long_ago)
        )
    session.commit()
    history_before = len(session.exec(select(ReferralTransition)).all())

    assert referrals.purge(session=session, retention=timedelta(days=180)) == 2
    assert referrals.purge(session=session, retention=timedelta(days=180)) == 0  # idempotent

    for rid in (old_done, old_cancelled):
        read = client.get(f"/api/v1/referrals/{rid}", headers=net.sender).json()
        assert read["traits"] is None
        assert read["note"] is None
        assert read["purged_at"] is not None
        assert read["history"], "the status history remains"
        stored = session.get(Referral, uuid.UUID(rid))
        assert stored is not None
        assert stored.note_ciphertext is None
    for rid in (recent_done, old_open):
        read = client.get(f"/api/v1/referrals/{rid}", headers=net.sender).json()
        assert read["note"] == NOTE
        assert read["traits"] is not None
        assert read["purged_at"] is None
    assert len(session.exec(select(ReferralTransition)).all()) == history_before
    report = client.get("/api/v1/reports/referrals", headers=net.steward).json()
    assert report["total"] is None  # 4 referrals: under the threshold, still counted
    as_csv = client.get("/api/v1/reports/referrals?format=csv", headers=net.steward).text
    assert as_csv.splitlines()[1] == "total,all,,true"


# --- report -----------------------------------------------------------------------------------


def _cells(report: dict[str, Any], dimension: str) -> dict[str, Any]:
    return {c["value"]: c["count"] for c in report["cells"] if c["dimension"] == dimension}


def test_the_report_counts_and_suppresses_small_cells(
    client: TestClient, session: Session, net: Net
) -> None:
    other_link = make_referral_target(session, make_organization(session, "Otro (ejemplo)"))
    proposals = [str(net.link_id), str(other_link)]
    for _ in range(6):
        _drive(client, net, Status.ACCEPTED, match_proposals=proposals)
    _drive(client, net, Status.CANCELLED)
    _drive(client, net, Status.SENT, needs=["protection.shelter.women", "protection.legal_aid"])
    assert client.get("/api/v1/reports/referrals", headers=net.sender).status_code == 403
    response = client.get("/api/v1/reports/referrals", headers=net.steward)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["total"] == 8
    assert report["min_cell"] == 5
    month = datetime.now(UTC).strftime("%Y-%m")
    assert _cells(report, "month") == {month: 8}
    assert _cells(report, "category") == {"protection": 8}
    assert _cells(report, "department") == {"09": 8}
    # accepted 6 is shown; cancelled 1 and sent 1 are under 5: both suppressed.
    assert _cells(report, "outcome") == {"accepted": 6, "cancelled": None, "sent": None}
    assert _cells(report, "time_to_acceptance") == {"under_2h": 6}
    assert _cells(report, "first_proposal_accepted") == {"yes": 6}
    suppressed = [c for c in report["cells"] if c["suppressed"]]
    assert {c["value"] for c in suppressed} == {"cancelled", "sent"}

    as_csv = client.get("/api/v1/reports/referrals", params={"format": "csv"}, headers=net.steward)
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    by_key = {(r["dimension"], r["value"]): r for r in rows}
    assert by_key[("total", "all")]["count"] == "8"
    assert by_key[("outcome", "accepted")]["count"] == "6"
    assert by_key[("outcome", "cancelled")] == {
        "dimension": "outcome",
        "value": "cancelled",
        "count": "",
        "suppressed": "true",
    }


def test_a_single_small_cell_takes_the_next_smallest_with_it() -> None:
    """Secondary suppression: with one suppressed cell and the total shown, the suppressed
    count would be the total minus the others."""
    from collections import Counter

    cells = referrals._cells("outcome", Counter({"accepted": 9, "declined": 6, "closed": 2}), 5)
    shown = {c.value: c.count for c in cells}
    assert shown == {"accepted": 9, "declined": None, "closed": None}


def test_the_first_proposal_is_linked_back(client: TestClient, session: Session, net: Net) -> None:
    other_link = make_referral_target(session, make_organization(session, "Otro (ejemplo)"))
    first = _send(client, net, match_proposals=[str(net.link_id), str(other_link)])
    assert first["first_proposal"] is True
    second = _send(client, net, match_proposals=[str(other_link), str(net.link_id)])
    assert second["first_proposal"] is False
    assert _send(client, net)["first_proposal"] is None
