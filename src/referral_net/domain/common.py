"""Helpers shared by the directory's domain modules: nested children, lookups, new ids, and
the rules of writing back what a read served (HSDS round trip).

Nested records keep their ids across writes: a list in a request replaces the stored list, but
an item naming the id of one of the parent's own records updates that record in place (so its
id, and the rows pointing at it, such as a phone's languages, stay). An item without an id is a
new record. Naming a new id is for stewards and trusted imports only, as for records
(``record_ids``); an id that belongs to another parent's record is a 409, never a move.

(Stamping versions and recording history is :mod:`referral_net.domain.recorded_write`.)
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy import event, inspect
from sqlalchemy.orm import class_mapper
from sqlmodel import Session, SQLModel, col, select

from referral_net.db import flush_order
from referral_net.db.models import Language, Phone, Schedule
from referral_net.domain import history
from referral_net.domain.languages import language_name
from referral_net.errors import Conflict, InvalidInput, NotFound
from referral_net.schemas.directory import HsdsPatch, LanguageIn, PhoneIn
from referral_net.vocab import LOCALES

M = TypeVar("M", bound=SQLModel)
# session.info keys: (table, id) pairs known to be free, and what the session created with them
# (``note_absent``).
_ABSENT = "referral_net.common.absent_ids"
_FRESH = "referral_net.common.fresh_records"
_FLUSHED_TOGETHER = "referral_net.common.new_rows_flushed_together"
ItemT = TypeVar("ItemT", bound=BaseModel)

# Columns that name a nested row's parent: an update in place never changes them (no moves).
OWNER_COLUMNS = frozenset(
    {
        "organization_id",
        "service_id",
        "location_id",
        "service_at_location_id",
        "contact_id",
        "phone_id",
    }
)
# Every column that names a nested row's parent (an attribute's is ``link_id``).
_CHILD_OWNER_COLUMNS = (*sorted(OWNER_COLUMNS), "link_id")
CHOSEN_ID_MESSAGE = (
    "not an id of this record's own nested records: leave it out and the server assigns one"
    " (only stewards name a new id)"
)


def children_by(
    session: Session, model: type[M], fk: str, parent_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[M]]:
    """Load the child rows of many parents in one query, grouped by parent id (each parent's
    rows by id). Those of a record this session created fresh need no query (``note_absent``).
    """
    grouped: dict[uuid.UUID, list[M]] = defaultdict(list)
    fresh: _Fresh | None = session.info.get(_FRESH)
    if fresh is not None:
        for parent_id in parent_ids:
            rows_of = fresh_children(session, model, fk, parent_id)
            if rows_of is not None:
                grouped[parent_id] = sorted(rows_of, key=lambda row: row.id)  # type: ignore[attr-defined]
        parent_ids = [parent_id for parent_id in parent_ids if parent_id not in fresh.parents]
    if not parent_ids:
        return grouped
    column = col(getattr(model, fk))
    rows = session.exec(
        select(model).where(column.in_(list(parent_ids))).order_by(col(model.id))  # type: ignore[attr-defined]
    )
    for row in rows:
        grouped[getattr(row, fk)].append(row)
    return grouped


def field_error(field: str, message: str, kind: str = "value_error") -> InvalidInput:
    """A 422 naming one field of the request (the rejected value is not echoed)."""
    return InvalidInput(
        f"Invalid values in: {field}",
        errors=[
            {
                "field": field,
                "location": field.split(".", maxsplit=1)[0],
                "message": message,
                "type": kind,
            }
        ],
    )


def replace_children(
    session: Session,
    model: type[M],
    fk: str,
    parent_id: uuid.UUID,
    rows: Iterable[M],
    *,
    field: str = "body",
) -> None:
    """Make ``rows`` the child rows of one parent (nested lists are replaced, not merged).

    A row whose id the parent already has updates that row in place: its id stays, and so do
    rows that point at it (a delete and re-insert would cascade to them, and would meet the old
    object in the session's identity map). The parent's other rows are deleted and the rest
    inserted. A new row whose id another parent's row holds is a 409 naming ``field``.
    """
    rows = list(rows)
    row_id = col(model.id)  # type: ignore[attr-defined]
    fresh = fresh_children(session, model, fk, parent_id)
    current = {
        row.id: row  # type: ignore[attr-defined]
        for row in (
            fresh
            if fresh is not None
            else session.exec(select(model).where(col(getattr(model, fk)) == parent_id))
        )
    }
    new_ids = {row.id for row in rows if row.id not in current}  # type: ignore[attr-defined]
    new_ids -= free_ids(session, model, new_ids)
    taken = set(session.exec(select(row_id).where(row_id.in_(new_ids)))) if new_ids else set()
    if taken:
        where = [f"{field}.{i}.id" for i, row in enumerate(rows) if row.id in taken]  # type: ignore[attr-defined]
        raise Conflict(
            f"Ids already used by other records in: {', '.join(where)}",
            errors=[
                {
                    "field": name,
                    "location": "body",
                    "message": "the id belongs to another record's nested record",
                    "type": "conflict",
                }
                for name in where
            ],
        )
    wanted = {row.id for row in rows}  # type: ignore[attr-defined]
    for stale_id, stale in current.items():
        if stale_id not in wanted:
            session.delete(stale)
    columns = [
        attribute.key
        for attribute in class_mapper(model).column_attrs
        if attribute.key != "id" and attribute.key not in OWNER_COLUMNS
    ]
    for row in rows:
        kept = current.get(row.id)  # type: ignore[attr-defined]
        if kept is None:
            setattr(row, fk, parent_id)
            session.add(row)
            continue
        for name in columns:
            setattr(kept, name, getattr(row, name))


def check_nested_ids(
    items: Sequence[BaseModel],
    current: Collection[uuid.UUID],
    *,
    field: str,
    may_choose_ids: bool,
) -> None:
    """422 for an id given twice, or for a new id named by someone who may not choose ids (an id
    of the parent's own nested records, ``current``, is anyone's to keep)."""
    seen: set[uuid.UUID] = set()
    for index, item in enumerate(items):
        named: uuid.UUID | None = getattr(item, "id", None)
        if named is None:
            continue
        where = f"{field}.{index}.id"
        if named in seen:
            raise field_error(where, "the same id is given twice")
        seen.add(named)
        if named not in current and not may_choose_ids:
            raise field_error(where, CHOSEN_ID_MESSAGE)


def row_of(model: type[M], item: BaseModel, *, exclude: Collection[str] = ()) -> M:
    """A new row from a request item: its id when the item names one, else a fresh one."""
    values = item.model_dump(exclude=set(exclude))
    if values.get("id") is None:
        values.pop("id", None)
    return model(**values)


def replace_nested(
    session: Session,
    model: type[M],
    fk: str,
    parent_id: uuid.UUID,
    items: Sequence[ItemT],
    *,
    field: str,
    may_choose_ids: bool,
    build: Callable[[Sequence[ItemT]], list[M]] | None = None,
) -> list[M]:
    """Replace one parent's nested list with the request's items, keeping the ids they name.

    ``build`` turns the items into rows (default: one row per item, its fields as columns).
    Returns the rows, in order, with their ids (kept or new).
    """
    owner = col(getattr(model, fk))
    row_id = col(model.id)  # type: ignore[attr-defined]
    fresh = fresh_children(session, model, fk, parent_id)
    current = (
        {row.id for row in fresh}  # type: ignore[attr-defined]
        if fresh is not None
        else set(session.exec(select(row_id).where(owner == parent_id)))
    )
    check_nested_ids(items, current, field=field, may_choose_ids=may_choose_ids)
    rows = build(items) if build is not None else [row_of(model, item) for item in items]
    replace_children(session, model, fk, parent_id, rows, field=field)
    return rows


def language_rows(
    items: Sequence[LanguageIn], *, field: str, current: dict[str, uuid.UUID] | None = None
) -> list[Language]:
    """Rows for a list of languages, the first of each code kept (as before ids existed).

    A language is its code: an item without an id keeps the id of the parent's language of the
    same code (``current``, code -> id), unless another item names that id. ``name`` is a label
    of the code (served in the reader's language): it may be sent back but not changed, so a
    name that is not the code's name in a served language is a 422.
    """
    named = {item.id for item in items if item.id is not None}
    rows: dict[str, Language] = {}
    for index, item in enumerate(items):
        if item.name is not None and item.name not in {
            language_name(item.code, locale) for locale in LOCALES
        }:
            raise field_error(
                f"{field}.{index}.name",
                "not this language's name; it is a label of the code: leave it out",
            )
        if item.code in rows:
            continue
        row = row_of(Language, item, exclude={"name"})
        same_code = (current or {}).get(item.code)
        if item.id is None and same_code is not None and same_code not in named:
            row.id = same_code
            named.add(same_code)
        row.name = language_name(item.code)
        rows[item.code] = row
    return list(rows.values())


def replace_languages(
    session: Session,
    fk: str,
    parent_id: uuid.UUID,
    items: Sequence[LanguageIn],
    *,
    field: str,
    may_choose_ids: bool,
) -> None:
    """Replace the languages of a service, location or phone (``fk`` names which)."""
    owner = col(getattr(Language, fk))
    fresh = fresh_children(session, Language, fk, parent_id)
    current = (
        {row.code: row.id for row in fresh}
        if fresh is not None
        else {
            code: language_id
            for language_id, code in session.exec(
                select(col(Language.id), col(Language.code)).where(owner == parent_id)
            )
        }
    )
    replace_nested(
        session,
        Language,
        fk,
        parent_id,
        items,
        field=field,
        may_choose_ids=may_choose_ids,
        build=lambda given: language_rows(given, field=field, current=current),
    )


def replace_phones(
    session: Session,
    fk: str,
    parent_id: uuid.UUID,
    items: Sequence[PhoneIn],
    *,
    field: str,
    may_choose_ids: bool,
) -> None:
    """Replace the phones of an organization, service or location, with their languages."""
    rows = replace_nested(
        session,
        Phone,
        fk,
        parent_id,
        items,
        field=field,
        may_choose_ids=may_choose_ids,
        build=lambda given: [row_of(Phone, item, exclude={"languages"}) for item in given],
    )
    if rows:
        session.flush()  # the phones exist before their languages point at them
    for index, (item, row) in enumerate(zip(items, rows, strict=True)):
        replace_languages(
            session,
            "phone_id",
            row.id,
            item.languages,
            field=f"{field}.{index}.languages",
            may_choose_ids=may_choose_ids,
        )


# --- what the change history follows of shared nested records ---------------------------------

_SCHEDULE_HISTORY_COLUMNS = (
    "freq",
    "interval",
    "byday",
    "bymonthday",
    "opens_at",
    "closes_at",
    "valid_from",
    "valid_to",
    "dtstart",
    "until",
    "description",
    "notes",
)
# The HSDS schedule fields written since the write API took every HSDS field: followed when set,
# so that the history of a schedule without them reads as before.
_SCHEDULE_HSDS_HISTORY_COLUMNS = (
    "wkst",
    "count",
    "byweekno",
    "byyearday",
    "timezone",
    "schedule_link",
    "attending_type",
)


def history_schedule(row: Schedule) -> dict[str, Any]:
    """What the change history follows of a schedule (``history.fields_of``)."""
    extra = {
        name: value
        for name, value in history.fields_of(row, _SCHEDULE_HSDS_HISTORY_COLUMNS).items()
        if value is not None
    }
    return history.fields_of(row, _SCHEDULE_HISTORY_COLUMNS) | extra


def history_language(row: Language) -> dict[str, Any]:
    """What the change history follows of a language: code, Spanish name, and a note if any."""
    followed = {"code": row.code, "name": language_name(row.code, "es", stored=row.name)}
    return followed | ({"note": row.note} if row.note is not None else {})


# --- read-only fields of a PATCH body ------------------------------------------------------


@cache
def _served_type(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    """How the read model types one field: a restated value is read as GET would serve it."""
    return TypeAdapter(model.model_fields[name].annotation or Any)


def _as_served(model: type[BaseModel], name: str, given: Any) -> tuple[bool, Any]:
    """The given value read as the read model types it (as plain values: dicts, lists, datetimes,
    ids), and whether the read model could read it."""
    adapter = _served_type(model, name)
    try:
        value = adapter.validate_python(given)
    except ValidationError:
        return False, None
    return True, adapter.dump_python(value, exclude_none=True)


def same_as_served(model: type[BaseModel], given: Any, served: BaseModel) -> bool:
    """Whether a restated nested value (a dict from the request) is ``served``, both read as
    ``model`` types them."""
    try:
        value = model.model_validate(given)
    except ValidationError:
        return False
    return value.model_dump(exclude_none=True) == served.model_dump(exclude_none=True)


def _unchanged(value: Any) -> Any:
    return value


def refuse_changed_read_only(body: HsdsPatch, served: Callable[[], BaseModel]) -> None:
    """Refuse (422, each field named) read-only fields of a PATCH body that differ from the record
    as GET serves it now (``served``, called only when the body restates one).

    Values are compared as the read model types them, so a restated value in another spelling
    (a timestamp with another offset, an id in capitals) is the same value. ``body.compared_as``
    narrows a field to what is stored (it drops what is evaluated at each read).
    """
    restated = sorted(body.model_fields_set & body.read_only)
    if not restated:
        return
    record = served()
    stored = record.model_dump(include=set(restated), exclude_none=True)
    changed = []
    for name in restated:
        project = body.compared_as.get(name, _unchanged)
        readable, given = _as_served(type(record), name, getattr(body, name))
        if not readable or project(given) != project(stored.get(name)):
            changed.append(f"body.{name}")
    if changed:
        raise InvalidInput(
            f"Read-only fields differ from the stored record: {', '.join(changed)}",
            errors=[
                {
                    "field": name,
                    "location": "body",
                    "message": "read-only: send it as GET serves it, or leave it out",
                    "type": "read_only",
                }
                for name in changed
            ],
        )


def get_or_404(session: Session, model: type[M], record_id: uuid.UUID, what: str) -> M:
    """Fetch a record by id or raise NotFound."""
    record = session.get(model, record_id)
    if record is None:
        raise NotFound(f"No such {what}.")
    return record


def flush_new_rows_together(session: Session) -> None:
    """Let ``session`` keep new records and their nested rows unflushed until a flush is due
    (a query's autoflush, a commit, an explicit flush), then insert them table by table,
    parents first, one batched INSERT per table (``db/flush_order``): a create no longer
    flushes its record alone so that its nested rows can point at it."""
    flush_order.insert_parents_first(session)
    session.info[_FLUSHED_TOGETHER] = True


def new_rows_flushed_together(session: Session) -> bool:
    """Whether :func:`flush_new_rows_together` was asked of ``session``."""
    return bool(session.info.get(_FLUSHED_TOGETHER))


def flush_or_defer(session: Session) -> None:
    """Flush a write's rows now, so that a database refusal is this write's, unless the session
    flushes its new rows together (:func:`flush_new_rows_together`: a page of new records, whose
    refusal sends the whole page back to be written record by record)."""
    if not new_rows_flushed_together(session):
        session.flush()


@dataclass
class _Fresh:
    """What a session knows of the records it created with ids :func:`note_absent` named: they
    had no child rows in the database, so their children are the ones the session added."""

    parents: set[uuid.UUID] = field(default_factory=set)
    children: defaultdict[tuple[type[SQLModel], str, uuid.UUID], list[Any]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def index(self, row: object) -> None:
        """Note a row added to the session under the fresh parent its owner column names."""
        for name in _CHILD_OWNER_COLUMNS:
            parent = row.__dict__.get(name)
            if parent is not None and parent in self.parents:
                self.children[(type(row), name, parent)].append(row)  # type: ignore[index]


def note_absent(session: Session, model: type[SQLModel], record_ids: Iterable[uuid.UUID]) -> None:
    """Tell the session that these ids are in no row of ``model``'s table: its caller checked,
    in the transaction the session writes in, and no other session writes in it.

    Creating one then skips the check that it is free (once: the next create with that id is
    checked again), and replacing the nested rows of the record it created skips reading its
    current ones: they are the rows this session added under it (an owner column never changes
    after a row is added, see ``replace_children``), found without a query.
    """
    absent: set[tuple[str, uuid.UUID]] = session.info.setdefault(_ABSENT, set())
    absent.update((str(model.__tablename__), record_id) for record_id in record_ids)
    if _FRESH not in session.info:
        fresh = _Fresh()
        session.info[_FRESH] = fresh
        event.listen(
            session, "transient_to_pending", lambda _session, row: _added(absent, fresh, row)
        )


def _added(absent: set[tuple[str, uuid.UUID]], fresh: _Fresh, row: Any) -> None:
    """A row joined the session: its id is no longer free, and it may be a fresh record's child."""
    absent.discard((str(getattr(row, "__tablename__", "")), row.__dict__.get("id")))
    fresh.index(row)


def free_ids(session: Session, model: type[SQLModel], ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Those of ``ids`` :func:`note_absent` named for ``model`` (and no row has taken since)."""
    absent: set[tuple[str, uuid.UUID]] | None = session.info.get(_ABSENT)
    if not absent:
        return set()
    table = str(model.__tablename__)
    return {record_id for record_id in ids if (table, record_id) in absent}


def fresh_children(
    session: Session, model: type[M], fk: str, parent_id: uuid.UUID
) -> list[M] | None:
    """The child rows of a record this session created fresh (see :func:`note_absent`), or
    None when it is not such a record (its rows are then the database's to say)."""
    fresh: _Fresh | None = session.info.get(_FRESH)
    if fresh is None or parent_id not in fresh.parents:
        return None
    rows: list[M] = []
    pending = False
    for row in fresh.children.get((model, fk, parent_id), ()):
        state = inspect(row)
        if not (state.deleted or state.detached or row in session.deleted):
            rows.append(row)
            pending = pending or state.pending
    if pending and not new_rows_flushed_together(session):
        session.flush()  # as the query's autoflush would: a kept row is updated in place
    return rows


def get_unless_absent(session: Session, model: type[M], record_id: uuid.UUID) -> M | None:
    """``session.get``, without the query for an id :func:`note_absent` named (and no create
    has used since)."""
    absent: set[tuple[str, uuid.UUID]] | None = session.info.get(_ABSENT)
    if absent is not None and (str(model.__tablename__), record_id) in absent:
        return None
    return session.get(model, record_id)


def ensure_new_id(session: Session, model: type[M], record_id: uuid.UUID | None) -> uuid.UUID:
    """Use a caller-supplied id (imports keep theirs) unless it is taken."""
    if record_id is None:
        return uuid.uuid4()
    absent: set[tuple[str, uuid.UUID]] | None = session.info.get(_ABSENT)
    key = (str(model.__tablename__), record_id)
    if absent is not None and key in absent:
        absent.discard(key)
        session.info[_FRESH].parents.add(record_id)
        return record_id
    if session.get(model, record_id) is not None:
        raise Conflict("A record with that id exists.")
    return record_id
