"""The SQL that differs between SpatiaLite and PostGIS, behind one interface.

Each engine's SQL lives in exactly one module, ``postgis.py`` and ``spatialite.py``; both implement
:class:`Dialect` (mypy checks them against it). The engine is chosen once, by
:func:`dialect_for` from the session's bind; the functions below are the portable entry points
the domain calls (each asks :func:`dialect_for` and hands over), so the domain never branches on
the engine. Everything returns SQLAlchemy expressions or runs small queries; the domain composes
them.

- Metres are geodesic on WGS 84 on both engines (checked against pyproj).
- Index use is explicit: ``index_window`` pre-selects through the spatial index, a superset
  that the caller follows with an exact test.
- JSON membership (``genders_served``) differs too. The gender rule built on it is not a dialect
  matter: it lives in ``domain/eligibility_sql.py``.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import ColumnElement, Connection, and_, func
from sqlalchemy.orm import Session

from referral_net.db.dialect import postgis, spatialite


class Dialect(Protocol):
    """What each engine module provides: same names, same meaning, the engine's own SQL."""

    def point(self, *, latitude: float, longitude: float) -> ColumnElement[Any]:
        """A WGS 84 point literal."""
        ...

    def admin_area_codes_at(
        self, session: Session, *, latitude: float, longitude: float
    ) -> list[str]:
        """The codes of the administrative areas at a point."""
        ...

    def distance_m(
        self, geom: ColumnElement[Any], *, latitude: float, longitude: float
    ) -> ColumnElement[float]:
        """Geodesic distance in metres from a geometry column to a point."""
        ...

    def has_knn_index(self) -> bool:
        """True where ``knn_order`` exists."""
        ...

    def knn_order(
        self, geom: ColumnElement[Any], *, latitude: float, longitude: float
    ) -> ColumnElement[Any] | None:
        """An index-driven nearest-first ordering, or None."""
        ...

    def cheap_distance_order(
        self, geom: ColumnElement[Any], *, latitude: float, longitude: float
    ) -> ColumnElement[Any]:
        """A cheap nearest-first ordering (not exact, never a bound)."""
        ...

    def index_window(
        self,
        *,
        table: str,
        column: str,
        geom: ColumnElement[Any],
        box: tuple[float, float, float, float],
    ) -> ColumnElement[bool]:
        """Rows whose point may lie in a lon/lat box, through the spatial index (a superset)."""
        ...

    def code_point_order(self, column: Any) -> ColumnElement[Any]:
        """Text ordered by code point."""
        ...

    def in_admin_area(
        self, *, table: str, column: str, geom: ColumnElement[Any], code: str
    ) -> ColumnElement[bool]:
        """Rows whose point lies inside an administrative area."""
        ...

    def service_area_covers(
        self, *, service_id: ColumnElement[Any], latitude: float, longitude: float
    ) -> ColumnElement[bool]:
        """Services with a service-area polygon that contains the point."""
        ...

    def genders_served_includes(self, gender: str) -> ColumnElement[bool]:
        """Services whose ``genders_served`` JSON list contains the gender code."""
        ...

    def transaction_lock(self, session: Session, *, key: int) -> None:
        """Serialize transactions that take ``key``, until the caller's transaction ends."""
        ...

    def spatial_version(self, connection: Connection) -> str:
        """The version of the spatial extension."""
        ...


# SQLAlchemy's dialect name -> the module with that engine's SQL.
_DIALECTS: dict[str, Dialect] = {"postgresql": postgis, "sqlite": spatialite}


def dialect_named(name: str) -> Dialect:
    """The dialect module for a SQLAlchemy dialect name ('sqlite' or 'postgresql')."""
    try:
        return _DIALECTS[name]
    except KeyError:
        raise ValueError(f"no spatial dialect for database engine {name!r}") from None


def dialect_for(session: Session) -> Dialect:
    """The dialect module for the engine a session talks to."""
    return dialect_named(dialect_name(session))


def dialect_name(session: Session) -> str:
    """'sqlite' or 'postgresql'."""
    return session.get_bind().dialect.name


def admin_area_codes_at(session: Session, *, latitude: float, longitude: float) -> list[str]:
    """Return the codes of the administrative areas (department and municipality) at a point."""
    return dialect_for(session).admin_area_codes_at(session, latitude=latitude, longitude=longitude)


def point(session: Session, *, latitude: float, longitude: float) -> ColumnElement[Any]:
    """A WGS 84 point literal."""
    return dialect_for(session).point(latitude=latitude, longitude=longitude)


def distance_m(
    session: Session, geom: ColumnElement[Any], *, latitude: float, longitude: float
) -> ColumnElement[float]:
    """Geodesic distance in metres from a geometry column to a point."""
    return dialect_for(session).distance_m(geom, latitude=latitude, longitude=longitude)


def has_knn_index(session: Session) -> bool:
    """True where ``knn_order`` exists (PostGIS): nearest-first needs no growing window."""
    return dialect_for(session).has_knn_index()


def knn_order(
    session: Session, geom: ColumnElement[Any], *, latitude: float, longitude: float
) -> ColumnElement[Any] | None:
    """An index-driven nearest-first ordering, where the engine has one (PostGIS ``<->``)."""
    return dialect_for(session).knn_order(geom, latitude=latitude, longitude=longitude)


def cheap_distance_order(
    session: Session, geom: ColumnElement[Any], *, latitude: float, longitude: float
) -> ColumnElement[Any]:
    """A cheap nearest-first ordering, close to the geodesic one (not exact, never a bound).

    PostGIS: KNN ``<->`` on the GiST index. SpatiaLite: squared planar degrees with longitude
    scaled by cos(latitude).
    """
    return dialect_for(session).cheap_distance_order(geom, latitude=latitude, longitude=longitude)


def index_window(
    session: Session,
    *,
    table: str,
    column: str,
    geom: ColumnElement[Any],
    box: tuple[float, float, float, float],
) -> ColumnElement[bool]:
    """Rows whose point may lie in a lon/lat box: the spatial index alone, a superset.

    Both engines keep index boxes in float32 rounded outwards, so this can admit points just
    outside the box, never drop one inside. Callers follow it with an exact test (a distance, or
    ``in_box``). Kept apart from that test because, on PostgreSQL, extra per-row predicates
    multiply the planner's row estimate down to 1 and it then picks nested loops that run for
    seconds over a dense window (measured at 1M rows: 40 s for a 10 km radius in a city).
    """
    return dialect_for(session).index_window(table=table, column=column, geom=geom, box=box)


def in_box(
    session: Session,
    *,
    table: str,
    column: str,
    geom: ColumnElement[Any],
    box: tuple[float, float, float, float],
) -> ColumnElement[bool]:
    """Rows whose point lies in a lon/lat box (edges included), through the spatial index."""
    min_lon, min_lat, max_lon, max_lat = box
    # The exact test compares coordinates, not ST_Intersects: a box shrunk to one point is a
    # degenerate polygon that intersects nothing in GEOS (found by the parity property test).
    exact = and_(
        func.ST_X(geom).between(min_lon, max_lon), func.ST_Y(geom).between(min_lat, max_lat)
    )
    return and_(index_window(session, table=table, column=column, geom=geom, box=box), exact)


def code_point_order(session: Session, column: Any) -> ColumnElement[Any]:
    """Order text by code point on both engines (PostgreSQL would use the database collation)."""
    return dialect_for(session).code_point_order(column)


def in_admin_area(
    session: Session, *, table: str, column: str, geom: ColumnElement[Any], code: str
) -> ColumnElement[bool]:
    """Rows whose point lies inside a department or municipality polygon (boundary included)."""
    return dialect_for(session).in_admin_area(table=table, column=column, geom=geom, code=code)


def service_area_covers(
    session: Session, *, service_id: ColumnElement[Any], latitude: float, longitude: float
) -> ColumnElement[bool]:
    """Services with a service-area polygon that contains the point (boundary included)."""
    return dialect_for(session).service_area_covers(
        service_id=service_id, latitude=latitude, longitude=longitude
    )


def genders_served_includes(session: Session, gender: str) -> ColumnElement[bool]:
    """Services whose ``genders_served`` JSON list contains the gender code."""
    return dialect_for(session).genders_served_includes(gender)


def transaction_lock(session: Session, *, key: int) -> None:
    """Serialize the transactions that take ``key``: held until the caller commits or rolls back.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: nothing to take (one writer at a
    time is the engine's own rule).
    """
    dialect_for(session).transaction_lock(session, key=key)


def spatial_version(connection: Connection) -> str:
    """Return the version of the spatial extension the connection talks to."""
    return dialect_named(connection.dialect.name).spatial_version(connection)
