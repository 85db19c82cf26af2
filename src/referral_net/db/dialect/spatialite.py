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

from collections.abc import Mapping, Sequence
from typing import Any

import pyproj  # noqa: F401 - loaded before mod_spatialite: see prepare_connection
import shapely
from geoalchemy2.admin.dialects.sqlite import init_spatialite
from sqlalchemy import (
    JSON,
    BindParameter,
    Column,
    ColumnElement,
    Connection,
    Float,
    FromClause,
    Select,
    and_,
    bindparam,
    column,
    exists,
    func,
    insert,
    inspect,
    literal,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy.orm import Session
from sqlmodel import col

from referral_net.db.dialect import side_tables
from referral_net.db.models import (
    AdminArea,
    SearchEntry,
    SearchEntryCategory,
    SearchEntryLanguage,
    ServiceArea,
)
from referral_net.geo.tiles import BUFFER, Tile, TilePoint, encode, encode_points, prepare_area

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


# Points per statement of admin_area_codes_at_points: 3 bound values each, well under the
# bound-parameter limit of every SQLite (999 before 3.32).
_POINTS_PER_STATEMENT = 300


def admin_area_codes_at_points(
    session: Session, points: Sequence[tuple[float, float]]
) -> list[list[str]]:
    """:func:`admin_area_codes_at` for many (latitude, longitude) points, one statement per 300:
    the points as bound VALUES rows, each looked up through the R*Tree (a correlated window)."""
    found: list[list[str]] = [[] for _ in points]
    for start in range(0, len(points), _POINTS_PER_STATEMENT):
        chunk = points[start : start + _POINTS_PER_STATEMENT]
        rows = ", ".join(f"(:p{i}, :lat{i}, :lon{i})" for i in range(len(chunk)))
        values: dict[str, float | int] = {}
        for i, (latitude, longitude) in enumerate(chunk):
            values |= {f"p{i}": start + i, f"lat{i}": latitude, f"lon{i}": longitude}
        at = "MakePoint(given.longitude, given.latitude, 4326)"
        statement = text(
            f"WITH given(position, latitude, longitude) AS (VALUES {rows}) "  # noqa: S608 - ours
            "SELECT given.position, admin_area.code FROM given JOIN admin_area ON "
            f"{_spatial_index_window('admin_area', 'geom', at)} "
            f"AND ST_Intersects(admin_area.geom, {at}) = 1 "
            "ORDER BY given.position, admin_area.code"
        )
        for position, code in session.execute(statement, values):
            found[position].append(str(code))
    return found


def has_knn_index() -> bool:
    """False: no index orders nearest-first (SpatiaLite 5.0.1's ``VirtualKNN`` crashed here)."""
    return False


def nearest_reads_index_only() -> bool:
    """False: a nearest search reads each candidate's row in its window anyway (the R*Tree
    holds boxes only), so the shown columns ride along with the candidates."""
    return False


def code_point_order(column: Any) -> ColumnElement[Any]:
    """Order text by code point: SQLite's default ``BINARY`` collation already does."""
    expression: ColumnElement[Any] = column
    return expression


def transaction_lock(session: Session, *, key: int) -> None:
    """Nothing to take: one writer at a time is SQLite's own rule.

    A transaction whose snapshot went stale cannot be upgraded to a write either: it fails with
    SQLITE_BUSY instead of acting on what it read.
    """


def spatial_version(connection: Connection) -> str:
    """The SpatiaLite library version."""
    return str(connection.execute(text("SELECT spatialite_version()")).scalar_one())


def read_rows(
    connection: Connection, statement: Select[Any], values: Mapping[str, Any]
) -> Sequence[Any]:
    """Every row of ``statement`` with ``values`` bound, through Core (PostGIS's driver-level
    path was measured for its throughput target; SQLite's driver is another story)."""
    return connection.execute(statement, values).all()


# --- search read model: reading entries (issue 13; domain/search/) --------------------------
# Expressions over ``search_entry`` for statements built once per query shape: every value is a
# bind parameter the caller passes, never a literal baked into the statement. Code lists bind as
# JSON text and are read with ``json_each``; category and language tests go through the side
# tables (primary key ``(code, service_at_location_id)``).

_ENTRY = SearchEntry.__table__  # type: ignore[attr-defined]
_ENTRY_CATEGORY = SearchEntryCategory.__table__  # type: ignore[attr-defined]
_ENTRY_LANGUAGE = SearchEntryLanguage.__table__  # type: ignore[attr-defined]
_SPATIAL_INDEX = table(
    "SpatialIndex",
    column("rowid"),
    column("f_table_name"),
    column("f_geometry_column"),
    column("search_frame"),
)


def _index_rowids(
    table_name: str, column_name: str, frame: ColumnElement[Any]
) -> ColumnElement[bool]:
    """``table.rowid`` among the rows whose index box meets ``frame`` (names are ours)."""
    rowids = select(_SPATIAL_INDEX.c.rowid).where(
        _SPATIAL_INDEX.c.f_table_name == literal_column(f"'{table_name}'"),
        _SPATIAL_INDEX.c.f_geometry_column == literal_column(f"'{column_name}'"),
        _SPATIAL_INDEX.c.search_frame == frame,
    )
    return literal_column(f"{table_name}.rowid").in_(rowids)


def entry_point(
    *, latitude: ColumnElement[float], longitude: ColumnElement[float]
) -> ColumnElement[Any]:
    """A WGS 84 point from bound coordinates."""
    return func.MakePoint(longitude, latitude, 4326)


def entry_distance_m(geom: ColumnElement[Any], target: ColumnElement[Any]) -> ColumnElement[float]:
    """Geodesic metres between two points (``ST_Distance(a, b, 1)``, the ellipsoid)."""
    return func.ST_Distance(geom, target, 1, type_=Float)


def entry_reach(
    geom: ColumnElement[Any],
    target: ColumnElement[Any],
    *,
    latitude: ColumnElement[float],
    longitude: ColumnElement[float],
    scale: ColumnElement[float],
) -> ColumnElement[float]:
    """The cheap nearest-first order: squared degrees, longitude scaled by ``scale``
    (cos² of the reference latitude); two multiplications instead of an ellipsoidal distance."""
    dx = func.ST_X(geom, type_=Float) - longitude
    dy = func.ST_Y(geom, type_=Float) - latitude
    return dx * dx * scale + dy * dy


def entry_window(
    geom: ColumnElement[Any],
    *,
    column_name: str,
    box: Sequence[ColumnElement[float]],
    window_leads: bool = False,
    knn_leads: bool = False,
) -> ColumnElement[bool]:
    """Entries whose point may lie in a lon/lat box: the R*Tree of ``search_entry.column``
    (which always leads: ``window_leads`` and ``knn_leads`` change nothing here)."""
    min_lon, min_lat, max_lon, max_lat = box
    frame = func.BuildMbr(min_lon, min_lat, max_lon, max_lat, 4326)
    return _index_rowids(_ENTRY.name, column_name, frame)


def entry_in_area(
    geom: ColumnElement[Any], *, column_name: str, code: ColumnElement[str]
) -> ColumnElement[bool]:
    """Entries whose point lies inside a department or municipality (boundary included)."""
    area = select(_ADMIN_AREA_GEOM).where(col(AdminArea.code) == code).scalar_subquery()
    return and_(_index_rowids(_ENTRY.name, column_name, area), func.ST_Intersects(geom, area) == 1)


def entry_covered(
    service_id: ColumnElement[Any],
    target: ColumnElement[Any],
    *,
    latitude: ColumnElement[float],
    longitude: ColumnElement[float],
) -> ColumnElement[bool]:
    """Entries whose service has a service-area polygon containing the point."""
    window = _index_rowids(
        _SERVICE_AREA_GEOM.table.name,
        _SERVICE_AREA_GEOM.name,
        func.MakePoint(longitude, latitude, 4326),
    )
    return exists(
        select(literal(1))
        .select_from(ServiceArea)
        .where(
            col(ServiceArea.service_id) == service_id,
            window,
            func.ST_Intersects(ServiceArea.geom, target) == 1,
        )
    )


def code_list(name: str) -> BindParameter[Any]:
    """A bound list of codes (JSON text, read with ``json_each``)."""
    return bindparam(name, type_=JSON())


def _values(codes: BindParameter[Any]) -> Select[Any]:
    each = func.json_each(codes).table_valued("value")
    return select(each.c.value)


def entry_in_categories(
    codes: BindParameter[Any], *, window_leads: bool = False
) -> ColumnElement[bool]:
    """Entries with any of the codes among their categories and ancestors: each entry (of an
    index window) probes the side table. ``window_leads`` changes nothing here: the probe never
    leads (``categories_leading`` is what lets the codes lead)."""
    side = _ENTRY_CATEGORY
    return exists(
        select(literal(1))
        .select_from(side)
        .where(
            side.c.service_at_location_id == _ENTRY.c.service_at_location_id,
            side.c.code.in_(_values(codes)),
        )
    )


def categories_leading(codes: BindParameter[Any]) -> FromClause | None:
    """The entries linked to any of the codes, led by the side table's index: the codes, their
    side-table rows, then the entries (one row per link: select them ``DISTINCT``). A count
    without an index window reads from here and stops at its cap; with ``EXISTS`` probes it
    would scan entries until the cap (a list subquery would read every link of the codes)."""
    side = _ENTRY_CATEGORY
    each = func.json_each(codes).table_valued("value").alias("wanted")
    # Unary plus: SQLite may not use the side table's index on this column, so the planner
    # cannot start from the entries (which scans them); the codes lead, then each link's entry.
    link: ColumnElement[Any] = literal_column(f"+{side.name}.{side.c.service_at_location_id.name}")
    return each.join(side, side.c.code == each.c.value).join(
        _ENTRY, _ENTRY.c.service_at_location_id == link
    )


def entry_speaks(language: ColumnElement[str]) -> ColumnElement[bool]:
    """Entries whose service offers the language (side table)."""
    side = _ENTRY_LANGUAGE
    return exists(
        select(literal(1))
        .select_from(side)
        .where(
            side.c.service_at_location_id == _ENTRY.c.service_at_location_id,
            side.c.code == language,
        )
    )


def entry_serves(gender: ColumnElement[str]) -> ColumnElement[bool]:
    """Entries whose service admits a person of the gender (``json_each`` of the list)."""
    members = func.json_each(_ENTRY.c.served_genders).table_valued("value")
    return exists(select(literal(1)).select_from(members).where(members.c.value == gender))


def entry_text_matches(patterns: BindParameter[Any]) -> ColumnElement[bool]:
    """Entries whose search text is ``LIKE`` every pattern (backslash escapes)."""
    each = func.json_each(patterns).table_valued("value")
    missed = (
        select(literal(1))
        .select_from(each)
        .where(_ENTRY.c.search_text.not_like(each.c.value, escape="\\"))
    )
    return ~exists(missed)


def in_code_list(column: ColumnElement[Any], codes: BindParameter[Any]) -> ColumnElement[bool]:
    """A column's value is one of the bound codes."""
    return column.in_(_values(codes))


def entry_category_codes() -> ColumnElement[Any]:
    """The entry's category codes with their ancestors, as a list (the JSON column)."""
    return _ENTRY.c.category_codes  # type: ignore[no-any-return]


# Connection set-up, used by db/engine.py when it builds a SpatiaLite engine.


def prepare_connection(
    dbapi_connection: Any,
    *,
    library: str,
    busy_timeout_ms: int,
    synchronous: str,
    mmap_bytes: int = 0,
) -> None:
    """Make a new driver connection ready: pysqlite fix, extension, PRAGMAs, spatial metadata."""
    # pyproj bundles its own PROJ library and mod_spatialite links the system's; loaded after
    # mod_spatialite, pyproj's copy crashes the process at exit (a migration that imports the
    # domain did). This module imports pyproj first, so every process loads them in that order.
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
    # Reads through a memory map (SQLite's "Memory-Mapped I/O"); writes still go through
    # write(), so a crash or power loss is handled as without it.
    dbapi_connection.execute(f"PRAGMA mmap_size = {int(mmap_bytes)}")
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


# --- search read model: writing entries (issue 13; domain/search_model.py) ---------------------


def _entry_point(x: str, y: str) -> ColumnElement[Any]:
    return func.MakePoint(bindparam(x, type_=Float), bindparam(y, type_=Float), 4326)


# Built once: executemany binds each entry's values (points from their coordinates).
_INSERT_ENTRY = insert(SearchEntry.__table__).values(  # type: ignore[attr-defined]
    exact_geom=_entry_point("exact_geom_x", "exact_geom_y"),
    public_geom=_entry_point("public_geom_x", "public_geom_y"),
)
_INSERT_CATEGORY = insert(SearchEntryCategory.__table__)  # type: ignore[attr-defined]
_INSERT_LANGUAGE = insert(SearchEntryLanguage.__table__)  # type: ignore[attr-defined]


def insert_search_entries(session: Session, entries: Sequence[Mapping[str, Any]]) -> None:
    """Insert read-model entries: code lists as JSON arrays, and one side-table row per
    category and language code (the index path of the category and language filters, and the
    category counts)."""
    if not entries:
        return
    connection = session.connection()
    connection.execute(_INSERT_ENTRY, list(entries))
    for statement, rows in (
        (_INSERT_CATEGORY, side_tables.category_rows(entries)),
        (_INSERT_LANGUAGE, side_tables.language_rows(entries)),
    ):
        if rows:
            connection.execute(statement, rows)


def lock_search_entries(session: Session) -> None:
    """Nothing to take: one writer at a time is SQLite's own rule."""


def defer_cluster_cells(session: Session) -> None:
    """Nothing to defer: SQLite's row triggers update each cell in place, with no row versions
    left behind, so a rebuild keeps the cells as it goes."""


def refill_cluster_cells(session: Session) -> None:
    """Nothing to refill: the row triggers kept every cell."""


def area_in_box(*, box: tuple[float, float, float, float]) -> ColumnElement[bool]:
    """``admin_area`` rows whose polygon meets the box: the R*Tree window, then exact."""
    frame = func.BuildMbr(*box, 4326)
    return and_(
        _index_rowids("admin_area", "geom", frame),
        func.ST_Intersects(_ADMIN_AREA_GEOM, frame) == 1,
    )


# --- vector tiles (issue 16; domain/tiles.py) -----------------------------------------------------
# SpatiaLite has no MVT encoder: the R*Tree window finds the polygons meeting the tile (plus a
# margin), read as WKB, and ``geo.tiles`` clips, simplifies (shapely, one display pixel of the
# zoom in 3857 metres) and encodes them with ``mapbox-vector-tile``.


def area_tile(session: Session, *, level: str, layer: str, tile: Tile) -> bytes:
    """The areas of ``level`` meeting the tile, as one MVT layer (``mapbox-vector-tile``)."""
    statement = (
        select(
            col(AdminArea.code),
            col(AdminArea.name),
            col(AdminArea.department_code),
            func.AsBinary(_ADMIN_AREA_GEOM),
        )
        .where(col(AdminArea.level) == level, area_in_box(box=tile.lonlat_bounds(2 * BUFFER)))
        .order_by(col(AdminArea.code))
    )
    features = []
    for code, name, department_code, wkb in session.execute(statement):
        prepared = prepare_area(shapely.from_wkb(bytes(wkb)), tile)
        if prepared is not None:
            properties = {"code": code, "name": name, "department_code": department_code}
            features.append((prepared, properties))
    return encode(layer, features, tile)


def points_tile(session: Session, *, layer: str, points: Sequence[TilePoint], tile: Tile) -> bytes:
    """Points computed in Python, as one MVT layer (``mapbox-vector-tile``; no SQL at all)."""
    return encode_points(layer, points, tile)
