"""The export -> import -> export round trip (issue 15), on both backends.

The sample network (restricted and confidential sites, capacity figures, verified services) plus
what the sample lacks (schedules on a site and on a service at a location, contacts with phones
and their languages) is exported in json, ndjson and csv into folder A; each folder is imported
into a fresh migrated database that holds only the administrative areas and our own taxonomy
(what `taxonomy load` puts in every deployment); that database is exported again into folder B.
The truth is the first export itself: B must be the same bytes as A, file by file. Done as a
steward (everything) and as the public (the confidential sites absent throughout).
"""

from __future__ import annotations

import csv
import difflib
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from referral_net.db.engine import make_engine
from referral_net.db.models import (
    Attribute,
    Location,
    Organization,
    ServiceAtLocation,
    ServiceCapacity,
    TaxonomyTerm,
    Unit,
)
from referral_net.domain import imported_records, locations, seed
from referral_net.domain import taxonomy as taxonomy_domain
from referral_net.exchange.export import Audience, ExportFormat, write_export
from referral_net.exchange.importer import run_import
from referral_net.exchange.records import ImportOptions, ImportReport, SourceRecord
from referral_net.exchange.sources import open_source
from referral_net.schemas.directory import LocationUpdate, PhoneIn, ScheduleIn
from referral_net.security.roles import Principal, Role
from referral_net.settings import Settings
from referral_net.vocab import Visibility
from tests.databases import copy_of as copy_database
from tests.databases import migrated_template

pytestmark = pytest.mark.db

STEWARD = Principal(role=Role.STEWARD, subject="user:round-trip")
LINK_CONTACT = "Coordinación de turno (ejemplo)"
ORG_CONTACT = "Dirección (ejemplo)"


# --- databases --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """A migrated database with the administrative areas and our own taxonomy: what every
    deployment holds before its directory is imported. Copied for each database of a test."""
    return migrated_template(backend, request, tmp_path_factory, name="rttpl", with_taxonomy=True)


@pytest.fixture(scope="module")
def seeded(template: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The template with the directory of these tests (seeded once: each test copies it)."""
    settings = copy_database(template, tmp_path_factory.mktemp("round-trip-seeded"))
    engine = make_engine(settings)
    try:
        _seed(engine)
    finally:
        engine.dispose()
    return settings


@pytest.fixture
def copy_of(tmp_path: Path) -> Iterator[Callable[[Settings], Engine]]:
    """A maker of fresh databases: each call gives the engine of a new copy of a database."""
    engines: list[Engine] = []

    def make(original: Settings) -> Engine:
        engine = make_engine(copy_database(original, tmp_path))
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.dispose()


# --- the directory ----------------------------------------------------------------------------


def _seed(engine: Engine) -> None:
    """The sample network and what the sample lacks (schedules on a site and on a link,
    contacts of a link and of an organization, a link's phone with its languages)."""
    with Session(engine) as session:
        seed.load_sample(session=session)
        session.commit()
        site = session.exec(
            select(Location)
            .where(col(Location.visibility) == Visibility.PUBLIC.value)
            .order_by(col(Location.id))
        ).first()
        assert site is not None
        locations.update(
            session=session,
            principal=STEWARD,
            location=site,
            data=LocationUpdate.model_validate(
                {
                    "schedules": [
                        {"byday": "MO,WE,FR", "opens_at": "09:00", "closes_at": "13:00"},
                        {"byday": "SA", "opens_at": "08:00", "closes_at": "12:00"},
                    ]
                }
            ),
        )
        link = session.exec(select(ServiceAtLocation).order_by(col(ServiceAtLocation.id))).first()
        assert link is not None
        imported_records.replace_link_nested(
            session,
            link,
            phones=[
                PhoneIn.model_validate(
                    {"id": uuid.uuid4(), "number": "+502 5555 0142", "languages": ["spa", "mam"]}
                )
            ],
            schedules=[
                ScheduleIn.model_validate(
                    {
                        "id": uuid.uuid4(),
                        "byday": "TU,TH",
                        "opens_at": "14:00",
                        "closes_at": "18:00",
                    }
                )
            ],
            contacts=[
                {
                    "id": uuid.uuid4(),
                    "name": LINK_CONTACT,
                    "email": "turno@example.org",
                    "phones": [
                        PhoneIn.model_validate({"id": uuid.uuid4(), "number": "+502 5555 0143"})
                    ],
                }
            ],
        )
        organization = session.exec(select(Organization).order_by(col(Organization.id))).first()
        assert organization is not None
        imported_records.replace_contacts(
            session,
            "organization_id",
            organization.id,
            [{"id": uuid.uuid4(), "name": ORG_CONTACT, "title": "Directora", "phones": []}],
            field="contacts",
        )
        session.commit()


def _export(engine: Engine, folder: Path, fmt: ExportFormat, audience: Audience) -> Path:
    with Session(engine) as session:
        write_export(session=session, directory=folder, export_format=fmt, audience=audience)
    return folder


def _import(engine: Engine, folder: Path) -> ImportReport:
    # Public by default: every site states its visibility, and a more hidden one is kept.
    with open_source(folder) as source:
        return run_import(
            engine=engine,
            records=source.records(),
            options=ImportOptions(
                source_name=source.name, visibility=Visibility.PUBLIC, keep_last_modified=True
            ),
        )


def _differences(first: Path, second: Path, *, skip: frozenset[str] = frozenset()) -> list[str]:
    """Every file present in only one folder, and the first differing lines of each other file
    (but those named in ``skip``)."""
    names = {p.name for p in first.iterdir()} | {p.name for p in second.iterdir()}
    found: list[str] = []
    for name in sorted(names - skip):
        a, b = first / name, second / name
        if not (a.exists() and b.exists()):
            found.append(f"{name}: only in {'A' if a.exists() else 'B'}")
            continue
        if a.read_bytes() == b.read_bytes():
            continue
        diff = difflib.unified_diff(
            a.read_text("utf-8").splitlines(),
            b.read_text("utf-8").splitlines(),
            f"A/{name}",
            f"B/{name}",
            n=0,
            lineterm="",
        )
        found.append("\n".join(line[:600] for line in list(diff)[:12]))
    return found


LINKS_FILE = {"json": "service_at_locations.json", "ndjson": "service_at_locations.ndjson"}
LINKS_CSV = "service_at_location.csv"


def _links(folder: Path, fmt: ExportFormat) -> list[dict[str, Any]]:
    """The links of an export as flat records in file order (the nested ones' own fields)."""
    if fmt == "csv":
        with (folder / LINKS_CSV).open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))
    text = (folder / LINKS_FILE[fmt]).read_text("utf-8")
    if fmt == "json":
        loaded: list[dict[str, Any]] = json.loads(text)
        return loaded
    return [json.loads(line) for line in text.splitlines()]


def _ids(engine: Engine, visibility: Visibility) -> set[str]:
    with Session(engine) as session:
        found = session.exec(
            select(col(Location.id)).where(col(Location.visibility) == visibility.value)
        ).all()
    return {str(i) for i in found}


def _assert_public_links_differ_only_in_restricted_stamps(
    first: Path, second: Path, fmt: ExportFormat, restricted: set[str]
) -> None:
    """docs/export.md, "Round trip": a public link at a restricted site has the site's stamp,
    which the public view withholds; nothing else of the links may differ."""
    before, after = _links(first, fmt), _links(second, fmt)
    assert [link["id"] for link in before] == [link["id"] for link in after]
    restamped = 0
    for old, new in zip(before, after, strict=True):
        if old == new:
            continue
        assert old["location_id"] in restricted, old["id"]
        assert {k: v for k, v in old.items() if k != "last_modified"} == {
            k: v for k, v in new.items() if k != "last_modified"
        }
        assert new["last_modified"] > old["last_modified"]
        restamped += 1
    assert restamped > 0, "the sample network has public links at restricted sites"


# Every format as a steward (everything travels); as the public, one format per file layout
# (nested JSON and flat CSV): the public leg tests what the audience withholds, not the format, and
# each leg costs two exports and an import (keeping the suite under its time budget).
@pytest.mark.parametrize(
    ("audience", "fmt"),
    [
        ("steward", "json"),
        ("steward", "ndjson"),
        ("steward", "csv"),
        ("public", "ndjson"),
        ("public", "csv"),
    ],
)
def test_export_import_export_gives_the_same_files(
    template: Settings,
    seeded: Settings,
    copy_of: Callable[[Settings], Engine],
    tmp_path: Path,
    fmt: ExportFormat,
    audience: Audience,
) -> None:
    source = copy_of(seeded)
    confidential = _ids(source, Visibility.CONFIDENTIAL)
    restricted = _ids(source, Visibility.RESTRICTED)
    assert confidential, "the sample network has confidential sites"
    first = _export(source, tmp_path / "A", fmt, audience)

    target = copy_of(template)
    report = _import(target, first)
    assert not report.errors, [p.as_json() for p in report.errors[:10]]
    assert report.written
    second = _export(target, tmp_path / "B", fmt, audience)

    exported = b"".join(p.read_bytes() for p in sorted(first.iterdir()))
    hidden_present = sorted(i for i in confidential if i.encode() in exported)
    if audience == "steward":
        assert not _differences(first, second), "\n".join(_differences(first, second))
        assert LINK_CONTACT.encode() in exported
        assert ORG_CONTACT.encode() in exported
        assert hidden_present == sorted(confidential)
        return
    links = frozenset({LINKS_CSV if fmt == "csv" else LINKS_FILE[fmt]})
    assert not _differences(first, second, skip=links), "\n".join(
        _differences(first, second, skip=links)
    )
    _assert_public_links_differ_only_in_restricted_stamps(first, second, fmt, restricted)
    assert hidden_present == []
    assert _ids(target, Visibility.CONFIDENTIAL) == set()
    exported_again = b"".join(p.read_bytes() for p in sorted(second.iterdir()))
    assert [i for i in confidential if i.encode() in exported_again] == []


def test_own_terms_categories_alone_and_served_capacity_import(
    template: Settings, copy_of: Callable[[Settings], Engine]
) -> None:
    """An own term equal to the stored one is unchanged, a differing one refused; a service
    with categories and no attributes, and capacity in its served form, is imported."""
    engine = copy_of(template)
    with Session(engine) as session:
        term = session.exec(
            select(TaxonomyTerm)
            .where(col(TaxonomyTerm.taxonomy_id) == taxonomy_domain.OWN_TAXONOMY_ID)
            .where(col(TaxonomyTerm.parent_id).is_not(None))
            .order_by(col(TaxonomyTerm.code))
        ).first()
        assert term is not None
        assert term.code is not None
        own = {"id": str(term.id), "taxonomy_id": str(term.taxonomy_id), "code": term.code}
        term_name = term.name
    organization_id, service_id = uuid.uuid4(), uuid.uuid4()
    counted = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    records = [
        SourceRecord("taxonomy_term", "same", {**own, "name": term_name}),
        SourceRecord("organization", "org", {"id": str(organization_id), "name": "Red (ejemplo)"}),
        SourceRecord(
            "service",
            "service",
            {
                "id": str(service_id),
                "organization_id": str(organization_id),
                "name": "Albergue (ejemplo)",
                "categories": [term.code],
                "capacity": [
                    {
                        "unit": "bed",
                        "available": 3,
                        "maximum": 5,
                        "updated": counted.isoformat(),
                        "stale": True,
                    }
                ],
            },
        ),
    ]
    report = run_import(
        engine=engine, records=records, options=ImportOptions(source_name="records")
    )
    assert not report.errors, [p.as_json() for p in report.errors]
    assert report.table("taxonomy_term").unchanged == 1
    with Session(engine) as session:
        figures = session.exec(
            select(ServiceCapacity).where(col(ServiceCapacity.service_id) == service_id)
        ).all()
        assert [(f.available, f.maximum, f.updated) for f in figures] == [(3, 5, counted)]
        unit = session.get(Unit, figures[0].unit_id)
        assert unit is not None
        assert unit.identifier == "bed"
        linked = session.exec(
            select(col(Attribute.taxonomy_term_id)).where(col(Attribute.link_id) == service_id)
        ).all()
        assert list(linked) == [uuid.UUID(own["id"])]

    changed = SourceRecord("taxonomy_term", "changed", {**own, "name": f"{term_name} (otro)"})
    refused = run_import(
        engine=engine, records=[changed], options=ImportOptions(source_name="changed")
    )
    assert [(p.field, p.record_id) for p in refused.errors] == [("name", own["id"])]
    assert "taxonomy load" in refused.errors[0].message
    assert not refused.written
