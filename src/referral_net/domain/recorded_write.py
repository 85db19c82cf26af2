"""The one ending of every directory write: stamp, flush, record the change history, commit.

Organizations, services, locations and their links all end a write the same way::

    with recorded_write(session, principal, organization, resource_type=RESOURCE,
                        action=history.UPDATE, snapshot=_snapshot):
        organization.name = "..."

On entry the record's history snapshot is taken (none for a create, which also stamps the new
record as version 1 and flushes it, so nested rows can point at it). When the block ends without
an exception the record's version (its ETag) and last-modified time move on, the session is
flushed, one HSDS ``metadata`` row is added per changed field (with the audit entry, see
:func:`history.record_changes`) and the transaction commits. If the block raises, nothing is
recorded or committed: the write and its history land together or not at all.

Within :func:`creates_recorded_together` (an import's page of new records), a create's snapshot
is taken when its block ends, as always, but its history rows and audit entry are written when
the outer block ends, for every create of it at once (one multi-row INSERT of the metadata
rows), and the create does not commit. The rows and entries are the ones it records alone. The
new records are not flushed one by one either: the session inserts them, and their nested rows,
table by table when a flush is due (``common.flush_new_rows_together``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

from sqlalchemy import inspect
from sqlmodel import Session

from referral_net.domain import common, history
from referral_net.security.roles import Principal

Snapshot = Mapping[str, Any]
# session.info key: the creates :func:`creates_recorded_together` records at its end.
_DEFERRED = "referral_net.recorded_write.deferred_creates"


class Record(Protocol):
    """A directory record: anything with a uuid primary key named ``id``."""

    id: uuid.UUID


R = TypeVar("R", bound=Record)


@runtime_checkable
class Versioned(Protocol):
    """A record with an ETag version and a last-modified time (links between records have none)."""

    version: int
    last_modified: datetime | None


@contextmanager
def recorded_write(
    session: Session,
    principal: Principal,
    record: R,
    *,
    resource_type: str,
    action: str,
    snapshot: Callable[[Session, R], Snapshot],
    when: datetime | None = None,
) -> Iterator[None]:
    """Run the block as one recorded write of ``record`` by ``principal`` (see the module doc).

    ``snapshot`` gives the fields the history follows; it is taken before and after the block.
    A record the block deletes has no "after": every field is recorded as cleared. ``when``
    stamps the history rows (default now).
    """
    if action == history.CREATE:
        before: Snapshot = {}
        if _versioned(type(record)):
            _stamp(cast("Versioned", record), new=True)
        session.add(record)
        if not common.new_rows_flushed_together(session):
            session.flush()
    else:
        before = snapshot(session, record)
    yield
    deferred: list[history.Created] | None = session.info.get(_DEFERRED)
    if deferred is not None and action == history.CREATE:
        session.add(record)
        deferred.append(
            history.Created(
                resource_type=resource_type,
                resource_id=record.id,
                after=snapshot(session, record),
                actor=principal.audit_name,
                when=when,
            )
        )
        return
    # Deleted in the block: still pending in the session, or already flushed by a query.
    deleted = record in session.deleted or bool(inspect(record, raiseerr=True).deleted)
    if not deleted:
        if action != history.CREATE and _versioned(type(record)):
            _stamp(cast("Versioned", record), new=False)
        session.add(record)
    session.flush()
    after = {} if deleted else snapshot(session, record)
    history.record_changes(
        session=session,
        resource_type=resource_type,
        resource_id=record.id,
        action=action,
        before=before,
        after=after,
        actor=principal.audit_name,
        when=when,
    )
    session.commit()


@contextmanager
def creates_recorded_together(session: Session) -> Iterator[None]:
    """Within the block, creates record their history when it ends, all at once, and do not
    commit (see the module doc); a block that raises records nothing, and its caller rolls its
    writes back. Updates and deletes inside it are recorded (and commit) as always."""
    deferred: list[history.Created] = []
    session.info[_DEFERRED] = deferred
    common.flush_new_rows_together(session)
    try:
        yield
    finally:
        session.info.pop(_DEFERRED, None)
    history.record_creates(session=session, created=deferred)


@cache
def _versioned(model: type) -> bool:
    """Whether records of ``model`` are :class:`Versioned` (asked once per model: an
    ``isinstance`` check against a runtime protocol inspects the attributes on every call)."""
    return all(hasattr(model, name) for name in ("version", "last_modified"))


def _stamp(record: Versioned, *, new: bool) -> None:
    """Start a new record's version (its ETag) at 1 or move it on, and set its last-modified."""
    record.version = 1 if new else (record.version or 0) + 1
    record.last_modified = datetime.now(UTC)
