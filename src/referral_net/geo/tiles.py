"""Vector tile arithmetic, grid clustering and the Mapbox Vector Tile encoder: pure functions.

The tiling scheme is OGC's WebMercatorQuad (EPSG:3857, the XYZ scheme of web maps): at zoom
``z`` the square from -20037508.34 m to +20037508.34 m is cut into 2^z x 2^z tiles, column ``x``
from the west and row ``y`` from the north. Coordinates go from WGS 84 to 3857 through pyproj
(already a dependency, and the reference the tests check against); the tile arithmetic itself is
the scheme's definition, a few lines of it.

Tiles have an extent of 4096 units per side and a buffer of 64 units around it (what
``ST_AsMVTGeom`` does by default), so symbols and strokes at an edge are drawn whole. Boundaries
are simplified to one display pixel of the zoom (a 256-pixel tile), in 3857 metres.

Service points below the cluster zoom are grouped on a grid of cells, 8 x 8 per tile (32
display pixels each; :func:`grid_clusters`); cells are aligned with the tile, so a point is
counted in exactly one tile and one cluster. Nothing here decides which points exist: callers
pass points already placed for their audience.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import mapbox_vector_tile
import numpy as np
import shapely
from mapbox_vector_tile.encoder import on_invalid_geometry_make_valid
from pyproj import Transformer
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

MIN_ZOOM = 0
MAX_ZOOM = 18
EXTENT = 4096
BUFFER = 64
TILE_SIZE_PX = 256
HALF_WORLD_M = 20037508.342789244
MAX_LATITUDE = 85.0511287798066


@dataclass(frozen=True)
class Tile:
    """One tile of WebMercatorQuad: zoom, column (from the west), row (from the north)."""

    z: int
    x: int
    y: int

    @property
    def size_m(self) -> float:
        """The side of the tile in 3857 metres."""
        return 2 * HALF_WORLD_M / (1 << self.z)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """minX, minY, maxX, maxY in EPSG:3857 metres."""
        size = self.size_m
        min_x = -HALF_WORLD_M + self.x * size
        max_y = HALF_WORLD_M - self.y * size
        return (min_x, max_y - size, min_x + size, max_y)

    def buffered_bounds(self, units: float = BUFFER) -> tuple[float, float, float, float]:
        """The bounds grown by ``units`` tile units on every side (3857 metres)."""
        pad = self.size_m * units / EXTENT
        min_x, min_y, max_x, max_y = self.bounds
        return (min_x - pad, min_y - pad, max_x + pad, max_y + pad)

    def lonlat_bounds(self, units: float = 0) -> tuple[float, float, float, float]:
        """minLon, minLat, maxLon, maxLat of the tile grown by ``units`` tile units, clamped to
        the scheme's world."""
        min_x, min_y, max_x, max_y = self.buffered_bounds(units)
        west, south = to_lonlat(max(min_x, -HALF_WORLD_M), max(min_y, -HALF_WORLD_M))
        east, north = to_lonlat(min(max_x, HALF_WORLD_M), min(max_y, HALF_WORLD_M))
        return (west, south, east, north)


def tile_in_range(z: int, x: int, y: int) -> bool:
    """True for a zoom in 0..18 and a column and row in 0..2^z - 1."""
    if not MIN_ZOOM <= z <= MAX_ZOOM:
        return False
    last = (1 << z) - 1
    return 0 <= x <= last and 0 <= y <= last


def metres_per_pixel(z: int) -> float:
    """3857 metres per display pixel (a 256-pixel tile) at zoom ``z``: the simplification
    tolerance of boundaries."""
    return 2 * HALF_WORLD_M / (TILE_SIZE_PX * (1 << z))


@cache
def _forward() -> Transformer:
    return Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)


@cache
def _inverse() -> Transformer:
    return Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)


def to_mercator(longitude: float, latitude: float) -> tuple[float, float]:
    """A WGS 84 point in EPSG:3857 metres (latitude clamped to the scheme's world)."""
    lat = max(-MAX_LATITUDE, min(MAX_LATITUDE, latitude))
    x, y = _forward().transform(longitude, lat)
    return (float(x), float(y))


def to_lonlat(x: float, y: float) -> tuple[float, float]:
    """An EPSG:3857 point as WGS 84 longitude and latitude."""
    lon, lat = _inverse().transform(x, y)
    return (float(lon), float(lat))


def tile_pixel(longitude: float, latitude: float, tile: Tile) -> tuple[float, float]:
    """Where a WGS 84 point falls in the tile, in tile units (0..4096, y down)."""
    x, y = to_mercator(longitude, latitude)
    min_x, _, _, max_y = tile.bounds
    scale = EXTENT / tile.size_m
    return ((x - min_x) * scale, (max_y - y) * scale)


def geometry_to_mercator(geometry: BaseGeometry) -> BaseGeometry:
    """A WGS 84 geometry in EPSG:3857 (vectorised through pyproj)."""

    def forward(coords: Any) -> Any:
        lat = np.clip(coords[:, 1], -MAX_LATITUDE, MAX_LATITUDE)
        x, y = _forward().transform(coords[:, 0], lat)
        return np.column_stack([x, y])

    return shapely.transform(geometry, forward)


def prepare_area(geometry: BaseGeometry, tile: Tile) -> BaseGeometry | None:
    """A WGS 84 boundary ready to encode: in 3857, clipped to the tile and a margin, simplified
    to one display pixel of the zoom (topology kept); None when nothing is left."""
    mercator = geometry_to_mercator(geometry)
    clipped = shapely.clip_by_rect(mercator, *tile.buffered_bounds(2 * BUFFER))
    if clipped.is_empty:
        return None
    simplified = clipped.simplify(metres_per_pixel(tile.z), preserve_topology=True)
    return None if simplified.is_empty else simplified


@dataclass(frozen=True)
class TilePoint:
    """A point feature in EPSG:3857 metres and its attributes (None values are left out)."""

    x: float
    y: float
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Cluster:
    """Points of one grid cell: where it is drawn (3857; the mean of its members' positions, as
    MapLibre's own clustering draws one) and counts per top-level category."""

    x: float
    y: float
    count: int
    categories: Mapping[str, int]


def in_tile(x: float, y: float, tile: Tile) -> bool:
    """True for a 3857 point in the tile itself (west and north edges in, east and south out),
    so that a point on a shared edge belongs to exactly one tile."""
    min_x, min_y, max_x, max_y = tile.bounds
    return min_x <= x < max_x and min_y < y <= max_y


# --- the cluster grid, in whole millimetres ---------------------------------------------------
# A cluster cell of zoom z is a tile of zoom z + CELL_ZOOM_OFFSET: 8 x 8 cells per tile, each
# 512 of the tile's 4096 units. Positions on the grid are whole millimetres from the world's west
# and north edges, so that a cell's index and its members' sums are integer arithmetic, the same
# in Python, PostgreSQL and SQLite: the database keeps per-cell sums in step on every write
# (``service_cluster_cell``) and a sum read from it equals the one Python makes of the members.

CELL_ZOOM_OFFSET = 3
# The width (and height) of the scheme's world in whole millimetres.
WORLD_MM = round(2 * HALF_WORLD_M * 1000)
# The cell levels (tile zooms of cells) kept per cell in the database: clusters of zooms 0-12.
STORED_CELL_LEVELS = range(CELL_ZOOM_OFFSET, 12 + CELL_ZOOM_OFFSET + 1)


def grid_mm(x: float, y: float) -> tuple[int, int]:
    """A 3857 point as whole millimetres east of the world's west edge and south of its north
    edge (clamped into the world)."""
    east = min(max(math.floor((x + HALF_WORLD_M) * 1000 + 0.5), 0), WORLD_MM - 1)
    south = min(max(math.floor((HALF_WORLD_M - y) * 1000 + 0.5), 0), WORLD_MM - 1)
    return (east, south)


def cell_of(east_mm: int, south_mm: int, level: int) -> tuple[int, int]:
    """The column and row of the level's grid (a tile of zoom ``level``) holding a position."""
    return ((east_mm << level) // WORLD_MM, (south_mm << level) // WORLD_MM)


def cell_level(tile: Tile) -> int:
    """The level of a tile's cluster cells."""
    return tile.z + CELL_ZOOM_OFFSET


def cell_range(tile: Tile) -> tuple[int, int, int, int]:
    """The first and last column, then row, of the tile's cells on their level's grid."""
    per_tile = 1 << CELL_ZOOM_OFFSET
    return (
        tile.x * per_tile,
        tile.x * per_tile + per_tile - 1,
        tile.y * per_tile,
        tile.y * per_tile + per_tile - 1,
    )


@dataclass
class CellSums:
    """The members of one cell: how many, the sums of their grid positions, counts per top
    category (None: no category)."""

    count: int = 0
    east_mm: int = 0
    south_mm: int = 0
    categories: dict[str | None, int] = field(default_factory=dict)

    def add(self, *, count: int, east_mm: int, south_mm: int, category: str | None) -> None:
        """Count ``count`` members of one category with these position sums."""
        self.count += count
        self.east_mm += east_mm
        self.south_mm += south_mm
        self.categories[category] = self.categories.get(category, 0) + count

    def cluster(self) -> Cluster:
        """The cluster drawn for these members: at their mean position."""
        mean_east = self.east_mm / self.count / 1000
        mean_south = self.south_mm / self.count / 1000
        counts: dict[str, int] = {}
        for category, n in self.categories.items():
            name = category or "other"
            counts[name] = counts.get(name, 0) + n
        return Cluster(
            x=mean_east - HALF_WORLD_M,
            y=HALF_WORLD_M - mean_south,
            count=self.count,
            categories=dict(sorted(counts.items())),
        )


def clusters_of(cells: Mapping[tuple[int, int], CellSums]) -> list[Cluster]:
    """The clusters of a tile's cells (keyed by row, then column), in grid order."""
    return [cells[key].cluster() for key in sorted(cells)]


def grid_clusters(points: Iterable[tuple[float, float, str | None]], tile: Tile) -> list[Cluster]:
    """Group the points (3857 x, y and a top-level category, None for none) that lie in the
    tile on its grid of cells; points of other tiles' cells (the buffer) are ignored. A cluster
    is drawn at the mean of its members' positions (whole millimetres, as the stored sums).
    Clusters come in grid order (rows from the north, then columns)."""
    level = cell_level(tile)
    first_column, last_column, first_row, last_row = cell_range(tile)
    cells: dict[tuple[int, int], CellSums] = {}
    for x, y, category in points:
        east, south = grid_mm(x, y)
        column, row = cell_of(east, south, level)
        if not (first_column <= column <= last_column and first_row <= row <= last_row):
            continue
        cells.setdefault((row, column), CellSums()).add(
            count=1, east_mm=east, south_mm=south, category=category
        )
    return clusters_of(cells)


def _attributes(properties: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in properties.items() if value is not None}


def encode(
    layer: str, features: Sequence[tuple[BaseGeometry, Mapping[str, Any]]], tile: Tile
) -> bytes:
    """One MVT layer of 3857 geometries (``mapbox-vector-tile``): points beyond the buffer are
    left out, other geometries clipped to it; empty bytes when no feature remains."""
    limit = tile.buffered_bounds()
    kept: list[dict[str, Any]] = []
    for geometry, properties in features:
        if isinstance(geometry, Point):
            if not (limit[0] <= geometry.x <= limit[2] and limit[1] <= geometry.y <= limit[3]):
                continue
            shaped = geometry
        else:
            shaped = shapely.clip_by_rect(geometry, *limit)
            if shaped.is_empty:
                continue
        kept.append({"geometry": _quantized(shaped, tile), "properties": _attributes(properties)})
    if not kept:
        return b""
    encoded: bytes = mapbox_vector_tile.encode(
        {"name": layer, "features": kept},
        default_options={
            "extents": EXTENT,
            "on_invalid_geometry": on_invalid_geometry_make_valid,
        },
    )
    return encoded


def _quantized(geometry: BaseGeometry, tile: Tile) -> BaseGeometry:
    """3857 metres -> whole tile units, y up (the encoder flips y). The encoder's own
    ``quantize_bounds`` goes through ``shapely.ops.transform``, deprecated in shapely 2.1."""
    min_x, min_y, _, _ = tile.bounds
    scale = EXTENT / tile.size_m

    def to_units(coords: Any) -> Any:
        return np.round((coords - np.array([min_x, min_y])) * scale)

    return shapely.transform(geometry, to_units)


def encode_points(layer: str, points: Sequence[TilePoint], tile: Tile) -> bytes:
    """One MVT layer of points (see :func:`encode`)."""
    return encode(layer, [(Point(p.x, p.y), p.properties) for p in points], tile)
