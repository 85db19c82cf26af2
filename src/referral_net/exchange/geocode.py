"""Offline geocoding of spreadsheet rows: a point for every row, and how it was placed.

Everything comes from the package's own files (``data/guatemala/``): the municipalities'
polygons and representative points (OCHA / CONRED, INE codes; the same points the AdminArea
table holds) and the towns of ``places.csv`` (GeoNames). Nothing goes over the network.

The rules, in order (issue 15):

1. The row gives latitude and longitude: the point is kept, precision ``given``. Swapped axes or a
   point outside Guatemala are an error (a point is never moved by guessing); a point outside the
   stated municipality is a warning.
2. Else a known town of the stated municipality is named in the address: the town's point,
   precision ``town``.
3. Else the municipality's representative point (inside its polygon), precision ``municipality``.

The municipality itself must be known: by INE code or by name within the department (names match
ignoring accents, case, hyphens, apostrophes and common variants: "Xela" is Quetzaltenango,
"Sta." is Santa, "Sn." and "S." are San, "Mpio." and "Depto." are dropped). An unknown or
ambiguous one is an error for the row. Messages never quote coordinates: a confidential site's
point must not reach a report.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Literal

import shapely
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from referral_net import validation
from referral_net.geo.convert import geodesic_distance_m

Precision = Literal["given", "town", "municipality"]
DATA_DIR = "data/guatemala"

# Lakes carry municipality-style codes in the OCHA layer but are not municipalities.
LAKE_CODES = frozenset({"0100", "0700"})

# The polygons are simplified to ~55 m: a real address on a border may fall a little outside.
OUTSIDE_TOLERANCE_M = 250.0

# Abbreviations, word by word (after folding and punctuation removal).
_ABBREVIATIONS = {
    "sta": "santa",
    "sto": "santo",
    "sn": "san",
    "s": "san",
    "sgo": "santiago",
    "stgo": "santiago",
    "xela": "quetzaltenango",
    "xelaju": "quetzaltenango",
    "huehue": "huehuetenango",
}
# Words that only say what kind of name follows ("Mpio. de Cantel", "Depto. Quiché").
_KIND_WORDS = frozenset({"municipio", "mpio", "mun", "departamento", "depto", "dpto", "dep"})
# Other names of municipalities, as name keys -> INE code.
_MUNICIPALITY_ALIASES = {
    "ciudad de guatemala": "0101",
    "ciudad guatemala": "0101",
    "guatemala city": "0101",
    "chichi": "1406",
    "santo tomas chichicastenango": "1406",
    "santa maria nebaj": "1413",
    "san juan comalapa": "0404",
    "san juan ostuncalco": "0909",
}


class GeocodeError(ValueError):
    """A row that cannot be placed: unknown municipality, bad or swapped coordinates."""


def name_key(text: str) -> str:
    """A name as matched: folded (lower case, no accents), punctuation dropped, abbreviations
    written out, "municipio"/"departamento" words dropped."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    plain = re.sub(r"['’‘`´]", "", plain)  # K'iche', Ch'och': the apostrophe joins
    words = re.sub(r"[^a-z0-9]+", " ", plain).split()
    words = [_ABBREVIATIONS.get(word, word) for word in words]
    while words and words[0] in _KIND_WORDS:
        words = words[1:]
        if words and words[0] in {"de", "del"}:
            words = words[1:]
    return " ".join(word for word in words if word not in _KIND_WORDS)


@dataclass(frozen=True)
class Municipality:
    """A municipality: INE code, name, department and representative point."""

    code: str
    name: str
    department_code: str
    department_name: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Town:
    """A town of places.csv (GeoNames), in the municipality its point falls in."""

    name: str
    latitude: float
    longitude: float
    municipality_code: str


@dataclass(frozen=True)
class Placement:
    """Where a row goes: its point, how it was placed, its municipality, and any warnings."""

    latitude: float
    longitude: float
    precision: Precision
    municipality: Municipality
    town: str | None = None
    warnings: tuple[str, ...] = ()


class Gazetteer:
    """Departments, municipalities (polygons and points) and towns, from the package's files."""

    def __init__(self) -> None:
        """Read the files (once per process: use :func:`gazetteer`)."""
        base = files("referral_net") / DATA_DIR
        departments = json.loads((base / "departments.geojson").read_text(encoding="utf-8"))
        self.departments: dict[str, str] = {
            f["properties"]["ine_code"]: f["properties"]["ADM1_ES"] for f in departments["features"]
        }
        collection = json.loads((base / "municipalities.geojson").read_text(encoding="utf-8"))
        self.polygons: dict[str, BaseGeometry] = {}
        for feature in collection["features"]:
            code = feature["properties"]["ine_code"]
            if code not in LAKE_CODES:
                polygon = shape(feature["geometry"])
                shapely.prepare(polygon)
                self.polygons[code] = polygon
        self.municipalities: dict[str, Municipality] = {}
        centroids = (base / "municipality_centroids.csv").read_text(encoding="utf-8")
        for row in csv.DictReader(io.StringIO(centroids)):
            code = row["ine_code"]
            if code in LAKE_CODES:
                continue
            self.municipalities[code] = Municipality(
                code=code,
                name=row["ADM2_ES"],
                department_code=code[:2],
                department_name=self.departments[code[:2]],
                latitude=float(row["inside_lat"]),
                longitude=float(row["inside_lon"]),
            )
        self.towns: dict[str, list[Town]] = defaultdict(list)
        places = (base / "places.csv").read_text(encoding="utf-8")
        for row in csv.DictReader(io.StringIO(places)):
            if row["adm2_ine"] in self.municipalities:
                self.towns[row["adm2_ine"]].append(
                    Town(
                        name=row["name"],
                        latitude=float(row["lat"]),
                        longitude=float(row["lon"]),
                        municipality_code=row["adm2_ine"],
                    )
                )
        self._department_keys = {name_key(name): code for code, name in self.departments.items()}
        self._municipality_keys: dict[str, list[str]] = defaultdict(list)
        for code, municipality in self.municipalities.items():
            self._municipality_keys[name_key(municipality.name)].append(code)

    def department(self, text: str) -> str:
        """The INE code of a department named or coded in ``text``."""
        given = text.strip()
        if given.isdigit() and given.zfill(2) in self.departments:
            return given.zfill(2)
        key = name_key(given)
        for candidate in (key, re.sub(r"^(el|la) ", "", key)):
            if candidate in self._department_keys:
                return self._department_keys[candidate]
        raise GeocodeError(f"unknown department {given!r}")

    def municipality(self, text: str, department: str | None = None) -> Municipality:
        """The municipality named (or INE-coded) in ``text``, within ``department`` if given."""
        given = text.strip()
        if not given:
            raise GeocodeError("the municipality is missing")
        department_code = self.department(department) if department and department.strip() else None
        if given.isdigit():
            found = self.municipalities.get(given.zfill(4))
            if found is None:
                raise GeocodeError(f"unknown municipality code {given!r}")
            return self._in_department(found, department_code, given)
        key = name_key(given)
        codes = list(self._municipality_keys.get(key, []))
        if not codes and key in _MUNICIPALITY_ALIASES:
            codes = [_MUNICIPALITY_ALIASES[key]]
        if not codes:
            # A seat's own name ("San Juan Ostuncalco" for Ostuncalco): a town of that name.
            codes = sorted({t.municipality_code for t in self._towns_named(key)})
        if department_code is not None:
            inside = [code for code in codes if code[:2] == department_code]
            if codes and not inside:
                where = self.departments[department_code]
                raise GeocodeError(f"municipality {given!r} is not in the department {where!r}")
            codes = inside
        if not codes:
            raise GeocodeError(f"unknown municipality {given!r}")
        if len(codes) > 1:
            names = ", ".join(self.municipalities[c].department_name for c in codes)
            raise GeocodeError(
                f"municipality {given!r} exists in several departments ({names}); give the"
                " department"
            )
        return self.municipalities[codes[0]]

    def _towns_named(self, key: str) -> list[Town]:
        return [t for towns in self.towns.values() for t in towns if name_key(t.name) == key]

    def _in_department(
        self, found: Municipality, department_code: str | None, given: str
    ) -> Municipality:
        if department_code is not None and found.department_code != department_code:
            where = self.departments[department_code]
            raise GeocodeError(f"municipality {given!r} is not in the department {where!r}")
        return found

    def town_in_address(self, address: str, municipality: Municipality) -> Town | None:
        """The town of ``municipality`` whose name the address names (the longest, if several)."""
        words = f" {name_key(address)} "
        named = [
            town
            for town in self.towns.get(municipality.code, [])
            if f" {name_key(town.name)} " in words
        ]
        return max(named, key=lambda town: len(name_key(town.name)), default=None)

    def distance_outside_m(self, latitude: float, longitude: float, code: str) -> float:
        """How far (metres, geodesic) a point lies outside a municipality; 0 inside."""
        polygon = self.polygons[code]
        point = Point(longitude, latitude)
        if polygon.covers(point):
            return 0.0
        nearest = nearest_points(polygon, point)[0]
        return geodesic_distance_m(latitude, longitude, nearest.y, nearest.x)

    def place(
        self,
        *,
        municipality: str,
        department: str | None = None,
        address: str | None = None,
        latitude: float | None = None,
        longitude: float | None = None,
    ) -> Placement:
        """Place one row (the rules in the module docstring); GeocodeError if it cannot be."""
        found = self.municipality(municipality, department)
        if (latitude is None) != (longitude is None):
            raise GeocodeError("latitude and longitude go together: give both or neither")
        if latitude is not None and longitude is not None:
            return self._given(latitude, longitude, found)
        town = self.town_in_address(address, found) if address else None
        if town is not None:
            return Placement(town.latitude, town.longitude, "town", found, town=town.name)
        return Placement(found.latitude, found.longitude, "municipality", found)

    def _given(self, latitude: float, longitude: float, found: Municipality) -> Placement:
        try:
            validation.check_coordinates(latitude, longitude)
        except ValueError as error:
            # validation's message quotes the point; this one must not (confidential sites).
            if "swapped" in str(error):
                raise GeocodeError(
                    "latitude and longitude look swapped: the point is outside Guatemala, the"
                    " swapped one inside"
                ) from None
            raise GeocodeError(
                "latitude and longitude are not a point in Guatemala (out of range or abroad)"
            ) from None
        warnings: tuple[str, ...] = ()
        outside_m = self.distance_outside_m(latitude, longitude, found.code)
        if outside_m > OUTSIDE_TOLERANCE_M:
            warnings = (
                f"the point lies {outside_m / 1000:.1f} km outside the municipality"
                f" {found.name!r} ({found.code}); check the coordinates or the municipality",
            )
        return Placement(latitude, longitude, "given", found, warnings=warnings)


@cache
def gazetteer() -> Gazetteer:
    """The gazetteer, loaded once per process."""
    return Gazetteer()
