"""Vector tiles (issue 16): Mapbox Vector Tiles of services, departments, municipalities and
places on WebMercatorQuad, for a partner's map.

    services        read through search's statement (``search.plan.listing`` for a box of the
                    tile's lon/lat bounds plus the buffer, with only the parts of each entry's
                    ``doc`` a point shows, and without search's count) and placed by
                    ``places.audience``, so the one visibility rule decides what exists and
                    where: a restricted site at its municipality's point for the public and
                    partners, a confidential one nowhere. Below ``CLUSTER_BELOW_ZOOM`` (and
                    wherever a tile would hold more than ``MAX_POINT_FEATURES`` of them) the
                    points are clustered on a grid (``geo.tiles.grid_clusters``); above it, one
                    feature per service at a location with a few of ``service_feature``'s
                    properties. The public and partner keys see the public point set, which
                    the database places: a clustered tile to zoom 12 reads its 64 cells of
                    ``service_cluster_cell`` (kept in step with the read model by triggers),
                    other tiles the same statement stripped to what a point shows
    departments     the ``admin_area`` polygons, clipped and simplified per zoom (``db.dialect``)
    municipalities  likewise
    places          the gazetteer's towns (``geo.places``): the larger ones at low zooms
    lakes           the base map's lakes (``geo.lakes``, a shipped file), clipped and simplified
                    as the areas are; served at ``/tiles`` only (not an OGC collection)

The tile's bytes come from ``db.dialect`` (PostGIS ``ST_AsMVT``, SpatiaLite the
``mapbox-vector-tile`` encoder), the lakes' from that encoder on both engines. Nothing here
writes dialect SQL (the cells are read with one portable select); empty bytes mean an empty
tile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Literal

from sqlalchemy import Select, bindparam, func, select
from sqlmodel import Session

from referral_net.db import dialect
from referral_net.db.models import SearchEntry, ServiceClusterCell
from referral_net.domain import access, places, search_model
from referral_net.domain.search import SearchQuery, plan
from referral_net.domain.search.entry import Entry
from referral_net.domain.search.hours import HoursAt
from referral_net.domain.search_model import top_category
from referral_net.errors import NotFound
from referral_net.geo import places as gazetteer
from referral_net.geo.lakes import lakes_in_box
from referral_net.geo.tiles import (
    BUFFER,
    MAX_ZOOM,
    MIN_ZOOM,
    STORED_CELL_LEVELS,
    CellSums,
    Cluster,
    Tile,
    TilePoint,
    cell_level,
    cell_range,
    clusters_of,
    encode,
    grid_clusters,
    in_tile,
    prepare_area,
    tile_in_range,
    to_mercator,
)
from referral_net.schemas.search import SearchLocation
from referral_net.security.roles import Principal, Role
from referral_net.vocab import GUATEMALA_TZ, LOCALES

LayerId = Literal["services", "departments", "municipalities", "places", "lakes"]
LAYERS: tuple[LayerId, ...] = ("services", "departments", "municipalities", "places", "lakes")
# The layers that are OGC collections too; ``lakes`` is the base map's alone (``/tiles``).
COLLECTION_LAYERS: tuple[LayerId, ...] = ("services", "departments", "municipalities", "places")

# Below this zoom services are clusters; at and above it, one feature per service at a location.
CLUSTER_BELOW_ZOOM = 11
# A tile reads at most this many services from search (in search's order, by name).
MAX_TILE_SERVICES = 10_000
# More points than this in one tile are clustered at any zoom: a tile never carries thousands.
MAX_POINT_FEATURES = 1_000
# The properties of one service feature (taken from ``schemas.features.service_feature``).
SERVICE_PROPERTIES = ("id", "name", "top_category", "precision", "open_now")
_ENTRY = SearchEntry.__table__  # type: ignore[attr-defined]
# The audiences that see only the public point set: nothing exact beyond public sites, nothing
# audited (``access.location_view``), so the database may place and cluster their points.
_PUBLIC_AUDIENCES = frozenset({Role.PUBLIC, Role.PARTNER})
_NOT_FOUND = "No such tile: zoom 0-18, column and row 0 to 2^zoom - 1."


@dataclass(frozen=True)
class Layer:
    """What a tileset's metadata says of its one vector layer."""

    id: LayerId
    title: str
    geometry: Literal["point", "polygon"]
    properties: dict[str, str]  # name -> JSON type


_LAYERS = {
    "services": Layer(
        id="services",
        title="Services at locations (clustered below zoom 11)",
        geometry="point",
        properties={
            "id": "string",
            "name": "string",
            "top_category": "string",
            "precision": "string",
            "open_now": "boolean",
            "cluster": "boolean",
            "point_count": "integer",
            "count_<top category>": "integer",
        },
    ),
    "departments": Layer(
        id="departments",
        title="Departments",
        geometry="polygon",
        properties={"code": "string", "name": "string", "department_code": "string"},
    ),
    "municipalities": Layer(
        id="municipalities",
        title="Municipalities",
        geometry="polygon",
        properties={"code": "string", "name": "string", "department_code": "string"},
    ),
    "lakes": Layer(
        id="lakes",
        title="Lakes (OCHA / CONRED, GSHHG)",
        geometry="polygon",
        properties={"id": "string", "name": "string"},
    ),
    "places": Layer(
        id="places",
        title="Town names (GeoNames)",
        geometry="point",
        properties={
            "id": "string",
            "name": "string",
            "population": "integer",
            "municipality_code": "string",
        },
    ),
}


def layer(layer_id: str, *, collections_only: bool = False) -> Layer:
    """One layer by id; NotFound (404) for an unknown one, or with ``collections_only`` for one
    that is not an OGC collection (the OGC paths)."""
    found = _LAYERS.get(layer_id)
    if found is None or (collections_only and found.id not in COLLECTION_LAYERS):
        raise NotFound("No such tile layer.")
    return found


def checked_tile(z: int, x: int, y: int) -> Tile:
    """The tile, or NotFound (404) for a zoom outside 0..18 or a column or row outside
    0..2^z - 1."""
    if not tile_in_range(z, x, y):
        raise NotFound(_NOT_FOUND)
    return Tile(z, x, y)


def zoom_range() -> tuple[int, int]:
    """The zooms served (inclusive)."""
    return (MIN_ZOOM, MAX_ZOOM)


def tile(
    *,
    session: Session,
    principal: Principal,
    layer_id: str,
    z: int,
    x: int,
    y: int,
    capacity_stale_after: timedelta = timedelta(hours=72),
    collections_only: bool = False,
) -> bytes:
    """One tile of one layer as MVT bytes for the caller (empty: no feature). 404 for an unknown
    layer (``collections_only``: or one that is not an OGC collection) or a tile outside the
    scheme."""
    target = layer(layer_id, collections_only=collections_only)
    where = checked_tile(z, x, y)
    if target.id == "services":
        if sees_public_points_only(principal):
            return _public_services_tile(session, principal, where, capacity_stale_after)
        return _services_tile(session, principal, where, capacity_stale_after)
    if target.id == "places":
        return dialect.points_tile(session, layer="places", points=_places(where), tile=where)
    if target.id == "lakes":
        return _lakes_tile(where)
    level = "department" if target.id == "departments" else "municipality"
    return dialect.area_tile(session, level=level, layer=target.id, tile=where)


# --- lakes -------------------------------------------------------------------------------------


def _lakes_tile(where: Tile) -> bytes:
    """The lakes meeting the tile, clipped and simplified per zoom as the areas are, encoded by
    ``mapbox-vector-tile`` on both engines (a few polygons from a shipped file: no SQL)."""
    features = []
    for lake in lakes_in_box(where.lonlat_bounds(2 * BUFFER)):
        prepared = prepare_area(lake.geometry, where)
        if prepared is not None:
            features.append((prepared, {"id": lake.id, "name": lake.name}))
    return encode("lakes", features, where)


# --- places ------------------------------------------------------------------------------------


def min_population(z: int) -> int:
    """The smallest town shown at a zoom: cities first, every town from zoom 9."""
    if z < 7:
        return 50_000
    if z < 9:
        return 10_000
    return 0


def _places(where: Tile) -> list[TilePoint]:
    smallest = min_population(where.z)
    points = []
    for place in gazetteer.places_in_box(where.lonlat_bounds(BUFFER)):
        if (place.population or 0) < smallest:
            continue
        x, y = to_mercator(place.longitude, place.latitude)
        points.append(
            TilePoint(
                x,
                y,
                {
                    "id": place.id,
                    "name": place.name,
                    "population": place.population,
                    "municipality_code": place.municipality_code,
                },
            )
        )
    return points


# --- services: through search ------------------------------------------------------------------


def _tile_query(where: Tile, capacity_stale_after: timedelta) -> SearchQuery:
    """Search's query for the services of a tile: its box grown by the buffer."""
    now = datetime.now(UTC)
    return SearchQuery(
        mode="bbox",
        box=where.lonlat_bounds(BUFFER),
        limit=MAX_TILE_SERVICES,
        first_row=0,
        evaluated_at=now,
        today=now.astimezone(GUATEMALA_TZ).date(),
        capacity_stale_after=capacity_stale_after,
    )


def _services_tile(
    session: Session, principal: Principal, where: Tile, capacity_stale_after: timedelta
) -> bytes:
    query = _tile_query(where, capacity_stale_after)
    entries = _entries(session, principal, query)
    with places.audience(session, principal) as audience:
        placed = audience.place([entry.site() for entry in entries]) if entries else {}
        located = []
        for entry in entries:
            site = placed[entry.location_id]
            if site.latitude is None or site.longitude is None:
                continue
            located.append((entry, site, *to_mercator(site.longitude, site.latitude)))
        inside = sum(1 for _, _, x, y in located if in_tile(x, y, where))
        # A clustered tile shows counts per top category: the other properties of thousands of
        # points are not computed for it.
        if where.z < CLUSTER_BELOW_ZOOM or inside > MAX_POINT_FEATURES:
            points = _clusters(
                [
                    (x, y, top_category(entry.doc["categories"][LOCALES[0]]))
                    for entry, _, x, y in located
                ],
                where,
            )
        else:
            hours = HoursAt(query.evaluated_at)
            points = [_service_point(entry, site, x, y, hours) for entry, site, x, y in located]
    return dialect.points_tile(session, layer="services", points=points, tile=where)


def _entries(session: Session, principal: Principal, query: SearchQuery) -> list[Entry]:
    """Search's page for the tile's box (``plan.listing``: its audience rule, its order by name),
    with only the parts of each ``doc`` a tile point shows and without search's count, which a
    tile does not show."""
    search_model.refresh_pending(session)  # this transaction's own writes, as search sees them
    shape = plan.shape_of(session, principal, query)
    values = {**plan.parameters(shape, query), "limit": query.limit, "offset": query.offset}
    return [
        Entry(
            link_id=row.link_id,
            service_id=row.service_id,
            location_id=row.location_id,
            distance_m=None,
            visibility=row.visibility,
            location_organization_id=row.location_organization_id,
            public_latitude=row.public_latitude,
            public_longitude=row.public_longitude,
            doc={
                "location": row.location,
                "service": row.service,
                "categories": row.categories,
                "schedules": row.schedules,
            },
        )
        for row in session.connection().execute(_tile_listing(shape), values)
    ]


@cache
def _tile_listing(shape: plan.Shape) -> Select[Any]:
    """``plan.listing`` reading four parts of ``doc`` instead of all of it: a dense tile reads
    thousands of entries, and decoding their whole documents cost more than the rest of it."""
    entry = _ENTRY.c
    doc = entry.doc
    return plan.listing(shape).with_only_columns(
        entry.service_at_location_id.label("link_id"),
        entry.service_id,
        entry.location_id,
        entry.visibility,
        entry.location_organization_id,
        entry.public_latitude,
        entry.public_longitude,
        doc["location"].label("location"),
        doc["service"].label("service"),
        doc["categories"].label("categories"),
        doc["schedules"].label("schedules"),
    )


def _service_point(
    entry: Entry, placed: SearchLocation, x: float, y: float, hours: HoursAt
) -> TilePoint:
    """The tile point of one entry where the audience rule placed it (3857 ``x``, ``y``), with
    the properties of ``SERVICE_PROPERTIES`` as ``service_feature`` computes them.

    A tile shows five properties of up to a thousand services: computed here from the entry's
    ``doc`` alone, not through the full result (capacity, phones, hours text) of each.
    """
    doc = entry.doc
    schedules = doc["schedules"]
    return TilePoint(
        x,
        y,
        {
            "id": str(entry.link_id),
            "name": doc["service"]["name"],
            "top_category": top_category(entry.doc["categories"][LOCALES[0]]),
            "precision": placed.precision,
            "open_now": hours.is_open(schedules) if schedules else None,
        },
    )


def _clusters(located: list[tuple[float, float, str | None]], where: Tile) -> list[TilePoint]:
    """Grid clusters of the points (3857 x, y, top category) in the tile (the buffer's belong
    to the next tile's)."""
    return _cluster_points(grid_clusters(located, where))


def _cluster_points(clusters: list[Cluster]) -> list[TilePoint]:
    """The features of clusters: their size and counts per top category."""
    points = []
    for cluster in clusters:
        properties: dict[str, Any] = {"cluster": True, "point_count": cluster.count}
        properties.update({f"count_{name}": n for name, n in cluster.categories.items()})
        points.append(TilePoint(cluster.x, cluster.y, properties))
    return points


# --- services: the public point set, selected (and on PostGIS clustered) by the database -------


def sees_public_points_only(principal: Principal) -> bool:
    """The public and partner keys: every site at its public point (``public_geom``), none
    exact beyond the public ones, so nothing is audited and no site is placed per caller."""
    return principal.role in _PUBLIC_AUDIENCES


def _public_services_tile(
    session: Session, principal: Principal, where: Tile, capacity_stale_after: timedelta
) -> bytes:
    """The services tile of today's path (:func:`_services_tile`) for an audience that sees the
    public point set, without search's per-row shaping. Every site stands at its public point,
    which is where ``places.audience`` places it for these callers (a restricted site's
    municipality point; a confidential site has none, so no row).

    A clustered tile of zoom 12 or less is read from the cluster cells the database keeps in
    step with the read model (``service_cluster_cell``: 64 rows, whatever the number of points
    under them); the rest (a sparse tile, or a dense one beyond zoom 12) from search's own
    statement stripped to what a point shows, clustered here when dense."""
    query = _tile_query(where, capacity_stale_after)
    search_model.refresh_pending(session)  # this transaction's own writes, as search sees them
    shape = plan.shape_of(session, principal, query)
    if shape.column != "public_geom":  # the audience rule changed: never guess a point
        return _services_tile(session, principal, where, capacity_stale_after)
    always = where.z < CLUSTER_BELOW_ZOOM
    if cell_level(where) in STORED_CELL_LEVELS:
        cells = _stored_cells(session, where)
        if always or sum(cell.count for cell in cells.values()) > MAX_POINT_FEATURES:
            return dialect.points_tile(
                session, layer="services", points=_cluster_points(clusters_of(cells)), tile=where
            )
    values = plan.parameters(shape, query)
    # Search's order (by name), as the points of today's path come.
    rows = session.connection().execute(_public_rows(shape), values).all()
    located = [
        (row, *to_mercator(row.longitude, row.latitude), top_category(row.categories[LOCALES[0]]))
        for row in rows
    ]
    inside = sum(1 for _, x, y, _ in located if in_tile(x, y, where))
    if always or inside > MAX_POINT_FEATURES:
        points = _clusters([(x, y, top) for _, x, y, top in located], where)
    else:
        hours = HoursAt(query.evaluated_at)
        points = [
            _public_point(principal, row, x=x, y=y, top=top, hours=hours)
            for row, x, y, top in located
        ]
    return dialect.points_tile(session, layer="services", points=points, tile=where)


_CELL = ServiceClusterCell.__table__.c  # type: ignore[attr-defined]
_STORED_CELLS = select(
    _CELL.cell_x,
    _CELL.cell_y,
    _CELL.top_category,
    _CELL.point_count,
    _CELL.east_mm_sum,
    _CELL.south_mm_sum,
).where(
    _CELL.level == bindparam("level"),
    _CELL.cell_x.between(bindparam("first_column"), bindparam("last_column")),
    _CELL.cell_y.between(bindparam("first_row"), bindparam("last_row")),
)


def _stored_cells(session: Session, where: Tile) -> dict[tuple[int, int], CellSums]:
    """The tile's cluster cells as the database keeps them, keyed by row, then column."""
    first_column, last_column, first_row, last_row = cell_range(where)
    cells: dict[tuple[int, int], CellSums] = {}
    rows = session.connection().execute(
        _STORED_CELLS,
        {
            "level": cell_level(where),
            "first_column": first_column,
            "last_column": last_column,
            "first_row": first_row,
            "last_row": last_row,
        },
    )
    for row in rows:
        cells.setdefault((row.cell_y, row.cell_x), CellSums()).add(
            count=row.point_count,
            east_mm=row.east_mm_sum,
            south_mm=row.south_mm_sum,
            category=row.top_category or None,
        )
    return cells


@cache
def _public_rows(shape: plan.Shape) -> Select[Any]:
    """Search's listing for the shape (its conditions: listed, the audience's point in the box,
    the filters), every match in the box in search's order, with only what a tile point shows:
    the point of the audience's column (``geom`` and its coordinates), the name, the
    categories and the schedules."""
    entry = _ENTRY.c
    geom = entry[shape.column]
    listing = plan.listing(shape)
    return (
        listing.with_only_columns(
            entry.service_at_location_id.label("link_id"),
            entry.service_name.label("name"),
            entry.visibility,
            geom.label("geom"),
            func.ST_X(geom).label("longitude"),
            func.ST_Y(geom).label("latitude"),
            entry.doc["categories"].label("categories"),
            entry.doc["schedules"].label("schedules"),
        )
        .limit(None)
        .offset(None)
    )


def _public_point(
    principal: Principal, row: Any, *, x: float, y: float, top: str | None, hours: HoursAt
) -> TilePoint:
    """One service point as :func:`_service_point` gives it, from a light row."""
    view = access.location_view(principal, visibility=row.visibility, organization_id=None)
    schedules = row.schedules
    return TilePoint(
        x,
        y,
        {
            "id": str(row.link_id),
            "name": row.name,
            "top_category": top,
            "precision": "exact" if view is access.LocationView.EXACT else "municipality",
            "open_now": hours.is_open(schedules) if schedules else None,
        },
    )
