"""The HSDS export (exchange/export.py, `referral-net export hsds`, GET /api/v1/export), on both
backends.

A small network: a public office, a restricted shelter and a confidential safe house of one
organization, services at each. The truth an export is held to is independent of the exporter:
what each audience's own GET requests answer, the profile's JSON schemas, Frictionless's own
validation of the CSV datapackage, the municipality's representative point from the boundary
files, and the coordinates and names the test itself gave the hidden sites.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import frictionless
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from referral_net.cli import app as cli_app
from referral_net.db import migrate
from referral_net.db.engine import make_engine
from referral_net.db.models import AuditEntry, Location
from referral_net.domain import areas, locations, seed, service_at_locations, services, taxonomy
from referral_net.exchange import export
from referral_net.hsds import profile
from referral_net.schemas.directory import LocationCreate, ServiceAtLocationCreate, ServiceCreate
from referral_net.security.roles import Principal, Role
from referral_net.settings import Settings
from tests.conftest import make_backend_settings, unavailable
from tests.factories import bearer, make_organization, make_user

pytestmark = pytest.mark.db
STEWARD = Principal(role=Role.STEWARD, subject="user:test")
SAFE_HOUSE_WORD = "Xibalba"
HIDDEN_SERVICE_WORD = "Ixchel"
SAFE_HOUSE = (14.77531, -91.51547)
SHELTER = (14.87107, -91.49203)
OFFICE = (14.84500, -91.51800)
GET_PATHS = {
    "organizations": "/api/v1/organizations/{id}",
    "services": "/api/v1/services/{id}",
    "locations": "/api/v1/locations/{id}",
    "service_at_locations": "/api/v1/service_at_locations/{id}",
    "taxonomies": "/api/v1/taxonomies/{id}",
    "taxonomy_terms": "/api/v1/taxonomy_terms/{id}",
}
SCHEMAS = dict(export.EXPORT_TABLES)


@dataclass(frozen=True)
class Network:
    """The ids the test created, by what they are."""

    organization_id: str
    office_id: str
    shelter_id: str
    safe_house_id: str
    hidden_service_id: str
    safe_house_link_ids: tuple[str, ...]


def _location(
    session: Session, org_id: uuid.UUID, name: str, point: tuple[float, float], visibility: str
) -> Location:
    return locations.create(
        session=session,
        principal=STEWARD,
        data=LocationCreate(
            organization_id=org_id,
            name=name,
            latitude=point[0],
            longitude=point[1],
            visibility=visibility,
            intake_phone="5555-0100",
            intake_description="Ingreso por la línea nacional",
            addresses=[
                {"address_1": "4a Calle 1-23", "city": "Quetzaltenango", "state_province": "Xela"}
            ],
            phones=[{"number": "5555-0199"}],
        ),
    )


def _service(session: Session, org_id: uuid.UUID, name: str) -> uuid.UUID:
    created = services.create(
        session=session,
        principal=STEWARD,
        data=ServiceCreate(
            organization_id=org_id,
            name=name,
            categories=["protection.shelter.emergency"],
            languages=["spa", "mam"],
            eligibility={"minimum_age": 12, "genders_served": ["woman"]},
            schedules=[{"byday": "MO,TU,WE", "opens_at": "08:00", "closes_at": "16:30"}],
            cost_options=[{"option": "Gratuito", "amount": 0, "currency": "GTQ"}],
        ),
    )
    return created.id


def _link(session: Session, service_id: uuid.UUID, location: Location) -> str:
    link = service_at_locations.create(
        session=session,
        principal=STEWARD,
        data=ServiceAtLocationCreate(service_id=service_id, location_id=location.id),
    )
    return str(link.id)


@pytest.fixture
def network(session: Session, taxonomy_loaded: None) -> Network:
    """One organization's office (public), shelter (restricted) and safe house (confidential)."""
    org = make_organization(session, "Red de prueba (ejemplo)")
    office = _location(session, org.id, "Oficina (ejemplo)", OFFICE, "public")
    shelter = _location(session, org.id, "Albergue (ejemplo)", SHELTER, "restricted")
    safe_house = _location(
        session, org.id, f"Casa {SAFE_HOUSE_WORD} (ejemplo)", SAFE_HOUSE, "confidential"
    )
    national = _service(session, org.id, "Línea nacional (ejemplo)")
    hidden = _service(session, org.id, f"Refugio {HIDDEN_SERVICE_WORD} (ejemplo)")
    sheltered = _service(session, org.id, "Acogida (ejemplo)")
    _link(session, national, office)
    _link(session, sheltered, shelter)
    links = (_link(session, national, safe_house), _link(session, hidden, safe_house))
    return Network(
        organization_id=str(org.id),
        office_id=str(office.id),
        shelter_id=str(shelter.id),
        safe_house_id=str(safe_house.id),
        hidden_service_id=str(hidden),
        safe_house_link_ids=links,
    )


def _headers(app: FastAPI, session: Session, audience: str) -> dict[str, str]:
    if audience == "public":
        return {}
    return bearer(app, make_user(session, Role(audience)))


def _read_json_export(folder: Path) -> dict[str, list[dict[str, Any]]]:
    return {
        name: json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        for name, _ in export.EXPORT_TABLES
    }


def _without_instant(record: dict[str, Any]) -> dict[str, Any]:
    """A served record (and the service a link nests) without what is evaluated at the instant
    of the read: open now and open around the clock."""
    kept = {k: v for k, v in record.items() if k not in {"open_now", "open_24h"}}
    if isinstance(kept.get("service"), dict):
        kept["service"] = _without_instant(kept["service"])
    return kept


def _all_bytes(folder: Path) -> bytes:
    return b"\n".join(path.read_bytes() for path in sorted(folder.iterdir()))


def _assert_safe_house_absent(data: bytes, network: Network) -> None:
    text = data.decode("utf-8").lower()
    for secret in (
        SAFE_HOUSE_WORD,
        HIDDEN_SERVICE_WORD,
        network.safe_house_id,
        network.hidden_service_id,
        *network.safe_house_link_ids,
        # its coordinates, as any writer would spell them (the first four decimals)
        f"{SAFE_HOUSE[0]:.4f}",
        f"{SAFE_HOUSE[1]:.4f}",
        f"{SHELTER[0]:.4f}",
        f"{SHELTER[1]:.4f}",
    ):
        assert secret.lower() not in text, secret


def _validate_package(folder: Path) -> None:
    report = frictionless.validate(str(folder / "datapackage.json"))
    assert report.valid, report.flatten(["type", "fieldName", "note"])[:10]


@pytest.mark.parametrize("audience", ["public", "caseworker", "steward"])
def test_every_exported_record_equals_the_audiences_get(
    app: FastAPI,
    client: TestClient,
    session: Session,
    network: Network,
    tmp_path: Path,
    audience: export.Audience,
) -> None:
    export.write_export(
        session=session, directory=tmp_path, export_format="json", audience=audience
    )
    exported = _read_json_export(tmp_path)
    headers = _headers(app, session, audience)
    checked = 0
    for name, records in exported.items():
        if name in _BY_ID:
            assert [r["id"] for r in records] == sorted(r["id"] for r in records), name
        for record in records:
            response = client.get(GET_PATHS[name].format(id=record["id"]), headers=headers)
            assert response.status_code == 200, (name, response.text)
            assert record == _without_instant(response.json()), name
            assert profile.errors(SCHEMAS[name], record) == [], name
            checked += 1
    location_ids = {r["id"] for r in exported["locations"]}
    if audience == "public":
        assert location_ids >= {network.office_id, network.shelter_id}
        assert network.safe_house_id not in location_ids
    else:
        assert location_ids >= {network.office_id, network.shelter_id, network.safe_house_id}
    assert checked > 50  # the taxonomy's terms, at least


# Tables exported in id order (taxonomies and terms keep their lists' order: name, code).
_BY_ID = {"organizations", "services", "locations"}


def test_the_public_export_hides_the_safe_house_and_places_the_shelter_coarsely(
    session: Session, network: Network, tmp_path: Path
) -> None:
    for export_format in export.FORMATS:
        folder = tmp_path / export_format
        export.write_export(
            session=session, directory=folder, export_format=export_format, audience="public"
        )
        _assert_safe_house_absent(_all_bytes(folder), network)
    shelter = next(
        r
        for r in _read_json_export(tmp_path / "json")["locations"]
        if r["id"] == network.shelter_id
    )
    stored = session.get(Location, uuid.UUID(network.shelter_id))
    assert stored is not None
    area = areas.get_area(session=session, code=stored.municipality_code or "")
    assert area is not None
    assert (shelter["latitude"], shelter["longitude"]) == pytest.approx(
        (area.representative_latitude, area.representative_longitude), abs=1e-9
    )
    assert shelter["intake_phone"]  # the way in is public


@pytest.mark.parametrize("audience", ["caseworker", "steward"])
def test_a_non_public_export_sees_more_and_is_audited(
    session: Session, network: Network, tmp_path: Path, audience: export.Audience
) -> None:
    before = session.exec(select(AuditEntry).where(col(AuditEntry.action) == "export")).all()
    summary = export.write_export(
        session=session, directory=tmp_path, export_format="ndjson", audience=audience
    )
    lines = (tmp_path / "locations.ndjson").read_text(encoding="utf-8").splitlines()
    safe_house = next(
        json.loads(line) for line in lines if json.loads(line)["id"] == network.safe_house_id
    )
    assert (safe_house["latitude"], safe_house["longitude"]) == pytest.approx(SAFE_HOUSE)
    entries = session.exec(select(AuditEntry).where(col(AuditEntry.action) == "export")).all()
    (entry,) = [e for e in entries if e not in before]
    assert entry.role == audience
    assert entry.detail is not None
    assert entry.detail["records"] == summary.records
    assert summary.records["locations"] == len(lines)


def test_a_public_export_is_not_audited(session: Session, network: Network, tmp_path: Path) -> None:
    export.write_export(session=session, directory=tmp_path, export_format="json")
    entries = session.exec(select(AuditEntry).where(col(AuditEntry.action) == "export")).all()
    assert entries == []


@pytest.mark.parametrize("audience", ["public", "steward"])
def test_the_csv_datapackage_validates_with_frictionless(
    session: Session, network: Network, tmp_path: Path, audience: export.Audience
) -> None:
    summary = export.write_export(
        session=session, directory=tmp_path, export_format="csv", audience=audience
    )
    _validate_package(tmp_path)
    package = json.loads((tmp_path / "datapackage.json").read_text(encoding="utf-8"))
    written = {resource["path"] for resource in package["resources"]}
    assert written == {path.name for path in tmp_path.glob("*.csv")}
    assert {"services.csv", "locations.csv", "service_at_location.csv"} <= written
    with (tmp_path / "services.csv").open(encoding="utf-8", newline="") as file:
        assert len(list(csv.DictReader(file))) == summary.records["services"]


def test_two_exports_of_the_same_data_are_the_same_bytes(
    session: Session, network: Network, tmp_path: Path
) -> None:
    for export_format in export.FORMATS:
        first, second = tmp_path / f"{export_format}-1", tmp_path / f"{export_format}-2"
        for folder in (first, second):
            export.write_export(session=session, directory=folder, export_format=export_format)
        assert sorted(p.name for p in first.iterdir()) == sorted(p.name for p in second.iterdir())
        for path in first.iterdir():
            assert path.read_bytes() == (second / path.name).read_bytes(), path.name


def test_the_http_export_streams_the_public_data_whoever_asks(
    app: FastAPI, client: TestClient, session: Session, network: Network, tmp_path: Path
) -> None:
    export.write_export(session=session, directory=tmp_path / "json", export_format="json")
    expected = _read_json_export(tmp_path / "json")
    steward = _headers(app, session, "steward")
    for headers in ({}, steward):
        response = client.get("/api/v1/export?format=json", headers=headers)
        assert response.status_code == 200, response.text
        assert "attachment" in response.headers["content-disposition"]
        assert response.json() == expected
        _assert_safe_house_absent(response.content, network)
    response = client.get("/api/v1/export", params={"format": "ndjson"})
    assert response.status_code == 200
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert {
        name: [line["record"] for line in lines if line["table"] == name] for name in expected
    } == expected
    response = client.get("/api/v1/export", params={"format": "csv"}, headers=steward)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    unzipped = tmp_path / "zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        archive.extractall(unzipped)
    _validate_package(unzipped)
    _assert_safe_house_absent(_all_bytes(unzipped), network)


@pytest.mark.parametrize("query", ["format=xml", "format=", "format=json&audience=steward"])
def test_the_http_export_refuses_a_bad_query_with_a_problem(client: TestClient, query: str) -> None:
    response = client.get(f"/api/v1/export?{query}")
    assert response.status_code in {400, 422}
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.fixture
def cli_database(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """A database of its own for the command (it commits): migrated, the sample loaded."""
    try:
        settings = make_backend_settings(backend, tmp_path, suffix="_export")
        migrate.upgrade(settings)
    except Exception as exc:
        unavailable(request, backend, exc)
        raise
    engine = make_engine(settings)
    try:
        with Session(engine) as session:
            areas.load_areas(session=session)
            taxonomy.load_taxonomy(session=session)
            seed.load_sample(session=session)
    finally:
        engine.dispose()
    monkeypatch.setenv("REFERRAL_NET_DATABASE_URL", settings.database_url)
    return settings


def test_the_command_exports_with_a_summary_and_audits(
    cli_database: Settings, tmp_path: Path
) -> None:
    runner = CliRunner()
    target = tmp_path / "out"
    result = runner.invoke(
        cli_app, ["export", "hsds", "--format", "csv", "--audience", "steward", str(target)]
    )
    assert result.exit_code == 0, result.output
    assert "services" in result.output
    _validate_package(target)
    with (target / "locations.csv").open(encoding="utf-8", newline="") as file:
        visibilities = {row["visibility"] for row in csv.DictReader(file)}
    assert "confidential" in visibilities  # the sample has safe houses; a steward sees them
    engine = make_engine(cli_database)
    try:
        with Session(engine) as session:
            entries = session.exec(
                select(AuditEntry).where(col(AuditEntry.action) == "export")
            ).all()
    finally:
        engine.dispose()
    assert [(e.actor, e.role) for e in entries] == [(export.EXPORT_ACTOR, "steward")]

    public = tmp_path / "public"
    result = runner.invoke(cli_app, ["export", "hsds", "--format", "json", str(public)])
    assert result.exit_code == 0, result.output
    located = json.loads((public / "locations.json").read_text(encoding="utf-8"))
    assert all(r.get("visibility") != "confidential" for r in located)


@pytest.mark.parametrize(
    "arguments",
    [["--format", "xml"], ["--audience", "everyone"]],
)
def test_the_command_refuses_bad_options_with_an_error_line(
    tmp_path: Path, arguments: list[str]
) -> None:
    # The options are checked before the database is opened: no database is needed.
    result = CliRunner().invoke(cli_app, ["export", "hsds", *arguments, str(tmp_path / "x")])
    assert result.exit_code == 2
    assert result.output.startswith("error:") or "error:" in result.output
    assert "Traceback" not in result.output
