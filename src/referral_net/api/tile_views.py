"""OGC API - Tiles documents and tile answers: tileset lists, tileset metadata, the
WebMercatorQuad tile matrix set, and the MVT response (204 when the tile is empty).

The tiles themselves come from ``domain/tiles.py``; caching headers (``Cache-Control``, ``ETag``,
304) are ``api/caching.py``'s, which covers ``/ogc`` and ``/tiles``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from fastapi import Request, Response
from sqlmodel import Session

from referral_net.api.ogc_views import JSON_MEDIA_TYPE
from referral_net.domain import tiles
from referral_net.geo.tiles import HALF_WORLD_M, TILE_SIZE_PX
from referral_net.security.roles import Principal

MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
WEB_MERCATOR_QUAD = "WebMercatorQuad"
WEB_MERCATOR_QUAD_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
EPSG_3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
REL_TILING_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
TILE_VARY = "Authorization, X-API-Key"
# The scale denominator of zoom 0 at 0.28 mm pixels, and its cell size in metres.
_SCALE_0 = 559082264.028717
_CELL_0 = 2 * HALF_WORLD_M / TILE_SIZE_PX


def _url(request: Request, path: str) -> str:
    return str(request.base_url).rstrip("/") + path


def _link(href: str, rel: str, media_type: str, title: str, **extra: Any) -> dict[str, Any]:
    return {"href": href, "rel": rel, "type": media_type, "title": title, **extra}


def tile_path(collection_id: str) -> str:
    """The URL template of a collection's tiles (OGC API - Tiles)."""
    return (
        f"/ogc/collections/{collection_id}/tiles/{WEB_MERCATOR_QUAD}"
        "/{tileMatrix}/{tileRow}/{tileCol}"
    )


def _tileset_summary(request: Request, collection_id: str) -> dict[str, Any]:
    path = f"/ogc/collections/{collection_id}/tiles/{WEB_MERCATOR_QUAD}"
    return {
        "title": f"{tiles.layer(collection_id, collections_only=True).title} ({WEB_MERCATOR_QUAD})",
        "tileMatrixSetURI": WEB_MERCATOR_QUAD_URI,
        "dataType": "vector",
        "crs": EPSG_3857,
        "links": [
            _link(_url(request, path), "self", JSON_MEDIA_TYPE, "The tileset"),
            _link(
                _url(request, f"/ogc/tileMatrixSets/{WEB_MERCATOR_QUAD}"),
                REL_TILING_SCHEME,
                JSON_MEDIA_TYPE,
                "The tile matrix set",
            ),
        ],
    }


def tilesets_document(request: Request, collection_id: str) -> dict[str, Any]:
    """The tilesets of one collection: WebMercatorQuad, vector (MVT)."""
    return {
        "tilesets": [_tileset_summary(request, collection_id)],
        "links": [
            _link(
                _url(request, f"/ogc/collections/{collection_id}/tiles"),
                "self",
                JSON_MEDIA_TYPE,
                "The tilesets",
            )
        ],
    }


def tileset_document(request: Request, collection_id: str) -> dict[str, Any]:
    """The metadata of one collection's WebMercatorQuad tileset, with its vector layer."""
    target = tiles.layer(collection_id, collections_only=True)
    low, high = tiles.zoom_range()
    document = _tileset_summary(request, collection_id)
    document["links"].extend(
        [
            _link(
                _url(request, tile_path(collection_id)),
                "item",
                MVT_MEDIA_TYPE,
                "Tiles (Mapbox Vector Tile)",
                templated=True,
            ),
            _link(
                _url(request, f"/ogc/collections/{collection_id}"),
                "http://www.opengis.net/def/rel/ogc/1.0/geodata",
                JSON_MEDIA_TYPE,
                "The collection",
            ),
        ]
    )
    document["layers"] = [
        {
            "id": target.id,
            "title": target.title,
            "dataType": "vector",
            "geometryDimension": 0 if target.geometry == "point" else 2,
            "minTileMatrix": str(low),
            "maxTileMatrix": str(high),
            "propertiesSchema": {
                "type": "object",
                "properties": {name: {"type": kind} for name, kind in target.properties.items()},
            },
        }
    ]
    document["tileMatrixSetLimits"] = [
        {
            "tileMatrix": str(z),
            "minTileRow": 0,
            "maxTileRow": (1 << z) - 1,
            "minTileCol": 0,
            "maxTileCol": (1 << z) - 1,
        }
        for z in range(low, high + 1)
    ]
    return document


def tile_matrix_set() -> dict[str, Any]:
    """WebMercatorQuad as a tile matrix set document (OGC 17-083r4), zooms 0 to 18."""
    low, high = tiles.zoom_range()
    return {
        "id": WEB_MERCATOR_QUAD,
        "title": "Google Maps Compatible for the World",
        "uri": WEB_MERCATOR_QUAD_URI,
        "crs": EPSG_3857,
        "orderedAxes": ["E", "N"],
        "wellKnownScaleSet": "http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
        "tileMatrices": [
            {
                "id": str(z),
                "scaleDenominator": _SCALE_0 / (1 << z),
                "cellSize": _CELL_0 / (1 << z),
                "cornerOfOrigin": "topLeft",
                "pointOfOrigin": [-HALF_WORLD_M, HALF_WORLD_M],
                "tileWidth": TILE_SIZE_PX,
                "tileHeight": TILE_SIZE_PX,
                "matrixWidth": 1 << z,
                "matrixHeight": 1 << z,
            }
            for z in range(low, high + 1)
        ],
    }


def tile_matrix_sets_document(request: Request) -> dict[str, Any]:
    """The list of tile matrix sets: WebMercatorQuad alone."""
    path = f"/ogc/tileMatrixSets/{WEB_MERCATOR_QUAD}"
    return {
        "tileMatrixSets": [
            {
                "id": WEB_MERCATOR_QUAD,
                "title": "Google Maps Compatible for the World",
                "uri": WEB_MERCATOR_QUAD_URI,
                "links": [_link(_url(request, path), "self", JSON_MEDIA_TYPE, WEB_MERCATOR_QUAD)],
            }
        ],
        "links": [
            _link(_url(request, "/ogc/tileMatrixSets"), "self", JSON_MEDIA_TYPE, "This document")
        ],
    }


def json_answer(document: Mapping[str, Any]) -> Response:
    """A tiles document as JSON (the same ``Vary`` as the other ``/ogc`` documents)."""
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(
        body,
        media_type=JSON_MEDIA_TYPE,
        headers={"Vary": "Accept, Accept-Language, Authorization, X-API-Key"},
    )


def tile_answer(data: bytes) -> Response:
    """The tile: MVT bytes, or 204 No Content for an empty tile."""
    if not data:
        return Response(status_code=204, headers={"Vary": TILE_VARY})
    return Response(data, media_type=MVT_MEDIA_TYPE, headers={"Vary": TILE_VARY})


def tile_work(
    *,
    session: Session,
    principal: Principal,
    layer_id: str,
    z: int,
    x: int,
    y: int,
    capacity_stale_after: timedelta,
    collections_only: bool = False,
) -> Callable[[], Response]:
    """The database work and answer of one tile, for ``api.deps.in_one_hop``: shared by the OGC
    path (``collections_only``: the layers that are OGC collections) and the short ``/tiles``
    alias, which serve the same bytes."""

    def answer() -> Response:
        data = tiles.tile(
            session=session,
            principal=principal,
            layer_id=layer_id,
            z=z,
            x=x,
            y=y,
            capacity_stale_after=capacity_stale_after,
            collections_only=collections_only,
        )
        return tile_answer(data)

    return answer
