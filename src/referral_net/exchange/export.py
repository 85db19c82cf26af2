"""The directory exported as HSDS 3.0, as one audience may see it (issue 15, part 2).

Records are read through the domain's own read functions with a :class:`Principal` of the
audience, so the export holds exactly what that audience's GET requests answer:
``domain/access.py`` decides (the public sees a restricted site at its municipality's point with
the intake contact, and a confidential one not at all). Each table is read in pages of batch
reads, ordered by id (taxonomies by name, terms by code, as their lists are), so memory stays
bounded and two exports of the same data are the same bytes.

Two fields are left out of every service: ``open_now`` and ``open_24h`` are evaluated at the
instant of a read, never stored, and would make two exports of the same data differ.

Formats, into a folder:

- ``json``: one JSON list per top-level table (``organizations.json``, ``services.json``, ...);
- ``ndjson``: the same names with ``.ndjson``, one record per line;
- ``csv``: a tabular datapackage (``datapackage.json`` and one CSV per table, through
  :func:`referral_net.exchange.tables.flatten`), valid for ``frictionless validate``.

An export for an audience other than the public is audited: one entry with its counts.
"""

from __future__ import annotations

import csv
import json
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Literal, get_args

from sqlmodel import Session, col, select

from referral_net.db.models import Location, Organization, Service, TaxonomyTerm
from referral_net.domain import access, audit, locations, organizations, service_at_locations
from referral_net.domain import services as service_domain
from referral_net.domain import taxonomy as taxonomy_domain
from referral_net.exchange.records import RecordTable
from referral_net.exchange.tables import SHARED_TABLES, flatten, tables
from referral_net.hsds.profile import profile_file
from referral_net.schemas.taxonomy import (
    LocalizedTermLabel,
    OpenEligibilityLink,
    TaxonomyRead,
    TaxonomyTermRead,
    TermLabel,
)
from referral_net.security.roles import Principal, Role
from referral_net.vocab import Locale, RecordStatus

ExportFormat = Literal["json", "ndjson", "csv"]
Audience = Literal["public", "caseworker", "steward"]
FORMATS: tuple[str, ...] = get_args(ExportFormat)
AUDIENCES: tuple[str, ...] = get_args(Audience)

# The files of a json or ndjson export, each holding one top-level table, in the order written.
EXPORT_TABLES: tuple[tuple[str, RecordTable], ...] = (
    ("organizations", "organization"),
    ("services", "service"),
    ("locations", "location"),
    ("service_at_locations", "service_at_location"),
    ("taxonomies", "taxonomy"),
    ("taxonomy_terms", "taxonomy_term"),
)
# Evaluated at the instant of each read, never stored: left out so that exports are repeatable.
INSTANT_FIELDS = frozenset({"open_now", "open_24h"})
EXPORT_ACTOR = "system:export"
PAGE_SIZE = 500
DEFAULT_STALE_HOURS = 72.0  # Settings.capacity_stale_hours' default


def principal_for(audience: Audience) -> Principal:
    """The caller an export reads as: the public, or a caseworker or steward of no organization."""
    if audience == "public":
        return Principal.anonymous()
    return Principal(role=Role(audience), subject=f"{EXPORT_ACTOR}:{audience}")


def _dumped(record: Any) -> dict[str, Any]:
    """A served record as its JSON object (``None`` left out, as the HSDS routes serve it)."""
    dumped: dict[str, Any] = record.model_dump(mode="json", exclude_none=True)
    return dumped


def _without_instant(record: dict[str, Any]) -> dict[str, Any]:
    """A service (or a link with its service nested) without :data:`INSTANT_FIELDS`."""
    kept = {k: v for k, v in record.items() if k not in INSTANT_FIELDS}
    if isinstance(kept.get("service"), dict):
        kept["service"] = _without_instant(kept["service"])
    return kept


def _id_pages(
    session: Session, query: Any, id_column: Any, page_size: int
) -> Iterator[list[uuid.UUID]]:
    """The ids a query selects, in pages ordered by id (keyset: no offset scans)."""
    last: uuid.UUID | None = None
    while True:
        page_query = query.order_by(id_column).limit(page_size)
        if last is not None:
            page_query = page_query.where(id_column > last)
        ids = list(session.exec(page_query))
        if not ids:
            return
        yield ids
        if len(ids) < page_size:
            return
        last = ids[-1]


def _organizations(
    session: Session, principal: Principal, locale: Locale, page_size: int
) -> Iterator[dict[str, Any]]:
    query = select(col(Organization.id))
    if not access.can_see_defunct(principal):
        query = query.where(col(Organization.status) != RecordStatus.DEFUNCT.value)
    for ids in _id_pages(session, query, col(Organization.id), page_size):
        records = organizations.with_services(
            session=session,
            principal=principal,
            records=organizations.read_records(
                session=session, organization_ids=ids, locale=locale
            ),
        )
        yield from (_dumped(records[i]) for i in ids if i in records)


def _services(
    session: Session, principal: Principal, context: service_domain.ReadContext, page_size: int
) -> Iterator[dict[str, Any]]:
    query = select(col(Service.id)).where(access.visible_services_clause(principal))
    if not access.can_see_defunct(principal):
        query = query.where(col(Service.status) != RecordStatus.DEFUNCT.value)
    for ids in _id_pages(session, query, col(Service.id), page_size):
        rows = {s.id: s for s in session.exec(select(Service).where(col(Service.id).in_(ids)))}
        # full=True: a service as GET /services/{id} serves it, its organization nested.
        shaped = service_domain.read_many(
            session=session,
            principal=principal,
            services=[rows[i] for i in ids],
            context=context,
            full=True,
        )
        yield from (_without_instant(_dumped(record)) for record in shaped)


def _locations(
    session: Session, principal: Principal, locale: Locale, page_size: int
) -> Iterator[dict[str, Any]]:
    query = select(col(Location.id)).where(access.visible_locations_clause(principal))
    if not access.can_see_defunct(principal):
        query = query.where(col(Location.status) != RecordStatus.DEFUNCT.value)
    for ids in _id_pages(session, query, col(Location.id), page_size):
        # read_visible applies the visibility rule and audits exact views of hidden sites.
        shown = locations.read_visible(
            session=session, principal=principal, location_ids=ids, locale=locale
        )
        yield from (_dumped(shown[i]) for i in ids if i in shown)


def _service_at_locations(
    session: Session, principal: Principal, context: service_domain.ReadContext, page_size: int
) -> Iterator[dict[str, Any]]:
    # The domain's own list, in its stable order (service name, site name, id), each link with
    # its service and its site nested as GET /service_at_locations/{id} serves it.
    offset = 0
    while True:
        page, _total = service_at_locations.list_page(
            session=session,
            principal=principal,
            offset=offset,
            limit=page_size,
            filters=service_at_locations.ListFilters(),
            locale=context.locale,
        )
        nested = service_at_locations.nest(
            session=session, principal=principal, links=page, context=context
        )
        yield from (_without_instant(_dumped(link)) for link in nested)
        if len(page) < page_size:
            return
        offset += page_size


def _taxonomies(session: Session, page_size: int) -> Iterator[dict[str, Any]]:
    offset = 0
    while True:
        rows, _total = taxonomy_domain.list_taxonomies(
            session=session, offset=offset, limit=page_size
        )
        yield from (_dumped(TaxonomyRead.model_validate(row, from_attributes=True)) for row in rows)
        if len(rows) < page_size:
            return
        offset += page_size


def term_reads(
    session: Session, terms: list[TaxonomyTerm], locale: Locale
) -> list[TaxonomyTermRead]:
    """Terms as ``GET /taxonomy_terms/{id}`` serves them (the same shaping as its router)."""
    parents = taxonomy_domain.parent_codes(session=session, terms=terms)
    mapped = taxonomy_domain.open_eligibility_terms(session, [term.id for term in terms])
    shaped = []
    for term in terms:
        localized = taxonomy_domain.localized_term(term, locale)
        linked = mapped.get(term.id)
        labels = {
            language: TermLabel(name=label["name"], description=label.get("description") or "")
            for language, label in (term.translations or {}).items()
            if isinstance(label, dict) and isinstance(label.get("name"), str)
        }
        shaped.append(
            TaxonomyTermRead(
                id=term.id,
                code=term.code,
                name=term.name,
                description=term.description,
                parent_id=term.parent_id,
                taxonomy=term.taxonomy,
                taxonomy_id=term.taxonomy_id,
                language=term.language,
                term_uri=term.term_uri,
                parent_code=parents.get(term.parent_id) if term.parent_id else None,
                localized=LocalizedTermLabel(
                    language=localized.language,
                    name=localized.name,
                    description=localized.description,
                ),
                translations=labels or None,
                open_eligibility=None
                if linked is None
                else OpenEligibilityLink(
                    taxonomy_term_id=linked.id, code=linked.code or linked.name, name=linked.name
                ),
            )
        )
    return shaped


def _taxonomy_terms(session: Session, locale: Locale, page_size: int) -> Iterator[dict[str, Any]]:
    offset = 0
    while True:
        rows, _total = taxonomy_domain.list_terms(session=session, offset=offset, limit=page_size)
        yield from (_dumped(term) for term in term_reads(session, rows, locale))
        if len(rows) < page_size:
            return
        offset += page_size


def _readers(
    session: Session,
    audience: Audience,
    locale: Locale,
    page_size: int,
    capacity_stale_hours: float = DEFAULT_STALE_HOURS,
) -> dict[str, Callable[[], Iterator[dict[str, Any]]]]:
    """Each export table's reader, by name, in :data:`EXPORT_TABLES` order."""
    principal = principal_for(audience)
    context = service_domain.ReadContext(
        locale=locale,
        at=datetime.now(UTC),
        capacity_stale_after=timedelta(hours=capacity_stale_hours),
    )
    return {
        "organizations": lambda: _organizations(session, principal, locale, page_size),
        "services": lambda: _services(session, principal, context, page_size),
        "locations": lambda: _locations(session, principal, locale, page_size),
        "service_at_locations": lambda: _service_at_locations(
            session, principal, context, page_size
        ),
        "taxonomies": lambda: _taxonomies(session, page_size),
        "taxonomy_terms": lambda: _taxonomy_terms(session, locale, page_size),
    }


def records(
    *,
    session: Session,
    audience: Audience,
    locale: Locale = "es",
    page_size: int = PAGE_SIZE,
    capacity_stale_hours: float = DEFAULT_STALE_HOURS,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every record the audience may see, as (export table, served JSON object), table by table
    in :data:`EXPORT_TABLES` order."""
    readers = _readers(session, audience, locale, page_size, capacity_stale_hours)
    for name, read in readers.items():
        for record in read():
            yield name, record


def json_text(record: Mapping[str, Any]) -> str:
    """One record as compact JSON text: fields in the order served, non-ASCII kept."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


@dataclass
class ExportSummary:
    """What an export wrote: records per export table, rows per CSV table, the files."""

    audience: str
    format: str
    records: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The summary as a JSON object (the audit entry's detail)."""
        return {
            "audience": self.audience,
            "format": self.format,
            "records": dict(self.records),
            "rows": dict(self.rows),
            "files": list(self.files),
        }


class _Writer:
    """Writes the records of one export into a folder, opening files as tables appear."""

    def __init__(self, directory: Path, export_format: ExportFormat, summary: ExportSummary):
        self.directory = directory
        self.format = export_format
        self.summary = summary
        self.stack = ExitStack()
        self.handles: dict[str, IO[str]] = {}
        self.csv_writers: dict[str, Any] = {}
        self.shared_seen: dict[str, set[str]] = {name: set() for name in SHARED_TABLES}

    def _open(self, file_name: str) -> IO[str]:
        handle = self.stack.enter_context(
            (self.directory / file_name).open("w", encoding="utf-8", newline="")
        )
        self.summary.files.append(file_name)
        return handle

    def add(self, export_table: str, table: RecordTable, record: Mapping[str, Any]) -> None:
        """Write one record."""
        self.summary.records[export_table] = self.summary.records.get(export_table, 0) + 1
        if self.format == "csv":
            self._add_rows(table, record)
            return
        handle = self.handles.get(export_table)
        first = handle is None
        if handle is None:
            handle = self._open(f"{export_table}.{self.format}")
            self.handles[export_table] = handle
        if self.format == "ndjson":
            handle.write(json_text(record) + "\n")
        else:
            handle.write(("[\n" if first else ",\n") + json_text(record))

    def _add_rows(self, table: RecordTable, record: Mapping[str, Any]) -> None:
        for row_table, row in flatten(table, record):
            seen = self.shared_seen.get(row_table)
            if seen is not None:
                if row["id"] in seen:
                    continue
                seen.add(row["id"])
            writer = self.csv_writers.get(row_table)
            if writer is None:
                spec = tables()[row_table]
                writer = csv.DictWriter(
                    self._open(spec.path), fieldnames=spec.field_names, lineterminator="\n"
                )
                writer.writeheader()
                self.csv_writers[row_table] = writer
            writer.writerow(row)
            self.summary.rows[row_table] = self.summary.rows.get(row_table, 0) + 1

    def close(self) -> None:
        """End the JSON lists, write the datapackage, close every file."""
        if self.format == "json":
            for export_table, _table in EXPORT_TABLES:
                handle = self.handles.get(export_table)
                if handle is None:
                    # An empty table is an empty list, so every json export has six files.
                    handle = self._open(f"{export_table}.json")
                    handle.write("[")
                handle.write("\n]\n")
        if self.format == "csv":
            written = set(self.csv_writers)
            package = datapackage(written)
            (self.directory / "datapackage.json").write_text(
                json.dumps(package, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
            )
            self.summary.files.append("datapackage.json")
        self.stack.close()


# The keys of a field descriptor that Frictionless defines. The profile's descriptors also carry
# JSON Schema's description of object columns (``properties``, ``required``, ``pattern``, ...)
# and HSDS's own notes (``core``, ``example``), which Frictionless refuses or misreads.
_FRICTIONLESS_FIELD_KEYS = frozenset(
    {"name", "title", "description", "type", "format", "constraints", "rdfType"}
)


def datapackage(written: set[str]) -> dict[str, Any]:
    """The profile's datapackage with the resources of the tables written, as Frictionless reads
    it: JSON-Schema-only keys of the profile's descriptors left out; the vendored file as is."""
    package: dict[str, Any] = json.loads(profile_file("datapackage.json").read_text("utf-8"))
    resources = []
    for resource in package["resources"]:
        if resource["name"] not in written:
            continue
        schema = dict(resource["schema"])
        schema["fields"] = [
            {k: v for k, v in column.items() if k in _FRICTIONLESS_FIELD_KEYS}
            for column in schema["fields"]
        ]
        # A foreign key to a table not written cannot hold: Frictionless would flag every row.
        schema["foreignKeys"] = [
            key for key in schema.get("foreignKeys", []) if key["reference"]["resource"] in written
        ]
        if not schema["foreignKeys"]:
            del schema["foreignKeys"]
        resources.append(resource | {"schema": schema, "encoding": "utf-8"})
    return package | {"resources": resources}


def write_export(
    *,
    session: Session,
    directory: Path,
    export_format: ExportFormat,
    audience: Audience = "public",
    locale: Locale = "es",
    page_size: int = PAGE_SIZE,
    capacity_stale_hours: float = DEFAULT_STALE_HOURS,
    on_record: Callable[[str], None] | None = None,
    endpoint: str = "cli:export hsds",
) -> ExportSummary:
    """Export what ``audience`` may see into ``directory`` (created if missing) in
    ``export_format``; ``on_record(export_table)`` after each record (a progress bar).

    An export for any audience but the public is audited: one entry with its counts.
    """
    directory.mkdir(parents=True, exist_ok=True)
    summary = ExportSummary(audience=audience, format=export_format)
    writer = _Writer(directory, export_format, summary)
    tables_of = dict(EXPORT_TABLES)
    try:
        for export_table, record in records(
            session=session,
            audience=audience,
            locale=locale,
            page_size=page_size,
            capacity_stale_hours=capacity_stale_hours,
        ):
            writer.add(export_table, tables_of[export_table], record)
            if on_record is not None:
                on_record(export_table)
    finally:
        writer.close()
    if audience != "public":
        audit.append(
            session=session,
            actor=EXPORT_ACTOR,
            role=audience,
            action="export",
            resource_type="directory",
            resource_id=None,
            endpoint=endpoint,
            detail={k: v for k, v in summary.as_json().items() if k != "files"},
        )
        session.commit()
    return summary


# --- the public export over HTTP ---------------------------------------------------------------


def public_json_stream(
    session: Session, *, locale: Locale = "es", capacity_stale_hours: float = DEFAULT_STALE_HOURS
) -> Iterator[bytes]:
    """The public export as one JSON document, ``{"organizations": [...], ...}``, in pieces."""
    readers = _readers(session, "public", locale, PAGE_SIZE, capacity_stale_hours)
    for position, (name, read) in enumerate(readers.items()):
        yield ("{" if position == 0 else "],").encode() + json.dumps(name).encode() + b":["
        for count, record in enumerate(read()):
            yield (b"," if count else b"") + json_text(record).encode()
    yield b"]}\n"


def public_ndjson_stream(
    session: Session, *, locale: Locale = "es", capacity_stale_hours: float = DEFAULT_STALE_HOURS
) -> Iterator[bytes]:
    """The public export as NDJSON: one line per record, ``{"table": ..., "record": {...}}``."""
    for export_table, record in records(
        session=session,
        audience="public",
        locale=locale,
        capacity_stale_hours=capacity_stale_hours,
    ):
        line = {"table": export_table, "record": record}
        yield (json_text(line) + "\n").encode()


def public_csv_zip(
    session: Session,
    directory: Path,
    *,
    locale: Locale = "es",
    capacity_stale_hours: float = DEFAULT_STALE_HOURS,
) -> Path:
    """The public CSV datapackage written under ``directory`` and zipped there; the zip's path."""
    folder = directory / "hsds"
    summary = write_export(
        session=session,
        directory=folder,
        export_format="csv",
        audience="public",
        locale=locale,
        capacity_stale_hours=capacity_stale_hours,
    )
    target = directory / "hsds-datapackage.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(summary.files):
            # A fixed time stamp: two exports of the same data are the same bytes.
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, (folder / name).read_bytes())
    return target


def file_chunks(path: Path, chunk_size: int = 64 * 1024) -> Iterator[bytes]:
    """A file's bytes in chunks (a streamed response body)."""
    with path.open("rb") as handle:
        yield from iter(lambda: handle.read(chunk_size), b"")


__all__ = [
    "AUDIENCES",
    "EXPORT_TABLES",
    "FORMATS",
    "Audience",
    "ExportFormat",
    "ExportSummary",
    "datapackage",
    "principal_for",
    "public_csv_zip",
    "public_json_stream",
    "public_ndjson_stream",
    "records",
    "write_export",
]
