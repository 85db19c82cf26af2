"""Referrals (issue 17): create, read, list, move along the workflow, purge, report.

Who sees what: a referral is visible to the staff of its sending organization (outbox) and of its
receiving organization (inbox), nobody else (404 by id, so a stranger cannot even tell that it
exists). Stewards see aggregates only (:func:`report`). Every read of a referral is audited.

Concurrency: a transition is a compare-and-set on ``version`` (the ETag): it updates the row only
if the version it read is still current, so two writers never both win. Accepting an emergency
referral into a service that tracks capacity takes one place in the same transaction, under a row
lock on the service's capacity rows (``SELECT ... FOR UPDATE`` on PostGIS; on SpatiaLite a write
transaction holds the database's one write lock from its first statement, ``BEGIN IMMEDIATE``).
The search read model follows the capacity change through its session hooks.

Webhooks: each change queues a signed POST (``domain/referrals_webhooks.py``) to the other
organization, in the same transaction (outbox pattern). The body holds ids and the status only.
"""

from __future__ import annotations

import base64
import csv
import io
import secrets
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr
from sqlalchemy import and_, func, or_, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from referral_net.db.engine import begin_write
from referral_net.db.models import (
    Location,
    Referral,
    ReferralTransition,
    ReferralWebhook,
    Service,
    ServiceAtLocation,
    ServiceCapacity,
    WebhookDelivery,
)
from referral_net.domain import audit, taxonomy
from referral_net.domain.referral_workflow import (
    FINAL,
    PURGEABLE,
    RELEASES_PLACE,
    Consent,
    Side,
    Status,
    check_reason,
    check_transition,
    consent_is_current,
)
from referral_net.errors import Conflict, Forbidden, InvalidInput, NotFound, PreconditionFailed
from referral_net.schemas.referrals import (
    Box,
    ConsentRead,
    ReferralCreate,
    ReferralRead,
    ReferralReport,
    ReferralTraits,
    ReportCell,
    TransitionRead,
)
from referral_net.security.roles import Principal, Role
from referral_net.settings import Settings
from referral_net.vocab import RecordStatus

RESOURCE = "referral"
READ = "read"
CONSENT_OVERRIDE = "consent_override"
# Staff who work referrals: caseworkers and justice staff send; any of them may receive.
SENDER_ROLES = frozenset({Role.CASEWORKER, Role.JUSTICE})
REFERRAL_ROLES = frozenset({Role.CASEWORKER, Role.JUSTICE, Role.PROVIDER})
# Case codes: 80 random bits in Crockford-like base32 groups, e.g. RN-7K3Q-M2XD-9PWA-4HTC.
_CASE_CODE_BYTES = 10
EMERGENCY = "emergency"
_ACCEPTANCE_BUCKETS = ((2.0, "under_2h"), (24.0, "2h_to_24h"), (168.0, "1d_to_7d"))


@dataclass(frozen=True)
class ReferralPolicy:
    """The settings referrals follow, read once per request."""

    note_key: SecretStr | None
    ack_after: timedelta
    ack_emergency_after: timedelta
    retention: timedelta
    min_cell: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ReferralPolicy:
        """The policy of these settings."""
        return cls(
            note_key=settings.referral_note_key,
            ack_after=timedelta(hours=settings.referral_ack_hours),
            ack_emergency_after=timedelta(hours=settings.referral_ack_emergency_hours),
            retention=timedelta(days=settings.referral_retention_days),
            min_cell=settings.referral_report_min_cell,
        )


# --- small pieces -------------------------------------------------------------------------------


def make_case_code() -> str:
    """A fresh pseudonymous case code: 80 bits from ``secrets``, not guessable or sequential."""
    raw = base64.b32encode(secrets.token_bytes(_CASE_CODE_BYTES)).decode("ascii")
    return "RN-" + "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def _cipher(key: SecretStr | None) -> MultiFernet | None:
    if key is None:
        return None
    parts = [part.strip() for part in key.get_secret_value().split(",") if part.strip()]
    return MultiFernet([Fernet(part) for part in parts])


def encrypt_note(key: SecretStr | None, note: str) -> bytes:
    """Encrypt a note with the first key; without a key a note is refused (422), never stored
    in clear and never derived from another secret (docs/referrals.md)."""
    cipher = _cipher(key)
    if cipher is None:
        raise InvalidInput(
            "This server keeps no referral notes: REFERRAL_NET_REFERRAL_NOTE_KEY is not set. "
            "Send the referral without a note.",
            errors=[{"field": "body.note", "message": "notes are disabled", "type": "value_error"}],
        )
    return cipher.encrypt(note.encode("utf-8"))


def decrypt_note(key: SecretStr | None, ciphertext: bytes | None) -> tuple[str | None, bool]:
    """(note, unreadable): the note in clear, or None and whether a stored note was unreadable."""
    if ciphertext is None:
        return None, False
    cipher = _cipher(key)
    if cipher is None:
        return None, True
    try:
        return cipher.decrypt(ciphertext).decode("utf-8"), False
    except InvalidToken:
        return None, True


def _org_of(principal: Principal) -> uuid.UUID:
    """The caller's organization; staff without one cannot work referrals."""
    if principal.role not in REFERRAL_ROLES:
        raise Forbidden("Your role may not work referrals.")
    if principal.organization_id is None:
        raise Forbidden("Your account belongs to no organization; referrals need one.")
    return principal.organization_id


def _side(principal: Principal, referral: Referral) -> Side | None:
    organization_id = principal.organization_id
    if principal.role not in REFERRAL_ROLES or organization_id is None:
        return None
    if organization_id == referral.receiver_organization_id:
        return Side.RECEIVER
    if organization_id == referral.sender_organization_id:
        return Side.SENDER
    return None


def _endpoint(session: Session) -> str:
    context = audit.current(session)
    return context.endpoint if context else audit.NO_ENDPOINT


def _audit(
    session: Session,
    principal: Principal,
    *,
    action: str,
    referral_id: uuid.UUID | None,
    detail: dict[str, Any] | None = None,
    when: datetime | None = None,
) -> None:
    audit.append(
        session=session,
        actor=principal.audit_name,
        role=principal.role.value,
        action=action,
        resource_type=RESOURCE,
        resource_id=referral_id,
        endpoint=_endpoint(session),
        detail=detail,
        when=when,
    )


def _transition_row(
    principal: Principal,
    referral_id: uuid.UUID,
    *,
    from_status: Status | None,
    to_status: Status,
    reason: str | None,
    when: datetime,
) -> ReferralTransition:
    return ReferralTransition(
        referral_id=referral_id,
        from_status=None if from_status is None else from_status.value,
        to_status=to_status.value,
        actor=principal.audit_name,
        role=principal.role.value,
        organization_id=principal.organization_id,
        reason=reason,
        occurred_at=when,
    )


def _enqueue_webhook(
    session: Session, *, organization_id: uuid.UUID, referral: Referral, event: str, when: datetime
) -> None:
    """Queue the event for the organization's webhook, if it has one (same transaction)."""
    hook = session.get(ReferralWebhook, organization_id)
    if hook is None:
        return
    session.add(
        WebhookDelivery(
            organization_id=organization_id,
            url=hook.url,
            body={
                "event": event,
                "referral_id": str(referral.id),
                "status": referral.status,
                "version": referral.version,
                "occurred_at": when.isoformat(),
            },
            next_attempt_at=when,
            created_at=when,
        )
    )


# --- create ------------------------------------------------------------------------------------


def _target(session: Session, link_id: uuid.UUID) -> tuple[ServiceAtLocation, Service, Location]:
    link = session.get(ServiceAtLocation, link_id)
    service = session.get(Service, link.service_id) if link else None
    location = session.get(Location, link.location_id) if link else None
    if link is None or service is None or location is None:
        raise NotFound("No such service at location.")
    if service.status != RecordStatus.ACTIVE or location.status == RecordStatus.DEFUNCT:
        raise Conflict("That service at that location does not take referrals now.")
    return link, service, location


def create(
    *,
    session: Session,
    principal: Principal,
    body: ReferralCreate,
    policy: ReferralPolicy,
    now: datetime | None = None,
) -> Referral:
    """Send a referral from the caller's organization (caseworkers and justice staff).

    Refused without current consent unless the referral is an emergency with an override
    reason; an override is audited on its own. A note needs the note key (else 422).
    """
    now = now or datetime.now(UTC)
    sender = _org_of(principal)
    if principal.role not in SENDER_ROLES:
        raise Forbidden("Only caseworkers and justice staff send referrals.")
    link, service, location = _target(session, body.service_at_location_id)
    taxonomy.resolve_codes(session=session, codes=body.needs, field="body.needs")
    consent = body.consent
    current = consent_is_current(
        None
        if consent is None
        else Consent(given=consent.given, given_on=consent.given_on, expires_on=consent.expires_on),
        now.date(),
    )
    override = body.emergency_override
    if not current and override is None:
        raise InvalidInput(
            "A referral needs the person's current consent (given, dated, not expired), or an "
            "emergency override with a reason.",
            errors=[{"field": "body.consent", "message": "no current consent", "type": "consent"}],
        )
    ciphertext = None if body.note is None else encrypt_note(policy.note_key, body.note)
    referral = Referral(
        case_code=make_case_code(),
        sender_organization_id=sender,
        receiver_organization_id=service.organization_id,
        service_id=service.id,
        location_id=location.id,
        service_at_location_id=link.id,
        department_code=location.department_code,
        need_codes=list(body.needs),
        urgency=body.urgency,
        traits=body.traits.model_dump(mode="json"),
        consent_given=bool(consent and consent.given),
        consent_scope=consent.scope if consent else None,
        consent_date=consent.given_on if consent else None,
        consent_expires=consent.expires_on if consent else None,
        consent_recorded_by=principal.audit_name if consent else None,
        emergency_override=override is not None and not current,
        override_reason=override.reason if override is not None and not current else None,
        note_ciphertext=ciphertext,
        match_proposals=None
        if body.match_proposals is None
        else [str(value) for value in body.match_proposals],
        status=Status.SENT.value,
        created_by=principal.audit_name,
        created_at=now,
        version=1,
        last_modified=now,
    )
    session.add(referral)
    session.flush()
    session.add(
        _transition_row(
            principal, referral.id, from_status=None, to_status=Status.SENT, reason=None, when=now
        )
    )
    audit.record_write(
        session=session,
        actor=principal.audit_name,
        action="create",
        resource_type=RESOURCE,
        resource_id=referral.id,
        fields=["status", "needs", "traits", "consent", *(["note"] if ciphertext else [])],
        when=now,
    )
    if referral.emergency_override:
        _audit(
            session,
            principal,
            action=CONSENT_OVERRIDE,
            referral_id=referral.id,
            detail={"reason": referral.override_reason},
            when=now,
        )
    _enqueue_webhook(
        session,
        organization_id=referral.receiver_organization_id,
        referral=referral,
        event="referral.sent",
        when=now,
    )
    session.commit()
    return referral


# --- read --------------------------------------------------------------------------------------


def visible(*, session: Session, principal: Principal, referral_id: uuid.UUID) -> Referral:
    """The referral, if the caller's organization sent or received it; else 404 (not 403)."""
    referral = session.get(Referral, referral_id)
    if referral is None or _side(principal, referral) is None:
        raise NotFound("No such referral.")
    return referral


def audit_reads(
    *, session: Session, principal: Principal, referral_ids: Sequence[uuid.UUID]
) -> None:
    """Record that the caller read these referrals, and commit (reads have no write to ride
    along with): one entry for one referral, one entry naming every id for a list page."""
    if not referral_ids:
        return
    begin_write(session)
    if len(referral_ids) == 1:
        _audit(session, principal, action=READ, referral_id=referral_ids[0])
    else:
        _audit(
            session,
            principal,
            action=READ,
            referral_id=None,
            detail={"referral_ids": [str(value) for value in referral_ids]},
        )
    session.commit()


def is_overdue(referral: Referral, policy: ReferralPolicy, now: datetime) -> bool:
    """Still ``sent`` (not acknowledged) longer than the urgency's acknowledgement time."""
    if referral.status != Status.SENT:
        return False
    limit = policy.ack_emergency_after if referral.urgency == EMERGENCY else policy.ack_after
    return now - referral.created_at > limit


def _overdue_clause(policy: ReferralPolicy, now: datetime) -> Any:
    return and_(
        col(Referral.status) == Status.SENT.value,
        or_(
            and_(
                col(Referral.urgency) == EMERGENCY,
                col(Referral.created_at) < now - policy.ack_emergency_after,
            ),
            and_(
                col(Referral.urgency) != EMERGENCY,
                col(Referral.created_at) < now - policy.ack_after,
            ),
        ),
    )


def history(*, session: Session, referral_id: uuid.UUID) -> list[ReferralTransition]:
    """The status history of one referral, oldest first."""
    return list(
        session.exec(
            select(ReferralTransition)
            .where(col(ReferralTransition.referral_id) == referral_id)
            .order_by(col(ReferralTransition.occurred_at), col(ReferralTransition.id))
        )
    )


def shape(
    referral: Referral,
    *,
    policy: ReferralPolicy,
    now: datetime,
    steps: Iterable[ReferralTransition] = (),
) -> ReferralRead:
    """The referral as its two organizations see it (note decrypted)."""
    note, unreadable = decrypt_note(policy.note_key, referral.note_ciphertext)
    proposals = referral.match_proposals
    first = None
    if proposals:
        first = str(referral.service_at_location_id) == proposals[0]
    return ReferralRead(
        id=referral.id,
        case_code=referral.case_code,
        status=referral.status,
        version=referral.version,
        urgency=referral.urgency,
        needs=list(referral.need_codes),
        sender_organization_id=referral.sender_organization_id,
        receiver_organization_id=referral.receiver_organization_id,
        service_id=referral.service_id,
        location_id=referral.location_id,
        service_at_location_id=referral.service_at_location_id,
        traits=None if referral.traits is None else ReferralTraits.model_validate(referral.traits),
        consent=ConsentRead(
            given=referral.consent_given,
            scope=referral.consent_scope,
            given_on=referral.consent_date,
            expires_on=referral.consent_expires,
            recorded_by=referral.consent_recorded_by,
        ),
        emergency_override=referral.emergency_override,
        override_reason=referral.override_reason,
        note=note,
        note_unreadable=unreadable,
        match_proposals=None if proposals is None else [uuid.UUID(p) for p in proposals],
        first_proposal=first,
        decline_reason=referral.decline_reason,
        place_reserved=referral.reserved_unit_id is not None,
        overdue=is_overdue(referral, policy, now),
        created_by=referral.created_by,
        created_at=referral.created_at,
        received_at=referral.received_at,
        accepted_at=referral.accepted_at,
        finished_at=referral.finished_at,
        purged_at=referral.purged_at,
        history=[
            TransitionRead(
                from_status=step.from_status,
                to_status=step.to_status,
                actor=step.actor,
                role=step.role,
                reason=step.reason,
                occurred_at=step.occurred_at,
            )
            for step in steps
        ],
    )


def list_box(
    *,
    session: Session,
    principal: Principal,
    box: Box,
    policy: ReferralPolicy,
    status: str | None = None,
    overdue: bool = False,
    offset: int = 0,
    limit: int = 20,
    now: datetime | None = None,
) -> tuple[list[Referral], int]:
    """One page of the caller's inbox (received) or outbox (sent), newest first, and the total."""
    now = now or datetime.now(UTC)
    organization_id = _org_of(principal)
    column = (
        Referral.receiver_organization_id if box == "inbox" else Referral.sender_organization_id
    )
    conditions: list[Any] = [col(column) == organization_id]
    if status is not None:
        conditions.append(col(Referral.status) == status)
    if overdue:
        conditions.append(_overdue_clause(policy, now))
    total = session.exec(select(func.count()).select_from(Referral).where(*conditions)).one()
    rows = list(
        session.exec(
            select(Referral)
            .where(*conditions)
            .order_by(col(Referral.created_at).desc(), col(Referral.id))
            .offset(offset)
            .limit(limit)
        )
    )
    return rows, int(total)


# --- transitions and places --------------------------------------------------------------------


def _reserve_place(session: Session, service_id: uuid.UUID, now: datetime) -> uuid.UUID | None:
    """Take one free place of a service that tracks capacity; None if it tracks none.

    The capacity rows are locked first (``FOR UPDATE`` on PostGIS; SQLite has the write lock
    already), so two acceptances never both take the last place. No free place is a 409.
    """
    rows = list(
        session.exec(
            select(ServiceCapacity)
            .where(col(ServiceCapacity.service_id) == service_id)
            .order_by(col(ServiceCapacity.id))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )
    if not rows:
        return None
    for row in rows:
        if row.available >= 1:
            row.available -= 1
            row.updated = now
            session.add(row)
            session.flush()
            return row.unit_id
    raise Conflict("The service has no free place left; it cannot accept this emergency now.")


def _release_place(session: Session, referral: Referral, now: datetime) -> None:
    """Give back the place an accepted emergency referral held (never above the maximum)."""
    if referral.reserved_unit_id is None:
        return
    row = session.exec(
        select(ServiceCapacity)
        .where(
            col(ServiceCapacity.service_id) == referral.service_id,
            col(ServiceCapacity.unit_id) == referral.reserved_unit_id,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if row is None:  # the provider has since removed that unit: nothing to give back
        return
    freed = row.available + 1
    row.available = freed if row.maximum is None else min(freed, row.maximum)
    row.updated = now
    session.add(row)
    session.flush()


def transition(
    *,
    session: Session,
    principal: Principal,
    referral_id: uuid.UUID,
    target: Status,
    reason: str | None,
    expected_version: int | None,
    policy: ReferralPolicy,
    now: datetime | None = None,
) -> Referral:
    """Move a referral along the workflow (see ``referral_workflow``) and commit.

    ``expected_version`` is the If-Match version (412 when stale); without it the move is still
    a compare-and-set on the version read here, so a concurrent move is a 409, never lost.
    """
    now = now or datetime.now(UTC)
    referral = visible(session=session, principal=principal, referral_id=referral_id)
    side = _side(principal, referral)
    assert side is not None  # visible() checked it
    read_version = referral.version
    if expected_version is not None and expected_version != read_version:
        raise PreconditionFailed(
            "The referral has changed since you read it; read it again.",
            headers={"ETag": f'"{referral.id.hex}-{read_version}"'},
        )
    current = Status(referral.status)
    check_transition(current, target, side)
    check_reason(target, reason)
    values: dict[str, Any] = {
        "status": target.value,
        "version": read_version + 1,
        "last_modified": now,
    }
    if target is Status.RECEIVED:
        values["received_at"] = now
    if target is Status.ACCEPTED:
        values["accepted_at"] = now
        if referral.urgency == EMERGENCY:
            values["reserved_unit_id"] = _reserve_place(session, referral.service_id, now)
    if target is Status.DECLINED:
        values["decline_reason"] = reason
    if target in FINAL:
        values["finished_at"] = now
    if target in RELEASES_PLACE and referral.reserved_unit_id is not None:
        _release_place(session, referral, now)
        values["reserved_unit_id"] = None
    moved = session.execute(
        update(Referral)
        .where(col(Referral.id) == referral.id, col(Referral.version) == read_version)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if getattr(moved, "rowcount", 0) != 1:
        session.rollback()
        if expected_version is not None:
            raise PreconditionFailed("The referral has changed since you read it; read it again.")
        raise Conflict("The referral changed while this move was made; read it again.")
    session.add(
        _transition_row(
            principal, referral.id, from_status=current, to_status=target, reason=reason, when=now
        )
    )
    audit.record_write(
        session=session,
        actor=principal.audit_name,
        action="transition",
        resource_type=RESOURCE,
        resource_id=referral.id,
        fields=sorted(values),
        when=now,
    )
    session.expire(referral)
    session.flush()
    other = (
        referral.sender_organization_id
        if side is Side.RECEIVER
        else referral.receiver_organization_id
    )
    _enqueue_webhook(
        session, organization_id=other, referral=referral, event="referral.changed", when=now
    )
    session.commit()
    session.refresh(referral)
    return referral


# --- retention ---------------------------------------------------------------------------------


def purge(*, session: Session, retention: timedelta, now: datetime | None = None) -> int:
    """Erase note and traits of referrals finished longer than ``retention`` ago; commit.

    Idempotent: a purged referral is not touched again. Status, history, dates and the
    aggregate fields (needs, urgency, department, outcome) stay, so counts remain.
    """
    now = now or datetime.now(UTC)
    cutoff = now - retention
    result = session.execute(
        update(Referral)
        .where(
            col(Referral.status).in_([status.value for status in PURGEABLE]),
            col(Referral.finished_at) < cutoff,
            col(Referral.purged_at).is_(None),
        )
        .values(traits=None, note_ciphertext=None, purged_at=now)
        .execution_options(synchronize_session=False)
    )
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        audit.append(
            session=session,
            actor="system:retention",
            role=audit.SYSTEM_ROLE,
            action="purge",
            resource_type=RESOURCE,
            resource_id=None,
            endpoint=_endpoint(session),
            detail={"count": count},
            when=now,
        )
    session.commit()
    return count


# --- aggregate report --------------------------------------------------------------------------


def _acceptance_bucket(hours: float) -> str:
    for limit, label in _ACCEPTANCE_BUCKETS:
        if hours < limit:
            return label
    return "over_7d"


def _cells(dimension: str, counts: Counter[str], min_cell: int) -> list[ReportCell]:
    """A dimension's cells; those under ``min_cell`` suppressed, and if only one is, the next
    smallest too, so that no suppressed count is the total minus the shown ones."""
    ordered = sorted(counts.items())
    small = {value for value, count in ordered if count < min_cell}
    if len(small) == 1 and len(ordered) > 1:
        rest = sorted((count, value) for value, count in ordered if value not in small)
        small.add(rest[0][1])
    return [
        ReportCell(
            dimension=dimension,
            value=value,
            count=None if value in small else count,
            suppressed=value in small,
        )
        for value, count in ordered
    ]


def report(*, session: Session, min_cell: int, now: datetime | None = None) -> ReferralReport:
    """Counts by month, category, department, outcome, time to acceptance and whether the
    first /match proposal was the one referred to and accepted. Small cells suppressed."""
    now = now or datetime.now(UTC)
    rows = session.execute(
        sa_select(
            col(Referral.created_at),
            col(Referral.need_codes),
            col(Referral.department_code),
            col(Referral.status),
            col(Referral.accepted_at),
            col(Referral.match_proposals),
            col(Referral.service_at_location_id),
        )
    ).all()
    counts: dict[str, Counter[str]] = {
        name: Counter()
        for name in (
            "month",
            "category",
            "department",
            "outcome",
            "time_to_acceptance",
            "first_proposal_accepted",
        )
    }
    for created, needs, department, status, accepted, proposals, link in rows:
        counts["month"][created.strftime("%Y-%m")] += 1
        for category in sorted({code.split(".", 1)[0] for code in needs or []}):
            counts["category"][category] += 1
        counts["department"][department or "unknown"] += 1
        counts["outcome"][status] += 1
        if accepted is not None:
            hours = (accepted - created).total_seconds() / 3600
            counts["time_to_acceptance"][_acceptance_bucket(hours)] += 1
            if proposals:
                first = "yes" if str(link) == proposals[0] else "no"
                counts["first_proposal_accepted"][first] += 1
    total = len(rows)
    cells = [cell for name, counter in counts.items() for cell in _cells(name, counter, min_cell)]
    return ReferralReport(
        generated_at=now,
        min_cell=min_cell,
        total=total if total >= min_cell or total == 0 else None,
        cells=cells,
    )


def report_csv(report_data: ReferralReport) -> str:
    """The report as CSV: dimension, value, count (empty when suppressed), suppressed."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["dimension", "value", "count", "suppressed"])
    hidden = report_data.total is None
    writer.writerow(
        ["total", "all", "" if hidden else report_data.total, "true" if hidden else "false"]
    )
    for cell in report_data.cells:
        writer.writerow(
            [
                cell.dimension,
                cell.value,
                "" if cell.count is None else cell.count,
                "true" if cell.suppressed else "false",
            ]
        )
    return out.getvalue()
