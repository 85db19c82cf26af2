"""The audit trail: every write, and every read of a hidden site's exact place, hash-chained.

Each entry records who (a subject such as ``user:ana``, never a victim), their role, when, what
(action, resource type and id) and from which endpoint (the route template, e.g.
``PATCH /api/v1/locations/{location_id}``: never a concrete URL or a query string, which could
hold a person's location). ``detail`` holds only ids, field names and counts, never values.

Tamper evidence: ``entry_hash`` is the SHA-256 of the entry's canonical JSON, which includes its
``seq`` and the previous entry's hash. ``seq`` is assigned here (tail + 1, under a lock) rather
than by a database sequence, so it has no gaps of its own (PostgreSQL sequences skip values on
rollback): a gap means a deleted entry. The database refuses UPDATE and DELETE on the table
(migration ``30b097499d1b``); :func:`verify` catches anyone who gets past that. Deleting the
newest entries leaves a valid, shorter chain; compare the head hash :func:`verify` reports with
one noted earlier to catch that.

Writers do not commit: an entry lands in the same transaction as the write it describes, so both
land or neither does. Sensitive reads have no write to ride along with, so
:func:`record_exact_reads` commits the read's own (otherwise read-only) request transaction.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, text
from sqlmodel import Session, col, select

from referral_net.db.models import AuditEntry
from referral_net.security.roles import Principal

GENESIS_HASH = "0" * 64
SYSTEM_ROLE = "system"
NO_ENDPOINT = "cli"
READ_EXACT = "read_exact"
# Key of pg_advisory_xact_lock that serializes appends ("audit" in ASCII).
_PG_LOCK_KEY = 0x6175646974
_SESSION_KEY = "audit"


@dataclass(frozen=True)
class AuditContext:
    """Who is calling and through which endpoint; bound to a request's session."""

    principal: Principal
    endpoint: str


def bind(session: Session, context: AuditContext) -> None:
    """Attach the caller's audit context to a session (one session per request)."""
    session.info[_SESSION_KEY] = context


def current(session: Session) -> AuditContext | None:
    """The audit context bound to this session, if any (none for the CLI and direct calls)."""
    context = session.info.get(_SESSION_KEY)
    return context if isinstance(context, AuditContext) else None


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime: audit timestamps must carry a time zone")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def compute_hash(
    *,
    seq: int,
    occurred_at: datetime,
    actor: str,
    role: str,
    action: str,
    resource_type: str,
    resource_id: str | None,
    endpoint: str,
    detail: dict[str, Any] | None,
    prev_hash: str,
) -> str:
    """SHA-256 (hex) of the canonical JSON of an entry's fields and the previous entry's hash."""
    canonical = json.dumps(
        {
            "seq": seq,
            "occurred_at": _iso(occurred_at),
            "actor": actor,
            "role": role,
            "action": action,
            "resource_type": resource_type,
            "resource_id": resource_id,
            "endpoint": endpoint,
            "detail": detail,
            "prev_hash": prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _entry_hash(entry: AuditEntry) -> str:
    if entry.seq is None:
        raise ValueError("an audit entry without seq cannot be hashed")
    return compute_hash(
        seq=entry.seq,
        occurred_at=entry.occurred_at,
        actor=entry.actor,
        role=entry.role,
        action=entry.action,
        resource_type=entry.resource_type,
        resource_id=entry.resource_id,
        endpoint=entry.endpoint,
        detail=entry.detail,
        prev_hash=entry.prev_hash,
    )


def lock_audit_tail(session: Session) -> None:
    """Serialize appends so that two writers never chain onto the same tail.

    PostgreSQL: a transaction-scoped advisory lock, held until the caller commits or rolls back;
    under READ COMMITTED the tail read after it sees every earlier append. SQLite: nothing to do;
    one writer at a time is SQLite's own rule, and a transaction whose snapshot went stale cannot
    be upgraded to a write (it fails with SQLITE_BUSY rather than forking the chain).

    This dialect branch lives here, not in ``geo.sql``: that module holds the spatial and query
    SQL, and this lock is part of the audit trail's own integrity.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})


def append(
    *,
    session: Session,
    actor: str,
    role: str,
    action: str,
    resource_type: str,
    resource_id: str | uuid.UUID | None,
    endpoint: str,
    detail: dict[str, Any] | None = None,
    when: datetime | None = None,
) -> AuditEntry:
    """Chain one entry onto the trail; flushed, not committed (the caller's commit lands it)."""
    lock_audit_tail(session)
    tail = session.exec(
        select(AuditEntry.seq, AuditEntry.entry_hash).order_by(col(AuditEntry.seq).desc()).limit(1)
    ).first()
    seq = 1 if tail is None or tail[0] is None else tail[0] + 1
    prev_hash = GENESIS_HASH if tail is None else tail[1]
    entry = AuditEntry(
        seq=seq,
        occurred_at=(when or datetime.now(UTC)).astimezone(UTC),
        actor=actor,
        role=role,
        action=action,
        resource_type=resource_type,
        resource_id=None if resource_id is None else str(resource_id),
        endpoint=endpoint,
        detail=detail,
        prev_hash=prev_hash,
        entry_hash="",
    )
    entry.entry_hash = _entry_hash(entry)
    session.add(entry)
    session.flush()
    return entry


def record_write(
    *,
    session: Session,
    actor: str,
    action: str,
    resource_type: str,
    resource_id: str | uuid.UUID,
    fields: Iterable[str],
    when: datetime | None = None,
) -> AuditEntry:
    """Record a write: the caller's role and endpoint if bound, else a system (CLI) write.

    ``fields`` are the names of the changed fields; their values never enter the trail.
    """
    context = current(session)
    return append(
        session=session,
        actor=context.principal.audit_name if context else actor,
        role=context.principal.role.value if context else SYSTEM_ROLE,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        endpoint=context.endpoint if context else NO_ENDPOINT,
        detail={"fields": sorted(set(fields))},
        when=when,
    )


def record_exact_reads(
    *, session: Session, principal: Principal, location_ids: Iterable[uuid.UUID]
) -> int:
    """Record that a caller was shown the exact place of these non-public locations.

    One entry per distinct location, then a commit: reads have no write transaction to ride
    along with, and the entry must persist even though the request itself changes nothing.
    Returns how many entries were added.
    """
    ids = list(dict.fromkeys(location_ids))
    if not ids:
        return 0
    context = current(session)
    for location_id in ids:
        append(
            session=session,
            actor=principal.audit_name,
            role=principal.role.value,
            action=READ_EXACT,
            resource_type="location",
            resource_id=location_id,
            endpoint=context.endpoint if context else NO_ENDPOINT,
        )
    session.commit()
    return len(ids)


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of walking the chain."""

    ok: bool
    entries: int
    head_hash: str
    first_bad_seq: int | None = None
    reason: str | None = None


def verify(*, session: Session, batch_size: int = 1000) -> VerifyReport:
    """Walk the trail by seq: recompute every hash, check every link and that no seq is missing.

    Reports the first bad entry (for a deleted entry, the missing seq) and why.
    """
    expected_seq = 1
    prev_hash = GENESIS_HASH
    checked = 0
    last_seq = 0
    while True:
        batch = list(
            session.exec(
                select(AuditEntry)
                .where(col(AuditEntry.seq) > last_seq)
                .order_by(col(AuditEntry.seq))
                .limit(batch_size)
                # Read what is stored, not what this session may hold in memory.
                .execution_options(populate_existing=True)
            )
        )
        if not batch:
            return VerifyReport(ok=True, entries=checked, head_hash=prev_hash)
        for entry in batch:
            seq = entry.seq or 0
            if seq != expected_seq:
                return _broken(
                    checked,
                    prev_hash,
                    expected_seq,
                    f"entry {expected_seq} is missing (the next entry is {seq}): deleted",
                )
            if entry.prev_hash != prev_hash:
                return _broken(
                    checked, prev_hash, seq, "prev_hash does not match the previous entry's hash"
                )
            if _entry_hash(entry) != entry.entry_hash:
                return _broken(checked, prev_hash, seq, "entry_hash does not match its contents")
            prev_hash = entry.entry_hash
            expected_seq += 1
            checked += 1
            last_seq = seq
            session.expunge(entry)


def _broken(checked: int, head: str, seq: int, reason: str) -> VerifyReport:
    return VerifyReport(ok=False, entries=checked, head_hash=head, first_bad_seq=seq, reason=reason)


def query(
    *,
    session: Session,
    resource_id: str | uuid.UUID | None = None,
    actor: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[AuditEntry], int]:
    """One page of entries, newest first, optionally for one record and/or one actor."""
    statement = select(AuditEntry)
    if resource_id is not None:
        statement = statement.where(col(AuditEntry.resource_id) == str(resource_id))
    if actor is not None:
        statement = statement.where(col(AuditEntry.actor) == actor)
    total = session.exec(select(func.count()).select_from(statement.subquery())).one()
    rows = session.exec(statement.order_by(col(AuditEntry.seq).desc()).offset(offset).limit(limit))
    return list(rows), int(total)
