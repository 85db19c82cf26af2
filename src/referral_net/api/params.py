"""Query parameters: points, boxes and instants parsed into checked values; the search
parameters read in one step; and the refusal of query parameters a list endpoint does not read.

The search parameters are declared once, as the model :class:`SearchQueryParameters`:
:func:`search_request` validates the query string as that model in one step, the route's OpenAPI
parameters are written from it (:func:`query_model_parameters`), and :func:`refuse_unknown_query`
knows its names (:func:`reads_query_model`, on the endpoint), as it knows every list route's own
parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Literal, TypeVar, get_args, get_origin

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo
from starlette.datastructures import QueryParams

from referral_net import validation
from referral_net.domain.search import SearchQuery
from referral_net.errors import BadRequest, InvalidInput
from referral_net.schemas.instants import GuatemalaInstant
from referral_net.schemas.search import SearchMode
from referral_net.settings import Settings
from referral_net.vocab import GUATEMALA_TZ, Gender, Locale

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
_QUERY_MODEL_ATTRIBUTE = "__referral_net_query_model__"


def query_parameter_names(dependant: Dependant) -> frozenset[str]:
    """Every query parameter a route reads: its own and its dependencies', at any depth.

    A query-parameter model contributes its fields: one declared as ``Query()``, or one a
    dependency reads itself (:func:`reads_query_model`).
    """
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        for field in current.query_params:
            annotation = field.field_info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                names.update(_model_names(annotation))
            else:
                names.add(field.alias)
        read_model = getattr(current.call, _QUERY_MODEL_ATTRIBUTE, None)
        if read_model is not None:
            names.update(_model_names(read_model))
        pending.extend(current.dependencies)
    return frozenset(names)


def _model_names(model: type[BaseModel]) -> set[str]:
    """The query parameter names of a model's fields (their aliases where they have one)."""
    return {field.alias or name for name, field in model.model_fields.items()}


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


# --- query-parameter models -----------------------------------------------------------------------

ModelT = TypeVar("ModelT", bound=BaseModel)
CallT = TypeVar("CallT", bound=Callable[..., object])


def reads_query_model(model: type[BaseModel]) -> Callable[[CallT], CallT]:
    """Mark a dependency that reads its query parameters as ``model`` (:func:`parse_query`), so
    that :func:`query_parameter_names` knows them (FastAPI does not: they are not parameters
    of the dependency's signature)."""

    def mark(call: CallT) -> CallT:
        setattr(call, _QUERY_MODEL_ATTRIBUTE, model)
        return call

    return mark


def _is_list_field(field: FieldInfo) -> bool:
    return any(
        get_origin(option) is list for option in (field.annotation, *get_args(field.annotation))
    )


@cache
def _list_fields(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(
        field.alias or name for name, field in model.model_fields.items() if _is_list_field(field)
    )


def parse_query(model: type[ModelT], query: QueryParams) -> ModelT:
    """The query string as ``model``, validated in one step (a 422 naming each bad parameter).

    FastAPI can read a query-parameter model itself, but it extracts and inspects each field
    on every request (for the search's 19, about 0.15 ms of the 0.83 ms its request path cost
    outside the database, measured in-process: docs/performance.md); pydantic-core validates
    the whole mapping at once. As FastAPI does, a repeated parameter gives a list field all its
    values and any other field its last one, and an empty value is validated as given.
    """
    lists = _list_fields(model)
    given = {name: query.getlist(name) if name in lists else query[name] for name in query}
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("query", *error["loc"])} for error in exc.errors(include_url=False)]
        ) from None


def query_model_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The OpenAPI parameters of a query-parameter model, as FastAPI writes a route's own
    (name, ``in``, ``required``, the field's JSON schema, its description), for a route's
    ``openapi_extra``: the dependency that parses them declares none FastAPI could see."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    required = set(schema.get("required", ()))
    parameters: list[dict[str, Any]] = []
    for name, property_schema in schema["properties"].items():
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": property_schema,
        }
        if "description" in property_schema:
            parameter["description"] = property_schema["description"]
        parameters.append(parameter)
    return parameters


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


class SearchQueryParameters(BaseModel):
    """The query string of ``GET /api/v1/search``, as given: one model, validated in one step
    (:func:`parse_query`); :func:`search_params` checks how the values combine."""

    model_config = ConfigDict(frozen=True)

    f: Literal["json", "geojson"] | None = Field(
        None, description="Answer format; else chosen by Accept (application/geo+json)."
    )
    near: str | None = Field(
        None, description="lat,lon: nearest first, with distances.", examples=["14.8347,-91.5181"]
    )
    radius_m: float | None = Field(None, gt=0, description="With near: metres.")
    bbox: str | None = Field(
        None, description="minLon,minLat,maxLon,maxLat", examples=["-91.6,14.7,-91.4,14.9"]
    )
    department: str | None = Field(None, pattern=r"^\d{2}$", examples=["09"])
    municipality: str | None = Field(None, pattern=r"^\d{4}$", examples=["0901"])
    covers: str | None = Field(
        None,
        description="lat,lon: services whose service area contains the point.",
        examples=["15.3197,-91.4710"],
    )
    category: list[str] | None = Field(
        None,
        description="Taxonomy code, repeatable; a parent includes its descendants.",
        examples=[["protection.shelter"]],
    )
    language: str | None = Field(None, description="ISO 639-1 or 639-3", examples=["mam"])
    age: int | None = Field(None, ge=0, le=120)
    gender: Gender | None = None
    lgbtiq_affirming: bool | None = None
    accepts_children: bool | None = None
    open_now: bool = False
    open_at: GuatemalaInstant | None = Field(
        None, description="ISO 8601; a naive time is Guatemala time."
    )
    has_capacity: bool | None = None
    q: str | None = Field(None, max_length=200, description="Text; accents and case are ignored.")
    verified_within_days: int | None = Field(None, ge=1, le=3650)
    limit: int = Field(10, ge=1, description="Results per page (capped).")
    page: int = Field(1, ge=1, le=100_000)


@dataclass(frozen=True)
class SearchRequest:
    """A search as asked: the checked query, and the format its ``f`` names (None: by Accept)."""

    query: SearchQuery
    answer_format: Literal["json", "geojson"] | None


def search_request(request: Request, locale: Locale) -> SearchRequest:
    """The search a query string asks for, checked: exactly one mode, its filters, one page
    within the settings' caps (400 for impossible combinations, 422 for bad values).

    Called by the search endpoint itself, which declares no dependencies (``api/hot_reads.py``);
    the settings come from the application.
    """
    given = parse_query(SearchQueryParameters, request.query_params)
    settings: Settings = request.app.state.settings
    mode = _mode(
        near=given.near,
        bbox=given.bbox,
        department=given.department,
        municipality=given.municipality,
        covers=given.covers,
    )
    _check_window(settings, mode=mode, radius_m=given.radius_m, limit=given.limit, page=given.page)
    latitude, longitude = _reference_point(given.near, given.covers)
    language_code = _language_code(given.language)
    instant = evaluation_instant(given.open_now, given.open_at)
    query = SearchQuery(
        mode=mode,
        latitude=latitude,
        longitude=longitude,
        radius_m=given.radius_m,
        box=parse_bbox(given.bbox) if given.bbox is not None else None,
        area_code=given.department or given.municipality,
        categories=tuple(given.category or ()),
        language=language_code,
        age=given.age,
        gender=given.gender,
        lgbtiq_affirming=given.lgbtiq_affirming,
        accepts_children=given.accepts_children,
        open_at=instant if (given.open_now or given.open_at is not None) else None,
        has_capacity=given.has_capacity,
        text=given.q,
        verified_within_days=given.verified_within_days,
        limit=given.limit,
        page=given.page,
        locale=locale,
        evaluated_at=instant,
        today=datetime.now(UTC).astimezone(GUATEMALA_TZ).date(),
        capacity_stale_after=timedelta(hours=settings.capacity_stale_hours),
        max_radius_m=settings.max_radius_m,
    )
    return SearchRequest(query=query, answer_format=given.f)
