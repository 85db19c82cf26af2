"""Tests for referral_net.validation."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Polygon

from referral_net.validation import (
    check_area_geometry,
    check_coordinates,
    normalize_language_code,
    normalize_phone,
)

QUETZALTENANGO = (14.84, -91.52)
SAN_SALVADOR = (13.6929, -89.2182)

# --- coordinates -------------------------------------------------------------------------------


def test_coordinates_inside_guatemala_pass() -> None:
    assert check_coordinates(*QUETZALTENANGO) == QUETZALTENANGO


def test_coordinates_ints_become_floats() -> None:
    lat, lon = check_coordinates(15, -90)
    assert (lat, lon) == (15.0, -90.0)
    assert isinstance(lat, float)
    assert isinstance(lon, float)


def test_swapped_quetzaltenango_is_reported_as_swap() -> None:
    # lat=-91.52 is also out of range; the swap message must win over the range error.
    with pytest.raises(ValueError, match="look swapped") as info:
        check_coordinates(-91.52, 14.84)
    assert "(-91.52, 14.84) is outside Guatemala but (14.84, -91.52) is inside" in str(info.value)


def test_swap_reported_even_with_outside_country_flag_when_out_of_range() -> None:
    with pytest.raises(ValueError, match="look swapped"):
        check_coordinates(-91.52, 14.84, allow_outside_country=True)


def test_swapped_in_range_point_from_eastern_guatemala() -> None:
    # (-89.5, 15.5) is a valid point near Antarctica whose swap is in Alta Verapaz.
    with pytest.raises(ValueError, match="look swapped"):
        check_coordinates(-89.5, 15.5)


def test_outside_country_flag_accepts_in_range_points() -> None:
    assert check_coordinates(*SAN_SALVADOR, allow_outside_country=True) == SAN_SALVADOR
    assert check_coordinates(-89.5, 15.5, allow_outside_country=True) == (-89.5, 15.5)


def test_point_outside_guatemala_rejected() -> None:
    with pytest.raises(ValueError, match="outside Guatemala; set outside_country=true"):
        check_coordinates(*SAN_SALVADOR)


@pytest.mark.parametrize(
    ("lat", "lon", "message"),
    [
        (91.0, -90.5, "latitude must be between -90 and 90"),
        (-95.0, 10.0, "latitude must be between -90 and 90"),
        (14.6, -181.0, "longitude must be between -180 and 180"),
        (14.6, 200.0, "longitude must be between -180 and 180"),
    ],
)
def test_out_of_range_coordinates(lat: float, lon: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_coordinates(lat, lon, allow_outside_country=True)


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(math.nan, -90.5), (14.6, math.nan), (math.inf, -90.5), (14.6, -math.inf)],
)
def test_non_finite_coordinates(lat: float, lon: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        check_coordinates(lat, lon, allow_outside_country=True)


@pytest.mark.parametrize(("lat", "lon"), [(True, -90.5), ("14.6", -90.5), (None, 1.0)])
def test_non_numeric_coordinates(lat: Any, lon: Any) -> None:
    with pytest.raises(ValueError, match="must be numbers"):
        check_coordinates(lat, lon)


@settings(max_examples=200)
@given(
    lat=st.floats(min_value=-90, max_value=90, allow_nan=False),
    lon=st.floats(min_value=-180, max_value=180, allow_nan=False),
)
def test_any_in_range_point_passes_with_flag(lat: float, lon: float) -> None:
    assert check_coordinates(lat, lon, allow_outside_country=True) == (lat, lon)


@given(
    lat=st.floats(allow_nan=True, allow_infinity=True),
    lon=st.floats(allow_nan=True, allow_infinity=True),
)
def test_check_coordinates_only_raises_value_error(lat: float, lon: float) -> None:
    with contextlib.suppress(ValueError):
        check_coordinates(lat, lon)


# --- phone numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("5555-0123", "+50255550123"),
        ("+502 2411 1234", "+50224111234"),
        ("2411 1234", "+50224111234"),
        ("  2411.1234 ", "+50224111234"),
        ("(+502) 2411-1234", "+50224111234"),
        ("+1 202-555-0100", "+12025550100"),
        ("1561", "1561"),
        ("110", "110"),
        ("1570", "1570"),
        ("15 70", "1570"),
    ],
)
def test_normalize_phone(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


def test_normalize_phone_other_default_region() -> None:
    assert normalize_phone("(202) 555-0100", default_region="us") == "+12025550100"


@pytest.mark.parametrize(
    "raw",
    ["abc", "", "   ", "12", "0000", "+", "1-800-FLOWERS", "2411-1234 ext 5", "5" * 30],
)
def test_normalize_phone_rejects_garbage(raw: str) -> None:
    with pytest.raises(ValueError, match="phone number"):
        normalize_phone(raw)


def test_normalize_phone_does_not_echo_long_input() -> None:
    with pytest.raises(ValueError, match="phone number") as info:
        normalize_phone("x" * 1000)
    assert len(str(info.value)) < 200


def test_normalize_phone_rejects_unknown_region() -> None:
    with pytest.raises(ValueError, match="unknown phone region"):
        normalize_phone("2411 1234", default_region="XX")


def test_normalize_phone_rejects_non_string() -> None:
    with pytest.raises(ValueError, match="string"):
        normalize_phone(24111234)  # type: ignore[arg-type]


@given(st.text(max_size=30))
def test_normalize_phone_only_raises_value_error(raw: str) -> None:
    try:
        result = normalize_phone(raw)
    except ValueError:
        return
    assert result.startswith("+") or result.isdigit()


# --- languages ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("es", "spa"),
        ("en", "eng"),
        ("ES", "spa"),
        (" es ", "spa"),
        ("spa", "spa"),
        ("quc", "quc"),
        ("QUC", "quc"),
    ],
)
def test_normalize_language_code(raw: str, expected: str) -> None:
    assert normalize_language_code(raw) == expected


@pytest.mark.parametrize(
    "code", ["mam", "kek", "cak", "ixl", "kjb", "tzj", "knj", "jac", "cac", "acr", "cab", "poc"]
)
def test_guatemalan_languages_accepted(code: str) -> None:
    assert normalize_language_code(code) == code


@pytest.mark.parametrize("raw", ["xx", "zzz", "spanish", "Spanish", "", "e", "es-GT", "ger", "1a"])
def test_normalize_language_code_rejects_unknown(raw: str) -> None:
    with pytest.raises(ValueError, match="unknown language code"):
        normalize_language_code(raw)


def test_normalize_language_code_rejects_non_string() -> None:
    with pytest.raises(ValueError, match="string"):
        normalize_language_code(None)  # type: ignore[arg-type]


# --- service areas -----------------------------------------------------------------------------


def square(lon: float, lat: float, size: float) -> list[list[float]]:
    """A closed counter-clockwise square ring."""
    return [
        [lon, lat],
        [lon + size, lat],
        [lon + size, lat + size],
        [lon, lat + size],
        [lon, lat],
    ]


XELA_SQUARE = square(-91.6, 14.8, 0.1)


def test_area_polygon_ok() -> None:
    geom = check_area_geometry({"type": "Polygon", "coordinates": [XELA_SQUARE]})
    assert isinstance(geom, Polygon)
    assert geom.bounds == pytest.approx((-91.6, 14.8, -91.5, 14.9))


def test_area_polygon_with_hole_ok() -> None:
    hole = square(-91.58, 14.82, 0.02)[::-1]
    geom = check_area_geometry({"type": "Polygon", "coordinates": [XELA_SQUARE, hole]})
    assert len(geom.interiors) == 1


def test_area_multipolygon_ok() -> None:
    geom = check_area_geometry(
        {"type": "MultiPolygon", "coordinates": [[XELA_SQUARE], [square(-90.6, 14.5, 0.1)]]}
    )
    assert isinstance(geom, MultiPolygon)
    assert len(geom.geoms) == 2


def test_area_drops_altitude() -> None:
    ring = [[*position, 2300.0] for position in XELA_SQUARE]
    geom = check_area_geometry({"type": "Polygon", "coordinates": [ring]})
    assert not geom.has_z


def test_area_whole_guatemala_sized_box_ok() -> None:
    # A box around Guatemala is ~200,000 km², below the default cap.
    geom = check_area_geometry(
        {
            "type": "Polygon",
            "coordinates": [
                [[-92.3, 13.7], [-88.2, 13.7], [-88.2, 17.9], [-92.3, 17.9], [-92.3, 13.7]]
            ],
        }
    )
    assert geom.is_valid


@pytest.mark.parametrize(
    "obj",
    [
        {"type": "Point", "coordinates": [-91.5, 14.8]},
        {"type": "LineString", "coordinates": [[-91.5, 14.8], [-91.4, 14.9]]},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [XELA_SQUARE]}},
        {"coordinates": [XELA_SQUARE]},
    ],
)
def test_area_rejects_non_polygon_types(obj: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be a GeoJSON Polygon or MultiPolygon"):
        check_area_geometry(obj)


def test_area_point_message_names_the_type() -> None:
    with pytest.raises(ValueError, match="got type 'Point'"):
        check_area_geometry({"type": "Point", "coordinates": [-91.5, 14.8]})


def test_area_rejects_non_mapping() -> None:
    with pytest.raises(ValueError, match="GeoJSON Polygon or MultiPolygon object"):
        check_area_geometry([XELA_SQUARE])  # type: ignore[arg-type]


def test_area_rejects_unclosed_ring() -> None:
    ring = [*XELA_SQUARE[:-1], [-91.6, 14.85]]
    with pytest.raises(ValueError, match="ring 0: ring is not closed"):
        check_area_geometry({"type": "Polygon", "coordinates": [ring]})


def test_area_rejects_unclosed_hole() -> None:
    hole = square(-91.58, 14.82, 0.02)[:-1]
    with pytest.raises(ValueError, match="ring 1: ring is not closed"):
        check_area_geometry({"type": "Polygon", "coordinates": [XELA_SQUARE, hole]})


def test_area_rejects_short_ring() -> None:
    ring = [[-91.6, 14.8], [-91.5, 14.8], [-91.6, 14.8]]
    with pytest.raises(ValueError, match="at least 4 positions"):
        check_area_geometry({"type": "Polygon", "coordinates": [ring]})


def test_area_rejects_self_intersecting_bowtie() -> None:
    bowtie = [[-91.6, 14.8], [-91.5, 14.9], [-91.5, 14.8], [-91.6, 14.9], [-91.6, 14.8]]
    with pytest.raises(ValueError, match=r"not a valid Polygon: Self-intersection"):
        check_area_geometry({"type": "Polygon", "coordinates": [bowtie]})


def test_area_rejects_overlapping_multipolygon_parts() -> None:
    with pytest.raises(ValueError, match="not a valid MultiPolygon"):
        check_area_geometry(
            {"type": "MultiPolygon", "coordinates": [[XELA_SQUARE], [square(-91.55, 14.85, 0.1)]]}
        )


def test_area_rejects_hole_outside_shell() -> None:
    with pytest.raises(ValueError, match="not a valid Polygon"):
        check_area_geometry(
            {"type": "Polygon", "coordinates": [XELA_SQUARE, square(-90.0, 14.0, 0.01)]}
        )


def test_area_rejects_degenerate_ring() -> None:
    flat = [[-91.6, 14.8], [-91.5, 14.8], [-91.4, 14.8], [-91.6, 14.8]]
    with pytest.raises(ValueError, match="not a valid Polygon"):
        check_area_geometry({"type": "Polygon", "coordinates": [flat]})


def test_area_rejects_too_many_vertices() -> None:
    n = 30
    ring = [
        [-91.5 + 0.1 * math.cos(2 * math.pi * i / n), 14.8 + 0.1 * math.sin(2 * math.pi * i / n)]
        for i in range(n)
    ]
    ring.append(ring[0])
    obj = {"type": "Polygon", "coordinates": [ring]}
    assert check_area_geometry(obj, max_vertices=31).is_valid
    with pytest.raises(ValueError, match="too many vertices"):
        check_area_geometry(obj, max_vertices=30)


def test_area_vertex_cap_counts_all_parts() -> None:
    obj = {"type": "MultiPolygon", "coordinates": [[XELA_SQUARE], [square(-90.6, 14.5, 0.1)]]}
    with pytest.raises(ValueError, match="too many vertices"):
        check_area_geometry(obj, max_vertices=9)


def test_area_rejects_too_large_area() -> None:
    # 10° x 10° around Central America is ~1.2 million km².
    obj = {"type": "Polygon", "coordinates": [square(-95.0, 10.0, 10.0)]}
    with pytest.raises(ValueError, match="area is too large"):
        check_area_geometry(obj)
    # Same shape passes with a larger cap.
    assert check_area_geometry(obj, max_area_km2=2_000_000).is_valid


def test_area_cap_is_configurable() -> None:
    # XELA_SQUARE is ~ 10.8 km x 11.1 km ≈ 119 km².
    obj = {"type": "Polygon", "coordinates": [XELA_SQUARE]}
    with pytest.raises(ValueError, match="too large"):
        check_area_geometry(obj, max_area_km2=100)
    assert check_area_geometry(obj, max_area_km2=150).is_valid


@pytest.mark.parametrize(
    "obj",
    [
        {"type": "Polygon", "coordinates": []},
        {"type": "MultiPolygon", "coordinates": []},
    ],
)
def test_area_rejects_empty(obj: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        check_area_geometry(obj)


@pytest.mark.parametrize(
    ("coordinates", "message"),
    [
        (None, "needs a 'coordinates' array"),
        ("[[0,0]]", "needs a 'coordinates' array"),
        ([[]], "at least 4 positions"),
        ([[[-91.6, 14.8], [-91.5], [-91.5, 14.9], [-91.6, 14.8]]], "a position must be"),
        ([[[-91.6, 14.8], ["a", 1], [-91.5, 14.9], [-91.6, 14.8]]], "a position must be"),
        ([[[-91.6, 14.8], [True, 1], [-91.5, 14.9], [-91.6, 14.8]]], "a position must be"),
        ([[[-91.6, 14.8], [math.nan, 1], [-91.5, 14.9], [-91.6, 14.8]]], "finite"),
        ([[[-91.6, 14.8], [-191, 14.8], [-91.5, 14.9], [-91.6, 14.8]]], "longitude"),
        ([[[-91.6, 14.8], [-91.5, 94.8], [-91.5, 14.9], [-91.6, 14.8]]], "latitude"),
        ([-91.6, 14.8], "linear ring must be an array"),
    ],
)
def test_area_rejects_malformed_coordinates(coordinates: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_area_geometry({"type": "Polygon", "coordinates": coordinates})


def test_area_multipolygon_part_must_have_rings() -> None:
    with pytest.raises(ValueError, match="polygon 1: a polygon needs at least one linear ring"):
        check_area_geometry({"type": "MultiPolygon", "coordinates": [[XELA_SQUARE], []]})


json_value = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=6),
    max_leaves=40,
)


@given(kind=st.sampled_from(["Polygon", "MultiPolygon"]), coordinates=json_value)
def test_area_only_raises_value_error_on_arbitrary_input(kind: str, coordinates: Any) -> None:
    with contextlib.suppress(ValueError):
        check_area_geometry({"type": kind, "coordinates": coordinates})
