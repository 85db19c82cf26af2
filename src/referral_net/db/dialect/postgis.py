"""PostgreSQL + PostGIS: the engine's own SQL, one half of the :class:`~.Dialect` interface.

- Metres: ``geography`` distance (geodesic on the WGS 84 spheroid), checked against pyproj.
- Index use: ``&&`` against an envelope and KNN ``<->`` both use the GiST index; the planner finds
  it by itself.
- JSON membership: ``jsonb ?``.
- Transaction lock: ``pg_advisory_xact_lock``, held until the transaction ends.
- Reading search's statements: psycopg's cursor with the SQL compiled once (``read_rows``).

Nothing here knows which engine a session talks to: ``db.dialect.dialect_for`` chooses.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import (
    BindParameter,
    Boolean,
    ColumnElement,
    Connection,
    Float,
    FromClause,
    Select,
    Text,
    all_,
    and_,
    any_,
    bindparam,
    cast,
    exists,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.engine import Dialect as EngineDialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine
from sqlmodel import col

from referral_net.db.dialect import side_tables
from referral_net.db.models import AdminArea, SearchEntry, SearchEntryCategory, ServiceArea
from referral_net.geo.tiles import (
    BUFFER,
    EXTENT,
    STORED_CELL_LEVELS,
    WORLD_MM,
    Tile,
    TilePoint,
    metres_per_pixel,
)


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


_AREA_CODES_AT_POINTS = text(
    """
    SELECT given.ordinality - 1 AS position, area.code
    FROM unnest(CAST(:latitudes AS double precision[]), CAST(:longitudes AS double precision[]))
         WITH ORDINALITY AS given(latitude, longitude, ordinality)
    JOIN admin_area AS area
      ON ST_Intersects(area.geom, ST_SetSRID(ST_MakePoint(given.longitude, given.latitude), 4326))
    ORDER BY position, area.code
    """
)


def admin_area_codes_at_points(
    session: Session, points: Sequence[tuple[float, float]]
) -> list[list[str]]:
    """:func:`admin_area_codes_at` for many (latitude, longitude) points, in one statement."""
    found: list[list[str]] = [[] for _ in points]
    if not points:
        return found
    rows = session.execute(
        _AREA_CODES_AT_POINTS,
        {"latitudes": [p[0] for p in points], "longitudes": [p[1] for p in points]},
    )
    for position, code in rows:
        found[position].append(str(code))
    return found


def has_knn_index() -> bool:
    """True: the GiST index orders nearest-first by itself (``<->``)."""
    return True


def nearest_reads_index_only() -> bool:
    """True: a nearest search's candidates and their category test come from the index of
    ``nearest_key`` alone; the page's rows are read by id."""
    return True


def code_point_order(column: Any) -> ColumnElement[Any]:
    """Order text by code point (``COLLATE "C"``), not by the database collation."""
    expression: ColumnElement[Any] = column
    return expression.collate("C")


def transaction_lock(session: Session, *, key: int) -> None:
    """Take the advisory lock ``key`` until the session's transaction commits or rolls back."""
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def spatial_version(connection: Connection) -> str:
    """The PostGIS library version."""
    return str(connection.execute(text("SELECT postgis_lib_version()")).scalar_one())


# --- running a search statement (issue 13; domain/search/) -----------------------------------
# The hot path's statement goes to psycopg's cursor as SQL compiled once, not through
# ``Connection.execute``: Core's execution context, parameter and row objects cost about 0.13 ms
# of a nearest statement's 0.42 ms of Python (thread CPU, 600 random points at 10k rows), and
# the served search's CPU per request fell from 1.77 to 1.62 ms at 1M (docs/performance.md).
# What Core would have done on the way is kept: values converted as Core converts them (its
# bind and result processors), the engine's ``before/after_cursor_execute`` events (with no
# execution context: there is none), and a driver error raised as SQLAlchemy's own, with a
# dropped connection invalidated (``api.problems`` answers 503 either way).


_Processor = Callable[[Any], Any]


@dataclass
class _Compiled:
    """A statement's SQL in psycopg's parameter style, the values it fixes itself (by their
    rendered names), the names the caller must bind, and how Core converts values: bound ones
    on the way in (bind processors, by name) and its columns' on the way out (result
    processors, one a column, None for none; found on the first run, from the types the server
    sent, as Core finds them: an empty tuple when no column converts, None until then)."""

    sql: str
    constants: dict[str, Any]
    required: frozenset[str]
    bind_processors: dict[str, _Processor]
    column_types: tuple[TypeEngine[Any], ...]
    result_processors: tuple[_Processor | None, ...] | None = None


# The nearest statement's shapes are few (one per audience, mode and set of filters) and each
# ``Select`` is built once (``domain.search.plan``), so it is its own key; the bound is a guard.
@lru_cache(maxsize=512)
def _compiled(statement: Select[Any], dialect: EngineDialect) -> _Compiled | None:
    """The statement compiled for ``dialect``, or None when only Core can run it: a list
    expanded at run time or a value computed at run time."""
    compiled = statement.compile(dialect=dialect)
    binds = compiled.binds
    if any(bind.expanding or bind.literal_execute or bind.callable for bind in binds.values()):
        return None
    names = compiled.params.keys()
    processors = {
        name: binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    }
    return _Compiled(
        sql=compiled.string,
        constants={name: binds[name].value for name in names if not binds[name].required},
        required=frozenset(name for name in names if binds[name].required),
        # A text[] list, for one: PostgreSQL's ARRAY makes every value a list on the way in.
        bind_processors={name: process for name, process in processors.items() if process},
        column_types=tuple(column.type for column in statement.selected_columns),
    )


def _learn_result_processors(compiled: _Compiled, cursor: Any, dialect: EngineDialect) -> None:
    """Find the statement's result processors from the column types the server sent.

    One assignment: another thread reading the same statement sees all of them or none.
    """
    description = cursor.description or ()
    found = tuple(
        type_.dialect_impl(dialect).result_processor(dialect, column.type_code)
        for type_, column in zip(compiled.column_types, description, strict=True)
    )
    compiled.result_processors = found if any(found) else ()


def _converted(rows: list[Any], processors: tuple[_Processor | None, ...]) -> list[Any]:
    """The rows with each value converted as Core converts it (matching's code lists, say)."""
    return [
        type(row)._make(
            value if process is None else process(value)
            for process, value in zip(processors, row, strict=True)
        )
        for row in rows
    ]


def read_rows(
    connection: Connection, statement: Select[Any], values: Mapping[str, Any]
) -> Sequence[Any]:
    """Every row of ``statement`` with ``values`` bound, as named tuples (read by name or
    position, like SQLAlchemy's rows) holding the values Core would give.

    Core runs it instead when the engine echoes SQL and when a required value is missing (to
    raise Core's own error).
    """
    compiled = None if connection.engine.echo else _compiled(statement, connection.dialect)
    if compiled is None or not compiled.required <= values.keys():
        return connection.execute(statement, values).all()
    parameters = {**compiled.constants, **values}
    for name, process in compiled.bind_processors.items():
        if name in parameters:
            parameters[name] = process(parameters[name])
    driver_connection = typing.cast(
        "psycopg.Connection[Any]", connection.connection.dbapi_connection
    )
    with driver_connection.cursor(row_factory=namedtuple_row) as cursor:
        dispatch = connection.dispatch
        dispatch.before_cursor_execute(connection, cursor, compiled.sql, parameters, None, False)
        try:
            cursor.execute(compiled.sql, parameters)
            rows = cursor.fetchall()
        except psycopg.Error as error:
            raise _as_sqlalchemy_error(
                connection, cursor, compiled.sql, parameters, error
            ) from error
        dispatch.after_cursor_execute(connection, cursor, compiled.sql, parameters, None, False)
        if compiled.result_processors is None:
            _learn_result_processors(compiled, cursor, connection.dialect)
    if compiled.result_processors:
        return _converted(rows, compiled.result_processors)
    return rows


def _as_sqlalchemy_error(
    connection: Connection,
    cursor: Any,
    sql: str,
    parameters: Mapping[str, Any],
    error: psycopg.Error,
) -> StatementError:
    """The error Core raises for ``error``: wrapped, and the connection invalidated when the
    server is gone (so the pool replaces it)."""
    dialect = connection.dialect
    driver_error: Any = error
    gone = dialect.is_disconnect(driver_error, connection.connection.dbapi_connection, cursor)
    if gone:
        connection.invalidate(error)
    return DBAPIError.instance(
        sql,
        parameters,
        error,
        psycopg.Error,
        hide_parameters=connection.engine.hide_parameters,
        connection_invalidated=gone,
        dialect=dialect,
    )


# --- search read model: reading entries (issue 13; domain/search/) --------------------------
# Expressions over ``search_entry`` for statements built once per query shape: every value is a
# bind parameter the caller passes, never a literal baked into the statement.

_ENTRY = SearchEntry.__table__  # type: ignore[attr-defined]
_CODES = ARRAY(Text())


def entry_point(
    *, latitude: ColumnElement[float], longitude: ColumnElement[float]
) -> ColumnElement[Any]:
    """A WGS 84 point from bound coordinates."""
    return func.ST_SetSRID(func.ST_MakePoint(longitude, latitude), 4326)


def entry_distance_m(geom: ColumnElement[Any], target: ColumnElement[Any]) -> ColumnElement[float]:
    """Geodesic metres between two points (``geography``)."""
    return func.ST_Distance(func.geography(geom), func.geography(target), type_=Float)


def entry_reach(
    geom: ColumnElement[Any],
    target: ColumnElement[Any],
    *,
    latitude: ColumnElement[float],
    longitude: ColumnElement[float],
    scale: ColumnElement[float],
) -> ColumnElement[float]:
    """The cheap nearest-first order: planar degrees, KNN ``<->`` on the GiST index of
    ``nearest_key`` (PostgreSQL's ``point`` distance: the same value as PostGIS's ``<->``
    between two points, and exact, so the scan can be index-only)."""
    return nearest_key(geom).op("<->", return_type=Float)(func.point(longitude, latitude))


def nearest_key(geom: ColumnElement[Any]) -> ColumnElement[Any]:
    """The key of the nearest search's own index (``ix_search_entry_*_nearest``): the point as
    PostgreSQL's ``point``, whose GiST KNN distance is exact (PostGIS's is lossy, and
    PostgreSQL refuses a lossy distance in an index-only scan)."""
    return func.point(func.ST_X(geom), func.ST_Y(geom))


def count_window_key(geom: ColumnElement[Any]) -> ColumnElement[Any]:
    """The key of a radius count's own index (``ix_search_entry_*_count_window``): the point's
    envelope, which is the point itself.

    An expression that only the count names, so no KNN statement by PostGIS's ``<->`` ever reads
    that index: it carries the point (INCLUDE), so such a statement could be planned
    as an index-only scan, which PostgreSQL refuses at run time for PostGIS's KNN distance ("lossy
    distance functions are not supported in index-only scans").
    """
    return func.ST_Envelope(geom)


def entry_window(
    geom: ColumnElement[Any],
    *,
    column_name: str,
    box: Sequence[ColumnElement[float]],
    window_leads: bool = False,
    knn_leads: bool = False,
) -> ColumnElement[bool]:
    """Entries whose point may lie in a lon/lat box: ``&&`` on the GiST index (a superset).

    ``knn_leads``: ``<@`` of the nearest search's own key (``nearest_key``) in the box, so the
    index that orders the walk also bounds it: with the box as a mere filter, a window holding
    fewer rows than the walk fetches made it pass every entry of the country (a radius at a
    rural point, at 1M rows).

    ``window_leads``: ``&&`` on the count's own index (``count_window_key``), whose entries carry
    the point and the category codes, so a radius's count is an index-only scan (PostGIS's GiST
    keys are float4 boxes it cannot hand back: through the point's own index, the count read
    each candidate's wide row, 3-4 us each, some 250 in a dense 10 km at 1M rows).
    """
    min_lon, min_lat, max_lon, max_lat = box
    if knn_leads:
        corners = func.box(func.point(min_lon, min_lat), func.point(max_lon, max_lat))
        return nearest_key(geom).op("<@", return_type=Boolean)(corners)
    envelope = func.ST_MakeEnvelope(min_lon, min_lat, max_lon, max_lat, 4326)
    return (count_window_key(geom) if window_leads else geom).op("&&")(envelope)


def entry_in_area(
    geom: ColumnElement[Any], *, column_name: str, code: ColumnElement[str]
) -> ColumnElement[bool]:
    """Entries whose point lies inside a department or municipality (boundary included)."""
    area = select(AdminArea.geom).where(col(AdminArea.code) == code).scalar_subquery()
    return func.ST_Intersects(geom, area)


def entry_covered(
    service_id: ColumnElement[Any],
    target: ColumnElement[Any],
    *,
    latitude: ColumnElement[float],
    longitude: ColumnElement[float],
) -> ColumnElement[bool]:
    """Entries whose service has a service-area polygon containing the point."""
    return exists(
        select(literal(1))
        .select_from(ServiceArea)
        .where(
            col(ServiceArea.service_id) == service_id,
            func.ST_Intersects(ServiceArea.geom, target),
        )
    )


def code_list(name: str) -> BindParameter[Any]:
    """A bound list of codes (``text[]``)."""
    return bindparam(name, type_=_CODES)


def entry_in_categories(
    codes: BindParameter[Any], *, window_leads: bool = False
) -> ColumnElement[bool]:
    """Entries with any of the codes among their categories and ancestors (GIN ``&&``).

    ``window_leads``: ``arrayoverlap``, the operator's own function, which the planner does
    not match to the GIN index. A radius's count then walks the window of its own index
    (``entry_window``), index-only, and stops at its cap; with the operator the planner ANDed
    the window's bitmap with the category's bitmap over the whole country (100k entries for
    shelters at 1M rows: 25-37 ms against 2-3 ms).
    """
    if window_leads:
        return func.arrayoverlap(_ENTRY.c.category_codes, cast(codes, _CODES), type_=Boolean)
    return _ENTRY.c.category_codes.op("&&")(cast(codes, _CODES))  # type: ignore[no-any-return]


def categories_leading(codes: BindParameter[Any]) -> FromClause | None:
    """None: the planner chooses by itself whether the GIN index leads a count."""
    return None


def entry_speaks(language: ColumnElement[str]) -> ColumnElement[bool]:
    """Entries whose service offers the language (GIN ``@>``)."""
    return _ENTRY.c.language_codes.op("@>")(cast(array([language]), _CODES))  # type: ignore[no-any-return]


def entry_serves(gender: ColumnElement[str]) -> ColumnElement[bool]:
    """Entries whose service admits a person of the gender (GIN ``@>``)."""
    return _ENTRY.c.served_genders.op("@>")(cast(array([gender]), _CODES))  # type: ignore[no-any-return]


def entry_text_matches(patterns: BindParameter[Any]) -> ColumnElement[bool]:
    """Entries whose search text is ``LIKE`` every pattern (backslash escapes, the default)."""
    return _ENTRY.c.search_text.like(all_(cast(patterns, _CODES)))  # type: ignore[no-any-return]


def in_code_list(column: ColumnElement[Any], codes: BindParameter[Any]) -> ColumnElement[bool]:
    """A column's value is one of the bound codes."""
    return column == any_(cast(codes, _CODES))


def entry_category_codes() -> ColumnElement[Any]:
    """The entry's category codes with their ancestors, as a list."""
    return _ENTRY.c.category_codes  # type: ignore[no-any-return]


# --- search read model: writing entries (issue 13; domain/search_model.py) ---------------------


def _entry_point(x: str, y: str) -> ColumnElement[Any]:
    return func.ST_SetSRID(
        func.ST_MakePoint(bindparam(x, type_=Float), bindparam(y, type_=Float)), 4326
    )


# Built once: executemany binds each entry's values (points from their coordinates). RETURNING
# makes SQLAlchemy send the rows as multi-row INSERTs ("insertmanyvalues", up to 1,000 rows a
# statement) instead of one statement per row: the statement-level triggers that keep the
# map's cluster cells in step then run once per batch.
_INSERT_ENTRY = (
    insert(SearchEntry.__table__)  # type: ignore[attr-defined]
    .values(
        exact_geom=_entry_point("exact_geom_x", "exact_geom_y"),
        public_geom=_entry_point("public_geom_x", "public_geom_y"),
    )
    .returning(SearchEntry.__table__.c.service_at_location_id)  # type: ignore[attr-defined]
)


_INSERT_CATEGORY = insert(SearchEntryCategory.__table__)  # type: ignore[attr-defined]


def insert_search_entries(session: Session, entries: Sequence[Mapping[str, Any]]) -> None:
    """Insert read-model entries: code lists as ``text[]`` columns (GIN), and one category
    side-table row per code (the index-only category count); no language side table."""
    if not entries:
        return
    connection = session.connection()
    connection.execute(_INSERT_ENTRY, list(entries))
    categories = side_tables.category_rows(entries)
    if categories:
        connection.execute(_INSERT_CATEGORY, categories)


def lock_search_entries(session: Session) -> None:
    """Hold off other writers of ``search_entry`` until the transaction ends; readers go on."""
    table = SearchEntry.__tablename__
    session.execute(text(f"LOCK TABLE {table} IN EXCLUSIVE MODE"))


# The setting the cluster-cell triggers read (migration d4e6f8a0b2c4): 'deferred' skips them.
CLUSTER_CELLS_SETTING = "referral_net.cluster_cells"
_CELL_SETTING = text("SELECT set_config(:name, :value, true)")
# Every cell of every stored level from the entries at once (the triggers' own arithmetic).
_REFILL_CELLS = text(
    "INSERT INTO service_cluster_cell (level, cell_x, cell_y, top_category, point_count,"
    " east_mm_sum, south_mm_sum)"
    " SELECT l.level, (e.public_east_mm << l.level) / CAST(:world_mm AS bigint),"
    " (e.public_south_mm << l.level) / CAST(:world_mm AS bigint),"
    " coalesce(e.top_category, ''), count(*), sum(e.public_east_mm), sum(e.public_south_mm)"
    " FROM search_entry AS e"
    " CROSS JOIN generate_series(CAST(:first_level AS int), CAST(:last_level AS int)) AS l(level)"
    " WHERE e.listed AND e.public_east_mm IS NOT NULL GROUP BY 1, 2, 3, 4"
)


def defer_cluster_cells(session: Session) -> None:
    """Stop the cluster-cell triggers until :func:`refill_cluster_cells` in this transaction:
    kept per batch of a rebuild, every batch would update the same coarse cells again, and in
    one transaction each update leaves a row version that the next lookup walks."""
    session.execute(_CELL_SETTING, {"name": CLUSTER_CELLS_SETTING, "value": "deferred"})


def refill_cluster_cells(session: Session) -> None:
    """Recompute every cluster cell from the entries in one statement, and let the triggers
    keep them again for the rest of the transaction."""
    session.execute(text("DELETE FROM service_cluster_cell"))
    session.execute(
        _REFILL_CELLS,
        {
            "world_mm": WORLD_MM,
            "first_level": STORED_CELL_LEVELS[0],
            "last_level": STORED_CELL_LEVELS[-1],
        },
    )
    session.execute(_CELL_SETTING, {"name": CLUSTER_CELLS_SETTING, "value": "immediate"})


def area_in_box(*, box: tuple[float, float, float, float]) -> ColumnElement[bool]:
    """``admin_area`` rows whose polygon meets the box: ``&&`` on the GiST index, then exact."""
    envelope = func.ST_MakeEnvelope(*box, 4326)
    geom = AdminArea.__table__.c.geom  # type: ignore[attr-defined]
    return and_(geom.op("&&")(envelope), func.ST_Intersects(geom, envelope))


# --- vector tiles (issue 16; domain/tiles.py) -----------------------------------------------------
# ST_AsMVT builds the tile in the database. Areas: the GiST index finds the polygons meeting the
# tile (plus a margin), which are clipped to that margin (ST_ClipByBox2D), simplified to one
# display pixel of the zoom in 3857 metres (ST_SimplifyPreserveTopology) and quantised by
# ST_AsMVTGeom (extent 4096, buffer 64). Points come from Python (search, clusters, towns) as
# one JSON array of 3857 coordinates and attributes: ST_AsMVT turns a jsonb column's keys into
# attributes and leaves nulls out.

_AREA_TILE = text(
    """
    WITH frame AS (
        SELECT ST_TileEnvelope(:z, :x, :y) AS tile,
               ST_Expand(ST_TileEnvelope(:z, :x, :y), :margin) AS clip
    )
    SELECT ST_AsMVT(features, :layer, :extent, 'geom') FROM (
        SELECT area.code, area.name, area.department_code,
               ST_AsMVTGeom(
                   ST_SimplifyPreserveTopology(
                       ST_ClipByBox2D(ST_Transform(area.geom, 3857), frame.clip), :tolerance
                   ),
                   frame.tile, :extent, :buffer, true
               ) AS geom
        FROM admin_area AS area, frame
        WHERE area.level = :level
          AND area.geom && ST_MakeEnvelope(:west, :south, :east, :north, 4326)
    ) AS features
    WHERE features.geom IS NOT NULL
    """
)

_POINTS_TILE = text(
    """
    SELECT ST_AsMVT(features, :layer, :extent, 'geom') FROM (
        SELECT ST_AsMVTGeom(
                   ST_SetSRID(ST_MakePoint(point.x, point.y), 3857),
                   ST_TileEnvelope(:z, :x, :y), :extent, :buffer, true
               ) AS geom,
               point.properties
        FROM jsonb_to_recordset(CAST(:points AS jsonb))
            AS point(x double precision, y double precision, properties jsonb)
    ) AS features
    WHERE features.geom IS NOT NULL
    """
)


def _tile_bytes(value: Any) -> bytes:
    return b"" if value is None else bytes(value)


def area_tile(session: Session, *, level: str, layer: str, tile: Tile) -> bytes:
    """The areas of ``level`` meeting the tile, as one MVT layer built by ``ST_AsMVT``."""
    west, south, east, north = tile.lonlat_bounds(2 * BUFFER)
    value = session.execute(
        _AREA_TILE,
        {
            "z": tile.z,
            "x": tile.x,
            "y": tile.y,
            "margin": tile.size_m * 2 * BUFFER / EXTENT,
            "layer": layer,
            "extent": EXTENT,
            "buffer": BUFFER,
            "tolerance": metres_per_pixel(tile.z),
            "level": level,
            "west": west,
            "south": south,
            "east": east,
            "north": north,
        },
    ).scalar_one()
    return _tile_bytes(value)


def points_tile(session: Session, *, layer: str, points: Sequence[TilePoint], tile: Tile) -> bytes:
    """Points computed in Python (3857 metres, attributes), as one MVT layer by ``ST_AsMVT``."""
    value = session.execute(
        _POINTS_TILE,
        {
            "z": tile.z,
            "x": tile.x,
            "y": tile.y,
            "layer": layer,
            "extent": EXTENT,
            "buffer": BUFFER,
            # One JSON document, not three bound arrays: the driver dumps an array element by
            # element in Python, which cost more than the tile itself for thousands of points.
            "points": orjson.dumps(
                [
                    {
                        "x": p.x,
                        "y": p.y,
                        "properties": {k: v for k, v in p.properties.items() if v is not None},
                    }
                    for p in points
                ]
            ).decode(),
        },
    ).scalar_one()
    return _tile_bytes(value)
