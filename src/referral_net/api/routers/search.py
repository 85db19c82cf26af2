"""``GET /api/v1/search``: parse and check the query, run the domain search, return a page."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from referral_net import validation
from referral_net.api.deps import PrincipalDep, SessionDep, SettingsDep
from referral_net.api.i18n import LocaleDep
from referral_net.api.routers.services import evaluation_instant
from referral_net.domain import search as search_domain
from referral_net.errors import BadRequest, InvalidInput
from referral_net.schemas.instants import GuatemalaInstant
from referral_net.schemas.search import SearchMode, SearchPage
from referral_net.vocab import GUATEMALA_TZ, Gender

router = APIRouter(prefix="/api/v1", tags=["search"])

_MODES = ("near", "bbox", "department", "municipality", "covers")


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"{field}: {message}",
        errors=[
            {
                "field": f"query.{field}",
                "location": "query",
                "message": message,
                "type": "value_error",
            }
        ],
    )


def _numbers(field: str, raw: str, count: int) -> list[float]:
    parts = raw.split(",")
    if len(parts) != count:
        raise _invalid(field, f"expected {count} comma-separated numbers")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise _invalid(field, "not a number") from None
    if not all(math.isfinite(v) for v in values):
        raise _invalid(field, "numbers must be finite")
    return values


def parse_point(field: str, raw: str) -> tuple[float, float]:
    """Parse ``lat,lon`` and check the WGS 84 ranges."""
    lat, lon = _numbers(field, raw, 2)
    if not -90 <= lat <= 90:
        raise _invalid(field, "latitude must be between -90 and 90 (the order is lat,lon)")
    if not -180 <= lon <= 180:
        raise _invalid(field, "longitude must be between -180 and 180 (the order is lat,lon)")
    return lat, lon


def parse_bbox(raw: str) -> tuple[float, float, float, float]:
    """Parse ``minLon,minLat,maxLon,maxLat``; refuse inverted boxes and antimeridian crossings."""
    min_lon, min_lat, max_lon, max_lat = _numbers("bbox", raw, 4)
    if not (-180 <= min_lon <= 180 and -180 <= max_lon <= 180):
        raise _invalid("bbox", "longitudes must be between -180 and 180")
    if not (-90 <= min_lat <= 90 and -90 <= max_lat <= 90):
        raise _invalid("bbox", "latitudes must be between -90 and 90")
    if min_lat > max_lat:
        raise _invalid("bbox", "minimum latitude exceeds maximum latitude")
    if min_lon > max_lon:
        raise _invalid(
            "bbox",
            "minimum longitude exceeds maximum longitude (boxes crossing the antimeridian are "
            "not supported)",
        )
    return min_lon, min_lat, max_lon, max_lat


_ALLOWED = frozenset(
    {
        *_MODES,
        "radius_m",
        "category",
        "language",
        "age",
        "gender",
        "lgbtiq_affirming",
        "accepts_children",
        "open_now",
        "open_at",
        "has_capacity",
        "q",
        "verified_within_days",
        "limit",
        "page",
    }
)


@router.get(
    "/search",
    summary="Search services at locations: nearest, radius, bbox, area or coverage, with filters",
    response_model=SearchPage,
)
def search(
    request: Request,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    locale: LocaleDep,
    near: Annotated[
        str | None,
        Query(description="lat,lon: nearest first, with distances.", examples=["14.8347,-91.5181"]),
    ] = None,
    radius_m: Annotated[float | None, Query(gt=0, description="With near: metres.")] = None,
    bbox: Annotated[
        str | None,
        Query(description="minLon,minLat,maxLon,maxLat", examples=["-91.6,14.7,-91.4,14.9"]),
    ] = None,
    department: Annotated[str | None, Query(pattern=r"^\d{2}$", examples=["09"])] = None,
    municipality: Annotated[str | None, Query(pattern=r"^\d{4}$", examples=["0901"])] = None,
    covers: Annotated[
        str | None,
        Query(
            description="lat,lon: services whose service area contains the point.",
            examples=["15.3197,-91.4710"],
        ),
    ] = None,
    category: Annotated[
        list[str] | None,
        Query(
            description="Taxonomy code, repeatable; a parent includes its descendants.",
            examples=[["protection.shelter"]],
        ),
    ] = None,
    language: Annotated[
        str | None, Query(description="ISO 639-1 or 639-3", examples=["mam"])
    ] = None,
    age: Annotated[int | None, Query(ge=0, le=120)] = None,
    gender: Gender | None = None,
    lgbtiq_affirming: bool | None = None,
    accepts_children: bool | None = None,
    open_now: bool = False,
    open_at: Annotated[
        GuatemalaInstant | None, Query(description="ISO 8601; a naive time is Guatemala time.")
    ] = None,
    has_capacity: bool | None = None,
    q: Annotated[
        str | None, Query(max_length=200, description="Text; accents and case are ignored.")
    ] = None,
    verified_within_days: Annotated[int | None, Query(ge=1, le=3650)] = None,
    limit: Annotated[int, Query(ge=1, description="Results per page (capped).")] = 10,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> SearchPage:
    """Find services at locations for one geometric mode and any filters (combined with AND).

    Distances are geodesic metres on WGS 84. Restricted sites are placed at their
    municipality's representative point for audiences that may not see them exactly;
    confidential ones do not exist for those audiences. Bad queries get a 400/422 problem.
    """
    unknown = sorted(set(request.query_params) - _ALLOWED)
    if unknown:
        raise BadRequest(f"Unknown query parameter(s): {', '.join(unknown)}.")
    given = [
        name
        for name, value in zip(_MODES, (near, bbox, department, municipality, covers), strict=True)
        if value is not None
    ]
    if len(given) != 1:
        raise BadRequest(
            "Give exactly one of near, bbox, department, municipality or covers"
            + (f" (got {', '.join(given)})." if given else ".")
        )
    mode: SearchMode = given[0]  # type: ignore[assignment]
    if radius_m is not None and mode != "near":
        raise BadRequest("radius_m goes with near.")
    if radius_m is not None and radius_m > settings.max_radius_m:
        raise _invalid("radius_m", f"may be at most {settings.max_radius_m:.0f} metres")
    if limit > settings.max_page_size:
        raise _invalid("limit", f"may be at most {settings.max_page_size}")
    if page * limit > settings.max_result_window:
        raise _invalid(
            "page",
            f"pages reach at most result {settings.max_result_window}; narrow the search instead",
        )
    lat = lon = None
    if near is not None:
        lat, lon = parse_point("near", near)
    if covers is not None:
        lat, lon = parse_point("covers", covers)
    language_code = None
    if language is not None:
        try:
            language_code = validation.normalize_language_code(language)
        except ValueError as exc:
            raise _invalid("language", str(exc)) from None
    instant = evaluation_instant(open_now, open_at)
    query = search_domain.SearchQuery(
        mode=mode,
        latitude=lat,
        longitude=lon,
        radius_m=radius_m,
        box=parse_bbox(bbox) if bbox is not None else None,
        area_code=department or municipality,
        categories=tuple(category or ()),
        language=language_code,
        age=age,
        gender=gender,
        lgbtiq_affirming=lgbtiq_affirming,
        accepts_children=accepts_children,
        open_at=instant if (open_now or open_at is not None) else None,
        has_capacity=has_capacity,
        text=q,
        verified_within_days=verified_within_days,
        limit=limit,
        page=page,
        locale="en" if locale == "en" else "es",
        evaluated_at=instant,
        today=datetime.now(UTC).astimezone(GUATEMALA_TZ).date(),
        capacity_stale_after=timedelta(hours=settings.capacity_stale_hours),
        max_radius_m=settings.max_radius_m,
    )
    response.headers["Content-Language"] = locale
    return search_domain.search(session=session, principal=principal, query=query)
