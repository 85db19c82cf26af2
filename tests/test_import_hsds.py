"""HSDS import (issue 15): the official examples, idempotence, all or nothing, --skip-invalid,
--dry-run, visibility, the audit event, URL, NDJSON, zip and the command line, on both backends.

Each test gets a database of its own (a copy of one migrated template per backend): an import
commits, so the per-test rolled-back transaction of ``conftest`` cannot hold it. Expected values
come from the example files themselves.
"""

from __future__ import annotations

import csv
import functools
import http.server
import json
import threading
import uuid
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, text
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from referral_net.cli import app as cli_app
from referral_net.db.engine import make_engine
from referral_net.db.models import (
    Accessibility,
    Address,
    Attribute,
    AuditEntry,
    Contact,
    CostOption,
    Funding,
    Language,
    Location,
    Metadata,
    Organization,
    OrganizationIdentifier,
    Phone,
    Program,
    RequiredDocument,
    Schedule,
    Service,
    ServiceAtLocation,
    Taxonomy,
    TaxonomyTerm,
)
from referral_net.exchange.importer import run_import
from referral_net.exchange.records import (
    EXIT_ALL_IMPORTED,
    EXIT_PARTLY_IMPORTED,
    EXIT_REFUSED,
    ImportOptions,
    ImportReport,
)
from referral_net.exchange.sources import SourceError, open_source
from referral_net.settings import Settings
from referral_net.vocab import Visibility
from tests.databases import copy_of, migrated_template

pytestmark = pytest.mark.db

EXAMPLES = Path(__file__).resolve().parents[1] / "specs" / "hsds-3.0" / "examples"


def _load(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


# --- a database per test --------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """A migrated database with the administrative areas, copied for each test."""
    return migrated_template(backend, request, tmp_path_factory, name="imptpl", with_taxonomy=False)


@pytest.fixture
def db(template: Settings, tmp_path: Path) -> Settings:
    """A fresh copy of the template database."""
    return copy_of(template, tmp_path)


@pytest.fixture
def engine_(db: Settings) -> Iterator[Engine]:
    """The engine of the test's own database."""
    engine = make_engine(db)
    yield engine
    engine.dispose()


def _import(engine: Engine, location: str | Path, **options: Any) -> ImportReport:
    with open_source(location) as source:
        return run_import(
            engine=engine,
            records=source.records(),
            options=ImportOptions(source_name=source.name, **options),
        )


def _dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order (for byte-for-byte comparisons)."""
    tables = sorted(inspect(engine).get_table_names())
    dump: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in tables:
            if table.startswith(("idx_", "spatial", "geometry_columns", "sql_", "virts")):
                continue
            rows = conn.execute(text(f'SELECT * FROM "{table}"')).all()
            dump[table] = sorted((tuple(repr(v) for v in row) for row in rows), key=repr)
    return dump


def _ids(engine: Engine, model: type[Any]) -> set[uuid.UUID]:
    with Session(engine) as session:
        return set(session.exec(select(col(model.id))))


# --- the official examples ------------------------------------------------------------------


@pytest.fixture
def service_full(engine_: Engine) -> ImportReport:
    """service_full.json imported into the test's database."""
    return _import(engine_, EXAMPLES / "service_full.json")


def test_service_full_imports_with_its_defects_as_warnings(service_full: ImportReport) -> None:
    """service_full.json: one record of each table, written; its oddities are warnings."""
    assert service_full.errors == []
    assert service_full.exit_code == EXIT_ALL_IMPORTED
    assert service_full.written
    assert {name: c.created for name, c in service_full.counts.items()} == {
        "organization": 1,
        "location": 1,
        "service": 1,
        "service_at_location": 1,
        "taxonomy": 1,
        "taxonomy_term": 1,
    }
    warned = {(w.table, w.field) for w in service_full.warnings}
    assert ("location", "latitude") in warned  # lat 100, lon 101
    assert ("service", "phones.0.number") in warned  # the number in quotes
    assert ("service", "service_areas.0.extent") in warned  # "extent" is no GeoJSON
    assert ("service", "schedules.0.count") in warned  # count and until together
    assert ("organization", "parent_organization_id") in warned  # no such organization


def test_service_full_keeps_the_organization_fields(
    engine_: Engine, service_full: ImportReport
) -> None:
    """Contacts, funding, programs and organization identifiers are kept."""
    assert service_full.errors == []
    example = _load("service_full.json")
    organization = example["organization"]
    with Session(engine_) as session:
        stored = session.get(Organization, uuid.UUID(organization["id"]))
        assert stored is not None
        assert stored.legal_status == organization["legal_status"]
        program = session.get(Program, uuid.UUID(example["program"]["id"]))
        assert program is not None
        assert program.name == example["program"]["name"]
        identifiers = session.exec(select(OrganizationIdentifier)).all()
        assert [i.identifier for i in identifiers] == [
            organization["organization_identifiers"][0]["identifier"]
        ]
        funding = session.exec(select(Funding)).all()
        assert {f.source for f in funding} == {example["funding"][0]["source"]}
        assert len(funding) == 2  # the organization's and the service's
        contacts = session.exec(select(Contact)).all()
        # the same contact on the organization, service, location and link: one row each
        assert len(contacts) == 4
        assert {c.name for c in contacts} == {example["contacts"][0]["name"]}
        phones = session.exec(select(Phone)).all()
        assert {p.number for p in phones} == {"+441234234567"}


def test_service_full_keeps_the_service_fields(engine_: Engine, service_full: ImportReport) -> None:
    """Fees, verification, program, cost options, documents, languages, attributes linking a
    term of another taxonomy (imported too) and metadata are kept."""
    assert service_full.errors == []
    example = _load("service_full.json")
    term = example["attributes"][0]["taxonomy_term"]
    with Session(engine_) as session:
        service = session.get(Service, uuid.UUID(example["id"]))
        assert service is not None
        assert service.name == example["name"]
        assert service.fees == example["fees"]
        assert str(service.assured_date) == example["assured_date"]
        assert service.assurer_email == example["assurer_email"]
        assert service.program_id == uuid.UUID(example["program"]["id"])
        (cost,) = session.exec(select(CostOption)).all()
        assert cost.amount == example["cost_options"][0]["amount"]
        assert cost.currency == example["cost_options"][0]["currency"].upper()
        (document,) = session.exec(select(RequiredDocument)).all()
        assert document.document == example["required_documents"][0]["document"]
        languages = session.exec(select(Language).where(col(Language.service_id) == service.id))
        assert [lang.code for lang in languages] == ["urd"]  # "ur", as ISO 639-3
        assert session.get(Taxonomy, uuid.UUID(term["taxonomy_detail"]["id"])) is not None
        stored_term = session.get(TaxonomyTerm, uuid.UUID(term["id"]))
        assert stored_term is not None
        assert stored_term.code == term["code"]
        attribute = session.get(Attribute, uuid.UUID(example["attributes"][0]["id"]))
        assert attribute is not None
        assert (attribute.link_id, attribute.value) == (
            service.id,
            example["attributes"][0]["value"],
        )
        metadata = session.get(Metadata, uuid.UUID(example["metadata"][0]["id"]))
        assert metadata is not None
        assert metadata.replacement_value == example["metadata"][0]["replacement_value"]


def test_service_full_keeps_the_location_and_the_link(
    engine_: Engine, service_full: ImportReport
) -> None:
    """The site (no point: lat 100 is out of range; flagged, restricted by default) with its
    address and accessibility; schedules on the service, the site and the link."""
    assert service_full.errors == []
    link = _load("service_full.json")["service_at_locations"][0]
    location = link["location"]
    with Session(engine_) as session:
        site = session.get(Location, uuid.UUID(location["id"]))
        assert site is not None
        assert (site.latitude, site.longitude, site.needs_geocoding) == (None, None, True)
        assert site.visibility == Visibility.RESTRICTED
        (address,) = session.exec(select(Address)).all()
        assert address.address_1 == location["addresses"][0]["address_1"]
        (access,) = session.exec(select(Accessibility)).all()
        assert access.details == location["accessibility"][0]["details"]
        schedules = session.exec(select(Schedule)).all()
        owners = {
            ("service" if s.service_id else "location" if s.location_id else "link")
            for s in schedules
        }
        assert owners == {"service", "location", "link"}
        assert {s.until for s in schedules} == {
            date.fromisoformat(location["schedules"][0]["until"])
        }
        link_row = session.get(ServiceAtLocation, uuid.UUID(link["id"]))
        assert link_row is not None
        assert link_row.description == link["description"]


def test_keep_last_modified_keeps_the_source_time(engine_: Engine) -> None:
    example = _load("service_full.json")
    report = _import(engine_, EXAMPLES / "service_full.json", keep_last_modified=True)
    assert report.errors == []
    with Session(engine_) as session:
        service = session.get(Service, uuid.UUID(example["id"]))
        assert service is not None
        assert service.last_modified == datetime.fromisoformat(example["last_modified"])


def test_a_repeated_import_is_unchanged_and_writes_nothing(engine_: Engine) -> None:
    first = _import(engine_, EXAMPLES / "service_full.json")
    assert first.exit_code == EXIT_ALL_IMPORTED
    before = _dump(engine_)
    second = _import(engine_, EXAMPLES / "service_full.json")
    assert second.errors == []
    assert all(c.created == 0 and c.updated == 0 for c in second.counts.values()), second.counts
    assert sum(c.unchanged for c in second.counts.values()) == 6
    after = _dump(engine_)
    # only the import's own audit entry is new
    assert len(after.pop("audit_entry")) == len(before.pop("audit_entry")) + 1
    assert after == before


@pytest.mark.parametrize(
    "name",
    [
        "organization_full.json",
        "service_at_location_full.json",
        "service_list.json",
        "organization_list.json",
        "service_at_location_list.json",
        "taxonomy.json",
        "taxonomy_list.json",
        "taxonomy_term.json",
        "taxonomy_term_list.json",
        "location.json",
    ],
)
def test_every_nested_example_imports_after_service_full(engine_: Engine, name: str) -> None:
    """Each official nested example, once its organization is known, imports without errors
    and every record it holds is counted."""
    assert _import(engine_, EXAMPLES / "service_full.json").exit_code == EXIT_ALL_IMPORTED
    example = _load(name)
    report = _import(engine_, EXAMPLES / name)
    assert report.errors == []
    assert report.exit_code == EXIT_ALL_IMPORTED
    top = example.get("contents", [example])
    table = name.removesuffix(".json").removesuffix("_full").removesuffix("_list")
    assert sum(c.created + c.updated + c.unchanged for c in [report.counts[table]]) == len(top)


def test_a_location_of_no_known_organization_is_an_error_not_a_crash(engine_: Engine) -> None:
    """location.json names no organization: alone it is refused, the field named."""
    assert "organization_id" not in _load("location.json")
    report = _import(engine_, EXAMPLES / "location.json")
    assert report.exit_code == EXIT_REFUSED
    assert not report.written
    assert [(p.table, p.field) for p in report.errors] == [("location", "organization_id")]
    assert _ids(engine_, Location) == set()


def _csv_rows(name: str) -> list[dict[str, str]]:
    with (EXAMPLES / "csv" / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_csv_datapackage_reports_its_dangling_organization_and_writes_nothing(
    engine_: Engine,
) -> None:
    """The official datapackage's location names an organization organizations.csv does not
    hold: all or nothing refuses the package, the database unchanged byte for byte."""
    organizations = {row["id"] for row in _csv_rows("organizations.csv")}
    (location,) = _csv_rows("locations.csv")
    assert location["organization_id"] not in organizations
    assert _import(engine_, EXAMPLES / "service_full.json").exit_code == EXIT_ALL_IMPORTED
    before = _dump(engine_)
    report = _import(engine_, EXAMPLES / "csv")
    assert report.exit_code == EXIT_REFUSED
    assert not report.written
    assert ("location", "locations.csv row 2", "organization_id") in {
        (p.table, p.row, p.field) for p in report.errors
    }
    assert report.counts["location"].refused == 1
    assert _dump(engine_) == before


def test_skip_invalid_imports_the_good_records_and_exits_3(engine_: Engine) -> None:
    report = _import(engine_, EXAMPLES / "csv", skip_invalid=True)
    assert report.exit_code == EXIT_PARTLY_IMPORTED
    assert report.written
    (location,) = _csv_rows("locations.csv")
    (link,) = _csv_rows("service_at_location.csv")
    assert {(p.table, p.record_id) for p in report.errors} == {
        ("location", location["id"]),
        ("service_at_location", link["id"]),
    }
    assert _ids(engine_, Organization) == {
        uuid.UUID(row["id"]) for row in _csv_rows("organizations.csv")
    }
    assert _ids(engine_, Service) == {uuid.UUID(row["id"]) for row in _csv_rows("services.csv")}
    assert _ids(engine_, Location) == set()
    assert _ids(engine_, ServiceAtLocation) == set()


def test_dry_run_validates_and_writes_nothing(engine_: Engine) -> None:
    before = _dump(engine_)
    report = _import(engine_, EXAMPLES / "service_full.json", dry_run=True)
    assert report.errors == []
    assert report.exit_code == EXIT_ALL_IMPORTED
    assert not report.written
    assert report.counts["service"].created == 1
    assert _dump(engine_) == before


def test_the_import_is_one_audit_event_with_its_counts(engine_: Engine) -> None:
    report = _import(engine_, EXAMPLES / "service_full.json")
    with Session(engine_) as session:
        events = session.exec(select(AuditEntry).where(col(AuditEntry.action) == "import")).all()
    assert len(events) == 1
    assert events[0].actor == "system:import"
    assert events[0].detail is not None
    assert events[0].detail["counts"] == {
        name: counts.as_json() for name, counts in report.counts.items()
    }


# --- visibility, NDJSON ---------------------------------------------------------------------

_ORG = uuid.UUID("0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9")


def _site(number: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.UUID(int=number)),
        "organization_id": str(_ORG),
        "name": f"Sede {number}",
        "latitude": 14.8347,
        "longitude": -91.5181,
        **fields,
    }


def _ndjson(tmp_path: Path, name: str, records: list[dict[str, Any]]) -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _visibility(engine: Engine, number: int) -> str:
    with Session(engine) as session:
        site = session.get(Location, uuid.UUID(int=number))
        assert site is not None
        return site.visibility


def test_visibility_defaults_to_restricted_and_is_never_raised(
    engine_: Engine, tmp_path: Path
) -> None:
    organization = {"id": str(_ORG), "name": "Asociación de prueba", "description": "x"}
    _ndjson(tmp_path, "organizations.ndjson", [organization])
    sites = [_site(1), _site(2, visibility="confidential"), _site(3, visibility="public")]
    _ndjson(tmp_path, "locations.ndjson", sites)
    report = _import(engine_, tmp_path)
    assert report.errors == []
    assert report.counts["location"].created == len(sites)
    assert _visibility(engine_, 1) == "restricted"
    assert _visibility(engine_, 2) == "confidential"
    assert _visibility(engine_, 3) == "restricted"  # held to the default, with a warning
    assert ("location", "visibility") in {(w.table, w.field) for w in report.warnings}
    # --visibility public publishes what states nothing, but never uncovers a hidden site
    again = _import(engine_, tmp_path, visibility=Visibility.PUBLIC)
    assert again.errors == []
    assert _visibility(engine_, 1) == "restricted"
    assert _visibility(engine_, 2) == "confidential"


def test_ndjson_lines_are_each_reported_and_a_confidential_value_is_never_shown(
    engine_: Engine, tmp_path: Path
) -> None:
    organization = {"id": str(_ORG), "name": "Asociación de prueba", "description": "x"}
    secret_phone = "not-a-phone-99"
    path = _ndjson(
        tmp_path,
        "mixed.ndjson",
        [
            organization,
            _site(4, visibility="confidential", phones=[{"number": secret_phone}]),
            _site(5, latitude=None, longitude=None),
        ],
    )
    with path.open("a", encoding="utf-8") as handle:
        handle.write("{not json\n")
    report = _import(engine_, path)
    assert report.exit_code == EXIT_REFUSED
    rows = {(p.row, p.field) for p in report.errors}
    assert ("mixed.ndjson line 2", "phones.0.number") in rows
    assert any(p.row == "mixed.ndjson line 4" for p in report.errors)
    assert secret_phone not in json.dumps(report.as_json())
    # the site without coordinates is no error: a warning and a flag
    assert ("mixed.ndjson line 3", "latitude") in {(w.row, w.field) for w in report.warnings}
    assert _ids(engine_, Location) == set()


def test_a_location_without_coordinates_is_flagged_for_geocoding(
    engine_: Engine, tmp_path: Path
) -> None:
    organization = {"id": str(_ORG), "name": "Asociación de prueba", "description": "x"}
    path = _ndjson(
        tmp_path,
        "sites.ndjson",
        [organization, _site(6, latitude=None, longitude=None), _site(7)],
    )
    report = _import(engine_, path)
    assert report.errors == []
    with Session(engine_) as session:
        unplaced = session.get(Location, uuid.UUID(int=6))
        placed = session.get(Location, uuid.UUID(int=7))
        assert unplaced is not None
        assert placed is not None
        assert (unplaced.latitude, unplaced.needs_geocoding) == (None, True)
        assert unplaced.geocoding_precision is None
        assert (placed.latitude, placed.longitude) == (14.8347, -91.5181)
        assert (placed.needs_geocoding, placed.geocoding_precision) == (False, "given")
        assert placed.municipality_code is not None


# --- URL and zip ------------------------------------------------------------------------------


@pytest.fixture
def served_examples() -> Iterator[str]:
    """The examples folder over HTTP on a local port."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(EXAMPLES))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_url_imports_like_the_file(engine_: Engine, served_examples: str) -> None:
    report = _import(engine_, f"{served_examples}/service_full.json")
    assert report.errors == []
    assert report.source == "service_full.json"
    assert report.counts["service"].created == 1
    assert _ids(engine_, Service) == {uuid.UUID(_load("service_full.json")["id"])}
    with pytest.raises(SourceError, match="HTTP 404"):
        open_source(f"{served_examples}/missing.json")
    with pytest.raises(SourceError, match="larger than"):
        open_source(f"{served_examples}/service_full.json", max_bytes=100)


def test_a_zip_of_the_datapackage_and_of_table_files(engine_: Engine, tmp_path: Path) -> None:
    package = tmp_path / "package.zip"
    with zipfile.ZipFile(package, "w") as archive:
        for path in (EXAMPLES / "csv").iterdir():
            archive.write(path, f"csv/{path.name}")
    from_zip = _import(engine_, package)
    from_folder = _import(engine_, EXAMPLES / "csv")
    assert from_zip.as_json()["errors"] == from_folder.as_json()["errors"]
    assert from_zip.exit_code == EXIT_REFUSED
    # the export's layout: one file per table, read in dependency order whatever the zip's
    service = _load("service_full.json")
    organization = {k: v for k, v in service["organization"].items() if k != "locations"}
    flat_service = {
        **{k: v for k, v in service.items() if k not in ("organization", "service_at_locations")},
        "organization_id": organization["id"],
    }
    tables = tmp_path / "tables.zip"
    with zipfile.ZipFile(tables, "w") as archive:
        archive.writestr("services.json", json.dumps([flat_service]))
        archive.writestr("organizations.ndjson", json.dumps(organization) + "\n")
    report = _import(engine_, tables)
    assert report.errors == []
    assert report.counts["organization"].created == 1
    assert report.counts["service"].created == 1


# --- the command line -----------------------------------------------------------------------


def test_the_command_exits_with_the_report_code_and_writes_the_report(
    db: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFERRAL_NET_DATABASE_URL", db.database_url)
    runner = CliRunner()
    report_file = tmp_path / "report.json"
    refused = runner.invoke(
        cli_app, ["import", "hsds", str(EXAMPLES / "csv"), "--report", str(report_file)]
    )
    assert refused.exit_code == EXIT_REFUSED, refused.output
    written = json.loads(report_file.read_text(encoding="utf-8"))
    assert written["exit_code"] == EXIT_REFUSED
    assert written["written"] is False
    assert "locations.csv row 2" in refused.stdout
    partly = runner.invoke(cli_app, ["import", "hsds", str(EXAMPLES / "csv"), "--skip-invalid"])
    assert partly.exit_code == EXIT_PARTLY_IMPORTED, partly.output
    done = runner.invoke(
        cli_app, ["import", "hsds", str(EXAMPLES / "service_full.json"), "--visibility", "public"]
    )
    assert done.exit_code == EXIT_ALL_IMPORTED, done.output
    missing = runner.invoke(cli_app, ["import", "hsds", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2
    assert missing.stderr.startswith("error: no such file or folder")
    bad = runner.invoke(cli_app, ["import", "hsds", "x.json", "--visibility", "everyone"])
    assert bad.exit_code == 2


def test_a_changed_record_is_updated_and_the_rest_unchanged(
    engine_: Engine, tmp_path: Path
) -> None:
    assert _import(engine_, EXAMPLES / "service_full.json").exit_code == EXIT_ALL_IMPORTED
    changed = _load("service_full.json")
    changed["name"] = "Community Counselling (renamed)"
    path = tmp_path / "service.json"
    path.write_text(json.dumps(changed), encoding="utf-8")
    report = _import(engine_, path)
    assert report.errors == []
    assert report.counts["service"].updated == 1
    assert report.counts["organization"].unchanged == 1
    assert report.counts["location"].unchanged == 1
    with Session(engine_) as session:
        service = session.get(Service, uuid.UUID(changed["id"]))
        assert service is not None
        assert service.name == changed["name"]
        assert service.version == 2  # created, then updated once


def test_a_parent_that_comes_later_in_the_source_is_linked(engine_: Engine, tmp_path: Path) -> None:
    child, parent = uuid.UUID(int=21), uuid.UUID(int=22)
    path = _ndjson(
        tmp_path,
        "organizations.ndjson",
        [
            {"id": str(child), "name": "Filial", "parent_organization_id": str(parent)},
            {"id": str(parent), "name": "Matriz"},
        ],
    )
    report = _import(engine_, path)
    assert report.errors == []
    assert report.warnings == []
    with Session(engine_) as session:
        stored = session.get(Organization, child)
        assert stored is not None
        assert stored.parent_organization_id == parent
