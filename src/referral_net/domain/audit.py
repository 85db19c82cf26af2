"""The audit trail: every write, and every read of a hidden site's exact place, hash-chained.

Each entry records who (a subject such as ``user:ana``, never a victim), their role, when, what
(action, resource type and id) and from which endpoint (the route template, e.g.
``PATCH /api/v1/locations/{location_id}``: never a concrete URL or a query string, which could
hold a person's location). ``detail`` holds only ids, field names and counts, never values.

Tamper evidence: ``entry_hash`` is the SHA-256 of the entry's canonical JSON, which includes its
``seq`` and the previous entry's hash. ``seq`` is assigned here (tail + 1, under a lock) rather
than by a database sequence, so it has no gaps of its own (PostgreSQL sequences skip values on
rollback): a gap means a deleted entry. The database refuses UPDATE and DELETE on the table
(migration ``30b097499d1b``); :func:`verify` catches anyone who gets past that.

Anchoring outside the database: whoever can write the table can also recompute every SHA-256
after an edit, or delete the newest entries, and the chain still verifies. Two anchors the
database does not hold close that (threat model: ``docs/access.md``):

- the audit key (setting ``audit_key``): each entry written while it is set carries
  ``entry_mac = HMAC-SHA256(key, prev_mac || entry_hash)`` (ASCII hex strings; ``prev_mac`` is the
  previous entry's MAC, or the genesis hash for the first anchored entry). Entries written before
  the key was set have no MAC: :func:`verify` counts them as *unanchored*, not as failures; as
  ``entry_hash`` chains over every earlier entry, the first MAC covers them from then on. After
  the first MAC, an entry without one is a failure (a MAC was stripped), and a process without
  the key refuses to append (:class:`AuditKeyMissing`) rather than break the anchoring;
- checkpoints (:class:`Checkpoint`): the head's seq, hash and MAC, written to a file off the
  database host (``referral-net audit checkpoint``). :func:`verify` given checkpoints fails when
  the trail ends before a checkpoint's seq (truncation) or holds another entry there (rewrite).

Writers do not commit: an entry lands in the same transaction as the write it describes, so both
land or neither does. Sensitive reads have no write to ride along with, so
:func:`record_exact_reads` commits the read's own (otherwise read-only) request transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr
from sqlalchemy import func, insert
from sqlmodel import Session, SQLModel, col, select

from referral_net.db import dialect
from referral_net.db.engine import begin_write
from referral_net.db.models import AuditEntry
from referral_net.errors import ServiceUnavailable
from referral_net.security.roles import Principal

GENESIS_HASH = "0" * 64
SYSTEM_ROLE = "system"
NO_ENDPOINT = "cli"
READ_EXACT = "read_exact"
# Key of the transaction lock that serializes appends ("audit" in ASCII).
_APPEND_LOCK_KEY = 0x6175646974
# session.info key: the tail kept in memory by :func:`tail_in_session` (None until first read).
_TAIL_IN_SESSION = "referral_net.audit.tail_in_session"
# session.info key: the entries appended within tail_in_session, inserted when it ends.
_ROWS_IN_SESSION = "referral_net.audit.rows_in_session"
_SESSION_KEY = "audit"
_SESSION_MAC_KEY = "audit_key"


class AuditKeyMissing(ServiceUnavailable):
    """The trail is anchored with an audit key, and this process was started without it."""


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


def use_key(session: Session, key: SecretStr | str | None) -> None:
    """Anchor the entries this session appends with the audit key (None: write no MAC)."""
    if key is None:
        session.info.pop(_SESSION_MAC_KEY, None)
        return
    raw = key.get_secret_value() if isinstance(key, SecretStr) else key
    session.info[_SESSION_MAC_KEY] = raw.encode("utf-8")


def _session_key(session: Session) -> bytes | None:
    key = session.info.get(_SESSION_MAC_KEY)
    return key if isinstance(key, bytes) else None


def _key_bytes(key: SecretStr | str | bytes | None) -> bytes | None:
    if key is None or isinstance(key, bytes):
        return key
    return (key.get_secret_value() if isinstance(key, SecretStr) else key).encode("utf-8")


def compute_mac(*, key: bytes, prev_mac: str | None, entry_hash: str) -> str:
    """HMAC-SHA256 (hex) of the previous MAC (or the genesis hash) followed by the entry hash."""
    message = f"{prev_mac or GENESIS_HASH}{entry_hash}".encode("ascii")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


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

    The lock's SQL is the engine's (``db.dialect.transaction_lock``); the rule that appends take
    it is the audit trail's own.
    """
    dialect.transaction_lock(session, key=_APPEND_LOCK_KEY)


@contextmanager
def tail_in_session(session: Session) -> Iterator[None]:
    """Within the block, appends chain onto a tail this session keeps in memory.

    For a batch of writes in one transaction (an import's page): the lock is taken and the tail
    read once, for the block's first append, and entries are not flushed one by one: they are
    inserted together when the block ends (in ``seq`` order, though the chain needs none). Safe
    because the append lock is held until the transaction ends, so no other writer can chain
    meanwhile; a block that raises leaves its caller to roll the transaction back, entries and
    all (nothing of it is inserted).
    """
    session.info[_TAIL_IN_SESSION] = None
    rows: list[dict[str, Any]] = []
    session.info[_ROWS_IN_SESSION] = rows
    try:
        yield
    finally:
        session.info.pop(_TAIL_IN_SESSION, None)
        session.info.pop(_ROWS_IN_SESSION, None)
    if rows:
        # Core, not ORM objects: a page's entries are many, and a model instance each cost
        # more than the INSERT (the rows are the ones append would have flushed).
        session.connection().execute(insert(SQLModel.metadata.tables["audit_entry"]), rows)


def _tail(session: Session) -> tuple[int | None, str, str | None] | None:
    """The trail's newest (seq, hash, MAC), from the session's memory within
    :func:`tail_in_session` once read, else from the table under the append lock."""
    if session.info.get(_TAIL_IN_SESSION) is not None:
        kept: tuple[int | None, str, str | None] = session.info[_TAIL_IN_SESSION]
        return kept
    lock_audit_tail(session)
    row = session.exec(
        select(AuditEntry.seq, AuditEntry.entry_hash, AuditEntry.entry_mac)
        .order_by(col(AuditEntry.seq).desc())
        .limit(1)
    ).first()
    return None if row is None else (row[0], row[1], row[2])


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
) -> None:
    """Chain one entry onto the trail, not committed (the caller's commit lands it): flushed,
    or within :func:`tail_in_session` inserted with the block's other entries when it ends."""
    tail = _tail(session)
    prev_mac = None if tail is None else tail[2]
    key = _session_key(session)
    if key is None and prev_mac is not None:
        raise AuditKeyMissing(
            "The audit trail is anchored with an audit key: set REFERRAL_NET_AUDIT_KEY."
        )
    fields: dict[str, Any] = {
        "seq": 1 if tail is None or tail[0] is None else tail[0] + 1,
        "occurred_at": (when or datetime.now(UTC)).astimezone(UTC),
        "actor": actor,
        "role": role,
        "action": action,
        "resource_type": resource_type,
        "resource_id": None if resource_id is None else str(resource_id),
        "endpoint": endpoint,
        "detail": detail,
        "prev_hash": GENESIS_HASH if tail is None else tail[1],
    }
    entry_hash = compute_hash(**fields)
    entry_mac = (
        None if key is None else compute_mac(key=key, prev_mac=prev_mac, entry_hash=entry_hash)
    )
    row = fields | {"entry_hash": entry_hash, "entry_mac": entry_mac}
    kept: list[dict[str, Any]] | None = session.info.get(_ROWS_IN_SESSION)
    if kept is not None:
        kept.append(row)
        session.info[_TAIL_IN_SESSION] = (row["seq"], entry_hash, entry_mac)
        return
    session.add(AuditEntry(**row))
    session.flush()


def record_write(
    *,
    session: Session,
    actor: str,
    action: str,
    resource_type: str,
    resource_id: str | uuid.UUID,
    fields: Iterable[str],
    when: datetime | None = None,
) -> None:
    """Record a write: the caller's role and endpoint if bound, else a system (CLI) write.

    ``fields`` are the names of the changed fields; their values never enter the trail.
    """
    context = current(session)
    append(
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
    # The request only read so far: on SQLite that read transaction cannot become a write while
    # another connection writes, so end it and take the write lock for the entries.
    begin_write(session)
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
    """The outcome of walking the chain.

    ``head_seq``/``head_hash``/``head_mac`` describe the last entry that checked out. MACs are
    checked only when a key was given (``mac_checked``); ``unanchored`` counts the entries
    written before the audit key was set (no MAC), which are not failures.
    """

    ok: bool
    entries: int
    head_hash: str
    first_bad_seq: int | None = None
    reason: str | None = None
    head_seq: int = 0
    head_mac: str | None = None
    mac_checked: bool = False
    unanchored: int = 0
    checkpoints_checked: int = 0


@dataclass(frozen=True)
class Checkpoint:
    """The head of the trail at one moment, kept outside the database (one JSON line).

    ``mac`` is the HMAC-SHA256 of the other fields under the audit key (None without a key), so
    that a checkpoint cannot be forged by someone who lacks the key.
    """

    seq: int
    entry_hash: str
    entry_mac: str | None
    taken_at: datetime
    mac: str | None = None

    def _canonical(self) -> bytes:
        fields = {
            "seq": self.seq,
            "entry_hash": self.entry_hash,
            "entry_mac": self.entry_mac,
            "taken_at": _iso(self.taken_at),
        }
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode("utf-8")

    def to_line(self) -> str:
        """The checkpoint as one JSON line (no trailing newline)."""
        fields = json.loads(self._canonical())
        fields["mac"] = self.mac
        return json.dumps(fields, sort_keys=True, separators=(",", ":"))


class CheckpointInvalid(ValueError):
    """A checkpoint line cannot be read, or its MAC does not match under the audit key."""


def make_checkpoint(
    *, report: VerifyReport, key: SecretStr | str | bytes | None, now: datetime | None = None
) -> Checkpoint:
    """A checkpoint of the head that ``report`` (an intact verification) ended on."""
    if not report.ok:
        raise ValueError("a checkpoint of a broken trail would vouch for it")
    checkpoint = Checkpoint(
        seq=report.head_seq,
        entry_hash=report.head_hash,
        entry_mac=report.head_mac,
        taken_at=(now or datetime.now(UTC)).astimezone(UTC),
    )
    key_bytes = _key_bytes(key)
    if key_bytes is None:
        return checkpoint
    mac = hmac.new(key_bytes, checkpoint._canonical(), hashlib.sha256).hexdigest()
    return replace(checkpoint, mac=mac)


def parse_checkpoints(*, text: str, key: SecretStr | str | bytes | None) -> list[Checkpoint]:
    """Read a checkpoint file (one JSON line each; blank lines skipped).

    With a key, a line that carries a MAC must match it (a line without one was written before
    the key was set). Raises CheckpointInvalid naming the line number.
    """
    key_bytes = _key_bytes(key)
    result: list[Checkpoint] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            checkpoint = Checkpoint(
                seq=int(raw["seq"]),
                entry_hash=str(raw["entry_hash"]),
                entry_mac=None if raw.get("entry_mac") is None else str(raw["entry_mac"]),
                taken_at=datetime.fromisoformat(str(raw["taken_at"])),
                mac=None if raw.get("mac") is None else str(raw["mac"]),
            )
            if checkpoint.taken_at.tzinfo is None or checkpoint.seq < 0:
                raise ValueError("bad time or seq")
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointInvalid(f"checkpoint line {number} cannot be read") from exc
        if key_bytes is not None and checkpoint.mac is not None:
            expected = hmac.new(key_bytes, checkpoint._canonical(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, checkpoint.mac):
                raise CheckpointInvalid(
                    f"checkpoint line {number}: its MAC does not match (edited, or another key)"
                )
        result.append(checkpoint)
    return result


@dataclass
class _Walk:
    """Where a verification walk stands (the last entry that checked out)."""

    checked: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    head_mac: str | None = None
    anchored_since: int | None = None
    unanchored: int = 0
    checkpoints_checked: int = 0
    mac_checked: bool = False

    def report(self, bad_seq: int | None = None, reason: str | None = None) -> VerifyReport:
        return VerifyReport(
            ok=bad_seq is None,
            entries=self.checked,
            head_hash=self.head_hash,
            first_bad_seq=bad_seq,
            reason=reason,
            head_seq=self.head_seq,
            head_mac=self.head_mac,
            mac_checked=self.mac_checked,
            unanchored=self.unanchored,
            checkpoints_checked=self.checkpoints_checked,
        )


def verify(
    *,
    session: Session,
    key: SecretStr | str | bytes | None = None,
    checkpoints: Iterable[Checkpoint] = (),
    batch_size: int = 1000,
) -> VerifyReport:
    """Walk the trail by seq: recompute every hash, check every link and that no seq is missing.

    With ``key``, also recompute every MAC. With ``checkpoints``, also fail when an entry at a
    checkpoint's seq differs from it (rewrite) or the trail ends before it (truncation). Reports
    the first bad entry (for a deleted entry, the missing seq) and why.
    """
    key_bytes = _key_bytes(key)
    marks: dict[int, list[Checkpoint]] = {}
    for checkpoint in checkpoints:
        marks.setdefault(checkpoint.seq, []).append(checkpoint)
    walk = _Walk(mac_checked=key_bytes is not None)
    while True:
        batch = list(
            session.exec(
                select(AuditEntry)
                .where(col(AuditEntry.seq) > walk.head_seq)
                .order_by(col(AuditEntry.seq))
                .limit(batch_size)
                # Read what is stored, not what this session may hold in memory.
                .execution_options(populate_existing=True)
            )
        )
        if not batch:
            break
        for entry in batch:
            problem = _check_entry(walk, entry, key_bytes, marks)
            if problem is not None:
                return walk.report(*problem)
            session.expunge(entry)
    beyond = [seq for seq in marks if seq > walk.head_seq]
    if beyond:
        latest = max(beyond)
        when = _iso(marks[latest][0].taken_at)
        return walk.report(
            walk.head_seq + 1,
            f"truncated: the trail ends at entry {walk.head_seq}, but the checkpoint of {when} "
            f"recorded entry {latest}",
        )
    walk.checkpoints_checked += sum(len(marks[seq]) for seq in marks if seq == 0)
    return walk.report()


def _check_entry(
    walk: _Walk, entry: AuditEntry, key: bytes | None, marks: dict[int, list[Checkpoint]]
) -> tuple[int, str] | None:
    """Check one entry against the walk so far; advance the walk, or return (seq, why)."""
    seq = entry.seq or 0
    problem = (
        _chain_problem(walk, entry, seq)
        or _mac_problem(walk, entry, key, seq)
        or _checkpoint_problem(walk, entry, marks.get(seq, []), seq)
    )
    if problem is not None:
        return problem
    walk.checked += 1
    walk.head_seq = seq
    walk.head_hash = entry.entry_hash
    walk.head_mac = entry.entry_mac
    return None


def _chain_problem(walk: _Walk, entry: AuditEntry, seq: int) -> tuple[int, str] | None:
    """(seq, why) if the entry does not follow the walk's head or its hash is wrong, else None."""
    expected_seq = walk.head_seq + 1
    if seq != expected_seq:
        return expected_seq, f"entry {expected_seq} is missing (the next entry is {seq}): deleted"
    if entry.prev_hash != walk.head_hash:
        return seq, "prev_hash does not match the previous entry's hash"
    if _entry_hash(entry) != entry.entry_hash:
        return seq, "entry_hash does not match its contents"
    return None


def _mac_problem(
    walk: _Walk, entry: AuditEntry, key: bytes | None, seq: int
) -> tuple[int, str] | None:
    """(seq, why) if the entry's MAC is missing or wrong, else None; notes where anchors begin."""
    if entry.entry_mac is None:
        if walk.anchored_since is not None:
            return seq, (
                f"entry_mac is missing, but the trail is anchored from entry "
                f"{walk.anchored_since} on: removed"
            )
        walk.unanchored += 1
        return None
    if walk.anchored_since is None:
        walk.anchored_since = seq
    if key is not None:
        expected = compute_mac(key=key, prev_mac=walk.head_mac, entry_hash=entry.entry_hash)
        if not hmac.compare_digest(expected, entry.entry_mac):
            return seq, "entry_mac does not match: rewritten, or written under another key"
    return None


def _checkpoint_problem(
    walk: _Walk, entry: AuditEntry, checkpoints: list[Checkpoint], seq: int
) -> tuple[int, str] | None:
    """(seq, why) if a checkpoint recorded this entry differently, else None; counts the checks."""
    for checkpoint in checkpoints:
        if checkpoint.entry_hash != entry.entry_hash or (
            checkpoint.entry_mac is not None and checkpoint.entry_mac != entry.entry_mac
        ):
            when = _iso(checkpoint.taken_at)
            return seq, f"entry {seq} differs from the checkpoint of {when}: rewritten"
        walk.checkpoints_checked += 1
    return None


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
