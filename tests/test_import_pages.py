"""An import's pages of new records (issue 15's speed) write what the record-by-record path writes.

``_Importer.take_page`` writes a page of source records whose flat records are all new in one
SAVEPOINT and one session, with the history of its creates recorded together, the audit tail
kept in memory and one refresh of the search read model (``exchange/importer.py``). The other
path writes each record in its own SAVEPOINTs and compares its stored state before and after.
These tests import the same source both ways, each into a fresh copy of one migrated database,
and compare every table, the report and the audit trail. On both backends.

The source: copies of the official ``service_full.json`` (every nested record HSDS has: phones
with languages, schedules, contacts, funding, cost options, required documents, service areas,
attributes with their taxonomy terms, the organization and the site with its address and
accessibility), every id renamed per copy so that each copy is new.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, text
from sqlmodel import Session

from referral_net.db.engine import make_engine
from referral_net.domain import audit
from referral_net.exchange import importer
from referral_net.exchange.importer import run_import
from referral_net.exchange.records import ImportOptions, ImportReport
from referral_net.exchange.sources import open_source
from referral_net.settings import Settings
from tests.databases import copy_of, migrated_template

pytestmark = pytest.mark.db

EXAMPLES = Path(__file__).resolve().parents[1] / "specs" / "hsds-3.0" / "examples"
COPIES = 7
PAGE = 3  # pages of 3, 3 and 1 source records
# Columns whose values say when a row was written, or are drawn at random per write: the two
# paths write the same rows at other instants. The audit trail's order within a page may
# differ too (a page records its creates at its end), so its seq and hashes are left out here
# and the chain is verified instead.
WRITE_TIME_COLUMNS = frozenset(
    {"last_modified", "last_action_date", "occurred_at", "seq", "prev_hash", "entry_hash"}
)
RANDOM_ID_TABLES = frozenset({"metadata", "audit_entry"})


def _renamed(value: Any, copy: int) -> Any:
    """``value`` with every UUID in it replaced by one of its own for this copy."""
    if isinstance(value, dict):
        return {key: _renamed(item, copy) for key, item in value.items()}
    if isinstance(value, list):
        return [_renamed(item, copy) for item in value]
    if isinstance(value, str):
        try:
            return str(uuid.uuid5(uuid.UUID(value), f"copy-{copy}"))
        except ValueError:
            return value
    return value


@pytest.fixture(scope="module")
def template(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """A migrated database with the administrative areas, copied for each import."""
    return migrated_template(
        backend, request, tmp_path_factory, name="pagetpl", with_taxonomy=False
    )


@pytest.fixture
def copies(tmp_path: Path) -> Path:
    """A JSON list of renamed copies of service_full.json."""
    example = json.loads((EXAMPLES / "service_full.json").read_text(encoding="utf-8"))
    path = tmp_path / "copies.json"
    path.write_text(json.dumps([_renamed(example, n) for n in range(COPIES)]), encoding="utf-8")
    return path


@pytest.fixture
def engines(template: Settings, tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    """Two fresh copies of the template: one per path."""
    first, second = tmp_path / "paged", tmp_path / "one-by-one"
    first.mkdir()
    second.mkdir()
    made = [make_engine(copy_of(template, first)), make_engine(copy_of(template, second))]
    yield made[0], made[1]
    for engine in made:
        engine.dispose()


@pytest.fixture
def pages(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Small pages, and what each page attempt answered (True: written as a page)."""
    monkeypatch.setattr(importer, "PAGE_SIZE", PAGE)
    answers: list[bool] = []
    original = importer._Importer._take_new_page

    def spy(self: importer._Importer, records: Any) -> bool:
        answer = original(self, records)
        answers.append(answer)
        return answer

    monkeypatch.setattr(importer._Importer, "_take_new_page", spy)
    return answers


def _import(engine: Engine, source: Path, **options: Any) -> ImportReport:
    with open_source(source) as opened:
        return run_import(
            engine=engine,
            records=opened.records(),
            options=ImportOptions(source_name=opened.name, **options),
        )


def _one_by_one(engine: Engine, source: Path, **options: Any) -> ImportReport:
    """The import with the page path turned off."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(importer._Importer, "_take_new_page", lambda _self, _records: False)
        return _import(engine, source, **options)


def _rows(engine: Engine) -> dict[str, list[str]]:
    """Every row of every table but its write-time columns, in a stable order."""
    dump: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for table in sorted(inspect(engine).get_table_names()):
            if table.startswith(("idx_", "spatial", "geometry_columns", "sql_", "virts")):
                continue
            result = conn.execute(text(f'SELECT * FROM "{table}"'))
            names = list(result.keys())
            skipped = WRITE_TIME_COLUMNS | ({"id"} if table in RANDOM_ID_TABLES else set())
            dump[table] = sorted(
                repr({n: v for n, v in zip(names, row, strict=True) if n not in skipped})
                for row in result
            )
    return dump


def _same_rows(first: Engine, second: Engine) -> None:
    """The two databases hold the same rows (the differences of a table named if not)."""
    ours, theirs = _rows(first), _rows(second)
    assert ours.keys() == theirs.keys()
    for table, rows in ours.items():
        other = theirs[table]
        only_ours = sorted(set(rows) - set(other))[:5]
        only_theirs = sorted(set(other) - set(rows))[:5]
        assert rows == other, (table, only_ours, only_theirs)


def _report(report: ImportReport) -> dict[str, Any]:
    return {
        "counts": {name: c.as_json() for name, c in sorted(report.counts.items())},
        "errors": report.errors,
        "warnings": report.warnings,
        "exit": report.exit_code,
        "written": report.written,
    }


def _chain_holds(engine: Engine) -> None:
    with Session(engine) as session:
        result = audit.verify(session=session)
    assert result.ok, result


def test_pages_of_new_records_write_what_one_by_one_writes(
    engines: tuple[Engine, Engine], copies: Path, pages: list[bool]
) -> None:
    paged, one_by_one = engines
    report = _import(paged, copies)
    assert report.errors == []
    assert pages == [True, True, True], "every page of new copies is written as a page"
    assert _report(report) == _report(_one_by_one(one_by_one, copies))
    assert report.table("service").created == COPIES
    _same_rows(paged, one_by_one)
    _chain_holds(paged)


def test_a_page_with_a_refused_record_is_written_one_by_one(
    engines: tuple[Engine, Engine], copies: Path, pages: list[bool], tmp_path: Path
) -> None:
    records = json.loads(copies.read_text(encoding="utf-8"))
    del records[4]["name"]  # the second page's second record
    source = tmp_path / "one-refused.json"
    source.write_text(json.dumps(records), encoding="utf-8")
    paged, one_by_one = engines
    report = _import(paged, source, skip_invalid=True)
    assert pages == [True, False, True]
    assert ("service", "name") in {(e.table, e.field) for e in report.errors}
    assert _report(report) == _report(_one_by_one(one_by_one, source, skip_invalid=True))
    _same_rows(paged, one_by_one)
    _chain_holds(paged)


def test_a_page_import_repeated_is_unchanged(
    engines: tuple[Engine, Engine], copies: Path, pages: list[bool]
) -> None:
    paged, _ = engines
    assert _import(paged, copies).errors == []
    before = _rows(paged)
    again = _import(paged, copies)
    assert pages[3:] == [False, False, False], "stored records are not new: one by one"
    assert all(c.created == 0 and c.updated == 0 for c in again.counts.values()), again.counts
    after = _rows(paged)
    assert len(after.pop("audit_entry")) == len(before.pop("audit_entry")) + 1  # the import's
    assert after == before


def test_a_page_linking_a_service_to_a_location_twice_is_written_one_by_one(
    engines: tuple[Engine, Engine], copies: Path, pages: list[bool], tmp_path: Path
) -> None:
    records = json.loads(copies.read_text(encoding="utf-8"))
    (link,) = records[1]["service_at_locations"]
    # The same service and location again, under an id of its own: the page's one check of
    # its links (service_at_locations.note_unlinked) lets the first through, not the second.
    records[1]["service_at_locations"].append(
        {"id": str(uuid.uuid4()), "location": link["location"]}
    )
    source = tmp_path / "linked-twice.json"
    source.write_text(json.dumps(records), encoding="utf-8")
    paged, one_by_one = engines
    report = _import(paged, source, skip_invalid=True)
    assert pages == [False, True, True]
    assert [(e.table, e.message) for e in report.errors] == [
        ("service_at_location", "The service is already linked to that location.")
    ]
    assert _report(report) == _report(_one_by_one(one_by_one, source, skip_invalid=True))
    _same_rows(paged, one_by_one)
    _chain_holds(paged)
