"""The rows of a CSV datapackage kept on disk while they are nested (issue 15: memory stays
bounded whatever the package's size).

A datapackage's children may come before or after their parents, in any file, so nesting needs
every row at hand. Holding them in Python objects cost about 7 KB per service (730 MB at
100,000 services). They are staged instead in a private temporary SQLite database (the standard
library's ``sqlite3``, opened with an empty file name: SQLite keeps such a database in a file it
deletes on close and spills it to disk past its page cache), indexed by table and id for the
parent lookups, with the parent -> child links in a second table. Each top-level record is then
built from its rows alone, so what Python holds at once is one record, one batch of rows and the
page cache.

This module knows nothing of HSDS: :mod:`referral_net.exchange.tables` decides what nests where.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Self

from referral_net.exchange.records import Problem

# Rows read back per statement when walking a table (keyset pages of the staging table).
_BATCH = 500
# The staging database's page cache, in KiB (SQLite's negative cache_size): what it may hold in
# memory before spilling to its temporary file.
_CACHE_KIB = 16_384


@dataclass
class StagedRow:
    """One row being assembled: its nested data, where it came from and what was wrong.

    ``seq`` is its place in the package (0 until staged); ``keys`` the parent keys it names.
    """

    table: str
    origin: str
    data: dict[str, Any]
    keys: dict[str, str]
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    seq: int = 0

    def problem(self, column: str, message: str) -> Problem:
        """A problem of this row's ``column``."""
        row_id = self.data.get("id")
        return Problem(
            self.table, self.origin, column, message, row_id if isinstance(row_id, str) else None
        )


def _problems_json(problems: list[Problem]) -> str:
    return json.dumps([problem.as_json() for problem in problems])


def _problems(text: str) -> list[Problem]:
    return [Problem(**item) for item in json.loads(text)]


class StagedRows:
    """A package's rows in a temporary SQLite database: add them, link them, read trees back."""

    def __init__(self) -> None:
        """Open an empty staging database."""
        # "": a private temporary database on disk, removed when the connection closes.
        self._db = sqlite3.connect("", isolation_level=None)
        self._db.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute(
            "CREATE TABLE row (seq INTEGER PRIMARY KEY, tbl TEXT NOT NULL, row_id TEXT,"
            " origin TEXT NOT NULL, data TEXT NOT NULL, keys TEXT NOT NULL,"
            " problems TEXT NOT NULL, warnings TEXT NOT NULL)"
        )
        # ord keeps the order children were linked in, which is the order of their lists.
        self._db.execute(
            "CREATE TABLE link (ord INTEGER PRIMARY KEY, parent INTEGER NOT NULL,"
            " key TEXT NOT NULL, child INTEGER NOT NULL, single INTEGER NOT NULL)"
        )
        self._db.execute("BEGIN")
        self._indexed = False

    def __enter__(self) -> Self:
        """The store, closed when the block ends."""
        return self

    def __exit__(self, *_exc: object) -> None:
        """Close the store."""
        self.close()

    def close(self) -> None:
        """Drop the staging database (its file goes with it)."""
        self._db.close()

    def add(self, rows: Iterable[StagedRow]) -> None:
        """Stage rows, in order (their ``seq`` follows the order they are added in)."""
        self._db.executemany(
            "INSERT INTO row (tbl, row_id, origin, data, keys, problems, warnings)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    row.table,
                    row_id if isinstance(row_id := row.data.get("id"), str) and row_id else None,
                    row.origin,
                    json.dumps(row.data),
                    json.dumps(row.keys),
                    _problems_json(row.problems),
                    _problems_json(row.warnings),
                )
                for row in rows
            ),
        )

    def _index(self) -> None:
        if not self._indexed:
            self._db.execute("CREATE INDEX row_by_id ON row (tbl, row_id)")
            self._db.execute("CREATE INDEX link_by_parent ON link (parent, ord)")
            self._indexed = True

    def repeated_ids(self) -> Iterator[StagedRow]:
        """Every row whose table holds an earlier row with the same id."""
        self._index()
        seqs = [
            seq
            for (seq,) in self._db.execute(
                "SELECT seq FROM row AS later WHERE row_id IS NOT NULL AND seq > ("
                " SELECT min(seq) FROM row AS first"
                " WHERE first.tbl = later.tbl AND first.row_id = later.row_id)"
                " ORDER BY seq"
            )
        ]
        for seq in seqs:
            yield self.row(seq)

    def first_with_id(self, table: str, row_id: str) -> int | None:
        """The ``seq`` of the first row of ``table`` with ``row_id``, if the package holds it."""
        self._index()
        (seq,) = self._db.execute(
            "SELECT min(seq) FROM row WHERE tbl = ? AND row_id = ?", (table, row_id)
        ).fetchone()
        return seq if isinstance(seq, int) else None

    def rows_of(self, table: str) -> Iterator[StagedRow]:
        """The rows of ``table`` in package order, read a batch at a time (rows may be saved
        and linked while this runs: each batch is read whole before it is handed out)."""
        self._index()
        last = 0
        while True:
            batch = self._db.execute(
                "SELECT seq, tbl, origin, data, keys, problems, warnings FROM row"
                " WHERE tbl = ? AND seq > ? ORDER BY seq LIMIT ?",
                (table, last, _BATCH),
            ).fetchall()
            if not batch:
                return
            for values in batch:
                yield _row(values)
            last = batch[-1][0]

    def row(self, seq: int) -> StagedRow:
        """The row staged as ``seq``."""
        values = self._db.execute(
            "SELECT seq, tbl, origin, data, keys, problems, warnings FROM row WHERE seq = ?",
            (seq,),
        ).fetchone()
        return _row(values)

    def save(self, row: StagedRow) -> None:
        """Store what nesting changed of a staged row (its data, problems and warnings)."""
        self._db.execute(
            "UPDATE row SET data = ?, problems = ?, warnings = ? WHERE seq = ?",
            (
                json.dumps(row.data),
                _problems_json(row.problems),
                _problems_json(row.warnings),
                row.seq,
            ),
        )

    def link(self, parent: int, key: str, child: int, *, single: bool = False) -> None:
        """Nest ``child`` under ``parent``: in the list ``key``, or as ``key`` itself."""
        self._db.execute(
            "INSERT INTO link (parent, key, child, single) VALUES (?, ?, ?, ?)",
            (parent, key, child, single),
        )

    def tree(self, seq: int, built: dict[int, StagedRow]) -> StagedRow:
        """The row ``seq`` with everything nested under it, each row built once per ``built``
        (a row nested twice in one record, a phone of the service and of its contact, is one
        dict in both places, as in the package)."""
        if seq in built:
            return built[seq]
        row = self.row(seq)
        built[seq] = row
        links = self._db.execute(
            "SELECT key, child, single FROM link WHERE parent = ? ORDER BY ord", (seq,)
        ).fetchall()
        for key, child, single in links:
            child_data = self.tree(child, built).data
            if single:
                row.data[key] = child_data
            else:
                row.data.setdefault(key, []).append(child_data)
        return row


def _row(values: tuple[Any, ...]) -> StagedRow:
    seq, table, origin, data, keys, problems, warnings = values
    return StagedRow(
        table=table,
        origin=origin,
        data=json.loads(data),
        keys=json.loads(keys),
        problems=_problems(problems),
        warnings=_problems(warnings),
        seq=seq,
    )
