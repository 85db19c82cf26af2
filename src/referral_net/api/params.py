"""Query parameters: points, boxes and instants parsed into checked values; the search
parameters as one dependency; and the refusal of query parameters a list endpoint does not read.

The search parameters are declared once, in the signature of :func:`search_params`: FastAPI reads
them from it, the OpenAPI document shows them from it, and :func:`refuse_unknown_query` derives
the known names from it (through the route's dependency tree), as it does for every list route.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel

from referral_net import validation
from referral_net.api.deps import SettingsDep
from referral_net.api.i18n import ContentLocaleDep
from referral_net.domain.search import SearchQuery
from referral_net.errors import BadRequest, InvalidInput
from referral_net.schemas.instants import GuatemalaInstant
from referral_net.schemas.search import SearchMode
from referral_net.settings import Settings
from referral_net.vocab import GUATEMALA_TZ, Gender

# --- values -------------------------------------------------------------------------------------


def invalid(field: str, message: str) -> InvalidInput:
    """A 422 problem for one query parameter's value."""
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
        raise invalid(field, f"expected {count} comma-separated numbers")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise invalid(field, "not a number") from None
    if not all(math.isfinite(v) for v in values):
        raise invalid(field, "numbers must be finite")
    return values


def parse_point(field: str, raw: str) -> tuple[float, float]:
    """Parse ``lat,lon`` and check the WGS 84 ranges."""
    lat, lon = _numbers(field, raw, 2)
    if not -90 <= lat <= 90:
        raise invalid(field, "latitude must be between -90 and 90 (the order is lat,lon)")
    if not -180 <= lon <= 180:
        raise invalid(field, "longitude must be between -180 and 180 (the order is lat,lon)")
    return lat, lon


def parse_bbox(raw: str) -> tuple[float, float, float, float]:
    """Parse ``minLon,minLat,maxLon,maxLat``; refuse inverted boxes and antimeridian crossings."""
    min_lon, min_lat, max_lon, max_lat = _numbers("bbox", raw, 4)
    if not (-180 <= min_lon <= 180 and -180 <= max_lon <= 180):
        raise invalid("bbox", "longitudes must be between -180 and 180")
    if not (-90 <= min_lat <= 90 and -90 <= max_lat <= 90):
        raise invalid("bbox", "latitudes must be between -90 and 90")
    if min_lat > max_lat:
        raise invalid("bbox", "minimum latitude exceeds maximum latitude")
    if min_lon > max_lon:
        raise invalid(
            "bbox",
            "minimum longitude exceeds maximum longitude (boxes crossing the antimeridian are "
            "not supported)",
        )
    return min_lon, min_lat, max_lon, max_lat


def evaluation_instant(open_now: bool, open_at: datetime | None) -> datetime:
    """The instant opening hours are evaluated at; a naive open_at is Guatemala local time."""
    if open_now and open_at is not None:
        raise BadRequest("Give open_now or open_at, not both.")
    if open_at is None:
        return datetime.now(UTC)
    if open_at.tzinfo is None:
        open_at = open_at.replace(tzinfo=GUATEMALA_TZ)
    return open_at.astimezone(UTC)


# --- unknown parameters -------------------------------------------------------------------------

_QUERY_NAMES_ATTRIBUTE = "__referral_net_query_names__"


def query_parameter_names(dependant: Dependant) -> frozenset[str]:
    """Every query parameter a route reads: its own and its dependencies', at any depth.

    A query-parameter model (a Pydantic model declared as ``Query()``) contributes its fields.
    """
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        for field in current.query_params:
            annotation = field.field_info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                names.update(f.alias or name for name, f in annotation.model_fields.items())
            else:
                names.add(field.alias)
        pending.extend(current.dependencies)
    return frozenset(names)


def _route_query_names(route: APIRoute) -> frozenset[str]:
    # Computed once per route: the dependency tree is fixed when the route is made.
    names = getattr(route, _QUERY_NAMES_ATTRIBUTE, None)
    if not isinstance(names, frozenset):
        names = query_parameter_names(route.dependant)
        setattr(route, _QUERY_NAMES_ATTRIBUTE, names)
    return names


async def refuse_unknown_query(request: Request) -> None:
    """Refuse (400) a query parameter the route does not read: a misspelt filter would otherwise
    be ignored and the caller would get every record instead of the ones they asked for.

    The known names come from the route's own signature and its dependencies, so they cannot
    drift from the parameters the route actually reads.
    """
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    unknown = sorted(set(request.query_params) - _route_query_names(route))
    if unknown:
        raise BadRequest(f"Unknown query parameter(s): {', '.join(unknown)}.")


# For a list route's decorator: ``@router.get("", dependencies=[KnownQueryOnly])``. Listed first,
# it runs before authentication and before any value is checked or the database touched.
KnownQueryOnly = Depends(refuse_unknown_query)


# --- search -------------------------------------------------------------------------------------

_MODES: tuple[SearchMode, ...] = ("near", "bbox", "department", "municipality", "covers")


def _mode(**given: str | None) -> SearchMode:
    named = [mode for mode in _MODES if given[mode] is not None]
    if len(named) != 1:
        raise BadRequest(
            "Give exactly one of near, bbox, department, municipality or covers"
            + (f" (got {', '.join(named)})." if named else ".")
        )
    return named[0]


def _check_window(
    settings: Settings, *, mode: SearchMode, radius_m: float | None, limit: int, page: int
) -> None:
    """The settings' caps: the radius, the page size and how deep a page may reach."""
    if radius_m is not None and mode != "near":
        raise BadRequest("radius_m goes with near.")
    if radius_m is not None and radius_m > settings.max_radius_m:
        raise invalid("radius_m", f"may be at most {settings.max_radius_m:.0f} metres")
    if limit > settings.max_page_size:
        raise invalid("limit", f"may be at most {settings.max_page_size}")
    if page * limit > settings.max_result_window:
        raise invalid(
            "page",
            f"pages reach at most result {settings.max_result_window}; narrow the search instead",
        )


def _reference_point(near: str | None, covers: str | None) -> tuple[float | None, float | None]:
    if near is not None:
        return parse_point("near", near)
    if covers is not None:
        return parse_point("covers", covers)
    return None, None


def _language_code(language: str | None) -> str | None:
    if language is None:
        return None
    try:
        return validation.normalize_language_code(language)
    except ValueError as exc:
        raise invalid("language", str(exc)) from None


async def search_params(  # noqa: PLR0913, PLR0917 - one parameter per query parameter of search
    settings: SettingsDep,
    locale: ContentLocaleDep,
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
) -> SearchQuery:
    """The search a query string asks for, checked: exactly one mode, its filters, one page
    within the settings' caps (400 for impossible combinations, 422 for bad values)."""
    mode = _mode(
        near=near, bbox=bbox, department=department, municipality=municipality, covers=covers
    )
    _check_window(settings, mode=mode, radius_m=radius_m, limit=limit, page=page)
    latitude, longitude = _reference_point(near, covers)
    language_code = _language_code(language)
    instant = evaluation_instant(open_now, open_at)
    return SearchQuery(
        mode=mode,
        latitude=latitude,
        longitude=longitude,
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
        locale=locale,
        evaluated_at=instant,
        today=datetime.now(UTC).astimezone(GUATEMALA_TZ).date(),
        capacity_stale_after=timedelta(hours=settings.capacity_stale_hours),
        max_radius_m=settings.max_radius_m,
    )


SearchParams = Annotated[SearchQuery, Depends(search_params)]
