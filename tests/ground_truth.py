"""Independent geographic ground truth for the tests: the shipped boundary files read with
shapely, and the municipalities' representative points from their CSV, never the service's own
answers. Cached: each file is read once per test process."""

from __future__ import annotations

import csv
import json
from functools import cache
from pathlib import Path
from typing import Any

from shapely.geometry import Point, shape

DATA = Path(__file__).resolve().parents[1] / "src/referral_net/data/guatemala"
# The boundary files' placeholders for areas without a polygon of their own (lakes, no-data).
_NOT_AREAS = frozenset({"0100", "0700"})


@cache
def municipalities() -> dict[str, Any]:
    """Each municipality's polygon (shapely), by INE code."""
    features = json.loads((DATA / "municipalities.geojson").read_text(encoding="utf-8"))["features"]
    return {
        f["properties"]["ine_code"]: shape(f["geometry"])
        for f in features
        if f["properties"]["ine_code"] not in _NOT_AREAS
    }


@cache
def departments() -> dict[str, Any]:
    """Each department's polygon (shapely), by INE code."""
    features = json.loads((DATA / "departments.geojson").read_text(encoding="utf-8"))["features"]
    return {f["properties"]["ine_code"]: shape(f["geometry"]) for f in features}


@cache
def representative_points() -> dict[str, tuple[float, float]]:
    """Each municipality's representative point inside it, (lat, lon), by INE code."""
    with (DATA / "municipality_centroids.csv").open(encoding="utf-8") as handle:
        return {
            row["ine_code"]: (float(row["inside_lat"]), float(row["inside_lon"]))
            for row in csv.DictReader(handle)
        }


def municipality_of(lat: float, lon: float) -> str:
    """The INE code of the one municipality whose polygon holds the point."""
    (code,) = [c for c, polygon in municipalities().items() if polygon.intersects(Point(lon, lat))]
    return code
