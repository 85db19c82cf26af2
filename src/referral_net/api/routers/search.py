"""``GET /api/v1/search``: the checked query (``api.params.search_request``), then the domain;
the page as JSON, or as GeoJSON (``f=geojson`` or ``Accept: application/geo+json``).

The hottest route: it declares no FastAPI dependencies and opens its caller, session and rate
limit in one call (``api/hot_reads.py``, measured in docs/performance.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from referral_net.api import hot_reads
from referral_net.api.deps import in_one_hop
from referral_net.api.i18n import negotiate_locale
from referral_net.api.negotiation import choose
from referral_net.api.params import SearchQueryParameters, search_request
from referral_net.domain import search as search_domain
from referral_net.schemas.features import (
    GEOJSON_MEDIA_TYPE,
    feature_collection,
    feature_collection_schema,
    service_feature,
)
from referral_net.schemas.search import SearchPage, page_json

router = APIRouter(prefix="/api/v1", tags=["search"])

FORMATS = {"json": "application/json", "geojson": GEOJSON_MEDIA_TYPE}


def _as_json(page: Mapping[str, Any]) -> Response:
    # What FastAPI would send for response_model=SearchPage, without building the models
    # (page_json writes the same bytes; tests/test_search_documents.py).
    return Response(
        content=page_json(page), media_type="application/json", headers={"Vary": "Accept"}
    )


def _as_geojson(page: Mapping[str, Any]) -> Response:
    collection = feature_collection(
        (service_feature(result) for result in page["contents"]),
        total_items=page["total_items"],
        total_is_lower_bound=page["total_is_lower_bound"],
        page_number=page["page_number"],
        limit=page["limit"],
    )
    return Response(
        content=orjson.dumps(collection), media_type=GEOJSON_MEDIA_TYPE, headers={"Vary": "Accept"}
    )


@router.get(
    "/search",
    summary="Search services at locations: nearest, radius, bbox, area or coverage, with filters",
    response_model=SearchPage,
    responses={
        200: {
            "content": {GEOJSON_MEDIA_TYPE: {"schema": feature_collection_schema()}},
            "description": "The page as JSON, or as a GeoJSON FeatureCollection (RFC 7946).",
        }
    },
    openapi_extra=hot_reads.openapi_extra(SearchQueryParameters),
)
@hot_reads.explicit_context(SearchQueryParameters)
async def search(request: Request) -> Response:
    """Find services at locations for one geometric mode and any filters (combined with AND).

    Distances are geodesic metres on WGS 84. Restricted sites are placed at their
    municipality's representative point for audiences that may not see them exactly;
    confidential ones do not exist for those audiences. Bad queries get a 400/422 problem.
    The GeoJSON form has one Feature per result (docs/geojson.md).
    """
    async with hot_reads.rate_limited_caller(request) as caller:
        locale = negotiate_locale(request.headers.get("accept-language"))
        asked = search_request(request, locale)
        chosen = choose(
            FORMATS, f=asked.answer_format, accept=request.headers.get("accept"), default="json"
        )
        shape = _as_geojson if chosen == "geojson" else _as_json

        def answer() -> Response:
            return shape(
                search_domain.search_page(
                    session=caller.session, principal=caller.principal, query=asked.query
                )
            )

        return await in_one_hop(caller.session, answer, [(b"content-language", locale.encode())])
