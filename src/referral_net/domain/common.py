"""Helpers shared by the directory's domain modules: nested children, lookups, new ids.

(Stamping versions and recording history is :mod:`referral_net.domain.recorded_write`.)
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TypeVar

from sqlalchemy import delete
from sqlmodel import Session, SQLModel, col, select

from referral_net.errors import Conflict, NotFound

M = TypeVar("M", bound=SQLModel)


def children_by(
    session: Session, model: type[M], fk: str, parent_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[M]]:
    """Load the child rows of many parents in one query, grouped by parent id."""
    grouped: dict[uuid.UUID, list[M]] = defaultdict(list)
    if not parent_ids:
        return grouped
    column = col(getattr(model, fk))
    rows = session.exec(
        select(model).where(column.in_(list(parent_ids))).order_by(col(model.id))  # type: ignore[attr-defined]
    )
    for row in rows:
        grouped[getattr(row, fk)].append(row)
    return grouped


def replace_children(
    session: Session, model: type[M], fk: str, parent_id: uuid.UUID, rows: Iterable[M]
) -> None:
    """Replace all child rows of one parent (nested lists are replaced, not merged)."""
    session.execute(delete(model).where(col(getattr(model, fk)) == parent_id))
    for row in rows:
        setattr(row, fk, parent_id)
        session.add(row)


def get_or_404(session: Session, model: type[M], record_id: uuid.UUID, what: str) -> M:
    """Fetch a record by id or raise NotFound."""
    record = session.get(model, record_id)
    if record is None:
        raise NotFound(f"No such {what}.")
    return record


def ensure_new_id(session: Session, model: type[M], record_id: uuid.UUID | None) -> uuid.UUID:
    """Use a caller-supplied id (imports keep theirs) unless it is taken."""
    if record_id is None:
        return uuid.uuid4()
    if session.get(model, record_id) is not None:
        raise Conflict("A record with that id exists.")
    return record_id
