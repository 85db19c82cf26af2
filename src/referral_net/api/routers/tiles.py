"""``/tiles/{layer}/{z}/{x}/{y}.mvt``: the short form of the OGC tile path (note the x/y order),
serving the same bytes (``domain.tiles``; docs/tiles.md)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Response

from referral_net.api import tile_views
from referral_net.api.deps import PrincipalDep, SessionDep, SettingsDep, in_one_hop
from referral_net.api.params import KnownQueryOnly
from referral_net.schemas.common import PROBLEM_RESPONSES

router = APIRouter(
    prefix="/tiles", tags=["tiles"], dependencies=[KnownQueryOnly], responses=PROBLEM_RESPONSES
)


@router.get(
    "/{layer}/{z}/{x}/{y}.mvt",
    summary="One vector tile (XYZ)",
    response_class=Response,
    responses={
        200: {
            "description": "The tile (Mapbox Vector Tile).",
            "content": {
                tile_views.MVT_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}
            },
        },
        204: {"description": "An empty tile: no feature of the layer in it."},
    },
)
async def tile(
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    layer: Annotated[
        str,
        Path(
            description="services, departments, municipalities, places or lakes",
            examples=["places"],
        ),
    ],
    z: Annotated[int, Path(description="Zoom, 0-18.", examples=[12])],
    x: Annotated[int, Path(description="Column from the west, 0 to 2^z - 1.", examples=[1006])],
    y: Annotated[int, Path(description="Row from the north, 0 to 2^z - 1.", examples=[1877])],
) -> Response:
    """The same tile as ``/ogc/collections/{layer}/tiles/WebMercatorQuad/{z}/{y}/{x}``."""
    work = tile_views.tile_work(
        session=session,
        principal=principal,
        layer_id=layer,
        z=z,
        x=x,
        y=y,
        capacity_stale_after=timedelta(hours=settings.capacity_stale_hours),
    )
    return await in_one_hop(session, work, response.headers.raw)
