"""The Spanish spreadsheet template for NGOs that do not speak HSDS: written and read.

One row is one service at one location, under Spanish column names (``COLUMNS``). The template
comes as ``.xlsx`` (a header row, column widths, drop-down lists where they are simple and an
"Instrucciones" sheet) and as ``.csv`` (UTF-8 with a byte order mark, so Excel opens it right).

Reading turns each row into one HSDS ``service`` :class:`SourceRecord` with its organization and
its ``service_at_locations[0].location`` nested, the form the importer takes from any source:

* hours text -> schedules (``hours_text``), never guessed;
* department, municipality, address and the optional latitude/longitude -> a point and how it
  was placed (``geocode``: given, town or municipality);
* categories by code or Spanish (or English) label of the taxonomy; languages by name or ISO
  639 code ("K'iche'", "quc", "mam", "español"); phones checked as the API checks them;
* ids are UUID 5 of the organization, service and location names, so importing the same sheet
  again updates (or leaves unchanged) what the first import wrote instead of adding copies.

A row's problems (bad hours, unknown municipality, swapped coordinates, a bad phone) travel in
``SourceRecord.problems`` located as "<file> fila N" (N is the spreadsheet's own row number),
so the importer refuses that row and reports every problem. The ``visibilidad`` column is the
operator's word: the command imports with ``ImportOptions.visibility_from_source``.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
import unicodedata
import uuid
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any, Literal

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet.datavalidation import DataValidation

from referral_net import validation
from referral_net.domain.taxonomy import default_taxonomy_path
from referral_net.errors import BadRequest
from referral_net.exchange.geocode import GeocodeError, gazetteer
from referral_net.exchange.hours_text import HoursTextError, parse_hours
from referral_net.exchange.records import Problem, SourceRecord
from referral_net.matching.explain import LANGUAGE_NAMES

SheetFormat = Literal["xlsx", "csv"]
SHEET_TITLE = "Servicios"
INSTRUCTIONS_TITLE = "Instrucciones"
LISTS_TITLE = "Listas"

# Every id the sheet makes is a UUID 5 in this namespace (uuid5 of the URL namespace and a fixed
# name, so it never changes): the same names give the same ids on every import.
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://referral-net.org/import/sheet")


@dataclass(frozen=True)
class Column:
    """A column of the template: its Spanish header, width, whether a row needs it, and help."""

    header: str
    width: int
    required: bool
    help_es: str
    help_en: str
    example: str


COLUMNS: tuple[Column, ...] = (
    Column(
        "organización",
        30,
        True,
        "Nombre de la organización.",
        "Organization name.",
        "Asociación Refugio (ejemplo)",
    ),
    Column("servicio", 30, True, "Nombre del servicio.", "Service name.", "Albergue temporal"),
    Column(
        "descripción",
        40,
        False,
        "Qué ofrece el servicio.",
        "What the service offers.",
        "Albergue para mujeres sobrevivientes",
    ),
    Column(
        "categorías",
        30,
        False,
        "Códigos o nombres de la taxonomía, separados por punto y coma (hoja Listas).",
        "Taxonomy codes or Spanish names, separated by semicolons (sheet Listas).",
        "protection.shelter.women; Atención psicosocial y salud mental",
    ),
    Column(
        "sede",
        25,
        False,
        "Nombre del lugar (si la organización tiene varias sedes en el municipio).",
        "Name of the site (when the organization has several in the municipality).",
        "Sede central",
    ),
    Column(
        "departamento",
        18,
        False,
        "Departamento (nombre o código INE).",
        "Department (name or INE code).",
        "Quetzaltenango",
    ),
    Column(
        "municipio",
        22,
        True,
        "Municipio (nombre o código INE de 4 cifras).",
        "Municipality (name or 4-digit INE code).",
        "Quetzaltenango",
    ),
    Column(
        "dirección",
        35,
        False,
        "Dirección; si nombra un pueblo conocido del municipio, el punto va ahí.",
        "Address; when it names a known town of the municipality, the point goes there.",
        "4a calle 10-20 zona 1, Xela",
    ),
    Column(
        "latitud",
        11,
        False,
        "Opcional: latitud en grados decimales (14.8...).",
        "Optional: latitude in decimal degrees.",
        "14.8347",
    ),
    Column(
        "longitud",
        11,
        False,
        "Opcional: longitud en grados decimales (-91.5...).",
        "Optional: longitude in decimal degrees.",
        "-91.5181",
    ),
    Column(
        "teléfonos",
        22,
        False,
        "Teléfonos separados por punto y coma.",
        "Phone numbers separated by semicolons.",
        "+502 7765 4321; 1570",
    ),
    Column(
        "correo",
        25,
        False,
        "Correo electrónico del servicio.",
        "Service email.",
        "info@ejemplo.org",
    ),
    Column(
        "sitio web",
        25,
        False,
        "Sitio web del servicio (https://...).",
        "Service web site (https://...).",
        "https://ejemplo.org",
    ),
    Column(
        "horario",
        35,
        False,
        "Horario en texto: «lunes a viernes 8:00-16:30», «24 horas», «sábados 9 a 12».",
        "Opening hours as text (Spanish or English day names).",
        "lun-vie 8-17; sáb 8-12",
    ),
    Column(
        "idiomas",
        20,
        False,
        "Idiomas por nombre o código ISO 639, separados por comas.",
        "Languages by name or ISO 639 code, comma-separated.",
        "español, K'iche', mam",
    ),
    Column("edad mínima", 8, False, "Edad mínima atendida (años).", "Minimum age served.", "18"),
    Column("edad máxima", 8, False, "Edad máxima atendida (años).", "Maximum age served.", ""),
    Column(
        "géneros",
        22,
        False,
        "Géneros atendidos: mujeres, hombres, mujeres trans, hombres trans, personas no"
        " binarias; vacío o «todos» = todos.",
        "Genders served; empty or 'todos' for everyone.",
        "mujeres, mujeres trans",
    ),
    Column(
        "afirmativo LGBTIQ+",
        10,
        False,
        "«sí» si el servicio es afirmativo LGBTIQ+.",
        "'sí' when the service is LGBTIQ+ affirming.",
        "sí",
    ),
    Column(
        "visibilidad",
        14,
        False,
        "público, restringido (solo el municipio es público) o confidencial; vacío = la"
        " opción --visibility de la importación (restringido).",
        "public, restricted or confidential; empty = the import's --visibility.",
        "restringido",
    ),
)
HEADERS = tuple(column.header for column in COLUMNS)

# Both genders: "visibilidad" is feminine, so people write "pública" as often as "público".
_VISIBILITY = {
    "publico": "public",
    "publica": "public",
    "public": "public",
    "restringido": "restricted",
    "restringida": "restricted",
    "restricted": "restricted",
    "confidencial": "confidential",
    "confidential": "confidential",
}
_YES = frozenset({"si", "s", "yes", "y", "x", "1", "true", "verdadero"})
_NO = frozenset({"no", "n", "0", "false", "falso"})
_GENDERS = {
    "mujer": "woman",
    "mujeres": "woman",
    "women": "woman",
    "woman": "woman",
    "hombre": "man",
    "hombres": "man",
    "men": "man",
    "man": "man",
    "mujer trans": "trans_woman",
    "mujeres trans": "trans_woman",
    "trans women": "trans_woman",
    "trans woman": "trans_woman",
    "hombre trans": "trans_man",
    "hombres trans": "trans_man",
    "trans men": "trans_man",
    "trans man": "trans_man",
    "no binario": "non_binary",
    "no binaria": "non_binary",
    "no binarie": "non_binary",
    "personas no binarias": "non_binary",
    "no binarias": "non_binary",
    "non binary": "non_binary",
    "nonbinary": "non_binary",
}
_ALL_GENDERS = frozenset({"todos", "todas", "todes", "all", "everyone", "cualquiera"})
_LANGUAGE_ALIASES = {
    "castellano": "spa",
    "quiche": "quc",
    "kiche": "quc",
    "qeqchi": "kek",
    "kekchi": "kek",
    "tzutujil": "tzj",
    "qanjobal": "kjb",
    "popti": "jac",
    "jakalteko": "jac",
    "garifuna": "cab",
    "espanol": "spa",
    "ingles": "eng",
}


class SheetError(BadRequest):
    """The file is not the template: not readable, or a required column is missing."""


def fold(text: str) -> str:
    """Lower case, no accents, apostrophes dropped, single spaces: how cells are matched."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    plain = re.sub(r"['’‘`´]", "", plain)
    return " ".join(plain.replace("-", " ").replace("_", " ").split())


# --- vocabularies ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Taxonomy:
    codes: frozenset[str]
    by_label: Mapping[str, str]
    labels_es: Sequence[tuple[str, str]]
    term_ids: Mapping[str, str]


@cache
def _taxonomy() -> _Taxonomy:
    """The taxonomy's codes and labels (the seed file the database loads)."""
    spec = json.loads(default_taxonomy_path().read_text(encoding="utf-8"))
    by_label: dict[str, str] = {}
    labels: list[tuple[str, str]] = []
    for term in spec["terms"]:
        labels.append((term["code"], term["name"]["es"]))
        for label in (term["name"]["en"], term["name"]["es"]):
            by_label.setdefault(fold(label), term["code"])
    term_ids = {term["code"]: term["id"] for term in spec["terms"]}
    return _Taxonomy(frozenset(code for code, _ in labels), by_label, labels, term_ids)


def category_code(text: str) -> str:
    """The taxonomy code of a category given by code or by its Spanish or English name."""
    given = text.strip()
    taxonomy = _taxonomy()
    if given in taxonomy.codes:
        return given
    found = taxonomy.by_label.get(fold(given))
    if found is None:
        raise ValueError(f"unknown category {given!r} (see the sheet Listas)")
    return found


@cache
def _language_names() -> dict[str, str]:
    names = dict(_LANGUAGE_ALIASES)
    for code, labels in LANGUAGE_NAMES.items():
        for label in labels.values():
            names[fold(label)] = code
    return names


def language_code(text: str) -> str:
    """The ISO 639-3 code of a language given by name ("K'iche'", "español") or code."""
    key = fold(text)
    if key in _language_names():
        return _language_names()[key]
    try:
        return validation.normalize_language_code(key)
    except ValueError:
        raise ValueError(f"unknown language {text.strip()!r}") from None


def _split(text: str, pattern: str = r"[;,\n]") -> list[str]:
    return [part.strip() for part in re.split(pattern, text) if part.strip()]


# --- writing the template ----------------------------------------------------------------------


def write_template(path: Path, sheet_format: SheetFormat | None = None) -> Path:
    """Write the empty template (header row only) as .xlsx or .csv; the format defaults to the
    file name's suffix."""
    chosen = sheet_format or ("csv" if path.suffix.lower() == ".csv" else "xlsx")
    if chosen == "csv":
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            csv.writer(handle).writerow(HEADERS)
        return path
    _write_xlsx(path)
    return path


def _write_xlsx(path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new workbook has its first sheet
    sheet.title = SHEET_TITLE
    sheet.append(list(HEADERS))
    for index, column in enumerate(COLUMNS, start=1):
        letter = get_column_letter(index)
        sheet.column_dimensions[letter].width = column.width
        cell = sheet.cell(row=1, column=index)
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    sheet.freeze_panes = "A2"

    lists = book.create_sheet(LISTS_TITLE)
    places = gazetteer()
    departments = sorted(places.departments.values())
    municipalities = sorted(f"{m.name}" for m in places.municipalities.values())
    lists.append(["departamentos", "municipios", "código de categoría", "categoría", "idiomas"])
    languages = sorted({labels["es"] for labels in LANGUAGE_NAMES.values()})
    rows = max(len(departments), len(municipalities), len(_taxonomy().labels_es), len(languages))
    for row in range(rows):
        code, label = _taxonomy().labels_es[row] if row < len(_taxonomy().labels_es) else ("", "")
        lists.append(
            [
                departments[row] if row < len(departments) else None,
                municipalities[row] if row < len(municipalities) else None,
                code or None,
                label or None,
                languages[row] if row < len(languages) else None,
            ]
        )
    for letter, width in zip("ABCDE", (18, 28, 40, 45, 14), strict=True):
        lists.column_dimensions[letter].width = width

    def validation_list(header: str, formula: str) -> None:
        index = HEADERS.index(header) + 1
        letter = get_column_letter(index)
        rule = DataValidation(type="list", formula1=formula, allow_blank=True)
        rule.error = "Elija un valor de la lista / choose a value from the list"
        rule.showErrorMessage = False  # a warning, not a wall: codes are accepted too
        sheet.add_data_validation(rule)
        rule.add(f"{letter}2:{letter}5000")

    lists_ref = quote_sheetname(LISTS_TITLE)
    validation_list("departamento", f"{lists_ref}!$A$2:$A${len(departments) + 1}")
    validation_list("municipio", f"{lists_ref}!$B$2:$B${len(municipalities) + 1}")
    validation_list("visibilidad", '"público,restringido,confidencial"')
    validation_list("afirmativo LGBTIQ+", '"sí,no"')

    guide = book.create_sheet(INSTRUCTIONS_TITLE)
    guide.append(["Plantilla de servicios de referral-net / referral-net service template"])
    guide["A1"].font = Font(bold=True)
    for line in (
        "Una fila por servicio en un lugar. Las columnas con * son obligatorias.",
        "One row per service at a location. Columns marked * are required.",
        "Importar / import: .venv/bin/referral-net import sheet plantilla.xlsx"
        " (guía / guide: docs/sheet-template.md)",
        "Sin latitud/longitud, el punto es el pueblo nombrado en la dirección o el punto del"
        " municipio; la precisión queda guardada (given, town, municipality).",
        "",
    ):
        guide.append([line])
    guide.append(["columna / column", "qué poner", "what to enter", "ejemplo / example"])
    for cell in guide[guide.max_row]:
        cell.font = Font(bold=True)
    for column in COLUMNS:
        star = " *" if column.required else ""
        guide.append([column.header + star, column.help_es, column.help_en, column.example])
    for letter, width in zip("ABCD", (22, 70, 60, 40), strict=True):
        guide.column_dimensions[letter].width = width
    book.save(path)


# --- reading -----------------------------------------------------------------------------------


class _Row:
    """One data row being read: its cells by header and the problems found so far."""

    def __init__(self, origin: str, cells: Mapping[str, str]) -> None:
        self.origin = origin
        self.cells = cells
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def get(self, header: str) -> str:
        return self.cells.get(header, "").strip()

    def error(self, header: str, message: str) -> None:
        self.problems.append(Problem("service", self.origin, header, message))

    def warn(self, header: str, message: str) -> None:
        self.warnings.append(Problem("service", self.origin, header, message))


def _cell_text(value: Any) -> str:
    """A cell as text: whole numbers without ".0" (a phone typed as a number), times as HH:MM."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "sí" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "strftime") and hasattr(value, "hour") and not hasattr(value, "year"):
        return str(value.strftime("%H:%M"))
    return str(value)


def _header_map(header: Sequence[Any]) -> dict[int, str]:
    """Column index -> the template's header, matched ignoring accents, case and spaces."""
    known = {fold(name).replace(" ", ""): name for name in HEADERS}
    known |= {"idioma": "idiomas", "telefono": "teléfonos", "categoria": "categorías"}
    mapped: dict[int, str] = {}
    for index, value in enumerate(header):
        key = fold(_cell_text(value)).replace(" ", "").rstrip("*")
        name = known.get(key)
        if name is not None:
            mapped[index] = name
    missing = [c.header for c in COLUMNS if c.required and c.header not in mapped.values()]
    if missing:
        raise SheetError(
            "not the spreadsheet template: missing column(s) "
            + ", ".join(missing)
            + " (write the template with `.venv/bin/referral-net import template`)"
        )
    return mapped


def read_sheet(path: Path, *, label: str | None = None) -> Iterator[SourceRecord]:
    """The rows of a template file (.xlsx or .csv) as service SourceRecords, one at a time."""
    name = label or path.name
    rows = _xlsx_rows(path) if path.suffix.lower() in {".xlsx", ".xlsm"} else _csv_rows(path)
    header: dict[int, str] | None = None
    for number, values in rows:
        if header is None:
            if not any(_cell_text(v).strip() for v in values):
                continue
            header = _header_map(values)
            continue
        cells = {header[i]: _cell_text(v) for i, v in enumerate(values) if i in header}
        if not any(text.strip() for text in cells.values()):
            continue  # an empty row
        yield row_record(cells, origin=f"{name} fila {number}")
    if header is None:
        raise SheetError(f"{name}: the file is empty (no header row)")


def _xlsx_rows(path: Path) -> Iterator[tuple[int, Sequence[Any]]]:
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise SheetError(f"{path.name}: not a readable .xlsx file ({type(exc).__name__})") from None
    try:
        sheet = book[SHEET_TITLE] if SHEET_TITLE in book.sheetnames else book.worksheets[0]
        yield from enumerate(sheet.iter_rows(values_only=True), start=1)
    finally:
        book.close()


def _encoding_of(path: Path) -> str:
    """UTF-8 (with or without BOM) if the whole file decodes so, else Windows-1252 (what Excel
    writes as "CSV" on Spanish Windows); checked in chunks, never loading the file."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    with path.open("rb") as handle:
        try:
            while chunk := handle.read(1 << 16):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1252"
    return "utf-8-sig"


def _csv_rows(path: Path) -> Iterator[tuple[int, Sequence[Any]]]:
    encoding = _encoding_of(path)
    with path.open(encoding=encoding, newline="") as handle:
        first = handle.readline()
        # Excel in a Spanish locale separates with ";": take whichever the header uses.
        delimiter = max((";", ",", "\t"), key=first.count)
        handle.seek(0)
        reader = csv.reader(handle, delimiter=delimiter)
        for values in reader:
            yield reader.line_num, values


# --- one row -> one record ---------------------------------------------------------------------


def _id(kind: str, *names: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, "|".join([kind, *(fold(n) for n in names)])))


def row_record(cells: Mapping[str, str], *, origin: str) -> SourceRecord:
    """One row (cells by header) as a nested HSDS service record with its problems."""
    row = _Row(origin, cells)
    for column in COLUMNS:
        if column.required and not row.get(column.header):
            row.error(column.header, f"{column.header} is required")
    organization_name, service_name = row.get("organización"), row.get("servicio")
    organization_id = _id("organization", organization_name)
    location = _location(row, organization_id)
    service_id = _id("service", organization_name, service_name, location["id"])
    service: dict[str, Any] = {
        "id": service_id,
        "name": service_name,
        "status": "active",
        "organization": {"id": organization_id, "name": organization_name, "description": ""},
        "service_at_locations": [
            {"id": _id("service_at_location", service_id, location["id"]), "location": location}
        ],
        "phones": _phones(row),
        "schedules": _schedules(row),
        "languages": _languages(row),
        # Categories as HSDS attributes linking the taxonomy's terms (by the terms' own ids).
        "attributes": [
            {"taxonomy_term_id": _taxonomy().term_ids[code], "link_entity": "service"}
            for code in _categories(row)
        ],
        "eligibility": _eligibility(row),
    }
    for header, key in (("descripción", "description"), ("correo", "email"), ("sitio web", "url")):
        if row.get(header):
            service[key] = row.get(header)
    return SourceRecord(
        table="service",
        origin=origin,
        data=service,
        problems=tuple(replace(p, record_id=service_id) for p in row.problems),
        warnings=tuple(replace(p, record_id=service_id) for p in row.warnings),
    )


def _number(row: _Row, header: str) -> float | None:
    text = row.get(header).replace(",", ".")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        row.error(header, f"{header} is not a number: {row.get(header)[:20]!r}")
        return None


def _location(row: _Row, organization_id: str) -> dict[str, Any]:
    organization_name = row.get("organización")
    municipality_text, department_text = row.get("municipio"), row.get("departamento")
    address, site = row.get("dirección"), row.get("sede")
    latitude, longitude = _number(row, "latitud"), _number(row, "longitud")
    location: dict[str, Any] = {"organization_id": organization_id, "location_type": "physical"}
    visibility = fold(row.get("visibilidad"))
    if visibility in _VISIBILITY:
        location["visibility"] = _VISIBILITY[visibility]
    elif visibility:
        row.error("visibilidad", "visibilidad must be público, restringido or confidencial")
    placed = None
    if municipality_text:
        try:
            placed = gazetteer().place(
                municipality=municipality_text,
                department=department_text or None,
                address=address or None,
                latitude=latitude,
                longitude=longitude,
            )
        except GeocodeError as error:
            message = str(error)
            field = "latitud"
            if "municipality" in message:
                field = "municipio"
            elif "department" in message:
                field = "departamento"
            row.error(field, message)
    # The municipality's INE code, once known, names the site: "Xela" and "Quetzaltenango" are
    # the same place, so rewriting the name does not make a second location.
    where = placed.municipality.code if placed else municipality_text
    place_name = placed.municipality.name if placed else municipality_text
    location["id"] = _id("location", organization_name, site, where, address)
    location["name"] = site or f"{organization_name} - {place_name}".strip(" -")
    if placed is None:
        return location
    for warning in placed.warnings:
        row.warn("latitud", warning)
    location |= {
        "latitude": placed.latitude,
        "longitude": placed.longitude,
        "geocoding_precision": placed.precision,
    }
    if address:
        location["addresses"] = [
            {
                "id": _id("address", location["id"]),
                "address_1": address,
                "city": placed.municipality.name,
                "state_province": placed.municipality.department_name,
                "country": "GT",
            }
        ]
    return location


def _phones(row: _Row) -> list[dict[str, Any]]:
    phones = []
    for text in _split(row.get("teléfonos"), r"[;,/\n]"):
        try:
            phones.append({"number": validation.normalize_phone(text)})
        except ValueError as error:
            row.error("teléfonos", str(error))
    return phones


def _schedules(row: _Row) -> list[dict[str, Any]]:
    text = row.get("horario")
    if not text:
        return []
    try:
        return parse_hours(text)
    except HoursTextError as error:
        row.error("horario", str(error))
        return []


def _languages(row: _Row) -> list[dict[str, Any]]:
    codes: list[str] = []
    for text in _split(row.get("idiomas"), r"[;,/\n]|\s+y\s+"):
        try:
            code = language_code(text)
        except ValueError as error:
            row.error("idiomas", str(error))
            continue
        if code not in codes:
            codes.append(code)
    return [{"code": code} for code in codes]


def _categories(row: _Row) -> list[str]:
    codes: list[str] = []
    for text in _split(row.get("categorías"), r"[;\n]"):
        try:
            code = category_code(text)
        except ValueError as error:
            row.error("categorías", str(error))
            continue
        if code not in codes:
            codes.append(code)
    return codes


def _age(row: _Row, header: str) -> int | None:
    value = _number(row, header)
    if value is None:
        return None
    if not value.is_integer() or not 0 <= value <= 120:  # the API's age range
        row.error(header, f"{header} must be a whole number of years from 0 to 120")
        return None
    return int(value)


def _eligibility(row: _Row) -> dict[str, Any]:
    eligibility: dict[str, Any] = {
        "minimum_age": _age(row, "edad mínima"),
        "maximum_age": _age(row, "edad máxima"),
    }
    low, high = eligibility["minimum_age"], eligibility["maximum_age"]
    if low is not None and high is not None and low > high:
        row.error("edad mínima", "edad mínima is above edad máxima")
    genders: list[str] = []
    for text in _split(row.get("géneros"), r"[;,/\n]|\s+y\s+"):
        key = fold(text)
        if key in _ALL_GENDERS:
            genders = []
            break
        if key not in _GENDERS:
            row.error("géneros", f"unknown gender {text!r}")
        elif _GENDERS[key] not in genders:
            genders.append(_GENDERS[key])
    if genders:
        eligibility["genders_served"] = genders
    affirming = fold(row.get("afirmativo LGBTIQ+"))
    if affirming in _YES:
        eligibility["lgbtiq_affirming"] = True
    elif affirming and affirming not in _NO:
        row.error("afirmativo LGBTIQ+", "afirmativo LGBTIQ+ must be sí or no")
    return {key: value for key, value in eligibility.items() if value is not None}
