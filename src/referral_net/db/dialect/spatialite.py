"""SQLite + SpatiaLite: the engine's own SQL, one half of the :class:`~.Dialect` interface.

- Metres: ``ST_Distance(a, b, 1)``, geodesic on the WGS 84 ellipsoid (GeographicLib), checked
  against pyproj.
- Index use: the planner never uses SpatiaLite's R*Tree by itself, so every window goes through
  the ``SpatialIndex`` virtual table by rowid; without it a search would be a full scan. There is
  no KNN index: nearest-first grows windows instead (``has_knn_index`` is False).
- JSON membership: ``json_each``.
- Transaction lock: none needed; one writer at a time is SQLite's own rule.
- Connection set-up for ``db/engine.py``: the extension, the PRAGMAs and the ``BEGIN`` statements
  of its transaction handling.

Table and column names come from the models or from the caller, never spelled here.
"""

from __future__ import annotations

import math
from typing import Any

from geoalchemy2.admin.dialects.sqlite import init_spatialite
from sqlalchemy import (
    BindParameter,
    Column,
    ColumnElement,
    Connection,
    Float,
    and_,
    bindparam,
    exists,
    func,
    inspect,
    literal,
    select,
    text,
)
from sqlalchemy.orm import Session
from sqlmodel import col

from referral_net.db.models import AdminArea, Service, ServiceArea

_ADMIN_AREA_GEOM: Column[Any] = inspect(AdminArea).c.geom
_ADMIN_AREA_CODE: Column[Any] = inspect(AdminArea).c.code
_SERVICE_AREA_GEOM: Column[Any] = inspect(ServiceArea).c.geom


def point(*, latitude: float, longitude: float) -> ColumnElement[Any]:
    """A WGS 84 point literal."""
    return func.MakePoint(literal(longitude, Float), literal(latitude, Float), 4326)


def _spatial_index_window(table: str, column: str, frame_sql: str) -> str:
    # The names come from the models or the caller (never user input); only the frame carries
    # bind parameters.
    return (
        f"{table}.rowid IN (SELECT rowid FROM SpatialIndex"  # noqa: S608 - names are ours
        f" WHERE f_table_name = '{table}' AND f_geometry_column = '{column}'"
        f" AND search_frame = {frame_sql})"
    )


def _window_at_point(
    geom: Column[Any], *, latitude: float, longitude: float
) -> ColumnElement[bool]:
    """Rows of ``geom``'s table whose index box holds the point (a superset, through the index)."""
    window = text(
        _spatial_index_window(geom.table.name, geom.name, "MakePoint(:lon, :lat, 4326)")
    ).bindparams(
        bindparam("lon", longitude, type_=Float, unique=True),
        bindparam("lat", latitude, type_=Float, unique=True),
    )
    return window  # type: ignore[return-value]


def admin_area_codes_at(session: Session, *, latitude: float, longitude: float) -> list[str]:
    """The codes of the administrative areas (department and municipality) at a point."""
    target = point(latitude=latitude, longitude=longitude)
    statement = (
        select(col(AdminArea.code))
        .where(
            _window_at_point(_ADMIN_AREA_GEOM, latitude=latitude, longitude=longitude),
            func.ST_Intersects(AdminArea.geom, target) == 1,
        )
        .order_by(col(AdminArea.code))
    )
    return [str(code) for code in session.scalars(statement)]


def distance_m(
    geom: ColumnElement[Any], *, latitude: float, longitude: float
) -> ColumnElement[float]:
    """Geodesic distance in metres from a geometry column to a point (``ST_Distance(.., 1)``)."""
    return func.ST_Distance(geom, point(latitude=latitude, longitude=longitude), 1)


def has_knn_index() -> bool:
    """False: no index orders nearest-first (SpatiaLite 5.0.1's ``VirtualKNN`` crashed here)."""
    return False


def knn_order(
    geom: ColumnElement[Any], *, latitude: float, longitude: float
) -> ColumnElement[Any] | None:
    """None: there is no index-driven nearest-first ordering."""
    return None


def cheap_distance_order(
    geom: ColumnElement[Any], *, latitude: float, longitude: float
) -> ColumnElement[Any]:
    """A cheap nearest-first ordering, close to the geodesic one (not exact, never a bound).

    Squared planar degrees with longitude scaled by cos(latitude): two multiplications per row
    instead of an ellipsoidal distance (which is what the engine spends its time on in a dense
    window).
    """
    scale = math.cos(math.radians(latitude)) ** 2
    dx = func.ST_X(geom) - literal(longitude, Float)
    dy = func.ST_Y(geom) - literal(latitude, Float)
    return dx * dx * literal(scale, Float) + dy * dy


def _box_params(box: tuple[float, float, float, float]) -> list[BindParameter[Any]]:
    # unique=True: SQLAlchemy renames each parameter per statement (two windows in one query
    # do not clash) while the statement's cache key stays the same from one query to the next.
    return [
        bindparam(name, value, type_=Float, unique=True)
        for name, value in zip(("minx", "miny", "maxx", "maxy"), box, strict=True)
    ]


def index_window(
    *, table: str, column: str, geom: ColumnElement[Any], box: tuple[float, float, float, float]
) -> ColumnElement[bool]:
    """Rows whose point may lie in a lon/lat box: the ``SpatialIndex`` of ``table.column``."""
    frame = "BuildMbr(:minx, :miny, :maxx, :maxy, 4326)"
    return text(_spatial_index_window(table, column, frame)).bindparams(*_box_params(box))  # type: ignore[return-value]


def code_point_order(column: Any) -> ColumnElement[Any]:
    """Order text by code point: SQLite's default ``BINARY`` collation already does."""
    expression: ColumnElement[Any] = column
    return expression


def in_admin_area(
    *, table: str, column: str, geom: ColumnElement[Any], code: str
) -> ColumnElement[bool]:
    """Rows whose point lies inside a department or municipality polygon (boundary included)."""
    area = select(AdminArea.geom).where(col(AdminArea.code) == code).scalar_subquery()
    # The index's search frame is the area's polygon (names from the model; the code is bound).
    area_sql = (
        f"(SELECT {_ADMIN_AREA_GEOM.name} FROM {_ADMIN_AREA_GEOM.table.name}"  # noqa: S608
        f" WHERE {_ADMIN_AREA_CODE.name} = :area)"
    )
    window = text(_spatial_index_window(table, column, area_sql)).bindparams(
        bindparam("area", code, unique=True)
    )
    return and_(window, func.ST_Intersects(geom, area) == 1)


def service_area_covers(
    *, service_id: ColumnElement[Any], latitude: float, longitude: float
) -> ColumnElement[bool]:
    """Services with a service-area polygon that contains the point (boundary included)."""
    target = point(latitude=latitude, longitude=longitude)
    predicate = and_(
        _window_at_point(_SERVICE_AREA_GEOM, latitude=latitude, longitude=longitude),
        func.ST_Intersects(ServiceArea.geom, target) == 1,
    )
    return exists(
        select(literal(1))
        .select_from(ServiceArea)
        .where(col(ServiceArea.service_id) == service_id, predicate)
    )


def genders_served_includes(gender: str) -> ColumnElement[bool]:
    """Services whose ``genders_served`` JSON list contains the gender code (``json_each``)."""
    members = func.json_each(col(Service.genders_served)).table_valued("value")
    return exists(select(literal(1)).select_from(members).where(members.c.value == gender))


def transaction_lock(session: Session, *, key: int) -> None:
    """Nothing to take: one writer at a time is SQLite's own rule.

    A transaction whose snapshot went stale cannot be upgraded to a write either: it fails with
    SQLITE_BUSY instead of acting on what it read.
    """


def spatial_version(connection: Connection) -> str:
    """The SpatiaLite library version."""
    return str(connection.execute(text("SELECT spatialite_version()")).scalar_one())


# Connection set-up, used by db/engine.py when it builds a SpatiaLite engine.


def prepare_connection(
    dbapi_connection: Any, *, library: str, busy_timeout_ms: int, synchronous: str
) -> None:
    """Make a new driver connection ready: pysqlite fix, extension, PRAGMAs, spatial metadata."""
    # pysqlite's own transaction handling emits no BEGIN before DDL and breaks SAVEPOINT;
    # disable it and let SQLAlchemy emit BEGIN (SQLAlchemy docs, "Serializable isolation /
    # Savepoints / Transactional DDL").
    dbapi_connection.isolation_level = None
    dbapi_connection.enable_load_extension(True)
    dbapi_connection.load_extension(library)
    dbapi_connection.enable_load_extension(False)
    dbapi_connection.execute("PRAGMA foreign_keys = ON")
    set_busy_timeout(dbapi_connection, busy_timeout_ms)
    # WAL persists in the file; setting it again is a no-op. Checkpoints stay automatic.
    dbapi_connection.execute("PRAGMA journal_mode = WAL")
    dbapi_connection.execute(f"PRAGMA synchronous = {synchronous}")
    # WGS84-only metadata keeps a new file small and fast to create.
    init_spatialite(dbapi_connection, transaction=True, init_mode="WGS84")


def set_busy_timeout(dbapi_connection: Any, milliseconds: int) -> None:
    """How long SQLite's own busy handler waits for a lock (0: fail at once)."""
    dbapi_connection.execute(f"PRAGMA busy_timeout = {int(milliseconds)}")


def begin_deferred(connection: Connection) -> None:
    """Begin a read transaction (locks taken when first needed)."""
    connection.exec_driver_sql("BEGIN")


def begin_immediate(dbapi_connection: Any) -> None:
    """Begin a write transaction holding the write lock now (raises if another writer has it)."""
    dbapi_connection.execute("BEGIN IMMEDIATE")
