"""Exact nearest-first in one statement: candidates in a cheap order, and proof none was missed.

The ``nearest`` statement takes the first ``fetch`` matches in a cheap order (PostGIS: planar
degrees, KNN ``<->`` on the GiST index; SpatiaLite: squared degrees, longitude scaled, inside an
R*Tree window) and returns the page in exact geodesic order among them, with the cheap order's
value at the last candidate (``reach``). The page is exact when every row that could belong to
it was a candidate:

- all matches were candidates (fewer than ``fetch``: the order ran out), or
- ``cutoff(D) < reach``, where D is the page's last distance (the radius, for a short page with
  one): every point within D of the reference point is nearer than ``reach`` in the cheap order,
  so it was a candidate. ``cutoff`` takes the cheap order's largest value on a geodesic circle
  sampled like ``geo.convert.geodesic_bbox`` (1 % and 5 m beyond the distance, every 5 degrees).

On SpatiaLite the candidates come from a window, so D must also lie within the window's circle.
Otherwise the statement runs again: with more candidates (the order was cut too early) or, on
SpatiaLite, a wider window (it held too few rows), growing by how many rows the last one held;
past the country, with no window. Where rows are dense, the first statement is exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from referral_net.db.dialect import ResultRow
from referral_net.domain.search.query import SearchQuery
from referral_net.geo.convert import GEOD

# SpatiaLite's first window, its growth per step (see _growth), and the size past which the
# window is the whole country.
_FIRST_WINDOW_M = 1_000.0
_MIN_GROWTH, _MAX_GROWTH = 1.5, 4.0
_WHOLE_COUNTRY_M = 1_500_000.0
# The circle's samples: as geodesic_bbox takes them (arrays: pyproj computes the 72 points in one
# call, and numpy takes their largest value; a loop over tuples cost about 0.1 ms a search).
_AZIMUTHS = np.arange(0.0, 360.0, 5.0)
_SAMPLES = len(_AZIMUTHS)
# A circle whose samples lie this many degrees of longitude from its centre crosses the
# antimeridian (offsets near 360) or holds a pole (near 180); at the largest radius search
# allows (500 km) no other circle comes close (90 degrees is 870 km even at 85 degrees north).
_UNWRAPPED_DEGREES = 90.0


@dataclass(frozen=True)
class Attempt:
    """What one run of the nearest statement gave: the page, how many candidates, the reach."""

    rows: list[ResultRow]
    fetched: int
    reach: float | None


# Runs the statement: (window radius in metres or None for no window, fetch) -> its attempt.
Run = Callable[[float | None, int], Attempt]


def first_fetch(wanted: int) -> int:
    """Candidates to fetch for the first ``wanted`` rows: a margin for the cheap order's error
    (a few percent of the radius) and for uneven density."""
    return wanted + max(8, math.ceil(wanted / 4))


def _growth(*, found: int, wanted: int) -> float:
    """How much to widen a window that held ``found`` of ``wanted`` rows.

    The area needed grows like wanted/found where the density is even, so the radius by its
    square root (with a margin); between 1.5x and 4x. A fixed 4x overshoots where a sparse
    window's next step reaches a city: at 1M rows one such step took 1.2 s on SpatiaLite.
    """
    if found == 0:
        return _MAX_GROWTH
    return min(_MAX_GROWTH, max(_MIN_GROWTH, 1.25 * math.sqrt(wanted / found)))


def _circle(query: SearchQuery, distances_m: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude offsets of the samples of one geodesic circle per distance
    (a row of ``_SAMPLES`` per distance), from one pyproj call."""
    if query.latitude is None or query.longitude is None:
        raise ValueError("nearest needs a reference point")
    lat, lon = query.latitude, query.longitude
    count = len(distances_m)
    lons, lats, _ = GEOD.fwd(
        np.full(_SAMPLES * count, lon),
        np.full(_SAMPLES * count, lat),
        np.tile(_AZIMUTHS, count),
        np.repeat(np.asarray(distances_m, dtype=float), _SAMPLES),
    )
    shape = (count, _SAMPLES)
    return (lons - lon).reshape(shape), (lats - lat).reshape(shape)


def _orders(query: SearchQuery, dx: np.ndarray, dy: np.ndarray, *, planar: bool) -> np.ndarray:
    """The cheap order's value at offsets: degrees (``planar``), else squared degrees with
    longitude scaled by cos² of the latitude (``dialect.entry_reach``)."""
    if planar:
        return np.hypot(dx, dy)  # type: ignore[no-any-return]
    scale = math.cos(math.radians(query.latitude or 0.0)) ** 2
    return dx * dx * scale + dy * dy  # type: ignore[no-any-return]


def cutoff(query: SearchQuery, distance_m: float, *, planar: bool) -> float:
    """The cheap order's largest value within ``distance_m`` of the query point.

    ``planar``: degrees (PostGIS ``<->``); otherwise squared degrees with longitude scaled by
    cos² of the latitude (SpatiaLite's order, ``dialect.entry_reach``).
    """
    dx, dy = _circle(query, [distance_m * 1.01 + 5.0])
    return float(_orders(query, dx, dy, planar=planar).max())


def ring(query: SearchQuery, distance_m: float, *, planar: bool) -> tuple[float, float]:
    """The cheap order's values that decide "within ``distance_m``" without the exact distance:
    at or below the first, a point is within; above the second, beyond. Only the rows between
    need the geodesic distance (on SpatiaLite about 12 us a row, most of a radius's count).

    The second is :func:`cutoff`. The first is the order's smallest value on the circle 1 %
    and 5 m inside the distance (none below 5 m: -1, which no value reaches): a point below it
    lies before that circle on its way out from the query point, since both the order and the
    distance grow along it; the margins cover the order's change between samples, as in
    :func:`cutoff`. Where the circle crosses the antimeridian or holds a pole, longitudes
    wrap and the order measures nothing: (-1, inf), the exact distance for every row.
    """
    inner = max(distance_m * 0.99 - 5.0, 0.0)
    dx, dy = _circle(query, [inner, distance_m * 1.01 + 5.0])
    if float(np.abs(dx).max()) >= _UNWRAPPED_DEGREES:
        return -1.0, math.inf  # the order is not a distance here: every row gets the exact one
    orders = _orders(query, dx, dy, planar=planar)
    return (float(orders[0].min()) if inner > 0.0 else -1.0), float(orders[1].max())


@dataclass(frozen=True)
class _Search:
    """One nearest-first page: the rows it ends at, the radius, how the order is measured."""

    query: SearchQuery
    wanted: int
    planar: bool

    def last_distance(self, attempt: Attempt) -> float | None:
        """The distance every page row lies within: the last row's on a full page, else the
        radius (a short page within a radius), else None (too few rows found)."""
        if len(attempt.rows) == self.query.limit:
            return float(attempt.rows[-1].distance_m)
        return self.query.radius_m

    def all_candidates(self, attempt: Attempt, fetch: int, distance: float | None) -> bool:
        """Every row within ``distance`` was a candidate (None: every match was)."""
        if attempt.fetched < fetch:
            return True
        if distance is None or attempt.reach is None:
            return False
        return cutoff(self.query, distance, planar=self.planar) < float(attempt.reach)


def nearest(
    run: Run, query: SearchQuery, *, windowed: bool, planar: bool, matches: int | None = None
) -> list[ResultRow]:
    """The exact nearest-first page, running the statement until its answer is proven.

    ``windowed``: candidates come from an index window that grows (SpatiaLite); otherwise the
    cheap order covers every row (PostGIS KNN; a radius's own box). ``matches``: how many rows
    match (within the radius, if any), when the count is exact: a radius with few matches is
    searched in its whole window at once, and a window holding every match ends the search.
    """
    search = _Search(query=query, wanted=query.offset + query.limit, planar=planar)
    fetch = first_fetch(search.wanted)
    if not windowed:
        while True:
            attempt = run(None, fetch)
            if search.all_candidates(attempt, fetch, search.last_distance(attempt)):
                return attempt.rows
            fetch *= 2
    return _windowed(run, search, fetch, matches)


def _windowed(run: Run, search: _Search, fetch: int, matches: int | None) -> list[ResultRow]:
    radius = search.query.radius_m
    largest = min(_WHOLE_COUNTRY_M, radius or _WHOLE_COUNTRY_M)
    window: float | None = min(_FIRST_WINDOW_M, largest)
    if radius is not None and matches is not None:
        # Few rows within the radius (the count stopped below its cap): its whole window at
        # once. Not every row a candidate: each candidate costs an exact distance (about 12 us
        # on SpatiaLite), and the cheap order's first ``fetch`` prove the page where rows
        # are even, as everywhere else.
        window = largest
    found_before = -1
    while True:
        attempt = run(window, fetch)
        distance = search.last_distance(attempt)
        inside = window is None or (distance is not None and distance <= window)
        if inside and search.all_candidates(attempt, fetch, distance):
            return attempt.rows
        if radius is None and matches is not None and fetch > attempt.fetched >= matches:
            return attempt.rows  # the window holds every match there is
        if inside or attempt.fetched >= fetch:
            fetch *= 2  # the cheap order was cut before the page's distance
        if not inside:
            # A wider window that found no more rows says nothing about density: widen most.
            found = 0 if attempt.fetched == found_before else attempt.fetched
            found_before = attempt.fetched
            window = _wider(window, largest, found=found, wanted=search.wanted)


def _wider(window: float | None, largest: float, *, found: int, wanted: int) -> float | None:
    """The next window; None (no window) once the whole country was searched."""
    if window is None:
        raise ValueError("an unbounded search is always exact")
    if window >= largest:
        return None
    return min(largest, window * _growth(found=found, wanted=wanted))


def page_of(rows: Sequence[ResultRow]) -> list[ResultRow]:
    """The page rows of a nearest statement's answer (its summary row alone when empty)."""
    return [row for row in rows if row.link_id is not None]
