"""The Spanish spreadsheet template (issue 15): written, filled, imported, on both backends.

Good and bad rows as .xlsx and .csv: hours parsed, a Mayan language by name, the visibilidad
column, the three geocoding precisions (checked against places.csv and the municipality polygons
with shapely, read here independently), a point outside its municipality, bad hours, an unknown
municipality, swapped coordinates, a bad phone; all or nothing, --skip-invalid, re-import
idempotent, and the command line. Each test gets a database of its own (an import commits).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from referral_net.cli import app as cli_app
from referral_net.db.engine import make_engine
from referral_net.db.models import (
    Attribute,
    Language,
    Location,
    Schedule,
    SearchEntry,
    Service,
    ServiceAtLocation,
)
from referral_net.domain import locations
from referral_net.exchange.importer import run_import
from referral_net.exchange.records import (
    EXIT_ALL_IMPORTED,
    EXIT_PARTLY_IMPORTED,
    EXIT_REFUSED,
    ImportOptions,
    ImportReport,
)
from referral_net.exchange.sheet import HEADERS, read_sheet, write_template
from referral_net.security.roles import Principal
from referral_net.settings import Settings
from referral_net.vocab import Visibility
from tests.databases import copy_of, migrated_template

pytestmark = pytest.mark.db

DATA = files("referral_net") / "data" / "guatemala"
ROOT = Path(__file__).resolve().parents[1]


# --- independent truth ---------------------------------------------------------------------------


@cache
def town(name: str) -> dict[str, str]:
    """The places.csv row of a town (read here, not through the geocoder)."""
    with (DATA / "places.csv").open(encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["name"] == name]
    assert len(rows) == 1, name
    return rows[0]


@cache
def term_ids() -> dict[str, str]:
    spec = json.loads((ROOT / "seed" / "taxonomy.json").read_text(encoding="utf-8"))
    return {term["code"]: term["id"] for term in spec["terms"]}


@cache
def inside_point(code: str) -> tuple[float, float]:
    with (DATA / "municipality_centroids.csv").open(encoding="utf-8", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["ine_code"] == code)
    return float(row["inside_lat"]), float(row["inside_lon"])


@cache
def polygon(code: str) -> BaseGeometry:
    collection = json.loads((DATA / "municipalities.geojson").read_text(encoding="utf-8"))
    return next(
        shape(f["geometry"]) for f in collection["features"] if f["properties"]["ine_code"] == code
    )


# --- a database per test ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """A migrated database with the areas and the taxonomy, copied for each test."""
    return migrated_template(
        backend, request, tmp_path_factory, name="sheettpl", with_taxonomy=True
    )


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


# --- sheets ----------------------------------------------------------------------------------

CANTEL_LAT, CANTEL_LON = inside_point("0914")


def row(**cells: str) -> dict[str, str]:
    """A template row: the given cells, the rest empty."""
    unknown = set(cells) - set(HEADERS)
    assert not unknown, unknown
    return {header: cells.get(header, "") for header in HEADERS}


GOOD_ROWS = [
    # given point (inside Cantel), Mayan language by name, public by its own column
    row(
        **{
            "organización": "Asociación Refugio (ejemplo)",
            "servicio": "Atención psicosocial",
            "categorías": "Atención psicosocial y salud mental",
            "departamento": "Quetzaltenango",
            "municipio": "Cantel",
            "dirección": "Frente al parque",
            "latitud": f"{CANTEL_LAT}",
            "longitud": f"{CANTEL_LON}",
            "teléfonos": "7765 4321",
            "horario": "lunes a viernes 8:00-16:30",
            "idiomas": "K'iche', español",
            "visibilidad": "público",
        }
    ),
    # no point: the address names the town of Salcajá -> town precision; confidential
    row(
        **{
            "organización": "Asociación Refugio (ejemplo)",
            "servicio": "Albergue temporal",
            "categorías": "protection.shelter.women",
            "departamento": "Quetzaltenango",
            "municipio": "Salcajá",
            "dirección": "3a calle 2-10, zona 1, Salcajá",
            "horario": "24 horas",
            "idiomas": "mam",
            "géneros": "mujeres, mujeres trans",
            "edad mínima": "18",
            "afirmativo LGBTIQ+": "sí",
            "visibilidad": "confidencial",
        }
    ),
    # no point, no known town: the municipality's point; visibility from --visibility
    row(
        **{
            "organización": "Defensoría Comunitaria (ejemplo)",
            "servicio": "Asesoría legal",
            "categorías": "protection.legal_aid",
            "departamento": "Depto. de Quetzaltenango",
            "municipio": "Xela",
            "dirección": "Km. 200, carretera",
            "horario": "sábados 9 a 12",
            "idiomas": "quc",
        }
    ),
]

BAD_ROWS = [
    row(
        **{
            "organización": "Org mala (ejemplo)",
            "servicio": "Horario raro",
            "municipio": "Cantel",
            "horario": "de 8 a 5 con cita",
        }
    ),
    row(**{"organización": "Org mala (ejemplo)", "servicio": "Sin lugar", "municipio": "Atlantis"}),
    row(
        **{
            "organización": "Org mala (ejemplo)",
            "servicio": "Ejes cruzados",
            "municipio": "Cantel",
            "latitud": f"{CANTEL_LON}",
            "longitud": f"{CANTEL_LAT}",
        }
    ),
    row(
        **{
            "organización": "Org mala (ejemplo)",
            "servicio": "Teléfono malo",
            "municipio": "Cantel",
            "teléfonos": "12",
        }
    ),
]


def write_sheet(path: Path, rows: Sequence[dict[str, str]]) -> Path:
    """Fill the written template (xlsx or csv, by suffix) with rows, as a user would."""
    write_template(path)
    if path.suffix == ".csv":
        with path.open("a", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            for cells in rows:
                writer.writerow([cells[h] for h in HEADERS])
        return path
    book = openpyxl.load_workbook(path)
    sheet = book["Servicios"]
    for cells in rows:
        values: list[Any] = []
        for header in HEADERS:
            value: Any = cells[header]
            if header in {"latitud", "longitud", "edad mínima"} and value:
                value = float(value)  # numbers typed as numbers, as Excel stores them
            values.append(value or None)
        sheet.append(values)
    book.save(path)
    return path


def import_sheet(engine: Engine, path: Path, **options: Any) -> ImportReport:
    options.setdefault("visibility_from_source", True)
    return run_import(
        engine=engine,
        records=read_sheet(path),
        options=ImportOptions(source_name=path.name, **options),
    )


def count(engine: Engine, model: type[Any]) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def location_of(session: Session, service_name: str) -> Location:
    service = session.exec(select(Service).where(Service.name == service_name)).one()
    link = session.exec(
        select(ServiceAtLocation).where(ServiceAtLocation.service_id == service.id)
    ).one()
    location = session.get(Location, link.location_id)
    assert location is not None
    return location


# --- tests -----------------------------------------------------------------------------------


def test_template_files_have_the_spanish_columns(tmp_path: Path) -> None:
    xlsx = write_template(tmp_path / "plantilla.xlsx")
    book = openpyxl.load_workbook(xlsx)
    assert book.sheetnames[0] == "Servicios"
    assert "Instrucciones" in book.sheetnames
    header = [cell.value for cell in book["Servicios"][1]]
    assert header == list(HEADERS)
    for name in ("organización", "servicio", "municipio", "horario", "idiomas", "visibilidad"):
        assert name in header
    assert book["Servicios"].data_validations.dataValidation
    assert book["Servicios"].max_row == 1
    raw = write_template(tmp_path / "plantilla.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.decode("utf-8-sig").strip() == ",".join(HEADERS)


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_good_rows_import_with_hours_languages_visibility_and_precision(
    engine_: Engine, tmp_path: Path, suffix: str
) -> None:
    path = write_sheet(tmp_path / f"plantilla{suffix}", GOOD_ROWS)
    report = import_sheet(engine_, path)
    assert report.errors == [], report.as_json()
    assert report.exit_code == EXIT_ALL_IMPORTED
    assert report.counts["service"].created == len(GOOD_ROWS)
    with Session(engine_) as session:
        given = location_of(session, "Atención psicosocial")
        assert given.geocoding_precision == "given"
        assert (given.latitude, given.longitude) == pytest.approx((CANTEL_LAT, CANTEL_LON))
        assert given.visibility == Visibility.PUBLIC

        in_town = location_of(session, "Albergue temporal")
        salcaja = town("Salcajá")
        assert in_town.geocoding_precision == "town"
        assert (in_town.latitude, in_town.longitude) == pytest.approx(
            (float(salcaja["lat"]), float(salcaja["lon"]))
        )
        assert polygon(salcaja["adm2_ine"]).covers(Point(in_town.longitude, in_town.latitude))
        assert in_town.visibility == Visibility.CONFIDENTIAL

        coarse = location_of(session, "Asesoría legal")
        assert coarse.geocoding_precision == "municipality"
        assert (coarse.latitude, coarse.longitude) == pytest.approx(inside_point("0901"))
        assert polygon("0901").covers(Point(coarse.longitude, coarse.latitude))
        assert coarse.visibility == Visibility.RESTRICTED  # the import's default
        assert coarse.municipality_code == "0901"

        for location in (given, in_town, coarse):
            assert location.needs_geocoding is False

        psychosocial = session.exec(
            select(Service).where(Service.name == "Atención psicosocial")
        ).one()
        codes = session.exec(
            select(Language.code).where(Language.service_id == psychosocial.id)
        ).all()
        assert sorted(codes) == ["quc", "spa"]  # "K'iche'" by name
        hours = session.exec(select(Schedule).where(Schedule.service_id == psychosocial.id)).one()
        assert hours.byday == "MO,TU,WE,TH,FR"
        assert (str(hours.opens_at)[:5], str(hours.closes_at)[:5]) == ("08:00", "16:30")

        shelter = session.exec(select(Service).where(Service.name == "Albergue temporal")).one()
        assert shelter.minimum_age == 18

        # Categories by Spanish label and by code, linked to the taxonomy's own terms.
        for service, code in (
            (psychosocial, "protection.health.mental_psychosocial"),
            (shelter, "protection.shelter.women"),
        ):
            linked = session.exec(
                select(Attribute.taxonomy_term_id).where(Attribute.link_id == service.id)
            ).all()
            assert [str(term_id) for term_id in linked] == [term_ids()[code]]


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_bad_rows_refuse_the_sheet_and_name_row_and_column(
    engine_: Engine, tmp_path: Path, suffix: str
) -> None:
    path = write_sheet(tmp_path / f"plantilla{suffix}", [*GOOD_ROWS, *BAD_ROWS])
    report = import_sheet(engine_, path)
    assert report.exit_code == EXIT_REFUSED
    assert not report.written
    assert count(engine_, Service) == 0
    first_bad = len(GOOD_ROWS) + 2  # the header is row 1
    by_row = {(p.row, p.field): p.message for p in report.errors}
    assert "horario" in {f for r, f in by_row if r == f"{path.name} fila {first_bad}"}
    assert by_row[(f"{path.name} fila {first_bad + 1}", "municipio")].startswith(
        "unknown municipality"
    )
    assert "swapped" in by_row[(f"{path.name} fila {first_bad + 2}", "latitud")]
    assert (f"{path.name} fila {first_bad + 3}", "teléfonos") in by_row
    for problem in report.errors:
        assert f"{CANTEL_LAT}" not in problem.message


def test_skip_invalid_imports_the_good_rows_only(engine_: Engine, tmp_path: Path) -> None:
    path = write_sheet(tmp_path / "plantilla.xlsx", [*GOOD_ROWS, *BAD_ROWS])
    report = import_sheet(engine_, path, skip_invalid=True)
    assert report.exit_code == EXIT_PARTLY_IMPORTED
    assert count(engine_, Service) == len(GOOD_ROWS)
    with Session(engine_) as session:
        names = set(session.exec(select(Service.name)).all())
    assert names == {cells["servicio"] for cells in GOOD_ROWS}


def test_point_outside_its_municipality_is_a_warning(engine_: Engine, tmp_path: Path) -> None:
    lat, lon = inside_point("0901")
    assert not polygon("0914").covers(Point(lon, lat))
    cells = row(
        **{
            "organización": "Org (ejemplo)",
            "servicio": "Punto lejano",
            "municipio": "Cantel",
            "latitud": f"{lat}",
            "longitud": f"{lon}",
        }
    )
    report = import_sheet(engine_, write_sheet(tmp_path / "plantilla.csv", [cells]))
    assert report.exit_code == EXIT_ALL_IMPORTED
    assert any(
        p.field == "latitud" and "outside the municipality" in p.message for p in report.warnings
    )
    with Session(engine_) as session:
        location = location_of(session, "Punto lejano")
    assert location.geocoding_precision == "given"
    assert location.municipality_code == "0901"  # the point's own municipality


def test_precision_is_shown_with_exact_points_only(engine_: Engine, tmp_path: Path) -> None:
    assert import_sheet(engine_, write_sheet(tmp_path / "p.csv", GOOD_ROWS)).exit_code == 0
    public = Principal.anonymous()
    with Session(engine_) as session:
        given = location_of(session, "Atención psicosocial")  # public
        coarse = location_of(session, "Asesoría legal")  # restricted
        shown = locations.read(session=session, principal=public, location_id=given.id)
        assert (shown.precision, shown.geocoding_precision) == ("exact", "given")
        assert shown.needs_geocoding is False
        hidden = locations.read(session=session, principal=public, location_id=coarse.id)
        assert (hidden.precision, hidden.geocoding_precision) == ("municipality", None)
        # The search read model keeps it for exact views (shape decides per audience).
        docs = session.exec(select(SearchEntry.doc).where(SearchEntry.location_id == coarse.id))
        assert [doc["location"]["geocoding_precision"] for doc in docs] == ["municipality"]


def test_reimport_is_idempotent(engine_: Engine, tmp_path: Path) -> None:
    path = write_sheet(tmp_path / "plantilla.xlsx", GOOD_ROWS)
    first = import_sheet(engine_, path)
    assert first.exit_code == EXIT_ALL_IMPORTED
    counts = {m.__name__: count(engine_, m) for m in (Service, Location, ServiceAtLocation)}
    again = import_sheet(engine_, path)
    assert again.exit_code == EXIT_ALL_IMPORTED
    for name, table in again.counts.items():
        assert (table.created, table.updated, table.refused) == (0, 0, 0), name
    assert {m.__name__: count(engine_, m) for m in (Service, Location, ServiceAtLocation)} == counts
    # The same rows as csv are the same records.
    as_csv = import_sheet(engine_, write_sheet(tmp_path / "plantilla.csv", GOOD_ROWS))
    assert as_csv.counts["service"].created == 0
    assert {m.__name__: count(engine_, m) for m in (Service, Location, ServiceAtLocation)} == counts


def test_command_line_template_and_sheet(
    db: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFERRAL_NET_DATABASE_URL", db.database_url)
    runner = CliRunner()
    target = tmp_path / "plantilla.csv"
    result = runner.invoke(cli_app, ["import", "template", "--format", "csv", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8-sig").strip() == ",".join(HEADERS)

    sheet = write_sheet(tmp_path / "llena.xlsx", [*GOOD_ROWS, *BAD_ROWS])
    report_path = tmp_path / "report.json"
    result = runner.invoke(cli_app, ["import", "sheet", str(sheet), "--report", str(report_path)])
    assert result.exit_code == EXIT_REFUSED, result.output
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["written"] is False
    assert {p["row"] for p in report["errors"]} >= {f"llena.xlsx fila {len(GOOD_ROWS) + 2}"}

    result = runner.invoke(cli_app, ["import", "sheet", str(sheet), "--skip-invalid"])
    assert result.exit_code == EXIT_PARTLY_IMPORTED, result.output
    engine = make_engine(db)
    try:
        with Session(engine) as session:
            visibility = session.exec(
                select(Location.visibility).where(col(Location.geocoding_precision) == "town")
            ).one()
        assert visibility == Visibility.CONFIDENTIAL  # the row's own column
    finally:
        engine.dispose()

    not_template = tmp_path / "otra.csv"
    not_template.write_text("nombre,lugar\nx,y\n", encoding="utf-8")
    result = runner.invoke(cli_app, ["import", "sheet", str(not_template)])
    assert result.exit_code == 2
    assert "missing column" in result.output
