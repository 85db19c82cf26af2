"""Guatemala's national outline, for checking that a location lies in the country.

The outline is the union of the 22 departments shipped in
``referral_net/data/guatemala/departments.geojson`` (OCHA / CONRED COD-AB, simplified to about
55 m). It is loaded once, on first use.
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib.resources import files
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from referral_net.geo.convert import geodesic_distance_m

DEPARTMENTS_RESOURCE = "data/guatemala/departments.geojson"

# The boundaries are simplified to ~55 m, so a real address on the border or the coast can land a
# few tens of metres outside the polygon; 1 km absorbs that without admitting neighbouring towns.
DEFAULT_TOLERANCE_M = 1000.0

# Lower bound for the ground length of one degree near Guatemala (latitude <= ~18°): a degree of
# longitude there is >= 105 km and a degree of latitude ~110 km. Used only for a cheap,
# conservative bounding-box rejection before the exact geodesic test.
_MIN_METRES_PER_DEGREE = 100_000.0


def _exterior_only(geom: BaseGeometry) -> BaseGeometry:
    """Drop interior rings: they are slivers between simplified departments, not enclaves."""
    polygons: list[Any]
    if isinstance(geom, Polygon):
        polygons = [geom]
    elif isinstance(geom, MultiPolygon):
        polygons = list(geom.geoms)
    else:  # pragma: no cover - the data file holds polygons only
        raise ValueError(f"unexpected outline geometry {geom.geom_type}")
    shells = [Polygon(polygon.exterior) for polygon in polygons]
    return shells[0] if len(shells) == 1 else MultiPolygon(shells)


@cache
def guatemala_outline() -> BaseGeometry:
    """Return Guatemala's outline (lon/lat), prepared for fast point-in-polygon tests."""
    resource = files("referral_net") / DEPARTMENTS_RESOURCE
    collection = json.loads(resource.read_text(encoding="utf-8"))
    departments = [shape(feature["geometry"]) for feature in collection["features"]]
    # Simplifying each department separately leaves hairline gaps along shared borders, which
    # the union turns into hundreds of tiny holes; a point in one would wrongly read as abroad.
    outline = _exterior_only(shapely.union_all(departments))
    shapely.prepare(outline)
    return outline


def point_in_guatemala(lat: float, lon: float, tolerance_m: float = DEFAULT_TOLERANCE_M) -> bool:
    """Return True if (lat, lon) is in Guatemala or within ``tolerance_m`` metres of its border."""
    if not (math.isfinite(lat) and math.isfinite(lon) and math.isfinite(tolerance_m)):
        return False
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return False
    outline = guatemala_outline()
    margin_deg = max(tolerance_m, 0.0) / _MIN_METRES_PER_DEGREE
    min_lon, min_lat, max_lon, max_lat = outline.bounds
    if not (
        min_lat - margin_deg <= lat <= max_lat + margin_deg
        and min_lon - margin_deg <= lon <= max_lon + margin_deg
    ):
        return False
    point = Point(lon, lat)
    if outline.contains(point):
        return True
    if tolerance_m <= 0:
        return False
    # Nearest point found in degree space, then measured geodesically. Over ~1 km the difference
    # from the true geodesic nearest point is a few percent of the tolerance at most.
    nearest = nearest_points(outline.boundary, point)[0]
    return geodesic_distance_m(lat, lon, nearest.y, nearest.x) <= tolerance_m
