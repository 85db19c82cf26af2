"""What every source gives the importer and what the importer gives back.

Every reader (nested JSON, NDJSON, a CSV datapackage, the spreadsheet template) turns its input
into :class:`SourceRecord` items: one HSDS 3.0 record in its nested form, with where it came from.
The importer takes them one at a time (sources stream; nothing needs the whole file) and answers
with an :class:`ImportReport`: counts per table and every problem by table, row and field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from referral_net.vocab import Visibility

# The HSDS tables a source record may be: the top-level records of HSDS 3.0's nested form.
RecordTable = Literal[
    "organization", "service", "location", "service_at_location", "taxonomy", "taxonomy_term"
]
RECORD_TABLES: tuple[RecordTable, ...] = (
    "taxonomy",
    "taxonomy_term",
    "organization",
    "location",
    "service",
    "service_at_location",
)

# Exit codes of `referral-net import ...` (issue 15): all imported; refused, nothing written;
# partly imported with --skip-invalid. Operator errors (bad path, bad option) exit 2.
EXIT_ALL_IMPORTED = 0
EXIT_REFUSED = 1
EXIT_PARTLY_IMPORTED = 3


@dataclass(frozen=True)
class Problem:
    """One error or warning, located by table, row (the source's own words) and field."""

    table: str
    row: str
    field: str
    message: str
    record_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The problem as a JSON object (the ``--report`` file and the HTTP job's report)."""
        return {
            "table": self.table,
            "row": self.row,
            "field": self.field,
            "message": self.message,
            "record_id": self.record_id,
        }


@dataclass(frozen=True)
class SourceRecord:
    """One HSDS record as a source read it.

    ``origin`` says where, in the source's own terms ("service_full.json", "services.ndjson line
    4", "service.csv row 7", "plantilla.xlsx fila 12"). ``problems`` are what the reader already
    found (an hours text it could not parse, an unknown municipality): a record with an error
    among them is refused like one the importer finds invalid. ``warnings`` travel to the report.
    """

    table: RecordTable
    origin: str
    data: Mapping[str, Any]
    problems: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()


@dataclass
class TableCounts:
    """What an import did to one table's records."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: int = 0

    def as_json(self) -> dict[str, int]:
        """The counts as a JSON object."""
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "refused": self.refused,
        }


@dataclass
class ImportReport:
    """The outcome of one import: counts per table, errors and warnings, and whether it wrote."""

    source: str
    dry_run: bool = False
    skip_invalid: bool = False
    written: bool = False
    counts: dict[str, TableCounts] = field(default_factory=dict)
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def table(self, name: str) -> TableCounts:
        """The counts of one table, created on first use."""
        return self.counts.setdefault(name, TableCounts())

    @property
    def exit_code(self) -> int:
        """0: everything imported (or, dry run, would be); 1: refused, nothing written;
        3: partly imported (``--skip-invalid`` with refused records)."""
        if not self.errors:
            return EXIT_ALL_IMPORTED
        if self.skip_invalid and self.written:
            return EXIT_PARTLY_IMPORTED
        return EXIT_REFUSED

    def as_json(self) -> dict[str, Any]:
        """The whole report as a JSON object (``--report FILE``, ``GET /api/v1/imports/{id}``)."""
        return {
            "source": self.source,
            "dry_run": self.dry_run,
            "skip_invalid": self.skip_invalid,
            "written": self.written,
            "exit_code": self.exit_code,
            "counts": {name: counts.as_json() for name, counts in sorted(self.counts.items())},
            "errors": [problem.as_json() for problem in self.errors],
            "warnings": [problem.as_json() for problem in self.warnings],
        }


@dataclass(frozen=True)
class ImportOptions:
    """How an import behaves (the command's options).

    ``visibility`` is the default of every imported location: restricted unless stated, so an
    import never publishes a safe house by accident. A record that states a more hidden
    visibility keeps it; one that states a less hidden one is held to the default, unless
    ``visibility_from_source`` (the spreadsheet's own column, filled by the operator) says the
    source's word wins.
    """

    visibility: Visibility = Visibility.RESTRICTED
    visibility_from_source: bool = False
    skip_invalid: bool = False
    dry_run: bool = False
    source_name: str = ""
    keep_last_modified: bool = False
