"""Referral webhooks: per-organization URL and secret, and the worker that delivers the queue.

Outbox pattern: ``domain/referrals.py`` writes a ``webhook_delivery`` row in the same transaction
as the change it reports, so a crash loses nothing and a rolled-back change sends nothing. A
worker thread (started in ``main.py``'s lifespan, off in tests) POSTs each due row, signed::

    X-Referral-Net-Timestamp: <unix seconds>
    X-Referral-Net-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>

A 2xx marks it delivered; anything else (an error status, a refused connection, a timeout) is
retried after ``backoff * 2**(attempts - 1)`` until ``max_attempts``, then abandoned (kept for
the steward). The body holds the event, the referral id, its status and version: never traits
or notes. Delivery is at least once: receivers should ignore a repeated (referral_id, version).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx2 as httpx
import orjson
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from referral_net.db.engine import write_session
from referral_net.db.models import Organization, ReferralWebhook, WebhookDelivery
from referral_net.domain import audit
from referral_net.errors import NotFound
from referral_net.security.roles import Principal
from referral_net.settings import Settings

logger = logging.getLogger("referral_net.webhooks")
SIGNATURE_HEADER = "X-Referral-Net-Signature"
TIMESTAMP_HEADER = "X-Referral-Net-Timestamp"
POLL_SECONDS = 2.0
BATCH = 20
RESOURCE = "referral_webhook"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for one body sent at ``timestamp`` (unix seconds)."""
    digest = hmac.new(
        secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256
    ).hexdigest()
    return f"sha256={digest}"


def set_webhook(
    *, session: Session, principal: Principal, organization_id: uuid.UUID, url: str, secret: str
) -> ReferralWebhook:
    """Set (or replace) an organization's webhook; audited (the secret never enters the trail)."""
    if session.get(Organization, organization_id) is None:
        raise NotFound("No such organization.")
    hook = session.get(ReferralWebhook, organization_id)
    now = datetime.now(UTC)
    if hook is None:
        hook = ReferralWebhook(
            organization_id=organization_id, url=url, secret=secret, created_at=now
        )
    else:
        hook.url, hook.secret, hook.created_at = url, secret, now
    session.add(hook)
    session.flush()
    audit.record_write(
        session=session,
        actor=principal.audit_name,
        action="update",
        resource_type=RESOURCE,
        resource_id=organization_id,
        fields=["url", "secret"],
    )
    session.commit()
    return hook


def delete_webhook(*, session: Session, principal: Principal, organization_id: uuid.UUID) -> None:
    """Remove an organization's webhook (queued deliveries still go to the URL they named)."""
    hook = session.get(ReferralWebhook, organization_id)
    if hook is None:
        raise NotFound("That organization has no webhook.")
    session.delete(hook)
    session.flush()
    audit.record_write(
        session=session,
        actor=principal.audit_name,
        action="delete",
        resource_type=RESOURCE,
        resource_id=organization_id,
        fields=["url", "secret"],
    )
    session.commit()


@dataclass(frozen=True)
class DeliveryPolicy:
    """How deliveries are retried."""

    max_attempts: int
    backoff: timedelta
    timeout_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryPolicy:
        """The policy of these settings."""
        return cls(
            max_attempts=settings.referral_webhook_max_attempts,
            backoff=timedelta(seconds=settings.referral_webhook_backoff_seconds),
            timeout_seconds=settings.referral_webhook_timeout_seconds,
        )


def _post(delivery: WebhookDelivery, secret: str, timeout: float) -> int | None:
    """POST one delivery; its HTTP status, or None when no answer came."""
    body = orjson.dumps(delivery.body, option=orjson.OPT_SORT_KEYS)
    timestamp = str(int(datetime.now(UTC).timestamp()))
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }
    try:
        response = httpx.post(delivery.url, content=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        logger.warning("webhook delivery %s failed: %s", delivery.id, type(exc).__name__)
        return None
    return response.status_code


def deliver_due(
    *, engine: Engine, policy: DeliveryPolicy, now: datetime | None = None
) -> tuple[int, int]:
    """Try every due delivery once; returns (delivered, failed).

    Rows are read, then each POST runs outside any transaction (a slow receiver must not hold
    SQLite's write lock), and its outcome is written in a short write transaction of its own.
    """
    now = now or datetime.now(UTC)
    with Session(engine, expire_on_commit=False) as session:
        due = list(
            session.exec(
                select(WebhookDelivery)
                .where(
                    col(WebhookDelivery.delivered_at).is_(None),
                    col(WebhookDelivery.abandoned_at).is_(None),
                    col(WebhookDelivery.next_attempt_at) <= now,
                )
                .order_by(col(WebhookDelivery.next_attempt_at))
                .limit(BATCH)
            )
        )
        secrets_by_org = {
            hook.organization_id: hook.secret
            for hook in session.exec(
                select(ReferralWebhook).where(
                    col(ReferralWebhook.organization_id).in_({d.organization_id for d in due})
                )
            )
        }
    delivered = failed = 0
    for delivery in due:
        secret = secrets_by_org.get(delivery.organization_id)
        status = None if secret is None else _post(delivery, secret, policy.timeout_seconds)
        ok = status is not None and 200 <= status < 300
        with write_session(engine) as session:
            row = session.get(WebhookDelivery, delivery.id)
            if row is None or row.delivered_at is not None:
                continue
            row.attempts += 1
            row.last_status = status
            finished = datetime.now(UTC)
            if ok:
                row.delivered_at = finished
                delivered += 1
            else:
                failed += 1
                if secret is None or row.attempts >= policy.max_attempts:
                    row.abandoned_at = finished
                else:
                    row.next_attempt_at = finished + policy.backoff * (2 ** (row.attempts - 1))
            session.add(row)
            session.commit()
    return delivered, failed


class WebhookWorker:
    """The application's background thread that delivers queued referral webhooks."""

    def __init__(
        self, engine: Engine, settings: Settings, *, poll_seconds: float = POLL_SECONDS
    ) -> None:
        """Prepare a worker over ``engine``; nothing runs before :meth:`start`."""
        self.engine = engine
        self.policy = DeliveryPolicy.from_settings(settings)
        self._poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread."""
        self._thread = threading.Thread(target=self._loop, name="referral-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to end after its current round, and wait up to ``timeout`` seconds."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                deliver_due(engine=self.engine, policy=self.policy)
            except Exception as exc:  # noqa: BLE001 - the thread must outlive a bad moment
                logger.error("webhook worker: %s", type(exc).__name__)
            self._stop.wait(self._poll_seconds)


def start_webhook_worker(engine: Engine, settings: Settings) -> WebhookWorker | None:
    """The started worker of this process, or None where ``referral_webhook_worker`` is off."""
    if not settings.referral_webhook_worker:
        return None
    worker = WebhookWorker(engine, settings)
    worker.start()
    return worker
