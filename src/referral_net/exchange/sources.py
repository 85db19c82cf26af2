"""Where an import's records come from: a file, a folder, a zip or a URL, read as SourceRecords.

:func:`open_source` takes what the operator named and gives a :class:`Source`, a context manager
whose :meth:`Source.records` yields one :class:`SourceRecord` per top-level HSDS record:

- a nested JSON file: one record, a list of records, or an HSDS page (``{"contents": [...]}``);
- an NDJSON file (``.ndjson``, ``.jsonl``): one record per line, read line by line;
- a folder or ``.zip`` holding a CSV tabular datapackage (``datapackage.json`` and its CSVs),
  assembled into nested records by :mod:`referral_net.exchange.tables`;
- a folder or ``.zip`` of ``.json`` / ``.ndjson`` files named by table (what ``export hsds
  --format json|ndjson`` writes), read in dependency order;
- an ``http(s)`` URL to any of these, downloaded to a temporary file with a byte cap.

A record's table comes from its file's name, else from its shape. What the operator got wrong
(no such path, a download that failed, a file that is not JSON) is a :class:`SourceError`,
an operator's error (exit 2), not a report.
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlparse

import httpx2 as httpx

from referral_net.errors import BadRequest
from referral_net.exchange import tables
from referral_net.exchange.records import RECORD_TABLES, Problem, RecordTable, SourceRecord

# A download or an unpacked zip larger than this is refused unless the caller says otherwise.
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
_NDJSON_SUFFIXES = frozenset({".ndjson", ".jsonl"})
_DOWNLOAD_CHUNK = 1 << 16
_SUFFIXES_OF_TABLE_FILES = ("_full", "_list")

# File stems (the export's plural names, the official examples' singular ones) -> table.
_TABLE_OF_STEM: dict[str, RecordTable] = {
    "organizations": "organization",
    "organization": "organization",
    "services": "service",
    "service": "service",
    "locations": "location",
    "location": "location",
    "service_at_locations": "service_at_location",
    "service_at_location": "service_at_location",
    "taxonomies": "taxonomy",
    "taxonomy": "taxonomy",
    "taxonomy_terms": "taxonomy_term",
    "taxonomy_term": "taxonomy_term",
}
_LOCATION_KEYS = frozenset(
    {"latitude", "longitude", "location_type", "addresses", "accessibility", "transportation"}
)
_ORGANIZATION_KEYS = frozenset(
    {
        "website",
        "tax_status",
        "tax_id",
        "year_incorporated",
        "legal_status",
        "logo",
        "parent_organization_id",
        "organization_identifiers",
        "services",
        "locations",
        "programs",
    }
)


class SourceError(BadRequest):
    """The source cannot be read at all (missing path, failed download, not JSON): the
    operator's error, reported as one line (exit 2, or a 400 over HTTP), never as a report."""


def table_of_file(name: str) -> RecordTable | None:
    """The table a file's records belong to, from its name (``services.ndjson``,
    ``service_full.json``), or None when the name does not say."""
    stem = Path(name).name.split(".", maxsplit=1)[0].lower()
    for suffix in _SUFFIXES_OF_TABLE_FILES:
        stem = stem.removesuffix(suffix)
    return _TABLE_OF_STEM.get(stem)


def table_of_record(data: Mapping[str, Any]) -> RecordTable | None:  # noqa: PLR0911 - a decision list
    """The table of a record from its keys, or None when its shape says nothing.

    A link names both ends; a term names a code, a parent or a taxonomy; a record with an
    organization id is a location when it has any location-only key, else a service; an
    organization may have only id, name and description.
    """
    keys = set(data)
    if {"service_id", "location_id"} <= keys or {"service", "location"} <= keys:
        return "service_at_location"
    if keys & {"code", "parent_id", "taxonomy_id", "taxonomy_detail", "term_uri"}:
        return "taxonomy_term"
    if keys & _LOCATION_KEYS:
        return "location"
    if "organization_id" in keys or "organization" in keys:
        return "service"
    if keys & _ORGANIZATION_KEYS:
        return "organization"
    if "version" in keys and "name" in keys:
        return "taxonomy"
    if "name" in keys:
        return "organization"
    return None


def _records_of_value(
    value: Any, *, file_table: RecordTable | None, origin: str
) -> Iterator[SourceRecord]:
    """The records of one parsed JSON value: a record, a list, or an HSDS page of them."""
    if isinstance(value, dict) and isinstance(value.get("contents"), list):
        value = value["contents"]  # an HSDS page (the examples' *_list.json)
    items = value if isinstance(value, list) else [value]
    for index, item in enumerate(items, start=1):
        where = origin if len(items) == 1 and not isinstance(value, list) else f"{origin} #{index}"
        yield _record(item, file_table=file_table, origin=where)


def _record(item: Any, *, file_table: RecordTable | None, origin: str) -> SourceRecord:
    """One source record; an item that is no object, or whose table is unknown, carries an error."""
    if not isinstance(item, dict):
        problem = Problem("unknown", origin, "", "not a JSON object")
        return SourceRecord(table="organization", origin=origin, data={}, problems=(problem,))
    table = file_table or table_of_record(item)
    if table is None:
        problem = Problem("unknown", origin, "", "cannot tell which HSDS table this record is")
        return SourceRecord(table="organization", origin=origin, data=item, problems=(problem,))
    return SourceRecord(table=table, origin=origin, data=item)


def read_json_file(path: Path, *, label: str | None = None) -> Iterator[SourceRecord]:
    """The records of a nested JSON file. The file is loaded whole (json has no streaming
    parser in the standard library): NDJSON is the format for large inputs."""
    name = label or path.name
    try:
        with path.open("rb") as handle:
            value = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"{name} is not a readable JSON file: {_reason(exc)}") from None
    yield from _records_of_value(value, file_table=table_of_file(name), origin=name)


def read_ndjson_file(path: Path, *, label: str | None = None) -> Iterator[SourceRecord]:
    """The records of an NDJSON file, streamed line by line (blank lines skipped); a line that
    is not JSON becomes a record carrying that error, so every bad line is reported."""
    name = label or path.name
    file_table = table_of_file(name)
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                origin = f"{name} line {number}"
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as exc:
                    problem = Problem(file_table or "unknown", origin, "", f"not JSON: {exc.msg}")
                    yield SourceRecord(
                        table=file_table or "organization",
                        origin=origin,
                        data={},
                        problems=(problem,),
                    )
                    continue
                yield _record(value, file_table=file_table, origin=origin)
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{name} is not a readable NDJSON file: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    """A short reason for an unreadable file (no path of the machine beyond its name)."""
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno}"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return exc.strerror or type(exc).__name__ if isinstance(exc, OSError) else str(exc)


def _table_rank(path: Path) -> int:
    """Dependency order of a table file (taxonomies first, links last; unknown names last)."""
    table = table_of_file(path.name)
    return RECORD_TABLES.index(table) if table is not None else len(RECORD_TABLES)


def read_folder(folder: Path) -> Iterator[SourceRecord]:
    """The records of a folder: a CSV datapackage, or JSON/NDJSON files in dependency order."""
    if (folder / "datapackage.json").is_file():
        yield from read_datapackage(folder)
        return
    files = sorted(
        (
            path
            for path in folder.iterdir()
            if path.is_file()
            and (path.suffix.lower() == ".json" or path.suffix.lower() in _NDJSON_SUFFIXES)
        ),
        key=lambda path: (_table_rank(path), path.name),
    )
    if not files:
        raise SourceError(f"{folder.name}/ holds no datapackage.json and no .json or .ndjson files")
    for path in files:
        if path.suffix.lower() in _NDJSON_SUFFIXES:
            yield from read_ndjson_file(path)
        else:
            yield from read_json_file(path)


def read_datapackage(folder: Path) -> Iterator[SourceRecord]:
    """The records of a CSV tabular datapackage (its resources' CSV files, streamed row by row
    into :func:`referral_net.exchange.tables.assemble`)."""
    try:
        package = json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"datapackage.json is not readable: {_reason(exc)}") from None
    with ExitStack() as stack:
        readers: dict[str, Iterator[dict[str, str]]] = {}
        for resource in package.get("resources", []):
            path_value = resource.get("path") if isinstance(resource, dict) else None
            if not isinstance(path_value, str):
                continue
            path = (folder / path_value).resolve()
            if not path.is_relative_to(folder.resolve()) or not path.is_file():
                continue  # a resource outside the package, or absent: nothing to read
            handle = stack.enter_context(path.open(encoding="utf-8-sig", newline=""))
            readers[Path(path_value).stem] = csv.DictReader(handle)
        yield from tables.assemble(readers)


def _unpack_zip(archive: Path, into: Path, max_bytes: int) -> Path:
    """Unpack a zip into a folder, refusing members that leave it or a total past the cap; the
    folder holding the package (a zip may wrap it in one top folder)."""
    try:
        with zipfile.ZipFile(archive) as package:
            members = package.infolist()
            if sum(member.file_size for member in members) > max_bytes:
                raise SourceError(f"{archive.name} unpacks to more than {max_bytes} bytes")
            for member in members:
                target = (into / member.filename).resolve()
                if not target.is_relative_to(into.resolve()):
                    raise SourceError(f"{archive.name} holds a path outside the archive")
            package.extractall(into)
    except zipfile.BadZipFile:
        raise SourceError(f"{archive.name} is not a zip file") from None
    entries = [entry for entry in into.iterdir() if not entry.name.startswith("__MACOSX")]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return into


def _download(url: str, into: Path, max_bytes: int) -> Path:
    """Download a URL to a file in ``into`` (the URL's file name kept, for the table)."""
    name = Path(urlparse(url).path).name or "download.json"
    target = into / name
    try:
        with (
            httpx.stream("GET", url, follow_redirects=True, timeout=60) as response,
            target.open("wb") as handle,
        ):
            if response.status_code != 200:
                raise SourceError(f"download of {url} failed: HTTP {response.status_code}")
            written = 0
            for chunk in response.iter_bytes(_DOWNLOAD_CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    raise SourceError(f"download of {url} is larger than {max_bytes} bytes")
                handle.write(chunk)
    except httpx.HTTPError as exc:
        raise SourceError(f"download of {url} failed: {type(exc).__name__}") from None
    return target


class Source:
    """An opened import source: a context manager whose temporary files go with it."""

    def __init__(self, name: str, path: Path, workdir: Path | None) -> None:
        """Wrap a local path (``workdir``: a temporary folder to remove on exit, if any)."""
        self.name = name
        self._path = path
        self._workdir = workdir

    def __enter__(self) -> Source:
        """The source itself."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Remove the temporary files (a download, an unpacked zip)."""
        self.close()

    def close(self) -> None:
        """Remove the temporary files; safe to call twice."""
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def records(self) -> Iterator[SourceRecord]:
        """The source's records, one at a time, in dependency order where files say the table."""
        path = self._path
        if path.is_dir():
            yield from read_folder(path)
        elif path.suffix.lower() in _NDJSON_SUFFIXES:
            yield from read_ndjson_file(path, label=self.name)
        else:
            yield from read_json_file(path, label=self.name)


def open_source(location: str | Path, *, max_bytes: int | None = None) -> Source:
    """Open what the operator named: a path (file, folder, zip) or an http(s) URL.

    Raises :class:`SourceError` when it does not exist or cannot be fetched.
    """
    cap = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
    text = str(location)
    workdir: Path | None = None
    try:
        if urlparse(text).scheme in ("http", "https"):
            workdir = Path(tempfile.mkdtemp(prefix="referral-net-import-"))
            path = _download(text, workdir, cap)
            name = path.name
        else:
            path = Path(location)
            name = path.name
            if not path.exists():
                raise SourceError(f"no such file or folder: {text}")
        if path.is_file() and path.suffix.lower() == ".zip":
            workdir = workdir or Path(tempfile.mkdtemp(prefix="referral-net-import-"))
            unpacked = workdir / "unpacked"
            unpacked.mkdir()
            path = _unpack_zip(path, unpacked, cap)
    except BaseException:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    return Source(name, path, workdir)
