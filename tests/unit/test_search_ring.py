"""A radius decided by the cheap nearest-first order (``bound.ring``), checked against pyproj.

Below the ring's first value a point must lie within the distance, above its second beyond it,
on the geodesic of WGS 84 as pyproj measures it: whatever the latitude, the azimuth, the radius
(up to search's largest) and the engine's order (planar degrees on PostGIS, scaled squared
degrees on SpatiaLite); across the antimeridian and around the poles too, where the order
measures nothing and the ring decides nothing.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from referral_net.domain.search import bound
from referral_net.domain.search.query import SearchQuery

WGS84 = Geod(ellps="WGS84")


def _order(query: SearchQuery, lon: float, lat: float, *, planar: bool) -> float:
    """The engines' cheap order, written out as their SQL computes it (``dialect.entry_reach``)."""
    assert query.latitude is not None
    assert query.longitude is not None
    dx, dy = lon - query.longitude, lat - query.latitude
    if planar:
        return math.hypot(dx, dy)
    return dx * dx * math.cos(math.radians(query.latitude)) ** 2 + dy * dy


@settings(max_examples=400, deadline=None)
@given(
    latitude=st.floats(-89.9, 89.9),
    longitude=st.floats(-180.0, 180.0),
    radius_m=st.floats(1.0, 500_000.0),
    azimuth=st.floats(0.0, 360.0),
    fraction=st.one_of(st.floats(0.0, 2.0), st.floats(0.97, 1.03)),
    planar=st.booleans(),
)
def test_the_ring_never_decides_a_point_wrongly(
    latitude: float,
    longitude: float,
    radius_m: float,
    azimuth: float,
    fraction: float,
    planar: bool,
) -> None:
    query = SearchQuery(mode="near", latitude=latitude, longitude=longitude, radius_m=radius_m)
    within, beyond = bound.ring(query, radius_m, planar=planar)
    lon, lat, _ = WGS84.fwd(longitude, latitude, azimuth, radius_m * fraction)
    _, _, distance = WGS84.inv(longitude, latitude, lon, lat)
    order = _order(query, lon, lat, planar=planar)
    if order <= within:
        assert distance <= radius_m
    if order > beyond:
        assert distance > radius_m


# How far inside or outside the radius a point is surely decided by the order, in every
# direction, at 15 degrees north: the scaled order is nearly round; PostGIS's planar degrees
# are not (a degree of longitude is 3.4 % shorter there than one of latitude).
@pytest.mark.parametrize(("planar", "margin"), [(False, 0.03), (True, 0.06)])
@pytest.mark.parametrize("radius_m", [1_000.0, 10_000.0, 50_000.0])
def test_the_ring_is_thin_so_few_rows_need_the_exact_distance(
    planar: bool, margin: float, radius_m: float
) -> None:
    query = SearchQuery(mode="near", latitude=15.0, longitude=-91.5, radius_m=radius_m)
    within, beyond = bound.ring(query, radius_m, planar=planar)
    for azimuth in range(0, 360, 7):
        near = WGS84.fwd(-91.5, 15.0, azimuth, radius_m * (1 - margin))
        far = WGS84.fwd(-91.5, 15.0, azimuth, radius_m * (1 + margin))
        assert _order(query, near[0], near[1], planar=planar) <= within
        assert _order(query, far[0], far[1], planar=planar) > beyond


def test_a_radius_of_a_few_metres_decides_nothing_within_by_the_order() -> None:
    query = SearchQuery(mode="near", latitude=15.0, longitude=-91.5, radius_m=4.0)
    within, beyond = bound.ring(query, 4.0, planar=False)
    assert within < 0.0 < beyond


@pytest.mark.parametrize(
    ("latitude", "longitude"), [(-17.7, 179.99), (-17.7, -179.99), (89.5, 0.0)]
)
def test_across_the_antimeridian_or_a_pole_the_ring_decides_nothing(
    latitude: float, longitude: float
) -> None:
    query = SearchQuery(mode="near", latitude=latitude, longitude=longitude, radius_m=80_000.0)
    for planar in (True, False):
        assert bound.ring(query, 80_000.0, planar=planar) == (-1.0, math.inf)
