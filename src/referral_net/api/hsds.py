"""HSDS conventions shared by the directory's routers.

HSDS leaves absent fields out: a consumer validating against the official schemas rejects
``null`` where a string or number is expected. The directory's routes (organizations, services,
locations, services at locations, taxonomy) therefore serialise their response models without
``None`` values. Other endpoints (search, match) keep their documented ``null``s, where a null
says something ("open_now": null is "no hours known").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from referral_net.errors import BadRequest


class HsdsRoute(APIRoute):
    """A route whose response leaves out fields that are ``None`` (HSDS has no nulls)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        """Build the route as FastAPI does, with ``response_model_exclude_none`` forced on."""
        kwargs["response_model_exclude_none"] = True
        super().__init__(path, endpoint, **kwargs)


def hsds_router(*, prefix: str, tags: list[str]) -> APIRouter:
    """An ``APIRouter`` for HSDS records: every route drops ``None`` fields from responses."""
    return APIRouter(prefix=prefix, tags=list(tags), route_class=HsdsRoute)


# --- HSDS list parameters shared by the directory's lists --------------------------------------

FormatParam = Annotated[
    Literal["json", "ndjson"],
    Query(
        description="json (default): one page in the HSDS envelope. ndjson: every matching"
        " record, one JSON object per line, streamed without pagination (page/per_page refused)."
    ),
]
FullParam = Annotated[
    bool, Query(description="HSDS: fully nested records instead of the list form.")
]
UnsupportedPostcode = Annotated[
    str | None,
    Query(
        description="HSDS postcode: refused (400). Guatemala has little use for postal codes;"
        " search by point with /api/v1/search?near=lat,lon&radius_m=... instead."
    ),
]
UnsupportedProximity = Annotated[
    str | None,
    Query(
        description="HSDS proximity (metres from a postcode's centroid): refused (400), like"
        " postcode; /api/v1/search?near=...&radius_m=... answers the same question."
    ),
]

# Records per batch when streaming NDJSON: each batch is one domain page read.
NDJSON_BATCH = 200
NDJSON_MEDIA_TYPE = "application/x-ndjson"


def refuse_postcode(postcode: str | None, proximity: str | None) -> None:
    """400 for the HSDS postcode/proximity parameters, which this profile does not offer."""
    if postcode is not None or proximity is not None:
        raise BadRequest(
            "postcode and proximity are not supported (postal codes are little used in"
            " Guatemala); search by point: /api/v1/search?near=lat,lon&radius_m=metres."
        )


def check_ndjson_paging(request: Request) -> None:
    """NDJSON streams everything: a page or page size with it is a contradiction (400)."""
    given = {"page", "per_page"} & set(request.query_params)
    if given:
        raise BadRequest(
            f"format=ndjson streams every record; leave out {', '.join(sorted(given))}."
        )


def ndjson_stream(page_of: Callable[[int, int], Sequence[BaseModel]]) -> StreamingResponse:
    """Stream every record, one JSON line each, reading ``page_of(offset, limit)`` in batches
    until a batch comes back short. Lines leave ``None`` fields out, like the JSON lists.

    The first batch is read before the response starts, so a bad filter (an unknown taxonomy,
    say) is still a 4xx problem, not a stream cut short.
    """
    first = page_of(0, NDJSON_BATCH)

    def lines() -> Iterator[bytes]:
        batch, offset = first, 0
        while True:
            for record in batch:
                yield record.model_dump_json(exclude_none=True).encode() + b"\n"
            if len(batch) < NDJSON_BATCH:
                return
            offset += NDJSON_BATCH
            batch = page_of(offset, NDJSON_BATCH)

    return StreamingResponse(lines(), media_type=NDJSON_MEDIA_TYPE)
