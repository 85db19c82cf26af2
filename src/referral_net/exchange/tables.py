"""HSDS 3.0's tabular form (a CSV datapackage) to and from its nested form.

The table definitions are the profile's ``datapackage.json``: resource names (``service``), file
names (``services.csv``, kept as the official datapackage spells them) and field types. Two
directions:

- :func:`flatten` turns one nested top-level record (as served or as read from a nested JSON
  file) into rows, its children (phones, schedules, contacts, attributes, metadata, ...) each with
  the foreign key of the record it was nested in;
- :func:`assemble` turns the rows of a datapackage back into nested :class:`SourceRecord` items,
  each cell converted to the JSON type its field type says, an unconvertible cell or a child of
  an unknown parent reported as a :class:`Problem`, never raised.

What the tabular form cannot hold, and :func:`flatten` therefore leaves out:

- other top-level records nested for convenience (a service's ``organization`` and
  ``service_at_locations``, an attribute's ``taxonomy_term``, ...): they are records of their own,
  flattened on their own;
- fields a server derives from the rest (:data:`DERIVED_FIELDS`: a service's ``categories`` repeat
  its attributes, ``capacity`` repeats ``capacities``, ``open_now`` depends on the clock, ...).

So ``assemble(flatten(record))`` gives the record back, without those and without empty lists.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import cache
from typing import Any

from referral_net.exchange.records import RECORD_TABLES, Problem, RecordTable, SourceRecord
from referral_net.exchange.staged_rows import StagedRow, StagedRows
from referral_net.hsds.profile import compiled_schema, profile_file


@dataclass(frozen=True)
class TableField:
    """One column of a tabular table: its name and its Frictionless type."""

    name: str
    type: str


@dataclass(frozen=True)
class Table:
    """One resource of the datapackage: its name, its CSV file and its columns in order."""

    name: str
    path: str
    fields: tuple[TableField, ...]

    @property
    def field_names(self) -> tuple[str, ...]:
        """The column names, in the datapackage's order (the CSV header)."""
        return tuple(column.name for column in self.fields)


@dataclass(frozen=True)
class Link:
    """A one-to-many relation of the nested form: ``parent[key]`` holds rows of ``table`` whose
    column ``parent_key`` names the parent."""

    key: str
    table: str
    parent_key: str


# The one-to-many children of each table in the nested form, besides attributes and metadata
# (added below from the compiled schemas, which say which tables carry them).
_CHILDREN: dict[str, tuple[tuple[str, str], ...]] = {
    "organization": (
        ("funding", "funding"),
        ("contacts", "contact"),
        ("phones", "phone"),
        ("programs", "program"),
        ("organization_identifiers", "organization_identifier"),
    ),
    "service": (
        ("phones", "phone"),
        ("schedules", "schedule"),
        ("service_areas", "service_area"),
        ("languages", "language"),
        ("funding", "funding"),
        ("cost_options", "cost_option"),
        ("required_documents", "required_document"),
        ("contacts", "contact"),
        ("capacities", "service_capacity"),
    ),
    "location": (
        ("languages", "language"),
        ("addresses", "address"),
        ("contacts", "contact"),
        ("accessibility", "accessibility"),
        ("phones", "phone"),
        ("schedules", "schedule"),
    ),
    "service_at_location": (
        ("contacts", "contact"),
        ("phones", "phone"),
        ("schedules", "schedule"),
    ),
    "contact": (("phones", "phone"),),
    "phone": (("languages", "language"),),
}

# Other top-level records a nested record may embed: each is flattened as its own record.
EMBEDDED_RECORDS: Mapping[str, frozenset[str]] = {
    "organization": frozenset({"services", "locations"}),
    "service": frozenset({"organization", "service_at_locations", "program"}),
    "service_at_location": frozenset({"service", "location"}),
    "attribute": frozenset({"taxonomy_term"}),
    "taxonomy_term": frozenset({"taxonomy_detail"}),
}

# Fields a referral-net server derives from the rest of the record, with no column of their own.
DERIVED_FIELDS: Mapping[str, frozenset[str]] = {
    "service": frozenset({"categories", "capacity", "open_now", "open_24h"}),
    "attribute": frozenset({"label"}),
    "service_area": frozenset({"geometry"}),
    "taxonomy_term": frozenset({"localized"}),
}

# Parent keys a nested child keeps although its nesting already says them: the served shapes
# carry them (ProgramRead.organization_id, ServiceCapacityRead.service_id, AttributeRead.link_id).
_KEPT_PARENT_KEYS = frozenset(
    {("program", "organization_id"), ("service_capacity", "service_id"), ("attribute", "link_id")}
)

# Tables whose rows are shared by many records (a unit counts beds for every shelter): a writer
# of many flattened records writes each of their rows once.
SHARED_TABLES = frozenset({"unit"})

_TRUE = frozenset({"true", "True", "TRUE", "1"})
_FALSE = frozenset({"false", "False", "FALSE", "0"})


@cache
def tables() -> Mapping[str, Table]:
    """The profile's tabular tables by resource name, in the datapackage's order."""
    package = json.loads(profile_file("datapackage.json").read_text(encoding="utf-8"))
    return {
        resource["name"]: Table(
            name=resource["name"],
            path=resource["path"],
            fields=tuple(
                TableField(name=column["name"], type=column.get("type", "string"))
                for column in resource["schema"]["fields"]
            ),
        )
        for resource in package["resources"]
    }


def _has_property(table: str, name: str) -> bool:
    try:
        schema = compiled_schema(table)
    except KeyError:
        return False
    return name in schema.get("properties", {})


@cache
def children(table: str) -> tuple[Link, ...]:
    """The one-to-many relations of ``table`` in the nested form, in a fixed order."""
    links = [Link(key, child, f"{table}_id") for key, child in _CHILDREN.get(table, ())]
    if table != "attribute" and _has_property(table, "attributes"):
        links.append(Link("attributes", "attribute", "link_id"))
    if table != "metadata" and _has_property(table, "metadata"):
        links.append(Link("metadata", "metadata", "resource_id"))
    return tuple(links)


@cache
def _parents_of(child: str) -> tuple[tuple[str, Link], ...]:
    """(parent table, link) for every relation that nests ``child``."""
    return tuple(
        (parent, link) for parent in tables() for link in children(parent) if link.table == child
    )


@cache
def _home(table: str) -> RecordTable:
    """The top-level table a row of ``table`` is first found under (for orphans' reports)."""
    for top in ("organization", "service", "location", "service_at_location"):
        if table == top:
            return top
    for parent, _link in _parents_of(table):
        if parent != table:
            return _home(parent)
    for top_table in RECORD_TABLES:
        if table == top_table:
            return top_table
    return "organization"


def table_for(key: str) -> Table | None:
    """The table a datapackage key names: its resource name, its path or its file stem."""
    known = tables()
    if key in known:
        return known[key]
    stem = key.rsplit("/", 1)[-1]
    for table in known.values():
        if stem in (table.path, table.path.removesuffix(".csv")):
            return table
    return None


# --- nested -> tabular -------------------------------------------------------------------------


def to_cell(value: Any) -> str:
    """A JSON value as a CSV cell: numbers as JSON writes them, booleans as ``true``/``false``,
    objects and arrays as compact JSON text, None as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def flatten(table: str, record: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, str]]]:
    """One nested record of ``table`` as (tabular table name, row) pairs, the record's own row
    first, then its children depth first, each with the foreign key of its parent.

    A row is a dict of every column of its table (empty string where the record has nothing).
    A child nested twice in one record (the official example nests one phone under the service,
    its contact and its location) is one row holding every parent's key.
    """
    rows = _Rows()
    rows.visit(table, record, None)
    yield from rows.rows.values()


@dataclass
class _Rows:
    """The rows of one record being flattened, by table and id."""

    rows: dict[tuple[str, str], tuple[str, dict[str, str]]] = field(default_factory=dict)

    def emit(self, name: str, row: dict[str, str]) -> None:
        """Add a row; a row already there (same table and id) gains the keys it lacked."""
        # A row without an id cannot be merged with any other: it gets a key of its own.
        key = (name, row.get("id") or f"\0{len(self.rows)}")
        seen = self.rows.get(key)
        if seen is None:
            self.rows[key] = (name, row)
            return
        merged = seen[1]
        for column, cell in row.items():
            if cell and not merged[column]:
                merged[column] = cell

    def visit(
        self, name: str, node: Mapping[str, Any], parent: tuple[str, str, Link] | None
    ) -> None:
        """Flatten ``node``, a record of ``name``, nested in ``parent`` (table, id, relation)."""
        derived = DERIVED_FIELDS.get(name, frozenset())
        row = {
            column: "" if column in derived else to_cell(node.get(column))
            for column in tables()[name].field_names
        }
        if parent is not None:
            _set_parent(name, row, parent)
        unit = node.get("unit") if name == "service_capacity" else None
        if isinstance(unit, Mapping):
            self.visit("unit", unit, None)
            row["unit_id"] = row.get("unit_id") or to_cell(unit.get("id"))
        self.emit(name, row)
        for link in children(name):
            for child in node.get(link.key) or ():
                if isinstance(child, Mapping):
                    self.visit(link.table, child, (name, row.get("id", ""), link))


def _set_parent(name: str, row: dict[str, str], parent: tuple[str, str, Link]) -> None:
    """The parent's key (and, for attributes and metadata, its table) on a child row."""
    parent_table, parent_id, link = parent
    row[link.parent_key] = row.get(link.parent_key) or parent_id
    entity = {"attribute": "link_entity", "metadata": "resource_type"}.get(name)
    if entity is not None:
        row[entity] = row.get(entity) or parent_table


# --- tabular -> nested -------------------------------------------------------------------------


class _BadCell(ValueError):
    """A cell its field type cannot hold."""


def _number(text: str) -> int | float:
    # An integral cell stays an integer, so 2011 round-trips as 2011 and 3.0 as 3.0.
    if any(mark in text for mark in ".eE"):
        value = float(text)
        if not math.isfinite(value):
            raise _BadCell("is not a finite number")
        return value
    return int(text)


def _boolean(text: str) -> bool:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _BadCell("is not true or false")


def _json(wanted: type, text: str) -> Any:
    value = json.loads(text)
    if not isinstance(value, wanted):
        raise _BadCell(f"is not a JSON {'object' if wanted is dict else 'array'}")
    return value


def _checked(parse: Any) -> Any:
    """A converter that checks an ISO 8601 text and keeps it as it is."""

    def convert(text: str) -> str:
        parse(text)
        return text

    return convert


_CONVERTERS: Mapping[str, Any] = {
    "integer": int,
    "number": _number,
    "boolean": _boolean,
    "date": _checked(date.fromisoformat),
    "time": _checked(time.fromisoformat),
    "datetime": _checked(datetime.fromisoformat),
    "object": lambda text: _json(dict, text),
    "array": lambda text: _json(list, text),
}


def from_cell(field_type: str, text: str) -> Any:
    """A non-empty CSV cell as the JSON value its Frictionless field type says.

    Dates, times and datetimes stay ISO 8601 strings (checked); other types are strings. Raises
    ValueError for a cell the type cannot hold.
    """
    convert = _CONVERTERS.get(field_type)
    if convert is None:
        return text
    try:
        return convert(text)
    except _BadCell:
        raise
    except ValueError as error:
        raise _BadCell(f"is not a valid {field_type}") from error


def _read_rows(spec: Table, rows: Iterable[Mapping[str, str | None]]) -> Iterator[StagedRow]:
    nesting_keys = {link.parent_key for _parent, link in _parents_of(spec.name)}
    types = {column.name: column.type for column in spec.fields}
    # The header is row 1, so the first data row is row 2, as a spreadsheet numbers it.
    for number, row in enumerate(rows, start=2):
        node = StagedRow(table=spec.name, origin=f"{spec.path} row {number}", data={}, keys={})
        bad: list[tuple[str, str]] = []
        for column, raw in row.items():
            # Spaces are data (a description may end with one); a blank cell is no value.
            text = raw or "" if isinstance(column, str) else ""
            if not text.strip():
                continue
            if column in nesting_keys:
                node.keys[column] = text
            try:
                node.data[column] = from_cell(types.get(column, "string"), text)
            except _BadCell as error:
                bad.append((column, f"{text[:60]!r} {error}"))
        node.problems.extend(node.problem(column, message) for column, message in bad)
        if not node.data.get("id"):
            node.problems.append(node.problem("id", "the row has no id"))
        yield node


def _reachable(node: dict[str, Any], found: dict[int, None]) -> None:
    """Every dict nested in ``node`` (``node`` included), by identity."""
    if id(node) in found:
        return
    found[id(node)] = None
    for value in node.values():
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict):
                _reachable(item, found)


def assemble(
    tables_rows: Mapping[str, Iterable[Mapping[str, str | None]]],
) -> Iterator[SourceRecord]:
    """The rows of a CSV datapackage as nested top-level records.

    ``tables_rows`` maps a table (its resource name, ``"service"``, or its file name,
    ``"services.csv"``) to its rows as ``csv.DictReader`` gives them. Children are nested under
    every parent their foreign keys name (a phone with a service_id and a contact_id is in both);
    the keys that nesting says are dropped. Records come out taxonomies first, then terms,
    organizations, locations, services and links, each in its file's row order, with ``origin``
    like ``"services.csv row 7"`` (the header is row 1).

    Problems, never exceptions: a cell its field type cannot hold is an error of the record it
    is nested in (table, row, field). A child naming a parent the package does not hold cannot be
    kept there: a warning of the records it does reach, or, when it reaches none (the official
    example's attribute and metadata rows), a warning carried by the first record. So is a table
    the profile does not know. Children may come before or after their parents, in any file, so
    the rows are staged on disk while they are nested (:mod:`referral_net.exchange.staged_rows`):
    what is in memory at once is one record and a batch of rows, whatever the package's size.
    """
    with StagedRows() as package:
        loose: list[Problem] = []
        for key, rows in tables_rows.items():
            spec = table_for(key)
            if spec is None:
                loose.append(Problem(key, key, "", "not a table of the HSDS profile"))
                continue
            package.add(_read_rows(spec, rows))
        for node in package.repeated_ids():
            node.problems.append(node.problem("id", "a second row with this id"))
            package.save(node)
        for name in tables():
            if _parents_of(name) or name == "service_capacity":
                for node in package.rows_of(name):
                    _nest(node, package, loose)
        yield from _records(package, loose)


def _records(package: StagedRows, loose: list[Problem]) -> Iterator[SourceRecord]:
    """The package's top-level records, each built from its staged rows (loose problems, the
    package's own, travel with the first)."""
    yielded = False
    for name in RECORD_TABLES:
        for staged in package.rows_of(name):
            built: dict[int, StagedRow] = {}
            node = package.tree(staged.seq, built)
            owner = {id(row.data): row for row in built.values()}
            found: dict[int, None] = {}
            _reachable(node.data, found)
            nested = [owner[key] for key in found if key in owner]
            warnings = [warning for row in nested for warning in row.warnings]
            if not yielded:
                warnings.extend(loose)
                yielded = True
            yield SourceRecord(
                table=name,
                origin=node.origin,
                data=node.data,
                problems=tuple(problem for row in nested for problem in row.problems),
                warnings=tuple(warnings),
            )
    if not yielded and loose:
        # Nothing to import: the package's problems are what the report must say.
        yield SourceRecord("organization", loose[0].row, {}, tuple(loose))


def _nest(node: StagedRow, package: StagedRows, loose: list[Problem]) -> None:
    """Put ``node`` under every parent its keys name; a missing parent is a warning."""
    if node.table == "service_capacity":
        _embed_unit(node, package)
    relations = _parents_of(node.table)
    if not relations:
        package.save(node)
        return
    stated = node.data.get("link_entity") or node.data.get("resource_type")
    placed = False
    for parent_key, parent_id in list(node.keys.items()):
        candidates = sorted(
            ((parent, link) for parent, link in relations if link.parent_key == parent_key),
            # attributes and metadata name their parent's table: try it first.
            key=lambda pair: pair[0] != stated,
        )
        parent_node: tuple[int, Link] | None = None
        for parent, link in candidates:
            found = package.first_with_id(parent, parent_id)
            if found is not None and found != node.seq:
                parent_node = (found, link)
                break
        if parent_node is None:
            parent_table = candidates[0][0]
            node.warnings.append(
                node.problem(
                    parent_key,
                    f"names {parent_table} {parent_id}, which the package does not hold: "
                    "the row is not kept there",
                )
            )
            continue
        parent_seq, link = parent_node
        package.link(parent_seq, link.key, node.seq)
        placed = True
        if (node.table, parent_key) not in _KEPT_PARENT_KEYS:
            node.data.pop(parent_key, None)
    if not placed:
        if not node.keys:
            node.warnings.append(node.problem("", "the row names no parent"))
        node.warnings.append(node.problem("", "the row is in no record: it is not imported"))
        loose.extend(node.problems + node.warnings)
    package.save(node)


def _embed_unit(node: StagedRow, package: StagedRows) -> None:
    """A capacity's unit nested as the served shape has it (``unit``, not ``unit_id``)."""
    unit_id = node.data.get("unit_id")
    if not isinstance(unit_id, str):
        return
    unit = package.first_with_id("unit", unit_id)
    if unit is None:
        node.problems.append(node.problem("unit_id", f"names unit {unit_id}, not in the package"))
        return
    node.data["unit"] = None  # the unit's place among the keys; its row is nested when built
    package.link(node.seq, "unit", unit, single=True)
    node.data.pop("unit_id", None)
