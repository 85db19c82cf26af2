"""OGC API - Features Part 1 (issue 16): the collections, their items and single features.

Three collections:

    services        one feature per service at a location, read through search
                    (``domain.search.search``), so the one visibility rule decides what exists
                    and where: a restricted site at its municipality's point (precision
                    municipality, intake phone only), a confidential one nowhere for the public
                    and partners; shaped by ``schemas.features.service_feature``
    departments     the ``admin_area`` polygons of level department
    municipalities  the ``admin_area`` polygons of level municipality
    places          the gazetteer's towns (``geo.places``, GeoNames): a name and a population

Nothing here writes SQL over the location table. The areas' box test is ``db.dialect``'s
``area_in_box``; everything else about areas is portable. Links, media types and HTML are the web
layer's (``api/ogc_views.py``).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any, Literal

from geoalchemy2.shape import to_shape
from sqlalchemy import func
from sqlmodel import Session, col, select

from referral_net import validation
from referral_net.db import dialect
from referral_net.db.models import AdminArea
from referral_net.domain import search as search_domain
from referral_net.domain.search import SearchQuery
from referral_net.errors import BadRequest, InvalidInput, NotFound
from referral_net.geo import places as gazetteer
from referral_net.geo.convert import to_geojson
from referral_net.geo.country import guatemala_outline
from referral_net.schemas.features import service_feature
from referral_net.security.roles import Principal
from referral_net.vocab import GUATEMALA_TZ, Locale

CollectionId = Literal["services", "departments", "municipalities", "places"]
COLLECTION_IDS: tuple[CollectionId, ...] = ("services", "departments", "municipalities", "places")

DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000
_WORLD = (-180.0, -90.0, 180.0, 90.0)
_NOT_FOUND = "No such feature in this collection."

# The property filters of each collection (its queryables, and the only ones it takes).
SERVICE_FILTERS = ("category", "language", "age", "open_now")
AREA_FILTERS: dict[str, tuple[str, ...]] = {
    "departments": ("code",),
    "municipalities": ("code", "department_code"),
}


@dataclass(frozen=True)
class Collection:
    """What the collection documents say about one collection."""

    id: CollectionId
    title: str
    description: str
    geometry: Literal["point", "multipolygon"]
    extent: tuple[float, float, float, float]
    filters: tuple[str, ...]


@dataclass(frozen=True)
class Filters:
    """The property filters of an items request (None: not given)."""

    category: tuple[str, ...] = ()
    language: str | None = None
    age: int | None = None
    open_now: bool | None = None
    code: str | None = None
    department_code: str | None = None

    def given(self) -> list[str]:
        """The names of the filters given."""
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) not in (None, ())]


@dataclass(frozen=True)
class ItemsRequest:
    """One items request, checked for its shape by the web layer (bbox parsed, limit in range)."""

    collection: str
    bbox: tuple[float, float, float, float] | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    filters: Filters = field(default_factory=Filters)
    locale: Locale = "es"
    capacity_stale_after: timedelta = timedelta(hours=72)


@dataclass(frozen=True)
class ItemsPage:
    """One page of features. ``number_matched`` is None when only a lower bound is known (search
    counts up to a cap), in which case ``has_more`` says whether a next page may hold more."""

    features: list[dict[str, Any]]
    number_matched: int | None
    has_more: bool
    time_stamp: datetime


@cache
def _country_extent() -> tuple[float, float, float, float]:
    """Guatemala's bounding box, rounded outwards (the same for every audience: an extent taken
    from the sites themselves would move when a hidden one is added)."""
    min_lon, min_lat, max_lon, max_lat = guatemala_outline().bounds
    return (
        _round(min_lon, down=True),
        _round(min_lat, down=True),
        _round(max_lon, down=False),
        _round(max_lat, down=False),
    )


def _round(value: float, *, down: bool) -> float:
    step = 100.0
    scaled = value * step
    whole = int(scaled) if scaled >= 0 else -int(-scaled)
    if down and whole > scaled:
        whole -= 1
    if not down and whole < scaled:
        whole += 1
    return whole / step


def collections() -> list[Collection]:
    """The four collections, in a fixed order."""
    extent = _country_extent()
    return [
        Collection(
            id="services",
            title="Services at locations",
            description="One feature per service at a location, placed as the caller may see"
            " it: restricted sites at their municipality's point (precision municipality).",
            geometry="point",
            extent=extent,
            filters=SERVICE_FILTERS,
        ),
        Collection(
            id="departments",
            title="Departments",
            description="Guatemala's 22 departments (OCHA / CONRED boundaries, INE codes).",
            geometry="multipolygon",
            extent=extent,
            filters=AREA_FILTERS["departments"],
        ),
        Collection(
            id="municipalities",
            title="Municipalities",
            description="Guatemala's municipalities (OCHA / CONRED boundaries, INE codes).",
            geometry="multipolygon",
            extent=extent,
            filters=AREA_FILTERS["municipalities"],
        ),
        Collection(
            id="places",
            title="Places",
            description="Town names of the gazetteer (GeoNames): name and population.",
            geometry="point",
            extent=extent,
            filters=(),
        ),
    ]


def collection(collection_id: str) -> Collection:
    """One collection by id; NotFound (404) for an unknown one."""
    for known in collections():
        if known.id == collection_id:
            return known
    raise NotFound("No such collection.")


def services_queryables() -> dict[str, dict[str, Any]]:
    """The properties of ``services`` a request may filter on, as JSON Schema properties."""
    return {
        "category": {
            "type": "string",
            "title": "Category code",
            "description": "A taxonomy code (e.g. protection.shelter); a parent includes its"
            " descendants; several codes separated by commas match any of them.",
        },
        "language": {
            "type": "string",
            "title": "Language",
            "description": "ISO 639-1 or 639-3 code of a language the service offers.",
        },
        "age": {
            "type": "integer",
            "minimum": 0,
            "maximum": 120,
            "title": "Age",
            "description": "Services that serve a person of this age.",
        },
        "open_now": {
            "type": "boolean",
            "title": "Open now",
            "description": "true: services open now (Guatemala time). Only true is accepted.",
        },
    }


def _check_filters(target: Collection, filters: Filters) -> None:
    wrong = [name for name in filters.given() if name not in target.filters]
    if wrong:
        raise BadRequest(
            f"Not a queryable of {target.id}: {', '.join(wrong)}"
            f" (queryables: {', '.join(target.filters)})."
        )


def items(*, session: Session, principal: Principal, request: ItemsRequest) -> ItemsPage:
    """One page of a collection's features, filtered; 404 for an unknown collection, 400 for a
    filter the collection does not take."""
    target = collection(request.collection)
    if request.limit > MAX_LIMIT:
        raise BadRequest(f"limit may be at most {MAX_LIMIT}.")
    _check_filters(target, request.filters)
    if target.id == "services":
        return _service_items(session, principal, request)
    if target.id == "places":
        return _place_items(request)
    return _area_items(session, target.id, request)


def item(
    *,
    session: Session,
    principal: Principal,
    collection_id: str,
    feature_id: str,
    locale: Locale = "es",
) -> dict[str, Any]:
    """One feature; NotFound (404) if unknown or not the caller's to know about, with the same
    body either way."""
    target = collection(collection_id)
    if target.id == "services":
        return _service_item(session, principal, feature_id, locale)
    if target.id == "places":
        found = [place for place in gazetteer.places() if place.id == feature_id]
        if not found:
            raise NotFound(_NOT_FOUND)
        return place_feature(found[0])
    row = session.exec(
        select(AdminArea).where(
            col(AdminArea.code) == feature_id, col(AdminArea.level) == _level(target.id)
        )
    ).first()
    if row is None:
        raise NotFound(_NOT_FOUND)
    return area_feature(row)


# --- services: through search --------------------------------------------------------------------


def _search_query(
    request: ItemsRequest,
    *,
    mode: Literal["bbox", "department", "municipality"] = "bbox",
    area_code: str | None = None,
    limit: int | None = None,
    start: int | None = None,
) -> SearchQuery:
    filters = request.filters
    language = None
    if filters.language is not None:
        try:
            language = validation.normalize_language_code(filters.language)
        except ValueError as exc:
            raise InvalidInput(f"language: {exc}") from None
    if filters.open_now is False:
        raise BadRequest("open_now takes true only (services open now).")
    now = datetime.now(UTC)
    return SearchQuery(
        mode=mode,
        box=(request.bbox or _WORLD) if mode == "bbox" else None,
        area_code=area_code,
        categories=filters.category,
        language=language,
        age=filters.age,
        open_at=now if filters.open_now else None,
        limit=request.limit if limit is None else limit,
        page=1,
        first_row=request.offset if start is None else start,
        locale=request.locale,
        evaluated_at=now,
        today=_today(now),
        capacity_stale_after=request.capacity_stale_after,
    )


def _today(now: datetime) -> date:
    return now.astimezone(GUATEMALA_TZ).date()


def _service_items(session: Session, principal: Principal, request: ItemsRequest) -> ItemsPage:
    query = _search_query(request)
    page = search_domain.search_page(session=session, principal=principal, query=query)
    return _page_of(page, request, query.evaluated_at)


def _page_of(page: Mapping[str, Any], request: ItemsRequest, at: datetime) -> ItemsPage:
    features = [service_feature(result) for result in page["contents"]]
    returned, total = len(features), int(page["total_items"])
    if page["total_is_lower_bound"]:
        return ItemsPage(features, None, returned == request.limit, at)
    return ItemsPage(features, total, request.offset + returned < total, at)


def _service_item(
    session: Session, principal: Principal, feature_id: str, locale: Locale
) -> dict[str, Any]:
    """The feature of one service at a location: search, under the caller's audience rule,
    for that one id. A confidential site is not in the caller's search, so not found; an unknown
    id and a hidden one give the same 404."""
    try:
        link_id = uuid.UUID(feature_id)
    except ValueError:
        raise NotFound(_NOT_FOUND) from None
    query = dataclasses.replace(
        _search_query(ItemsRequest(collection="services", locale=locale), limit=1),
        link_ids=(link_id,),
    )
    page = search_domain.search_page(session=session, principal=principal, query=query)
    if not page["contents"]:
        raise NotFound(_NOT_FOUND)
    return service_feature(page["contents"][0])


# --- departments and municipalities --------------------------------------------------------------


def _level(collection_id: str) -> str:
    return "department" if collection_id == "departments" else "municipality"


def area_feature(area: AdminArea) -> dict[str, Any]:
    """A department or municipality as a GeoJSON Feature (``id``: its INE code)."""
    return {
        "type": "Feature",
        "id": area.code,
        "geometry": to_geojson(to_shape(area.geom)),
        "properties": {
            "code": area.code,
            "name": area.name,
            "level": area.level,
            "department_code": area.department_code,
            "representative_latitude": area.representative_latitude,
            "representative_longitude": area.representative_longitude,
        },
    }


def _area_items(session: Session, collection_id: str, request: ItemsRequest) -> ItemsPage:
    filters = request.filters
    conditions: list[Any] = [col(AdminArea.level) == _level(collection_id)]
    if filters.code is not None:
        conditions.append(col(AdminArea.code) == filters.code)
    if filters.department_code is not None:
        conditions.append(col(AdminArea.department_code) == filters.department_code)
    if request.bbox is not None:
        conditions.append(dialect.area_in_box(session, box=request.bbox))
    matched = session.exec(select(func.count()).select_from(AdminArea).where(*conditions)).one()
    rows: Sequence[AdminArea] = session.exec(
        select(AdminArea)
        .where(*conditions)
        .order_by(col(AdminArea.code))
        .limit(request.limit)
        .offset(request.offset)
    ).all()
    features = [area_feature(row) for row in rows]
    number = int(matched)
    return ItemsPage(features, number, request.offset + len(features) < number, datetime.now(UTC))


# --- places: the gazetteer's towns ------------------------------------------------------------


def place_feature(place: gazetteer.Place) -> dict[str, Any]:
    """A town as a GeoJSON Feature (``id``: its GeoNames id)."""
    return {
        "type": "Feature",
        "id": place.id,
        "geometry": {"type": "Point", "coordinates": [place.longitude, place.latitude]},
        "properties": {
            "name": place.name,
            "population": place.population,
            "municipality_code": place.municipality_code,
            "department_code": place.department_code,
        },
    }


def _place_items(request: ItemsRequest) -> ItemsPage:
    found = (
        list(gazetteer.places()) if request.bbox is None else gazetteer.places_in_box(request.bbox)
    )
    found.sort(key=lambda place: (place.name, place.id))
    chosen = found[request.offset : request.offset + request.limit]
    features = [place_feature(place) for place in chosen]
    more = request.offset + len(features) < len(found)
    return ItemsPage(features, len(found), more, datetime.now(UTC))
