"""THE one module with SQL that differs between SpatiaLite and PostGIS.

Everything here returns SQLAlchemy expressions or runs small queries; the domain composes them.

- Metres are geodesic on WGS 84 on both: PostGIS ``geography`` distance (spheroid), SpatiaLite
  ``ST_Distance(a, b, 1)`` (ellipsoid, GeographicLib). Tests check both against pyproj.
- Index use is explicit. PostGIS: ``&&`` against an envelope and KNN ``<->`` use the GiST index.
  SpatiaLite's planner never uses its R*Tree by itself, so every window goes through the
  ``SpatialIndex`` virtual table by rowid; without it a search would be a full scan.
- JSON membership (``genders_served``) differs too: ``json_each`` versus ``jsonb ?``.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Float,
    and_,
    bindparam,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session
from sqlmodel import col

from referral_net.db.models import AdminArea, Service, ServiceArea
from referral_net.vocab import TRANS_TO_BINARY


def _is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def dialect_name(session: Session) -> str:
    """'sqlite' or 'postgresql'."""
    return session.get_bind().dialect.name


def admin_area_codes_at(session: Session, *, latitude: float, longitude: float) -> list[str]:
    """Return the codes of the administrative areas (department and municipality) at a point."""
    if _is_sqlite(session):
        sql = text(
            "SELECT code FROM admin_area WHERE rowid IN ("
            " SELECT rowid FROM SpatialIndex WHERE f_table_name = 'admin_area'"
            " AND f_geometry_column = 'geom' AND search_frame = MakePoint(:lon, :lat, 4326))"
            " AND ST_Intersects(geom, MakePoint(:lon, :lat, 4326)) = 1"
            " ORDER BY code"
        )
    else:
        sql = text(
            "SELECT code FROM admin_area"
            " WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"
            " ORDER BY code"
        )
    rows = session.execute(sql, {"lat": latitude, "lon": longitude})
    return [str(code) for (code,) in rows]


def point(session: Session, *, latitude: float, longitude: float) -> ColumnElement[Any]:
    """A WGS 84 point literal."""
    lon, lat = literal(longitude, Float), literal(latitude, Float)
    if _is_sqlite(session):
        return func.MakePoint(lon, lat, 4326)
    return func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326)


def distance_m(
    session: Session, geom: ColumnElement[Any], *, latitude: float, longitude: float
) -> ColumnElement[float]:
    """Geodesic distance in metres from a geometry column to a point."""
    target = point(session, latitude=latitude, longitude=longitude)
    if _is_sqlite(session):
        return func.ST_Distance(geom, target, 1)
    return func.ST_Distance(func.geography(geom), func.geography(target))


def has_knn_index(session: Session) -> bool:
    """True where ``knn_order`` exists (PostGIS): nearest-first needs no growing window."""
    return not _is_sqlite(session)


def knn_order(
    session: Session, geom: ColumnElement[Any], *, latitude: float, longitude: float
) -> ColumnElement[Any] | None:
    """An index-driven nearest-first ordering, where the engine has one (PostGIS ``<->``)."""
    if _is_sqlite(session):
        return None
    return geom.op("<->")(point(session, latitude=latitude, longitude=longitude))


def cheap_distance_order(
    session: Session, geom: ColumnElement[Any], *, latitude: float, longitude: float
) -> ColumnElement[Any]:
    """A cheap nearest-first ordering, close to the geodesic one (not exact, never a bound).

    PostGIS: KNN ``<->`` on the GiST index. SpatiaLite: squared planar degrees with longitude
    scaled by cos(latitude), two multiplications per row instead of an ellipsoidal distance
    (which is what the engine spends its time on in a dense window).
    """
    knn = knn_order(session, geom, latitude=latitude, longitude=longitude)
    if knn is not None:
        return knn
    scale = math.cos(math.radians(latitude)) ** 2
    dx = func.ST_X(geom) - literal(longitude, Float)
    dy = func.ST_Y(geom) - literal(latitude, Float)
    return dx * dx * literal(scale, Float) + dy * dy


def _spatial_index_window(table: str, column: str, frame_sql: str) -> str:
    # The names are ours (never user input); only the frame carries bind parameters.
    return (
        f"{table}.rowid IN (SELECT rowid FROM SpatialIndex"  # noqa: S608 - names are ours
        f" WHERE f_table_name = '{table}' AND f_geometry_column = '{column}'"
        f" AND search_frame = {frame_sql})"
    )


def _box_params(box: tuple[float, float, float, float]) -> list[BindParameter[Any]]:
    # unique=True: SQLAlchemy renames each parameter per statement (two windows in one query
    # do not clash) while the statement's cache key stays the same from one query to the next.
    return [
        bindparam(name, value, type_=Float, unique=True)
        for name, value in zip(("minx", "miny", "maxx", "maxy"), box, strict=True)
    ]


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
    min_lon, min_lat, max_lon, max_lat = box
    if _is_sqlite(session):
        frame = "BuildMbr(:minx, :miny, :maxx, :maxy, 4326)"
        return text(_spatial_index_window(table, column, frame)).bindparams(*_box_params(box))  # type: ignore[return-value]
    return geom.op("&&")(func.ST_MakeEnvelope(min_lon, min_lat, max_lon, max_lat, 4326))


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
    expression: ColumnElement[Any] = column
    if _is_sqlite(session):
        return expression
    return expression.collate("C")


def in_admin_area(
    session: Session, *, table: str, column: str, geom: ColumnElement[Any], code: str
) -> ColumnElement[bool]:
    """Rows whose point lies inside a department or municipality polygon (boundary included)."""
    area = select(AdminArea.geom).where(col(AdminArea.code) == code).scalar_subquery()
    if _is_sqlite(session):
        window = text(
            _spatial_index_window(table, column, "(SELECT geom FROM admin_area WHERE code = :area)")
        ).bindparams(bindparam("area", code, unique=True))
        return and_(window, func.ST_Intersects(geom, area) == 1)
    return func.ST_Intersects(geom, area)


def service_area_covers(
    session: Session, *, service_id: ColumnElement[Any], latitude: float, longitude: float
) -> ColumnElement[bool]:
    """Services with a service-area polygon that contains the point (boundary included)."""
    target = point(session, latitude=latitude, longitude=longitude)
    if _is_sqlite(session):
        window = text(
            _spatial_index_window("service_area", "geom", "MakePoint(:lon, :lat, 4326)")
        ).bindparams(
            bindparam("lon", longitude, type_=Float, unique=True),
            bindparam("lat", latitude, type_=Float, unique=True),
        )
        predicate = and_(window, func.ST_Intersects(ServiceArea.geom, target) == 1)
    else:
        predicate = func.ST_Intersects(ServiceArea.geom, target)
    return exists(
        select(literal(1))
        .select_from(ServiceArea)
        .where(col(ServiceArea.service_id) == service_id, predicate)
    )


def genders_served_includes(session: Session, gender: str) -> ColumnElement[bool]:
    """Services whose ``genders_served`` JSON list contains the gender code."""
    if _is_sqlite(session):
        clause: ColumnElement[bool] = text(
            "EXISTS (SELECT 1 FROM json_each(service.genders_served)"
            " WHERE json_each.value = :gender)"
        ).bindparams(bindparam("gender", gender, unique=True))  # type: ignore[assignment]
        return clause
    return cast(col(Service.genders_served), JSONB).op("?")(gender)


def gender_rule(session: Session, gender: str) -> ColumnElement[bool]:
    """The hard gender rule shared with matching: who may use a service.

    Open to all (null) always; the person's own gender when listed; a trans woman (man) at a
    women-only (men-only) service when it is trans-inclusive or LGBTIQ+-affirming; undisclosed
    only at services open to all.
    """
    open_to_all = col(Service.genders_served).is_(None)
    if gender == "undisclosed":
        return open_to_all
    rule = or_(open_to_all, genders_served_includes(session, gender))
    binary = TRANS_TO_BINARY.get(gender)
    if binary is not None:
        rule = or_(
            rule,
            and_(
                genders_served_includes(session, binary),
                or_(
                    col(Service.trans_inclusive).is_(True), col(Service.lgbtiq_affirming).is_(True)
                ),
            ),
        )
    return rule
