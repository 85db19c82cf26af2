"""The SQL that differs between SpatiaLite and PostGIS, behind one interface.

Each engine's SQL lives in exactly one module, ``postgis.py`` and ``spatialite.py``; both implement
:class:`Dialect` (mypy checks them against it). The engine is chosen once, by
:func:`dialect_for` from the session's bind; the functions below are the portable entry points
the domain calls (each asks :func:`dialect_for` and hands over), so the domain never branches on
the engine. Everything returns SQLAlchemy expressions or runs small queries; the domain composes
them.

- Metres are geodesic on WGS 84 on both engines (checked against pyproj).
- Index use is explicit: ``entry_window`` pre-selects through the spatial index, a superset
  that the caller follows with an exact test.
- Search's statements are built once per query shape (``domain/search/plan.py``), so the
  ``entry_*`` expressions take bind parameters, never values, and search asks
  :func:`dialect_named` for the engine module once per shape.
- List membership differs too (PostgreSQL arrays with GIN; SQLite side tables or ``json_each``).
  The gender rule itself is matching's: the read model stores the genders each service admits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import BindParameter, ColumnElement, Connection, FromClause, Select
from sqlalchemy.orm import Session

from referral_net.db.dialect import postgis, spatialite
from referral_net.geo.tiles import Tile, TilePoint


class ResultRow(Protocol):
    """A row as :func:`read_rows` returns it: SQLAlchemy's ``Row`` or psycopg's named tuple,
    read by column name or by position."""

    @property
    def _fields(self) -> tuple[str, ...]:
        """The column names, in order."""
        ...

    def __getitem__(self, index: int) -> Any:
        """The value of the column at ``index``."""
        ...

    def __getattr__(self, name: str) -> Any:
        """The value of the column ``name``."""
        ...


class Dialect(Protocol):
    """What each engine module provides: same names, same meaning, the engine's own SQL."""

    def admin_area_codes_at(
        self, session: Session, *, latitude: float, longitude: float
    ) -> list[str]:
        """The codes of the administrative areas at a point."""
        ...

    def admin_area_codes_at_points(
        self, session: Session, points: Sequence[tuple[float, float]]
    ) -> list[list[str]]:
        """The codes of the administrative areas at each (latitude, longitude) point."""
        ...

    def has_knn_index(self) -> bool:
        """True where the GiST index orders nearest-first by itself (KNN ``<->``)."""
        ...

    def nearest_reads_index_only(self) -> bool:
        """True where a nearest search's candidates come from an index alone (their page rows
        are then read by id); False where the rows it passes are read anyway."""
        ...

    def code_point_order(self, column: Any) -> ColumnElement[Any]:
        """Text ordered by code point."""
        ...

    def transaction_lock(self, session: Session, *, key: int) -> None:
        """Serialize transactions that take ``key``, until the caller's transaction ends."""
        ...

    def spatial_version(self, connection: Connection) -> str:
        """The version of the spatial extension."""
        ...

    def read_rows(
        self, connection: Connection, statement: Select[Any], values: Mapping[str, Any]
    ) -> Sequence[Any]:
        """Every row of a search statement with ``values`` bound (:func:`read_rows`)."""
        ...

    # --- search read model: reading entries (issue 13; domain/search/) ---
    # Expressions for statements built once per query shape: values are bind parameters.

    def entry_point(
        self, *, latitude: ColumnElement[float], longitude: ColumnElement[float]
    ) -> ColumnElement[Any]:
        """A WGS 84 point from bound coordinates."""
        ...

    def entry_distance_m(
        self, geom: ColumnElement[Any], target: ColumnElement[Any]
    ) -> ColumnElement[float]:
        """Geodesic metres between two points."""
        ...

    def entry_reach(
        self,
        geom: ColumnElement[Any],
        target: ColumnElement[Any],
        *,
        latitude: ColumnElement[float],
        longitude: ColumnElement[float],
        scale: ColumnElement[float],
    ) -> ColumnElement[float]:
        """A cheap nearest-first order (PostGIS: KNN ``<->``; SpatiaLite: scaled degrees²)."""
        ...

    def entry_window(
        self,
        geom: ColumnElement[Any],
        *,
        column_name: str,
        box: Sequence[ColumnElement[float]],
        window_leads: bool = False,
        knn_leads: bool = False,
    ) -> ColumnElement[bool]:
        """Entries whose point may lie in a lon/lat box, through the spatial index.

        ``window_leads``: through the index a radius's count walks (PostGIS: the partial index
        that carries each listed point and its codes, for an index-only scan). ``knn_leads``:
        through the index a nearest search walks, so its walk ends at the box's edge.
        """
        ...

    def entry_in_area(
        self, geom: ColumnElement[Any], *, column_name: str, code: ColumnElement[str]
    ) -> ColumnElement[bool]:
        """Entries whose point lies inside an administrative area (boundary included)."""
        ...

    def entry_covered(
        self,
        service_id: ColumnElement[Any],
        target: ColumnElement[Any],
        *,
        latitude: ColumnElement[float],
        longitude: ColumnElement[float],
    ) -> ColumnElement[bool]:
        """Entries whose service has a service-area polygon containing the point."""
        ...

    def code_list(self, name: str) -> BindParameter[Any]:
        """A bound list of codes."""
        ...

    def entry_in_categories(
        self, codes: BindParameter[Any], *, window_leads: bool = False
    ) -> ColumnElement[bool]:
        """Entries with any of the codes among their categories and ancestors.

        ``window_leads``: a radius's count walks its spatial index window and tests each entry,
        rather than let a category index lead (PostGIS: the test is read from the window's
        index-only scan; a category's whole-country bitmap took 25-37 ms at 1M rows).
        """
        ...

    def categories_leading(self, codes: BindParameter[Any]) -> FromClause | None:
        """The entries of the codes, led by the category index (for a count without an index
        window; select them ``DISTINCT``), or None where the planner chooses by itself."""
        ...

    def entry_speaks(self, language: ColumnElement[str]) -> ColumnElement[bool]:
        """Entries whose service offers the language."""
        ...

    def entry_serves(self, gender: ColumnElement[str]) -> ColumnElement[bool]:
        """Entries whose service admits a person of the gender."""
        ...

    def entry_text_matches(self, patterns: BindParameter[Any]) -> ColumnElement[bool]:
        """Entries whose search text is ``LIKE`` every pattern."""
        ...

    def in_code_list(
        self, column: ColumnElement[Any], codes: BindParameter[Any]
    ) -> ColumnElement[bool]:
        """A column's value is one of the bound codes."""
        ...

    def entry_category_codes(self) -> ColumnElement[Any]:
        """The entry's category codes with their ancestors, as a list."""
        ...

    # --- administrative areas as map features (OGC API - Features, issue 16) ---

    def area_in_box(self, *, box: tuple[float, float, float, float]) -> ColumnElement[bool]:
        """``admin_area`` rows whose polygon meets a lon/lat box, through the spatial index."""
        ...

    # --- vector tiles (issue 16; domain/tiles.py) ---

    def area_tile(self, session: Session, *, level: str, layer: str, tile: Tile) -> bytes:
        """One MVT layer of the ``admin_area`` polygons of a level meeting the tile, simplified
        per zoom; empty bytes when none does."""
        ...

    def points_tile(
        self, session: Session, *, layer: str, points: Sequence[TilePoint], tile: Tile
    ) -> bytes:
        """One MVT layer of points given in 3857 metres with their attributes; empty bytes when
        none falls in the tile or its buffer."""
        ...

    # --- search read model: writing entries (issue 13) ---

    def insert_search_entries(self, session: Session, entries: Sequence[Mapping[str, Any]]) -> None:
        """Insert read-model entries (see :func:`insert_search_entries`)."""
        ...

    def lock_search_entries(self, session: Session) -> None:
        """Hold off other writers of the read model until the transaction ends."""
        ...

    def defer_cluster_cells(self, session: Session) -> None:
        """Stop keeping the map's cluster cells per statement in this transaction."""
        ...

    def refill_cluster_cells(self, session: Session) -> None:
        """Make the cluster cells hold the entries' sums again and keep them from here on."""
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


def read_rows(
    connection: Connection, statement: Select[Any], values: Mapping[str, Any]
) -> Sequence[ResultRow]:
    """Every row of one of search's statements (built once per shape) with ``values`` bound.

    PostGIS runs it on psycopg's cursor as SQL compiled once (the search's hot path; the
    engine's cursor events still fire, errors are still SQLAlchemy's); SpatiaLite through Core.
    """
    rows: Sequence[ResultRow] = dialect_named(connection.dialect.name).read_rows(
        connection, statement, values
    )
    return rows


def admin_area_codes_at(session: Session, *, latitude: float, longitude: float) -> list[str]:
    """Return the codes of the administrative areas (department and municipality) at a point."""
    return dialect_for(session).admin_area_codes_at(session, latitude=latitude, longitude=longitude)


def admin_area_codes_at_points(
    session: Session, points: Sequence[tuple[float, float]]
) -> list[list[str]]:
    """:func:`admin_area_codes_at` for many (latitude, longitude) points at once."""
    return dialect_for(session).admin_area_codes_at_points(session, points)


def transaction_lock(session: Session, *, key: int) -> None:
    """Serialize the transactions that take ``key``: held until the caller commits or rolls back.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: nothing to take (one writer at a
    time is the engine's own rule).
    """
    dialect_for(session).transaction_lock(session, key=key)


def spatial_version(connection: Connection) -> str:
    """Return the version of the spatial extension the connection talks to."""
    return dialect_named(connection.dialect.name).spatial_version(connection)


def area_in_box(session: Session, *, box: tuple[float, float, float, float]) -> ColumnElement[bool]:
    """``admin_area`` rows whose polygon meets ``box`` (minLon, minLat, maxLon, maxLat)."""
    return dialect_for(session).area_in_box(box=box)


# --- vector tiles (issue 16; domain/tiles.py) ------------------------------------------------


def area_tile(session: Session, *, level: str, layer: str, tile: Tile) -> bytes:
    """One Mapbox Vector Tile layer named ``layer`` of the departments or municipalities
    (``level``) meeting ``tile``: PostGIS ``ST_AsMVT``, SpatiaLite the ``mapbox-vector-tile``
    encoder; both clip and simplify to one display pixel of the zoom. Empty bytes: no feature."""
    return dialect_for(session).area_tile(session, level=level, layer=layer, tile=tile)


def points_tile(session: Session, *, layer: str, points: Sequence[TilePoint], tile: Tile) -> bytes:
    """One Mapbox Vector Tile layer of points computed in Python (search results, clusters,
    towns): PostGIS ``ST_AsMVT`` over the bound points, SpatiaLite the ``mapbox-vector-tile``
    encoder. Empty bytes: no feature."""
    if not points:
        return b""
    return dialect_for(session).points_tile(session, layer=layer, points=points, tile=tile)


# --- search read model: writing entries (issue 13; domain/search_model.py) ---------------------


def insert_search_entries(session: Session, entries: Sequence[Mapping[str, Any]]) -> None:
    """Insert search read-model entries in one executemany (plus SpatiaLite's side tables).

    Each entry maps every ``search_entry`` column name to its value, except the two points,
    which come as coordinates: ``exact_geom_x``/``exact_geom_y`` and ``public_geom_x``/
    ``public_geom_y`` (longitude/latitude; None for no point). Code lists are Python lists:
    ``text[]`` on PostGIS, JSON arrays plus ``search_entry_category``/``search_entry_language``
    rows on SpatiaLite.
    """
    dialect_for(session).insert_search_entries(session, entries)


def lock_search_entries(session: Session) -> None:
    """Hold off every other writer of the read model until the caller's transaction ends (a
    rebuild). PostgreSQL: ``LOCK TABLE ... IN EXCLUSIVE MODE`` (readers go on); SQLite: nothing
    to take, one writer at a time is the engine's own rule."""
    dialect_for(session).lock_search_entries(session)


def defer_cluster_cells(session: Session) -> None:
    """Stop keeping the map's cluster cells (``service_cluster_cell``) statement by statement
    for the rest of the transaction, until :func:`refill_cluster_cells` (a rebuild).
    PostgreSQL: a transaction-local setting its triggers read; SQLite: nothing (its row
    triggers update cells in place, which costs a rebuild little)."""
    dialect_for(session).defer_cluster_cells(session)


def refill_cluster_cells(session: Session) -> None:
    """After :func:`defer_cluster_cells`: the cells recomputed from the entries in one
    statement (PostgreSQL), and kept by the triggers again."""
    dialect_for(session).refill_cluster_cells(session)
