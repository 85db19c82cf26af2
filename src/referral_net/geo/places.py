"""Town names of the gazetteer (``data/guatemala/places.csv``, GeoNames), for the map's labels.

The same file ``exchange/geocode.py`` geocodes spreadsheet rows with; here it is read as plain
points with a name and a population, loaded once, on first use. No database, no web.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

PLACES_RESOURCE = "data/guatemala/places.csv"


@dataclass(frozen=True)
class Place:
    """One town: GeoNames id, name, WGS 84 point, population (None if unknown), INE codes."""

    id: str
    name: str
    longitude: float
    latitude: float
    population: int | None
    municipality_code: str
    department_code: str


def _population(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None


@cache
def places() -> tuple[Place, ...]:
    """Every town of the gazetteer, in the file's order."""
    raw = (files("referral_net") / PLACES_RESOURCE).read_text(encoding="utf-8")
    return tuple(
        Place(
            id=row["id"],
            name=row["name"],
            longitude=float(row["lon"]),
            latitude=float(row["lat"]),
            population=_population(row["population"]),
            municipality_code=row["adm2_ine"],
            department_code=row["adm1_ine"],
        )
        for row in csv.DictReader(io.StringIO(raw))
    )


def places_in_box(box: tuple[float, float, float, float]) -> list[Place]:
    """The towns inside a lon/lat box (minLon, minLat, maxLon, maxLat; edges included)."""
    min_lon, min_lat, max_lon, max_lat = box
    return [
        place
        for place in places()
        if min_lon <= place.longitude <= max_lon and min_lat <= place.latitude <= max_lat
    ]
