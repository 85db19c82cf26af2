"""PostgreSQL + PostGIS: the engine's own SQL, one half of the :class:`~.Dialect` interface.

- Metres: ``geography`` distance (geodesic on the WGS 84 spheroid), checked against pyproj.
- Index use: ``&&`` against an envelope and KNN ``<->`` both use the GiST index; the planner finds
  it by itself.
- JSON membership: ``jsonb ?``.
- Transaction lock: ``pg_advisory_xact_lock``, held until the transaction ends.

Nothing here knows which engine a session talks to: ``db.dialect.dialect_for`` chooses.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    cast,
    exists,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session
from sqlmodel import col

from referral_net.db.models import AdminArea, Service, ServiceArea


def point(*, latitude: float, longitude: float) -> ColumnElement[Any]:
    """A WGS 84 point literal."""
    return func.ST_SetSRID(
        func.ST_MakePoint(literal(longitude, Float), literal(latitude, Float)), 4326
    )


def admin_area_codes_at(session: Session, *, latitude: float, longitude: float) -> list[str]:
    """The codes of the administrative areas (department and municipality) at a point."""
    statement = (
        select(col(AdminArea.code))
        .where(func.ST_Intersects(AdminArea.geom, point(latitude=latitude, longitude=longitude)))
        .order_by(col(AdminArea.code))
    )
    return [str(code) for code in session.scalars(statement)]


def distance_m(
    geom: ColumnElement[Any], *, latitude: float, longitude: float
) -> ColumnElement[float]:
    """Geodesic distance in metres from a geometry column to a point (``geography``)."""
    target = point(latitude=latitude, longitude=longitude)
    return func.ST_Distance(func.geography(geom), func.geography(target))


def has_knn_index() -> bool:
    """True: the GiST index orders nearest-first by itself (``<->``)."""
    return True


def knn_order(
    geom: ColumnElement[Any], *, latitude: float, longitude: float
) -> ColumnElement[Any] | None:
    """The index-driven nearest-first ordering: KNN ``<->`` on the GiST index."""
    return geom.op("<->")(point(latitude=latitude, longitude=longitude))


def cheap_distance_order(
    geom: ColumnElement[Any], *, latitude: float, longitude: float
) -> ColumnElement[Any]:
    """A cheap nearest-first ordering: the KNN order itself."""
    return geom.op("<->")(point(latitude=latitude, longitude=longitude))


def index_window(
    *, table: str, column: str, geom: ColumnElement[Any], box: tuple[float, float, float, float]
) -> ColumnElement[bool]:
    """Rows whose point may lie in a lon/lat box: ``&&`` on the GiST index (a superset).

    ``table`` and ``column`` name the geometry for engines that query their index by name; the
    GiST index needs only the column expression.
    """
    min_lon, min_lat, max_lon, max_lat = box
    return geom.op("&&")(func.ST_MakeEnvelope(min_lon, min_lat, max_lon, max_lat, 4326))


def code_point_order(column: Any) -> ColumnElement[Any]:
    """Order text by code point (``COLLATE "C"``), not by the database collation."""
    expression: ColumnElement[Any] = column
    return expression.collate("C")


def in_admin_area(
    *, table: str, column: str, geom: ColumnElement[Any], code: str
) -> ColumnElement[bool]:
    """Rows whose point lies inside a department or municipality polygon (boundary included)."""
    area = select(AdminArea.geom).where(col(AdminArea.code) == code).scalar_subquery()
    return func.ST_Intersects(geom, area)


def service_area_covers(
    *, service_id: ColumnElement[Any], latitude: float, longitude: float
) -> ColumnElement[bool]:
    """Services with a service-area polygon that contains the point (boundary included)."""
    target = point(latitude=latitude, longitude=longitude)
    return exists(
        select(literal(1))
        .select_from(ServiceArea)
        .where(
            col(ServiceArea.service_id) == service_id,
            func.ST_Intersects(ServiceArea.geom, target),
        )
    )


def genders_served_includes(gender: str) -> ColumnElement[bool]:
    """Services whose ``genders_served`` JSON list contains the gender code (``jsonb ?``)."""
    return cast(col(Service.genders_served), JSONB).op("?")(gender)


def transaction_lock(session: Session, *, key: int) -> None:
    """Take the advisory lock ``key`` until the session's transaction commits or rolls back."""
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def spatial_version(connection: Connection) -> str:
    """The PostGIS library version."""
    return str(connection.execute(text("SELECT postgis_lib_version()")).scalar_one())
