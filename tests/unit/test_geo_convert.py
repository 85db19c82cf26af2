"""Tests for referral_net.geo.convert and referral_net.geo.country."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import shapely
import shapely.wkb
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import LineString, MultiPolygon, Point, Polygon

from referral_net.geo.convert import (
    from_geojson,
    geodesic_area_km2,
    geodesic_bbox,
    geodesic_distance_m,
    to_geojson,
    to_wkt_ewkt,
    wkb_to_shape,
)
from referral_net.geo.country import guatemala_outline, point_in_guatemala

QUETZALTENANGO = (14.8347, -91.5181)
GUATEMALA_CITY = (14.6349, -90.5069)


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance on the IUGG mean-radius sphere, independent of pyproj."""
    radius = 6_371_008.8
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi = phi2 - phi1
    d_lambda = math.radians(lon2 - lon1)
    h = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * radius * math.asin(math.sqrt(h))


# --- GeoJSON -----------------------------------------------------------------------------------


def test_to_geojson_point_uses_lists() -> None:
    assert to_geojson(Point(-90.5, 14.6)) == {"type": "Point", "coordinates": [-90.5, 14.6]}


def test_to_geojson_is_json_round_trippable() -> None:
    polygon = Polygon([(0, 0), (1, 0), (1, 1), (0, 0)])
    result = to_geojson(polygon)
    assert json.loads(json.dumps(result)) == result
    assert result["coordinates"] == [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]]


def test_to_geojson_rejects_non_geometry() -> None:
    with pytest.raises(TypeError):
        to_geojson({"type": "Point"})


def test_from_geojson_polygon() -> None:
    geom = from_geojson({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]})
    assert isinstance(geom, Polygon)
    assert geom.area == pytest.approx(0.5)


def test_from_geojson_geometry_collection() -> None:
    geom = from_geojson(
        {"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [1, 2]}]}
    )
    assert geom.geom_type == "GeometryCollection"


@pytest.mark.parametrize(
    "obj",
    [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}},
        {"type": "Circle", "coordinates": [1, 2]},
        {"coordinates": [1, 2]},
        {"type": "Point"},
        {"type": "Point", "coordinates": "1,2"},
        {"type": "Point", "coordinates": [["a"]]},
        {"type": "LineString", "coordinates": [[1, 2]]},
        {"type": "Polygon", "coordinates": [[[0, 0], [1]]]},
        {"type": "GeometryCollection"},
    ],
)
def test_from_geojson_rejects_non_geojson(obj: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"GeoJSON"):
        from_geojson(obj)


def test_from_geojson_rejects_non_mapping() -> None:
    with pytest.raises(ValueError, match="GeoJSON object"):
        from_geojson([1, 2])  # type: ignore[arg-type]


def test_from_geojson_does_not_echo_long_type() -> None:
    with pytest.raises(ValueError, match=r"got '\?'") as info:
        from_geojson({"type": "x" * 500, "coordinates": [1, 2]})
    assert "x" * 50 not in str(info.value)


coordinate = st.floats(min_value=-180, max_value=180, allow_nan=False, allow_infinity=False)


@given(x=coordinate, y=coordinate.filter(lambda v: -90 <= v <= 90))
def test_geojson_round_trip_point(x: float, y: float) -> None:
    point = Point(x, y)
    assert from_geojson(to_geojson(point)).equals_exact(point, 0)


def test_geojson_round_trip_multipolygon() -> None:
    multi = MultiPolygon(
        [
            Polygon([(0, 0), (2, 0), (2, 2), (0, 2), (0, 0)], [[(0.5, 0.5), (1, 0.5), (1, 1)]]),
            Polygon([(5, 5), (6, 5), (6, 6), (5, 5)]),
        ]
    )
    assert from_geojson(to_geojson(multi)).equals_exact(multi, 0)


# --- WKT / WKB ---------------------------------------------------------------------------------


def test_to_wkt_ewkt_point() -> None:
    assert to_wkt_ewkt(Point(-90.5069, 14.6349)) == "SRID=4326;POINT (-90.5069 14.6349)"


def test_to_wkt_ewkt_keeps_full_precision() -> None:
    ewkt = to_wkt_ewkt(Point(-90.123456789012, 14.987654321098))
    assert "-90.123456789012" in ewkt
    assert "14.987654321098" in ewkt


def test_to_wkt_ewkt_other_srid() -> None:
    assert to_wkt_ewkt(Point(1, 2), srid=3857).startswith("SRID=3857;POINT")


@pytest.mark.parametrize("srid", [0, -1, True, 4326.0])
def test_to_wkt_ewkt_rejects_bad_srid(srid: Any) -> None:
    with pytest.raises(ValueError, match="srid"):
        to_wkt_ewkt(Point(1, 2), srid=srid)


def test_wkb_to_shape_plain_bytes_and_memoryview() -> None:
    point = Point(-91.5181, 14.8347)
    data = shapely.wkb.dumps(point)
    assert wkb_to_shape(data).equals_exact(point, 0)
    assert wkb_to_shape(memoryview(data)).equals_exact(point, 0)
    assert wkb_to_shape(bytearray(data)).equals_exact(point, 0)


def test_wkb_to_shape_ewkb_with_srid() -> None:
    point = shapely.set_srid(Point(-91.5181, 14.8347), 4326)
    data = shapely.to_wkb(point, flavor="extended", include_srid=True)
    # Make sure we really are feeding EWKB: the SRID flag is set in the type word.
    assert data != shapely.wkb.dumps(Point(-91.5181, 14.8347))
    assert wkb_to_shape(data).equals_exact(point, 0)


def test_wkb_to_shape_hex_strings() -> None:
    polygon = Polygon([(0, 0), (1, 0), (1, 1), (0, 0)])
    hex_wkb = shapely.wkb.dumps(polygon, hex=True)
    assert wkb_to_shape(hex_wkb).equals_exact(polygon, 0)
    assert wkb_to_shape(hex_wkb.lower()).equals_exact(polygon, 0)
    assert wkb_to_shape("\\x" + hex_wkb).equals_exact(polygon, 0)
    ewkb_hex = shapely.to_wkb(
        shapely.set_srid(polygon, 4326), hex=True, flavor="extended", include_srid=True
    )
    assert wkb_to_shape(ewkb_hex).equals_exact(polygon, 0)


@pytest.mark.parametrize("data", [b"", b"\x00\x01garbage", "zz", "0101", 42])
def test_wkb_to_shape_rejects_garbage(data: Any) -> None:
    with pytest.raises(ValueError, match="WKB"):
        wkb_to_shape(data)


# --- geodesic measures -------------------------------------------------------------------------


def test_geodesic_distance_quetzaltenango_guatemala_city() -> None:
    distance = geodesic_distance_m(*QUETZALTENANGO, *GUATEMALA_CITY)
    # The ellipsoid and the sphere differ by well under 0.5 % over ~110 km.
    assert distance == pytest.approx(haversine_m(*QUETZALTENANGO, *GUATEMALA_CITY), rel=0.005)
    assert 110_000 < distance < 112_000


def test_geodesic_distance_one_degree_of_latitude_at_equator() -> None:
    # Known WGS 84 value: one degree of latitude at the equator is 110,574.4 m.
    assert geodesic_distance_m(0, 0, 1, 0) == pytest.approx(110_574.4, abs=0.5)


def test_geodesic_distance_zero_and_symmetric() -> None:
    assert geodesic_distance_m(*QUETZALTENANGO, *QUETZALTENANGO) == 0.0
    there = geodesic_distance_m(*QUETZALTENANGO, *GUATEMALA_CITY)
    back = geodesic_distance_m(*GUATEMALA_CITY, *QUETZALTENANGO)
    assert there == pytest.approx(back, abs=1e-6)


@pytest.mark.parametrize(
    "args", [(math.nan, 0, 0, 0), (0, math.inf, 0, 0), (91, 0, 0, 0), (0, 0, 0, -181)]
)
def test_geodesic_distance_rejects_bad_input(args: tuple[float, float, float, float]) -> None:
    with pytest.raises(ValueError, match=r"finite|between"):
        geodesic_distance_m(*args)


lat_st = st.floats(min_value=-89, max_value=89, allow_nan=False)
lon_st = st.floats(min_value=-179, max_value=179, allow_nan=False)


@given(lat1=lat_st, lon1=lon_st, lat2=lat_st, lon2=lon_st)
def test_geodesic_distance_close_to_haversine(
    lat1: float, lon1: float, lat2: float, lon2: float
) -> None:
    # Ellipsoid vs sphere: the relative difference stays within ~0.6 % anywhere on Earth.
    expected = haversine_m(lat1, lon1, lat2, lon2)
    assert geodesic_distance_m(lat1, lon1, lat2, lon2) == pytest.approx(
        expected, rel=0.007, abs=1e-3
    )


def test_geodesic_area_small_square_near_equator() -> None:
    # 0.01° x 0.01° at the equator ≈ 1.1132 km x 1.1057 km.
    square = Polygon([(0, 0), (0.01, 0), (0.01, 0.01), (0, 0.01), (0, 0)])
    assert geodesic_area_km2(square) == pytest.approx(1.11319 * 1.10574, rel=1e-3)


def test_geodesic_area_ignores_winding_and_subtracts_holes() -> None:
    shell = [(0, 0), (1, 0), (1, 1), (0, 1), (0, 0)]
    hole = [(0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75), (0.25, 0.25)]
    full = geodesic_area_km2(Polygon(shell))
    assert geodesic_area_km2(Polygon(shell[::-1])) == pytest.approx(full)
    # Same winding for shell and hole (which GeoJSON input may well have) must still subtract.
    holed = geodesic_area_km2(Polygon(shell, [hole]))
    assert geodesic_area_km2(Polygon(shell[::-1], [hole])) == pytest.approx(holed)
    assert holed == pytest.approx(full * 0.75, rel=1e-3)


def test_geodesic_area_multipolygon_sums_parts() -> None:
    a = Polygon([(0, 0), (1, 0), (1, 1), (0, 1), (0, 0)])
    b = Polygon([(2, 0), (3, 0), (3, 1), (2, 1), (2, 0)])
    assert geodesic_area_km2(MultiPolygon([a, b])) == pytest.approx(
        geodesic_area_km2(a) + geodesic_area_km2(b)
    )


def test_geodesic_area_of_guatemala() -> None:
    # Official figure: 108,889 km²; the simplified outline must be within 2 %.
    assert geodesic_area_km2(guatemala_outline()) == pytest.approx(108_889, rel=0.02)


@pytest.mark.parametrize("geom", [Point(0, 0), LineString([(0, 0), (1, 1)])])
def test_geodesic_area_rejects_non_polygons(geom: Any) -> None:
    with pytest.raises(ValueError, match="Polygon or MultiPolygon"):
        geodesic_area_km2(geom)


# --- Guatemala outline -------------------------------------------------------------------------


def test_outline_is_cached_valid_and_hole_free() -> None:
    outline = guatemala_outline()
    assert outline is guatemala_outline()
    assert outline.is_valid
    assert shapely.is_prepared(outline)
    parts = getattr(outline, "geoms", [outline])
    assert all(len(part.interiors) == 0 for part in parts)
    min_lon, min_lat, max_lon, max_lat = outline.bounds
    assert 13.6 < min_lat < 13.8
    assert 17.7 < max_lat < 17.9
    assert -92.3 < min_lon < -92.1
    assert -88.3 < max_lon < -88.1


@pytest.mark.parametrize(
    ("lat", "lon"),
    [
        QUETZALTENANGO,
        GUATEMALA_CITY,
        (16.9300, -89.8900),  # Flores, Petén
        (15.7278, -88.5944),  # Puerto Barrios, on the coast
        (15.8283, -88.7506),  # Lívingston, on the coast
        (14.6775, -92.1456),  # Tecún Umán, on the Suchiate river border
        (17.0555, -89.1497),  # Melchor de Mencos: ~300 m outside the simplified outline
        (16.0630, -90.4336),  # in a sliver between two simplified departments
    ],
)
def test_point_in_guatemala_true(lat: float, lon: float) -> None:
    assert point_in_guatemala(lat, lon)


@pytest.mark.parametrize(
    ("lat", "lon"),
    [
        (14.9056, -92.2634),  # Tapachula, Mexico
        (13.6929, -89.2182),  # San Salvador
        (17.5046, -88.1962),  # Belize City
        (14.8401, -89.1553),  # Copán Ruinas, Honduras (~6 km from the border)
        (17.0747, -89.1386),  # Benque Viejo, Belize (~1.5 km from the border)
        (0.0, 0.0),
        (-91.5181, 14.8347),  # swapped, and out of range
    ],
)
def test_point_in_guatemala_false(lat: float, lon: float) -> None:
    assert not point_in_guatemala(lat, lon)


def test_point_in_guatemala_tolerance() -> None:
    melchor = (17.0555, -89.1497)
    assert not point_in_guatemala(*melchor, tolerance_m=0)
    assert not point_in_guatemala(*melchor, tolerance_m=100)
    assert point_in_guatemala(*melchor, tolerance_m=500)
    benque = (17.0747, -89.1386)
    assert point_in_guatemala(*benque, tolerance_m=5_000)


@pytest.mark.parametrize(("lat", "lon"), [(math.nan, -90.5), (14.6, math.inf)])
def test_point_in_guatemala_non_finite_is_false(lat: float, lon: float) -> None:
    assert not point_in_guatemala(lat, lon)


@settings(max_examples=500, deadline=None)
@given(
    lat=st.floats(-90.0, 90.0),
    lon=st.floats(-180.0, 180.0),
    radius_m=st.floats(1.0, 500_000.0),
    azimuth=st.floats(0.0, 360.0),
    fraction=st.one_of(st.floats(0.0, 1.0), st.floats(0.99, 1.0)),
)
def test_geodesic_bbox_holds_every_point_of_the_circle_across_the_antimeridian_and_poles(
    lat: float, lon: float, radius_m: float, azimuth: float, fraction: float
) -> None:
    """The box is search's index window: a point within the radius (pyproj's geodesic) that
    fell outside it would be missing from the results."""
    west, south, east, north = geodesic_bbox(lat, lon, radius_m)
    point_lon, point_lat, _ = Geod(ellps="WGS84").fwd(lon, lat, azimuth, radius_m * fraction)
    assert west <= point_lon <= east
    assert south <= point_lat <= north


@pytest.mark.parametrize(
    ("lat", "lon", "radius_m", "expected"),
    [
        (-17.7, 179.9999, 50.0, (-180.0, 180.0)),  # Fiji: the circle crosses the line
        (89.9, 10.0, 50_000.0, (-180.0, 180.0)),  # the North Pole lies inside
        (14.8347, -91.5181, 10_000.0, (-91.61, -91.42)),  # Xela: a plain box
    ],
)
def test_geodesic_bbox_longitudes(
    lat: float, lon: float, radius_m: float, expected: tuple[float, float]
) -> None:
    west, _, east, north = geodesic_bbox(lat, lon, radius_m)
    assert (west, east) == pytest.approx(expected, abs=0.01)
    if lat > 89:
        assert north == 90.0
