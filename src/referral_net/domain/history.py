"""HSDS ``metadata``: one row per changed field of every write, with who and when.

What a resource's history follows is its *snapshot*: a flat mapping of field name to JSON value,
built by the resource's own domain module from the record's columns and nested rows
(:func:`fields_of`), never from the API's output schema, so reshaping the API leaves the history
as it is. Nested lists are compared as a whole: a changed phone list is one changed field.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import Enum
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import insert
from sqlmodel import Session, SQLModel, col, select

from referral_net.db.models import Metadata
from referral_net.domain import audit

CREATE = "create"
UPDATE = "update"
DELETE = "delete"


def fields_of(record: Any, names: Iterable[str]) -> dict[str, Any]:
    """The named attributes of a record as JSON values (ids and dates as text, enums as values)."""
    return {name: to_jsonable_python(getattr(record, name)) for name in names}


def as_float(value: float | None) -> float | None:
    """A float column's value as a float: ``3`` and ``3.0`` must not read as a change."""
    return None if value is None else float(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return str(value)


def record_changes(
    *,
    session: Session,
    resource_type: str,
    resource_id: uuid.UUID,
    action: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    actor: str,
    when: datetime | None = None,
) -> int:
    """Add a metadata row for each field whose value differs; return how many were added.

    Also appends one audit-trail entry for the write (field names only, never values), with the
    bound request's role and endpoint, or as a system write when none is bound (CLI, seed).
    """
    rows = _audited_rows(session, resource_type, resource_id, action, before, after, actor, when)
    for row in rows:
        session.add(Metadata(**row))
    return len(rows)


@dataclass(frozen=True)
class Created:
    """One create whose history :func:`record_creates` records."""

    resource_type: str
    resource_id: uuid.UUID
    after: Mapping[str, Any]
    actor: str
    when: datetime | None = None


def record_creates(*, session: Session, created: Sequence[Created]) -> int:
    """Record many creates at once, as :func:`record_changes` records each (the same rows and
    audit entries, in order), with one multi-row INSERT of the metadata rows; return how many."""
    rows: list[dict[str, Any]] = []
    for item in created:
        rows.extend(
            _audited_rows(
                session,
                item.resource_type,
                item.resource_id,
                CREATE,
                {},
                item.after,
                item.actor,
                item.when,
            )
        )
    if rows:
        # Core, not ORM objects: a page of creates has thousands of rows, and a model
        # instance each (validated on construction) cost more than the INSERT.
        session.connection().execute(insert(SQLModel.metadata.tables["metadata"]), rows)
    return len(rows)


def _audited_rows(  # noqa: PLR0917 - the fields of one write
    session: Session,
    resource_type: str,
    resource_id: uuid.UUID,
    action: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    actor: str,
    when: datetime | None,
) -> list[dict[str, Any]]:
    """The metadata rows of one write, one per field whose value differs (by field name), with
    its audit entry appended (the changed fields' names only)."""
    when = when or datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for field in sorted(set(before) | set(after)):
        old, new = _text(before.get(field)), _text(after.get(field))
        if old != new:
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "resource_id": resource_id,
                    "resource_type": resource_type,
                    "last_action_date": when,
                    "last_action_type": action,
                    "field_name": field,
                    "previous_value": old,
                    "replacement_value": new,
                    "updated_by": actor,
                }
            )
    audit.record_write(
        session=session,
        actor=actor,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        fields=[row["field_name"] for row in rows],
        when=when,
    )
    return rows


def history_of(*, session: Session, resource_id: uuid.UUID) -> list[Metadata]:
    """All recorded changes of one record, oldest first."""
    rows = session.exec(
        select(Metadata)
        .where(Metadata.resource_id == resource_id)
        .order_by(col(Metadata.last_action_date), col(Metadata.field_name), col(Metadata.id))
    )
    return list(rows)
