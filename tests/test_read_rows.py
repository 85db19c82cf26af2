"""``db.dialect.read_rows``: a search statement's rows, read as Core reads them, on both backends.

PostGIS runs the statement on psycopg's cursor as SQL compiled once (the search's hot path,
issue 13); SpatiaLite through Core. Either way the caller gets what ``Connection.execute``
would give: the same values of the same types, by name and by position, Core's conversions,
Core's errors, and the engine's cursor events. (A connection the server dropped is a 503:
tests/test_database_pool.py.)
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from sqlalchemy import (
    Connection,
    Float,
    Integer,
    String,
    TypeDecorator,
    bindparam,
    column,
    event,
    literal,
    literal_column,
    select,
    table,
    type_coerce,
)
from sqlalchemy.exc import DBAPIError, StatementError

from referral_net.db import dialect

pytestmark = pytest.mark.db


class Shouted(TypeDecorator[str]):
    """Text that Core upper-cases on the way out (a result processor)."""

    impl = String
    cache_ok = True

    def process_result_value(self, value: Any, _dialect: Any) -> str | None:
        return None if value is None else str(value).upper()


class Doubled(TypeDecorator[int]):
    """A number that Core doubles on the way in (a bind processor)."""

    impl = Integer
    cache_ok = True

    def process_bind_param(self, value: Any, _dialect: Any) -> int | None:
        return None if value is None else int(value) * 2


def _both(connection: Connection, statement: Any, values: dict[str, Any]) -> tuple[Any, Any]:
    """What read_rows gives, and what Core's execute gives, as lists of tuples."""
    read = dialect.read_rows(connection, statement, values)
    core = connection.execute(statement, values).all()
    return read, core


def test_rows_hold_cores_values_by_name_and_position(connection: Connection) -> None:
    statement = select(
        bindparam("count", type_=Integer).label("count"),
        (bindparam("share", type_=Float) * 2).label("twice"),
        literal("fijo", String).label("fixed"),
    )
    for _ in range(7):  # psycopg prepares a statement from its sixth run on: still the same
        read, core = _both(connection, statement, {"count": 3, "share": 0.25, "unused": 1})
        assert [tuple(row) for row in read] == [tuple(row) for row in core] == [(3, 0.5, "fijo")]
        row = read[0]
        assert (row.count, row.twice, row.fixed) == (3, 0.5, "fijo")
        assert (row[0], row[1], row[2]) == (3, 0.5, "fijo")
        assert row._fields == ("count", "twice", "fixed")
        assert [type(value) for value in row] == [int, float, str]


def test_a_column_core_converts_is_converted(connection: Connection) -> None:
    # A TypeDecorator's result processor, and a Float over a numeric value: psycopg reads a
    # PostgreSQL numeric as a Decimal, which Core's Float turns into a float.
    statement = select(
        type_coerce(literal("alto", String), Shouted()).label("shouted"),
        type_coerce(literal_column("1.5"), Float).label("share"),
    )
    for _ in range(2):  # the first run finds the conversion; the second knows it already
        read, core = _both(connection, statement, {})
        assert [tuple(row) for row in read] == [tuple(row) for row in core] == [("ALTO", 1.5)]
        assert type(read[0].share) is float  # not a Decimal


def test_a_bound_value_core_converts_is_converted(connection: Connection) -> None:
    statement = select(bindparam("n", type_=Doubled()).label("n"))
    read, core = _both(connection, statement, {"n": 21})
    assert [tuple(row) for row in read] == [tuple(row) for row in core] == [(42,)]


def test_a_list_expanded_at_run_time_is_bound(connection: Connection) -> None:
    statement = select(literal(1, Integer).label("one")).where(
        literal(2, Integer).in_(bindparam("wanted", expanding=True))
    )
    assert [tuple(row) for row in dialect.read_rows(connection, statement, {"wanted": [1, 2]})] == [
        (1,)
    ]
    assert list(dialect.read_rows(connection, statement, {"wanted": [3]})) == []


def test_a_missing_value_is_cores_error(connection: Connection) -> None:
    statement = select(bindparam("needed", type_=Integer).label("needed"))
    with pytest.raises(StatementError, match="needed"):
        dialect.read_rows(connection, statement, {})


def test_a_driver_error_is_sqlalchemys(connection: Connection) -> None:
    statement = select(table("no_such_table", column("x")).c.x)
    savepoint = connection.begin_nested()  # the failed statement spoils only this savepoint
    with pytest.raises(DBAPIError) as raised:
        dialect.read_rows(connection, statement, {})
    savepoint.rollback()
    assert not isinstance(raised.value, psycopg.Error)
    assert "no_such_table" in str(raised.value.orig)
    assert raised.value.connection_invalidated is False
    assert dialect.read_rows(connection, select(literal(1, Integer).label("one")), {})[0].one == 1


def test_the_engines_cursor_events_see_each_statement(connection: Connection) -> None:
    seen: list[tuple[str, Any]] = []

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    statement = select(bindparam("count", type_=Integer).label("count"))
    event.listen(connection.engine, "before_cursor_execute", before)
    try:
        dialect.read_rows(connection, statement, {"count": 5})
        dialect.read_rows(connection, statement, {"count": 6})
    finally:
        event.remove(connection.engine, "before_cursor_execute", before)
    assert len(seen) == 2
    bound = [list(p.values()) if isinstance(p, dict) else list(p) for _, p in seen]
    assert bound == [[5], [6]]
