"""Vector tiles (issue 16): Mapbox Vector Tiles of services, departments, municipalities and
places on WebMercatorQuad, for a partner's map.

    services        read through search (``domain.search.search``, a box of the tile's lon/lat
                    bounds plus the buffer), so the one visibility rule decides what exists and
                    where: a restricted site at its municipality's point for the public and
                    partners, a confidential one nowhere. Below ``CLUSTER_BELOW_ZOOM`` (and
                    wherever a tile would hold more than ``MAX_POINT_FEATURES`` of them) the
                    points are clustered on a grid (``geo.tiles.grid_clusters``); above it, one
                    feature per service at a location with a few of ``service_feature``'s
                    properties
    departments     the ``admin_area`` polygons, clipped and simplified per zoom (``db.dialect``)
    municipalities  likewise
    places          the gazetteer's towns (``geo.places``): the larger ones at low zooms

The tile's bytes come from ``db.dialect``: PostGIS ``ST_AsMVT``, SpatiaLite the
``mapbox-vector-tile`` encoder. Nothing here writes SQL; empty bytes mean an empty tile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlmodel import Session

from referral_net.db import dialect
from referral_net.domain import search as search_domain
from referral_net.domain.search import SearchQuery
from referral_net.errors import NotFound
from referral_net.geo import places as gazetteer
from referral_net.geo.tiles import (
    BUFFER,
    MAX_ZOOM,
    MIN_ZOOM,
    Tile,
    TilePoint,
    grid_clusters,
    in_tile,
    tile_in_range,
    to_mercator,
)
from referral_net.schemas.features import service_feature
from referral_net.security.roles import Principal
from referral_net.vocab import GUATEMALA_TZ

LayerId = Literal["services", "departments", "municipalities", "places"]
LAYERS: tuple[LayerId, ...] = ("services", "departments", "municipalities", "places")

# Below this zoom services are clusters; at and above it, one feature per service at a location.
CLUSTER_BELOW_ZOOM = 11
# A tile reads at most this many services from search (in search's order, by name).
MAX_TILE_SERVICES = 10_000
# More points than this in one tile are clustered at any zoom: a tile never carries thousands.
MAX_POINT_FEATURES = 1_000
# The properties of one service feature (taken from ``schemas.features.service_feature``).
SERVICE_PROPERTIES = ("id", "name", "top_category", "precision", "open_now")
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


def layer(layer_id: str) -> Layer:
    """One layer by id; NotFound (404) for an unknown one."""
    found = _LAYERS.get(layer_id)
    if found is None:
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
) -> bytes:
    """One tile of one layer as MVT bytes for the caller (empty: no feature). 404 for an unknown
    layer or a tile outside the scheme."""
    target = layer(layer_id)
    where = checked_tile(z, x, y)
    if target.id == "services":
        return _services_tile(session, principal, where, capacity_stale_after)
    if target.id == "places":
        return dialect.points_tile(session, layer="places", points=_places(where), tile=where)
    level = "department" if target.id == "departments" else "municipality"
    return dialect.area_tile(session, level=level, layer=target.id, tile=where)


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


def _services_tile(
    session: Session, principal: Principal, where: Tile, capacity_stale_after: timedelta
) -> bytes:
    now = datetime.now(UTC)
    query = SearchQuery(
        mode="bbox",
        box=where.lonlat_bounds(BUFFER),
        limit=MAX_TILE_SERVICES,
        first_row=0,
        evaluated_at=now,
        today=now.astimezone(GUATEMALA_TZ).date(),
        capacity_stale_after=capacity_stale_after,
    )
    page = search_domain.search(session=session, principal=principal, query=query)
    features = []
    for result in page.contents:
        shaped = service_feature(result)
        if shaped["geometry"] is None:
            continue
        longitude, latitude = shaped["geometry"]["coordinates"]
        x, y = to_mercator(longitude, latitude)
        properties = {"id": shaped["id"], **shaped["properties"]}
        features.append(TilePoint(x, y, {k: properties[k] for k in SERVICE_PROPERTIES}))
    inside = sum(1 for f in features if in_tile(f.x, f.y, where))
    if where.z < CLUSTER_BELOW_ZOOM or inside > MAX_POINT_FEATURES:
        points: list[TilePoint] = _clusters(features, where)
    else:
        points = features
    return dialect.points_tile(session, layer="services", points=points, tile=where)


def _clusters(features: list[TilePoint], where: Tile) -> list[TilePoint]:
    """Grid clusters of the features in the tile (the buffer's belong to the next tile's)."""
    clusters = grid_clusters(
        ((f.x, f.y, f.properties.get("top_category")) for f in features), where
    )
    points = []
    for cluster in clusters:
        properties: dict[str, Any] = {"cluster": True, "point_count": cluster.count}
        properties.update({f"count_{name}": n for name, n in cluster.categories.items()})
        points.append(TilePoint(cluster.x, cluster.y, properties))
    return points
