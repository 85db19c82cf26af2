"""Referral webhooks on both backends: queued with the change (outbox), signed with HMAC-SHA256,
retried with backoff after a failed delivery, abandoned after the last attempt, ids and status
only in the body. A real HTTP receiver listens on 127.0.0.1 in a thread."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from referral_net.db import migrate
from referral_net.db.engine import make_engine
from referral_net.db.models import WebhookDelivery
from referral_net.domain import referrals, referrals_webhooks, taxonomy
from referral_net.domain.referral_workflow import Status
from referral_net.errors import InvalidInput
from referral_net.schemas.referrals import ReferralCreate
from referral_net.security.roles import Principal, Role
from referral_net.settings import Settings
from tests.conftest import make_backend_settings, unavailable
from tests.factories import bearer, make_organization, make_referral_target, make_user

pytestmark = pytest.mark.db
SECRET = "webhook-test-secret-0123456789abcdef0123"
STEWARD = Principal(role=Role.STEWARD, subject="user:steward")
POLICY = referrals.ReferralPolicy.from_settings(Settings())


@dataclass
class Receiver:
    """A local HTTP endpoint that answers the queued statuses in turn, then 204."""

    answers: list[int] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """The receiver, serving on a free loopback port until the test ends."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            state.requests.append((dict(self.headers.items()), self.rfile.read(length)))
            self.send_response(state.answers.pop(0) if state.answers else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Keep the test output quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(params=["spatialite", "postgis"])
def engine_of_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh migrated database of each backend (the worker opens its own sessions)."""
    backend = str(request.param)
    try:
        settings = make_backend_settings(backend, tmp_path, suffix="_webhooks")
        migrate.upgrade(settings)
    except Exception as exc:
        unavailable(request, backend, exc)
        raise
    engine = make_engine(settings)
    with Session(engine) as session:
        taxonomy.load_taxonomy(session=session)
        session.commit()
    yield engine
    engine.dispose()


@dataclass
class Scene:
    """A sender and a receiving organization with a webhook, and a referral body."""

    sender: Principal
    receiver: Principal
    body: ReferralCreate


def _scene(engine: Engine, url: str) -> Scene:
    with Session(engine, expire_on_commit=False) as session:
        sender_org = make_organization(session, "Defensoría (ejemplo)")
        receiver_org = make_organization(session, "Refugio (ejemplo)")
        link_id = make_referral_target(session, receiver_org)
        referrals_webhooks.set_webhook(
            session=session,
            principal=STEWARD,
            organization_id=receiver_org.id,
            url=url,
            secret=SECRET,
        )
    return Scene(
        sender=Principal(role=Role.CASEWORKER, subject="user:s", organization_id=sender_org.id),
        receiver=Principal(role=Role.PROVIDER, subject="user:r", organization_id=receiver_org.id),
        body=ReferralCreate.model_validate(
            {
                "service_at_location_id": str(link_id),
                "needs": ["protection.shelter.women"],
                "traits": {"age": 30, "languages": ["mam"]},
                "consent": {"given": True, "given_on": datetime.now(UTC).date().isoformat()},
            }
        ),
    )


def _deliveries(engine: Engine) -> list[WebhookDelivery]:
    with Session(engine) as session:
        return list(session.exec(select(WebhookDelivery).order_by(col(WebhookDelivery.created_at))))


def _check_signature(headers: dict[str, str], body: bytes) -> None:
    timestamp = headers[referrals_webhooks.TIMESTAMP_HEADER]
    expected = hmac.new(
        SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    assert headers[referrals_webhooks.SIGNATURE_HEADER] == f"sha256={expected}"
    assert abs(int(timestamp) - time.time()) < 600


def test_a_failed_delivery_is_retried_with_backoff_and_signed(
    engine_of_backend: Engine, receiver: Receiver
) -> None:
    engine = engine_of_backend
    scene = _scene(engine, receiver.url)
    with Session(engine, expire_on_commit=False) as session:
        created = referrals.create(
            session=session, principal=scene.sender, body=scene.body, policy=POLICY
        )
    [queued] = _deliveries(engine)
    assert queued.body["referral_id"] == str(created.id)
    assert queued.body["status"] == "sent"

    receiver.answers = [500]
    policy = referrals_webhooks.DeliveryPolicy(
        max_attempts=5, backoff=timedelta(seconds=30), timeout_seconds=5
    )
    assert referrals_webhooks.deliver_due(engine=engine, policy=policy) == (0, 1)
    [failed] = _deliveries(engine)
    assert failed.attempts == 1
    assert failed.last_status == 500
    assert failed.delivered_at is None
    assert failed.next_attempt_at > datetime.now(UTC) + timedelta(seconds=20)
    # Not due yet: nothing is sent.
    assert referrals_webhooks.deliver_due(engine=engine, policy=policy) == (0, 0)
    later = datetime.now(UTC) + timedelta(seconds=31)
    assert referrals_webhooks.deliver_due(engine=engine, policy=policy, now=later) == (1, 0)
    [delivered] = _deliveries(engine)
    assert delivered.attempts == 2
    assert delivered.delivered_at is not None
    assert referrals_webhooks.deliver_due(engine=engine, policy=policy, now=later) == (0, 0)

    assert len(receiver.requests) == 2
    first, second = receiver.requests
    assert first[1] == second[1]
    for headers, body in receiver.requests:
        _check_signature(headers, body)
        payload = json.loads(body)
        # Ids and the status only: never traits, notes or the case code.
        assert set(payload) == {"event", "referral_id", "status", "version", "occurred_at"}
        assert payload["event"] == "referral.sent"
        assert b"mam" not in body
    # A tampered body fails the check.
    with pytest.raises(AssertionError):
        _check_signature(first[0], first[1].replace(b"sent", b"acc"))


def test_a_change_notifies_the_other_organization_and_a_refused_change_queues_nothing(
    engine_of_backend: Engine, receiver: Receiver
) -> None:
    engine = engine_of_backend
    scene = _scene(engine, receiver.url)
    with Session(engine, expire_on_commit=False) as session:
        created = referrals.create(
            session=session, principal=scene.sender, body=scene.body, policy=POLICY
        )
        # The sender cancels: the receiving organization (with a webhook) hears of it.
        referrals.transition(
            session=session,
            principal=scene.sender,
            referral_id=created.id,
            target=Status.CANCELLED,
            reason="sent_in_error",
            expected_version=None,
            policy=POLICY,
        )
        with pytest.raises(InvalidInput):
            referrals.create(
                session=session,
                principal=scene.sender,
                body=scene.body.model_copy(update={"consent": None}),
                policy=POLICY,
            )
        session.rollback()
    bodies = [d.body for d in _deliveries(engine)]
    assert [(b["event"], b["status"], b["version"]) for b in bodies] == [
        ("referral.sent", "sent", 1),
        ("referral.changed", "cancelled", 2),
    ]


def test_a_delivery_is_abandoned_after_the_last_attempt(
    engine_of_backend: Engine, receiver: Receiver
) -> None:
    engine = engine_of_backend
    scene = _scene(engine, receiver.url)
    with Session(engine, expire_on_commit=False) as session:
        referrals.create(session=session, principal=scene.sender, body=scene.body, policy=POLICY)
    receiver.answers = [503, 503, 503]
    policy = referrals_webhooks.DeliveryPolicy(
        max_attempts=3, backoff=timedelta(seconds=1), timeout_seconds=5
    )
    when = datetime.now(UTC)
    for _ in range(5):
        when += timedelta(hours=1)
        referrals_webhooks.deliver_due(engine=engine, policy=policy, now=when)
    [abandoned] = _deliveries(engine)
    assert abandoned.attempts == 3
    assert abandoned.abandoned_at is not None
    assert abandoned.delivered_at is None
    assert len(receiver.requests) == 3


def test_an_unreachable_receiver_counts_as_a_failed_attempt(
    engine_of_backend: Engine, receiver: Receiver
) -> None:
    engine = engine_of_backend
    scene = _scene(engine, "http://127.0.0.1:9/nothing-listens-here")
    with Session(engine, expire_on_commit=False) as session:
        referrals.create(session=session, principal=scene.sender, body=scene.body, policy=POLICY)
    policy = referrals_webhooks.DeliveryPolicy(
        max_attempts=3, backoff=timedelta(seconds=10), timeout_seconds=2
    )
    assert referrals_webhooks.deliver_due(engine=engine, policy=policy) == (0, 1)
    [failed] = _deliveries(engine)
    assert failed.attempts == 1
    assert failed.last_status is None


def test_the_worker_thread_delivers_the_queue(
    engine_of_backend: Engine, receiver: Receiver
) -> None:
    engine = engine_of_backend
    scene = _scene(engine, receiver.url)
    with Session(engine, expire_on_commit=False) as session:
        referrals.create(session=session, principal=scene.sender, body=scene.body, policy=POLICY)
    worker = referrals_webhooks.WebhookWorker(engine, Settings(), poll_seconds=0.05)
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
    assert len(receiver.requests) == 1
    [delivery] = _deliveries(engine)
    assert delivery.delivered_at is not None


def test_stewards_set_and_remove_webhooks(
    app: FastAPI, client: TestClient, session: Session
) -> None:
    org = make_organization(session, "Refugio (ejemplo)")
    steward = bearer(app, make_user(session, Role.STEWARD))
    provider = bearer(app, make_user(session, Role.PROVIDER, org.id))
    path = f"/api/v1/referral-webhooks/{org.id}"
    body = {"url": "https://intake.example.org/hook", "secret": SECRET}
    assert client.put(path, json=body, headers=provider).status_code == 403
    assert client.put(path, json={**body, "secret": "short"}, headers=steward).status_code == 422
    assert client.put(path, json={**body, "url": "ftp://x"}, headers=steward).status_code == 422
    missing = f"/api/v1/referral-webhooks/{uuid.uuid4()}"
    assert client.put(missing, json=body, headers=steward).status_code == 404
    response = client.put(path, json=body, headers=steward)
    assert response.status_code == 200, response.text
    assert response.json()["url"] == body["url"]
    assert "secret" not in response.json()
    assert client.delete(path, headers=steward).status_code == 204
    assert client.delete(path, headers=steward).status_code == 404
