"""``/ogc``: OGC API - Features Part 1 over ``domain.ogc`` (documents: ``api/ogc_views.py``).

Every route refuses a query parameter it does not read (400 problem+json); ``services`` goes
through search and its one visibility rule, for the caller ``PrincipalDep`` finds (a staff token,
a partner key or the public).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.openapi.utils import get_openapi

from referral_net import __version__
from referral_net.api import ogc_views, openapi_document, tile_views
from referral_net.api.deps import PrincipalDep, SessionDep, SettingsDep, in_one_hop
from referral_net.api.i18n import LocaleDep
from referral_net.api.params import KnownQueryOnly, parse_bbox
from referral_net.domain import ogc
from referral_net.schemas.common import PROBLEM_RESPONSES
from referral_net.schemas.features import GEOJSON_MEDIA_TYPE

router = APIRouter(
    prefix="/ogc", tags=["ogc"], dependencies=[KnownQueryOnly], responses=PROBLEM_RESPONSES
)

FormatParam = Annotated[
    str | None,
    Query(
        description="json (or geojson) or html; without it, the Accept header decides.",
        json_schema_extra={"enum": ["json", "geojson", "html"]},
    ),
]
_JSON = {
    "description": "The document (JSON), or its HTML view with f=html.",
    "content": {"application/json": {}, "text/html": {}},
}
_GEOJSON = {
    "description": "GeoJSON (application/geo+json), or its HTML view with f=html.",
    "content": {GEOJSON_MEDIA_TYPE: {}, "text/html": {}},
}


@router.get("", summary="OGC API - Features landing page", responses={200: _JSON})
def landing(request: Request, f: FormatParam = None) -> Response:
    """Links to the API definition, the conformance declaration and the collections."""
    fmt = ogc_views.response_format(request, f)
    document = ogc_views.landing(request, fmt)
    return ogc_views.answer(request, document, fmt, template="landing.html", title="OGC API")


@router.get("/conformance", summary="Conformance classes", responses={200: _JSON})
def conformance(request: Request, f: FormatParam = None) -> Response:
    """Core, GeoJSON, OpenAPI 3.0 and HTML of OGC API - Features Part 1."""
    fmt = ogc_views.response_format(request, f)
    document = ogc_views.conformance(request, fmt)
    return ogc_views.answer(
        request, document, fmt, template="conformance.html", title="Conformance"
    )


@router.get(
    "/api",
    summary="The OpenAPI 3.0 document of the /ogc routes",
    responses={200: {"content": {ogc_views.OPENAPI_MEDIA_TYPE: {}}}},
)
def api_definition(
    request: Request, f: Annotated[str | None, Query(pattern="^json$")] = None
) -> Response:
    """The /ogc routes alone, self-contained (no remote ``$ref``)."""
    document: dict[str, Any] = get_openapi(
        title="referral-net: OGC API - Features",
        version=__version__,
        openapi_version="3.0.3",
        description="OGC API - Features Part 1: core, GeoJSON, OpenAPI 3.0 and HTML.",
        routes=router.routes,
    )
    # Errors documented as sent (application/problem+json), and the 503 every route may answer,
    # as in /openapi.json; every /ogc route only reads, so no 409.
    return ogc_views.openapi_answer(openapi_document.complete(document, reads_only=set()))


@router.get("/collections", summary="The collections", responses={200: _JSON})
def collections(request: Request, f: FormatParam = None) -> Response:
    """services, departments, municipalities and places."""
    fmt = ogc_views.response_format(request, f)
    document = ogc_views.collections_document(request, ogc.collections(), fmt)
    return ogc_views.answer(
        request, document, fmt, template="collections.html", title="Collections"
    )


@router.get("/collections/{collection_id}", summary="One collection", responses={200: _JSON})
def collection(request: Request, collection_id: str, f: FormatParam = None) -> Response:
    """Its extent (CRS84), item type and links."""
    fmt = ogc_views.response_format(request, f)
    target = ogc.collection(collection_id)
    document = ogc_views.collection_document(request, target, fmt)
    return ogc_views.answer(request, document, fmt, template="collection.html", title=target.title)


@router.get(
    "/collections/services/queryables",
    summary="The queryables of services (JSON Schema)",
    responses={200: {"content": {"application/schema+json": {}, "text/html": {}}}},
)
def queryables(request: Request, f: FormatParam = None) -> Response:
    """category, language, age and open_now: the property filters services' items take."""
    fmt = ogc_views.response_format(request, f)
    document = ogc_views.queryables_document(request, ogc.services_queryables())
    return ogc_views.answer(
        request,
        document,
        fmt,
        template="queryables.html",
        title="Queryables of services",
        json_type="application/schema+json",
    )


@router.get(
    "/collections/{collection_id}/items",
    summary="Features of a collection",
    responses={200: _GEOJSON},
)
async def items(  # noqa: PLR0913 - one parameter per query parameter of the standard and the filters
    request: Request,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    locale: LocaleDep,
    collection_id: str,
    bbox: Annotated[
        str | None,
        Query(
            description="minLon,minLat,maxLon,maxLat (CRS84)", examples=["-91.6,14.7,-91.4,14.9"]
        ),
    ] = None,
    limit: Annotated[
        int,
        Query(
            ge=1,
            description=f"Features per page, at most {ogc.MAX_LIMIT:,} (more is a 400).",
            json_schema_extra={"maximum": ogc.MAX_LIMIT},
        ),
    ] = ogc.DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Features to skip.")] = 0,
    datetime: Annotated[
        str | None,
        Query(description="Accepted for conformance; no feature has a time, so all match."),
    ] = None,
    category: Annotated[
        str | None, Query(description="services: taxonomy code(s), comma-separated.")
    ] = None,
    language: Annotated[str | None, Query(description="services: ISO 639-1 or 639-3.")] = None,
    age: Annotated[int | None, Query(ge=0, le=120, description="services: served age.")] = None,
    open_now: Annotated[bool | None, Query(description="services: true, open now.")] = None,
    code: Annotated[
        str | None, Query(pattern=r"^\d{2}(\d{2})?$", description="areas: INE code.")
    ] = None,
    department_code: Annotated[
        str | None, Query(pattern=r"^\d{2}$", description="municipalities: department code.")
    ] = None,
    f: FormatParam = None,
) -> Response:
    """A page of features (GeoJSON FeatureCollection) with numberMatched, numberReturned,
    timeStamp and next/prev links; the property filters each collection takes are its own."""
    fmt = ogc_views.response_format(request, f)
    filters = ogc.Filters(
        category=tuple(c for c in (category or "").split(",") if c),
        language=language,
        age=age,
        open_now=open_now,
        code=code,
        department_code=department_code,
    )
    asked = ogc.ItemsRequest(
        collection=collection_id,
        bbox=parse_bbox(bbox) if bbox is not None else None,
        limit=limit,
        offset=offset,
        filters=filters,
        locale=locale,
        capacity_stale_after=timedelta(hours=settings.capacity_stale_hours),
    )

    def answer() -> Response:
        page = ogc.items(session=session, principal=principal, request=asked)
        document = ogc_views.items_document(
            request, collection_id, page, fmt, limit=limit, offset=offset
        )
        return ogc_views.answer(
            request,
            document,
            fmt,
            template="items.html",
            title=f"Items of {collection_id}",
            json_type=GEOJSON_MEDIA_TYPE,
            collection_id=collection_id,
        )

    return await in_one_hop(session, answer, response.headers.raw)


@router.get(
    "/collections/{collection_id}/items/{feature_id}",
    summary="One feature",
    responses={200: _GEOJSON},
)
async def item(
    request: Request,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    locale: LocaleDep,
    collection_id: str,
    feature_id: str,
    f: FormatParam = None,
) -> Response:
    """One feature; 404 if unknown or not the caller's to know about."""
    fmt = ogc_views.response_format(request, f)

    def answer() -> Response:
        feature = ogc.item(
            session=session,
            principal=principal,
            collection_id=collection_id,
            feature_id=feature_id,
            locale=locale,
        )
        document = ogc_views.item_document(request, collection_id, feature, fmt)
        return ogc_views.answer(
            request,
            document,
            fmt,
            template="item.html",
            title=str(document["properties"].get("name") or document["id"]),
            json_type=GEOJSON_MEDIA_TYPE,
        )

    return await in_one_hop(session, answer, response.headers.raw)


# --- OGC API - Tiles (docs/tiles.md) -------------------------------------------------------------

_TILES_JSON = {"description": "The document (JSON).", "content": {"application/json": {}}}
_MVT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The tile (Mapbox Vector Tile).",
        "content": {tile_views.MVT_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    },
    204: {"description": "An empty tile: no feature of the layer in it."},
}
CollectionPath = Annotated[
    str, Path(description="services, departments, municipalities or places", examples=["services"])
]
ZoomPath = Annotated[int, Path(description="Zoom (tile matrix), 0-18.", examples=[12])]
RowPath = Annotated[int, Path(description="Row from the north, 0 to 2^z - 1.", examples=[1877])]
ColumnPath = Annotated[
    int, Path(description="Column from the west, 0 to 2^z - 1.", examples=[1006])
]


@router.get("/tileMatrixSets", summary="The tile matrix sets", responses={200: _TILES_JSON})
def tile_matrix_sets(request: Request) -> Response:
    """WebMercatorQuad alone."""
    return tile_views.json_answer(tile_views.tile_matrix_sets_document(request))


@router.get(
    "/tileMatrixSets/WebMercatorQuad",
    summary="The WebMercatorQuad tile matrix set",
    responses={200: _TILES_JSON},
)
def web_mercator_quad() -> Response:
    """Its tile matrices, zooms 0 to 18."""
    return tile_views.json_answer(tile_views.tile_matrix_set())


@router.get(
    "/collections/{collection_id}/tiles",
    summary="The tilesets of a collection",
    responses={200: _TILES_JSON},
)
def tilesets(request: Request, collection_id: CollectionPath) -> Response:
    """One vector tileset (Mapbox Vector Tiles on WebMercatorQuad)."""
    return tile_views.json_answer(tile_views.tilesets_document(request, collection_id))


@router.get(
    "/collections/{collection_id}/tiles/WebMercatorQuad",
    summary="Tileset metadata of a collection",
    responses={200: _TILES_JSON},
)
def tileset(request: Request, collection_id: CollectionPath) -> Response:
    """The tile URL template, its vector layer and the zooms served."""
    return tile_views.json_answer(tile_views.tileset_document(request, collection_id))


@router.get(
    "/collections/{collection_id}/tiles/WebMercatorQuad/{z}/{y}/{x}",
    summary="One vector tile of a collection",
    response_class=Response,
    responses=_MVT,
)
async def collection_tile(
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    collection_id: CollectionPath,
    z: ZoomPath,
    y: RowPath,
    x: ColumnPath,
) -> Response:
    """A Mapbox Vector Tile (204 when empty; 404 outside zooms 0-18 or the matrix)."""
    work = tile_views.tile_work(
        session=session,
        principal=principal,
        layer_id=collection_id,
        z=z,
        x=x,
        y=y,
        capacity_stale_after=timedelta(hours=settings.capacity_stale_hours),
        collections_only=True,
    )
    return await in_one_hop(session, work, response.headers.raw)
