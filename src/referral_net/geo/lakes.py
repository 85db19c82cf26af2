"""The map's lakes (``data/guatemala/lakes.geojson``): Lago de Atitlán and Lago de Amatitlán
from the OCHA / CONRED boundaries, the other lakes of at least 1 km² from GSHHG
(``scripts/data/lakes.py`` wrote the file; ``data/guatemala/SOURCES.md``). Loaded once, on first
use, as shapely polygons. No database, no web.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

LAKES_RESOURCE = "data/guatemala/lakes.geojson"


@dataclass(frozen=True)
class Lake:
    """One lake: an id of the file, its name where known, its WGS 84 polygon."""

    id: str
    name: str | None
    geometry: BaseGeometry


@cache
def lakes() -> tuple[Lake, ...]:
    """Every lake of the file, largest first."""
    raw = (files("referral_net") / LAKES_RESOURCE).read_text(encoding="utf-8")
    return tuple(
        Lake(
            id=feature["properties"]["id"],
            name=feature["properties"]["name"],
            geometry=shape(feature["geometry"]),
        )
        for feature in json.loads(raw)["features"]
    )


def lakes_in_box(bounds: tuple[float, float, float, float]) -> list[Lake]:
    """The lakes meeting a lon/lat box (minLon, minLat, maxLon, maxLat)."""
    window = box(*bounds)
    return [lake for lake in lakes() if lake.geometry.intersects(window)]
