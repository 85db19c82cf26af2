"""Exact nearest-first without scanning: an upper bound on the k-th nearest distance.

Nearest-first is exact on both engines in two steps: find an upper bound D on the k-th nearest
distance (PostGIS: KNN ``<->`` on the GiST index; SpatiaLite: an R*Tree window that grows until it
holds k rows), then run an index-windowed radius query with radius D, ordered by geodesic
distance and id. Any row nearer than D lies inside that window, so nothing is missed.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import Select
from sqlmodel import Session

from referral_net.db import dialect
from referral_net.domain.search.plan import Plan, connection, within
from referral_net.domain.search.query import SearchQuery
from referral_net.geo.convert import geodesic_bbox

# SpatiaLite's first window, its growth per step (see _growth), and the size past which the
# window is the whole country.
_FIRST_WINDOW_M = 1_000.0
_MIN_GROWTH, _MAX_GROWTH = 1.5, 4.0
_WHOLE_COUNTRY_M = 1_500_000.0


def nearest_bound(
    session: Session, plan: Plan, query: SearchQuery, k: int, *, within_m: float | None = None
) -> float | None:
    """An upper bound on the k-th nearest distance; None when fewer than k rows match.

    With ``within_m`` (a radius search) None means that no bound below the radius was found, so
    the radius itself bounds the page.
    """
    if plan.distance is None or query.latitude is None or query.longitude is None:
        raise ValueError("nearest needs a reference point")
    # Any k rows bound the k-th nearest distance by their largest geodesic distance; the cheap
    # order picks k rows that are nearly the nearest, so the bound is tight, and the engine
    # computes geodesic distances for those k rows only.
    cheap = dialect.cheap_distance_order(
        session, plan.geom, latitude=query.latitude, longitude=query.longitude
    )
    largest = min(_WHOLE_COUNTRY_M, within_m) if within_m is not None else _WHOLE_COUNTRY_M
    # PostGIS: the KNN index walks outwards by itself, one statement. SpatiaLite: R*Tree windows
    # that grow until one holds k rows.
    window: float | None = None if dialect.has_knn_index(session) else min(_FIRST_WINDOW_M, largest)
    while True:
        statement = plan.statement
        if window is not None:  # the index window alone: rows in its corners still bound
            box = geodesic_bbox(query.latitude, query.longitude, window)
            statement = statement.where(
                dialect.index_window(
                    session, table="location", column=plan.column, geom=plan.geom, box=box
                )
            )
        nearest = statement.with_only_columns(plan.distance).order_by(cheap).limit(k)
        distances = [float(d) for d in connection(session).execute(nearest).scalars()]
        if len(distances) == k:
            bound = max(distances)
            return None if within_m is not None and bound > within_m else bound
        if window is None or window >= largest:
            return None
        window = min(largest, window * _growth(found=len(distances), wanted=k))


def _growth(*, found: int, wanted: int) -> float:
    """How much to widen a window that held ``found`` of ``wanted`` rows.

    The area needed grows like wanted/found where the density is even, so the radius by its
    square root (with a margin); between 1.5x and 4x. A fixed 4x overshoots where a sparse
    window's next step reaches a city: at 1M rows one such step took 1.2 s on SpatiaLite.
    """
    if found == 0:
        return _MAX_GROWTH
    return min(_MAX_GROWTH, max(_MIN_GROWTH, 1.25 * math.sqrt(wanted / found)))


def bounded(session: Session, plan: Plan, query: SearchQuery) -> Select[Any]:
    """The statement whose rows, ordered, are all the results (before paging).

    Nearest-first searches are bounded by the k-th nearest distance (k = the rows up to the end
    of this page): a 10 km radius in a city holds tens of thousands of rows at 1M, and ordering
    them all costs what a scan does; the bound keeps the window to about k rows.
    """
    if query.mode != "near":
        return plan.statement
    bound = nearest_bound(session, plan, query, query.offset + query.limit, within_m=query.radius_m)
    if bound is not None:
        return within(session, plan, query, bound)
    if query.radius_m is not None:
        return within(session, plan, query, query.radius_m)
    return plan.statement
