"""Input checks and normalisers shared by the API schemas.

Every function is pure and raises ``ValueError`` with a short English message; Pydantic validators
call them and turn the error into a 422 field error. Messages quote at most the offending value
(shortened), never the whole payload.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import phonenumbers
import pycountry
import shapely
from shapely.errors import ShapelyError
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from referral_net.geo.convert import geodesic_area_km2
from referral_net.geo.country import point_in_guatemala

# Longest excerpt of user input echoed back in an error message.
_MAX_SHOWN = 40


def _show(value: object) -> str:
    """Quote a user value for an error message, shortened so errors stay small and safe."""
    text = str(value)
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 3] + "..."
    return repr(text)


def _is_number(value: object) -> bool:
    """True for int/float but not bool (JSON true must not pass as the coordinate 1)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- coordinates -------------------------------------------------------------------------------


def _in_range(lat: float, lon: float) -> bool:
    """True if lat/lon are within the WGS 84 ranges."""
    return -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0


def check_coordinates(
    lat: float, lon: float, *, allow_outside_country: bool = False
) -> tuple[float, float]:
    """Validate a WGS 84 point and return it as floats ``(lat, lon)``.

    Catches swapped axes: when (lat, lon) is unusable or outside Guatemala but (lon, lat) falls
    inside, the error says so. The swap check runs before the range check because a swapped
    Guatemalan point has latitude ~-90 and is usually out of range, and "out of range" would hide
    the real mistake.
    """
    if not (_is_number(lat) and _is_number(lon)):
        raise ValueError("latitude and longitude must be numbers")
    lat, lon = float(lat), float(lon)
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ValueError("latitude and longitude must be finite numbers (not NaN or infinity)")

    in_range = _in_range(lat, lon)
    if in_range and (allow_outside_country or point_in_guatemala(lat, lon)):
        return lat, lon
    # Either out of range, or in range but outside Guatemala without the cross-border flag.
    if _in_range(lon, lat) and point_in_guatemala(lon, lat):
        raise ValueError(
            f"latitude and longitude look swapped: ({lat:g}, {lon:g}) is outside Guatemala "
            f"but ({lon:g}, {lat:g}) is inside"
        )
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"latitude must be between -90 and 90, got {lat:g}")
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"longitude must be between -180 and 180, got {lon:g}")
    raise ValueError(
        f"point ({lat:g}, {lon:g}) is outside Guatemala; "
        "set outside_country=true for a cross-border service"
    )


# --- phone numbers -----------------------------------------------------------------------------

# Characters people use to format phone numbers. Letters are refused: phonenumbers would read
# vanity letters as digits ("1-800-FLOWERS"), and extensions belong in the HSDS extension field.
_PHONE_CHARS = re.compile(r"[0-9+\-.()\s]+")
# The same rule as a JSON Schema pattern, for the OpenAPI document (spaces only: \s differs
# between ECMA-262 and Python).
PHONE_CHARACTERS = r"^[0-9+\-.() ]+$"
_PHONE_SEPARATORS = re.compile(r"[\-.()\s]")


def normalize_phone(number: str, default_region: str = "GT") -> str:
    """Return a phone number in E.164 form, or the bare digits of a valid short service number."""
    if not isinstance(number, str):
        raise ValueError("phone number must be a string")
    text = number.strip()
    if not text:
        raise ValueError("phone number must not be empty")
    if len(text) > 64 or not _PHONE_CHARS.fullmatch(text):
        raise ValueError(
            f"not a phone number: {_show(text)}; use digits, spaces, '+', '-', '.', '(' and ')' "
            "only (put any extension in the extension field)"
        )
    region = default_region.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown phone region {_show(default_region)}")

    digits = _PHONE_SEPARATORS.sub("", text)
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise ValueError(f"not a phone number: {_show(text)}") from None

    # Hotlines such as 110 (police) or 1561 have no E.164 form; HSDS asks for E.164 only "where
    # possible", so a valid short code for the region is kept as its digits.
    if (
        not digits.startswith("+")
        and len(digits) <= 6
        and phonenumbers.is_valid_short_number_for_region(parsed, region)
    ):
        return digits
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError(f"not a possible phone number for {region}: {_show(text)}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# --- languages ---------------------------------------------------------------------------------

_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}")
LANGUAGE_CODE_CHARACTERS = "^[A-Za-z]{2,3}$"  # for the OpenAPI document (case is folded)


def normalize_language_code(code: str) -> str:
    """Return the ISO 639-3 code for an ISO 639-1 or ISO 639-3 language code (e.g. es -> spa)."""
    if not isinstance(code, str):
        raise ValueError("language code must be a string")
    text = code.strip().lower()
    # Only exact codes: pycountry.languages.lookup would also match names, which we do not want.
    if _LANGUAGE_CODE.fullmatch(text):
        field = "alpha_2" if len(text) == 2 else "alpha_3"
        language = pycountry.languages.get(**{field: text})
        if language is not None:
            return str(language.alpha_3)
    raise ValueError(
        f"unknown language code {_show(code)}; use ISO 639-1 (e.g. 'es') or ISO 639-3 (e.g. 'quc')"
    )


# --- service areas -----------------------------------------------------------------------------

_AREA_TYPES = ("Polygon", "MultiPolygon")


def _check_position(position: Any, where: str) -> tuple[float, ...]:
    """Validate one GeoJSON position [lon, lat(, alt)] and return it as a tuple."""
    if (
        not isinstance(position, Sequence)
        or isinstance(position, str)
        or len(position) not in (2, 3)
        or not all(_is_number(value) for value in position)
    ):
        raise ValueError(f"{where}: a position must be [longitude, latitude]")
    values = tuple(float(value) for value in position)
    lon, lat = values[0], values[1]
    if not all(math.isfinite(value) for value in values):
        raise ValueError(f"{where}: coordinates must be finite numbers")
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"{where}: longitude must be between -180 and 180, got {lon:g}")
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"{where}: latitude must be between -90 and 90, got {lat:g}")
    return values


def _check_polygon_coordinates(rings: Any, where: str, vertices: int, max_vertices: int) -> int:
    """Check one polygon's raw rings; return the running vertex count."""
    if not isinstance(rings, Sequence) or isinstance(rings, str) or not rings:
        raise ValueError(f"{where}: a polygon needs at least one linear ring")
    for ring_index, ring in enumerate(rings):
        ring_where = f"{where} ring {ring_index}"
        if not isinstance(ring, Sequence) or isinstance(ring, str):
            raise ValueError(f"{ring_where}: a linear ring must be an array of positions")
        vertices += len(ring)
        # Checked before walking the ring so an oversized payload is refused cheaply.
        if vertices > max_vertices:
            raise ValueError(f"area has too many vertices (more than {max_vertices})")
        if len(ring) < 4:
            raise ValueError(f"{ring_where}: a linear ring needs at least 4 positions")
        positions = [_check_position(position, ring_where) for position in ring]
        # shapely closes open rings silently, so this must be checked on the raw input.
        if positions[0] != positions[-1]:
            raise ValueError(
                f"{ring_where}: ring is not closed (first and last positions must be equal)"
            )
    return vertices


def check_area_geometry(
    obj: Mapping[str, Any], *, max_vertices: int = 20000, max_area_km2: float = 250000.0
) -> BaseGeometry:
    """Validate a GeoJSON Polygon/MultiPolygon service area; return it as a 2D shapely geometry."""
    geom_type = _check_area_coordinates(obj, max_vertices)
    try:
        # force_2d: altitudes are allowed by GeoJSON but the database columns are 2D.
        geom: BaseGeometry = shapely.force_2d(shape(obj))
    except (ValueError, TypeError, IndexError, ShapelyError):
        raise ValueError(f"malformed {geom_type} coordinates") from None
    if geom.is_empty:
        raise ValueError("area must not be empty")
    if not geom.is_valid:
        # e.g. "Self-intersection[-90.5 14.6]": GEOS's reason plus the location of the problem.
        raise ValueError(f"area is not a valid {geom_type}: {explain_validity(geom)}")
    area_km2 = geodesic_area_km2(geom)
    if area_km2 <= 0.0:
        raise ValueError("area has zero size")
    if area_km2 > max_area_km2:
        raise ValueError(
            f"area is too large: {area_km2:,.0f} km² exceeds the limit of {max_area_km2:,.0f} km²"
        )
    return geom


def _check_area_coordinates(obj: Mapping[str, Any], max_vertices: int) -> str:
    """Check the raw GeoJSON of an area before shapely reads it; return its type."""
    if not isinstance(obj, Mapping):
        raise ValueError("area must be a GeoJSON Polygon or MultiPolygon object")
    geom_type = obj.get("type")
    if geom_type not in _AREA_TYPES:
        shown = _show(geom_type) if isinstance(geom_type, str) else "none"
        raise ValueError(f"area must be a GeoJSON Polygon or MultiPolygon, got type {shown}")
    coordinates = obj.get("coordinates")
    if not isinstance(coordinates, Sequence) or isinstance(coordinates, str):
        raise ValueError(f"{geom_type} needs a 'coordinates' array")
    if not coordinates:
        raise ValueError("area must not be empty")
    if geom_type == "Polygon":
        _check_polygon_coordinates(coordinates, "polygon", 0, max_vertices)
    else:
        vertices = 0
        for index, polygon in enumerate(coordinates):
            vertices = _check_polygon_coordinates(
                polygon, f"polygon {index}", vertices, max_vertices
            )
    return str(geom_type)


# --- instants and dates ------------------------------------------------------------------------

# Every instant the API evaluates is shifted by up to a week (opening hours look at the day before
# and the seven days from a date) and shown in Guatemala (UTC-6) and UTC time, so the first and
# last eight days Python can represent are refused: there the arithmetic would overflow.
_INSTANT_MARGIN = timedelta(days=8)
EARLIEST_INSTANT = datetime.min.replace(tzinfo=UTC) + _INSTANT_MARGIN
LATEST_INSTANT = datetime.max.replace(tzinfo=UTC) - _INSTANT_MARGIN


def check_instant(value: datetime, *, naive_zone: tzinfo) -> datetime:
    """Refuse an instant too near the ends of the calendar to evaluate; return it unchanged.

    A naive value is read in ``naive_zone`` (the parameter's documented meaning). The message
    states the allowed range, never the value.
    """
    aware = value if value.utcoffset() is not None else value.replace(tzinfo=naive_zone)
    message = f"must be between {EARLIEST_INSTANT:%Y-%m-%d} and {LATEST_INSTANT:%Y-%m-%d} (UTC)"
    try:
        utc = aware.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError(message) from None
    if not EARLIEST_INSTANT <= utc <= LATEST_INSTANT:
        raise ValueError(message)
    return value


def days_before(day: date, days: int) -> date:
    """``day`` minus ``days`` days; ``ValueError`` when that falls before the year 1."""
    try:
        return day - timedelta(days=days)
    except OverflowError:
        raise ValueError(f"lies less than {days} days after 0001-01-01") from None


def check_place_in_country(lat: float, lon: float, *, allow_outside_country: bool) -> None:
    """Refuse a person's place outside Guatemala unless the caller says it is deliberate.

    Unlike ``check_coordinates`` the message never repeats the coordinates: a person's place is
    personal data, and an error body can end up in a log.
    """
    if allow_outside_country or point_in_guatemala(lat, lon):
        return
    if _in_range(lon, lat) and point_in_guatemala(lon, lat):
        raise ValueError(
            "latitude and longitude look swapped: the place is outside Guatemala, "
            "the swapped one inside"
        )
    raise ValueError(
        "the place is outside Guatemala; set outside_country to true if that is deliberate"
    )
