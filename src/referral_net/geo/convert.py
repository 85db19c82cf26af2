"""Conversions between GeoJSON, WKT/EWKT, WKB/EWKB and shapely, plus geodesic measures.

Everything here is pure (no database, no web framework). Errors are raised as ``ValueError`` so that
Pydantic validators calling these helpers turn them into field errors.

All coordinates are WGS 84 longitude/latitude (EPSG:4326, GeoJSON axis order) unless a function's
arguments say ``lat, lon`` explicitly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import shapely
import shapely.wkb
from pyproj import Geod
from shapely.errors import ShapelyError
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

# The project's single source of truth for distances and areas: geodesics on the WGS 84 ellipsoid
# (Karney's algorithm, accurate to nanometres), not a spherical approximation.
GEOD = Geod(ellps="WGS84")

GEOJSON_GEOMETRY_TYPES = frozenset(
    {
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "Polygon",
        "MultiPolygon",
        "GeometryCollection",
    }
)


def _lists(value: Any) -> Any:
    """Turn the nested tuples of ``shapely.geometry.mapping`` into JSON-style lists."""
    if isinstance(value, tuple | list):
        return [_lists(item) for item in value]
    if isinstance(value, dict):
        return {key: _lists(item) for key, item in value.items()}
    return value


def to_geojson(geom: BaseGeometry) -> dict[str, Any]:
    """Return the GeoJSON geometry object (plain dicts and lists) for a shapely geometry."""
    if not isinstance(geom, BaseGeometry):
        raise TypeError("expected a shapely geometry")
    # mapping() yields tuples; lists keep the result equal to what json.loads would produce.
    result: dict[str, Any] = _lists(dict(mapping(geom)))
    return result


def from_geojson(obj: Mapping[str, Any]) -> BaseGeometry:
    """Build a shapely geometry from a GeoJSON geometry object; ValueError if it is not one."""
    if not isinstance(obj, Mapping):
        raise ValueError("geometry must be a GeoJSON object")
    geom_type = obj.get("type")
    if not isinstance(geom_type, str) or geom_type not in GEOJSON_GEOMETRY_TYPES:
        shown = geom_type if isinstance(geom_type, str) and len(geom_type) <= 40 else "?"
        raise ValueError(f"geometry type must be a GeoJSON geometry type, got {shown!r}")
    member = "geometries" if geom_type == "GeometryCollection" else "coordinates"
    if not isinstance(obj.get(member), list | tuple):
        raise ValueError(f"GeoJSON {geom_type} needs a {member!r} array")
    try:
        geom: BaseGeometry = shape(obj)
    # shapely reports malformed coordinates through several exception types; callers only need
    # to know the input was not usable GeoJSON.
    except (ValueError, TypeError, IndexError, KeyError, AttributeError, ShapelyError):
        raise ValueError(f"malformed GeoJSON {geom_type} coordinates") from None
    return geom


def to_wkt_ewkt(geom: BaseGeometry, srid: int = 4326) -> str:
    """Return PostGIS extended WKT, e.g. ``SRID=4326;POINT (-90.5 14.6)``."""
    if isinstance(srid, bool) or not isinstance(srid, int) or srid <= 0:
        raise ValueError("srid must be a positive integer")
    # Full precision: the default rounding would move points by up to a metre.
    wkt = shapely.to_wkt(geom, rounding_precision=-1, trim=True)
    return f"SRID={srid};{wkt}"


def wkb_to_shape(data: bytes | bytearray | memoryview | str) -> BaseGeometry:
    """Parse WKB or EWKB (raw bytes or a hex string) into a shapely geometry."""
    try:
        if isinstance(data, str):
            text = data.strip()
            # PostgreSQL's textual bytea output starts with "\x"; some tools prefix "0x".
            if text[:2] in ("\\x", "0x", "0X"):
                text = text[2:]
            geom: BaseGeometry = shapely.wkb.loads(text, hex=True)
        elif isinstance(data, bytes | bytearray | memoryview):
            geom = shapely.wkb.loads(bytes(data))
        else:
            raise TypeError
    except (TypeError, ValueError, ShapelyError):
        raise ValueError("not a WKB/EWKB geometry") from None
    return geom


def _check_lat_lon(lat: float, lon: float) -> None:
    """Reject non-finite or out-of-range coordinates before handing them to PROJ."""
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ValueError("coordinates must be finite numbers")
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"latitude must be between -90 and 90, got {lat}")
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"longitude must be between -180 and 180, got {lon}")


def geodesic_distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Return the WGS 84 geodesic distance in metres between two lat/lon points."""
    _check_lat_lon(lat1, lon1)
    _check_lat_lon(lat2, lon2)
    _, _, distance = GEOD.inv(lon1, lat1, lon2, lat2)
    return float(distance)


def geodesic_area_km2(geom: BaseGeometry) -> float:
    """Return the WGS 84 geodesic area in km² of a Polygon or MultiPolygon (lon/lat)."""
    if isinstance(geom, Polygon):
        polygons = [geom]
    elif isinstance(geom, MultiPolygon):
        polygons = list(geom.geoms)
    else:
        raise ValueError(f"area needs a Polygon or MultiPolygon, got {geom.geom_type}")
    total_m2 = 0.0
    for polygon in polygons:
        if polygon.is_empty:
            continue
        # pyproj subtracts holes only when they wind opposite to the shell, and GeoJSON input
        # may wind either way, so normalise first (shell counter-clockwise, holes clockwise).
        area_m2, _ = GEOD.geometry_area_perimeter(orient(polygon, sign=1.0))
        total_m2 += abs(float(area_m2))
    return total_m2 / 1_000_000.0


def geodesic_bbox(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """A lon/lat box ``(min_lon, min_lat, max_lon, max_lat)`` containing the geodesic circle.

    The circle is sampled every 5 degrees of azimuth with pyproj and the box widened by 1 %
    plus a few metres, which more than covers what lies between samples (under 0.1 % of the
    radius). Search uses it as the index pre-filter before the exact distance test.

    A circle that crosses the antimeridian (its samples' longitudes wrap) gets every longitude,
    and one that holds a pole also reaches that pole's latitude: a lon/lat box cannot wrap, and
    the samples alone would leave out the points between the line, or the pole, and the
    nearest sample.
    """
    _check_lat_lon(lat, lon)
    if radius_m <= 0:
        return (lon, lat, lon, lat)
    reach = radius_m * 1.01 + 5.0
    azimuths = list(range(0, 360, 5))
    lons, lats, _ = GEOD.fwd([lon] * len(azimuths), [lat] * len(azimuths), azimuths, [reach] * 72)
    west, east = min(lons), max(lons)
    south, north = max(-90.0, min(lats)), min(90.0, max(lats))
    holds_pole = False
    # A degree of latitude is at least 110,574 m (at the equator): only a circle this near a
    # pole can hold it, so most searches skip pyproj's two extra calls.
    if (90.0 - abs(lat)) * 110_574.0 <= reach:
        for pole in (90.0, -90.0):
            if GEOD.inv(lon, lat, lon, pole)[2] <= reach:
                holds_pole = True
                south, north = min(south, pole), max(north, pole)
    if holds_pole or east - lon > 180.0 or lon - west > 180.0:
        return (-180.0, south, 180.0, north)
    return (west, south, east, north)
