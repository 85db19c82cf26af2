"""Flushes that insert parents before their children by the tables' foreign keys.

SQLAlchemy's unit of work orders a flush's INSERTs by the ``relationship()``s between mappers;
the models here declare foreign keys but no relationships (the domain loads children with
explicit queries, ``common.children_by``), so a flush holding a new service and its new
schedules may send the schedules first, and the database refuses them. Every write therefore
flushed a new record on its own before adding its nested rows: one round trip per row.

A session given :func:`insert_parents_first` may instead hold many new records and their nested
rows and flush them at once: before each flush, every pair of mappers in it whose tables a
foreign key joins is made a dependency of the unit of work (parent's saves before child's), as
a relationship would make it. Rows of one table then go in one batched INSERT (``executemany``).

Why hand-written: SQLAlchemy offers no public way to order a flush by foreign keys without
relationships (its FAQ answers: declare relationships, or flush in between). Declaring a
relationship per foreign key only for ordering would change how every model loads. This uses
the unit of work's own ordering (``SaveUpdateAll`` records and ``UOWTransaction.dependencies``,
which relationships fill the same way), pinned by the lockfile and checked by
tests/test_flush_order.py on both engines.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Mapper, Session, UOWTransaction
from sqlalchemy.orm.unitofwork import SaveUpdateAll

_ORDERED = "referral_net.flush_order"


def insert_parents_first(session: Session) -> None:
    """Make every later flush of ``session`` insert rows of a referenced table before the rows
    that reference it (idempotent)."""
    if session.info.get(_ORDERED):
        return
    session.info[_ORDERED] = True
    event.listen(session, "before_flush", _order_by_foreign_keys)


def _order_by_foreign_keys(session: Session, flush_context: UOWTransaction, _objects: Any) -> None:
    """Add "saves of the referenced table's mapper first" for the mappers of the new rows."""
    mappers: dict[Any, Mapper[Any]] = {}
    for row in session.new:
        mapper = inspect(row).mapper.base_mapper
        mappers[mapper.local_table] = mapper
    if len(mappers) < 2:  # one table: nothing to order
        return
    for table, mapper in mappers.items():
        for foreign_key in table.foreign_keys:
            parent = mappers.get(foreign_key.column.table)
            if parent is not None and parent is not mapper:
                # SaveUpdateAll is memoized per unit of work and mapper: these are the records
                # the flush will run, as a relationship's dependency processor adds them.
                saves_of_parent = SaveUpdateAll(flush_context, parent)  # type: ignore[no-untyped-call]
                saves_of_child = SaveUpdateAll(flush_context, mapper)  # type: ignore[no-untyped-call]
                flush_context.dependencies.add((saves_of_parent, saves_of_child))
