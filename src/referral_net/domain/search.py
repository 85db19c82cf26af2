"""Geospatial search over services at locations: one geometric mode plus typed filters.

The audience rule comes first: ``access`` decides which point column a caller searches (the exact
``geom`` for trusted roles, ``public_geom`` for everyone else) and therefore which rows exist for
them at all. Dialect SQL comes from ``geo.sql``; everything here is portable.

Nearest-first without a radius is exact on both engines in two steps: find an upper bound D on
the k-th nearest distance (PostGIS: KNN ``<->`` on the GiST index; SpatiaLite: an R*Tree window
that grows until it holds k rows), then run an index-windowed radius query with radius D, ordered
by geodesic distance and id. Any row nearer than D lies inside that window, so nothing is missed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, literal, not_, or_, select
from sqlmodel import Session, col
from sqlmodel import select as model_select

from referral_net.api.schemas.search import (
    SearchLocation,
    SearchMode,
    SearchPage,
    SearchResult,
    SearchService,
)
from referral_net.db.models import (
    AdminArea,
    Language,
    Location,
    Organization,
    RecordStatus,
    Service,
    ServiceAtLocation,
    ServiceCapacity,
    Visibility,
)
from referral_net.domain import access, audit, services, taxonomy
from referral_net.errors import InvalidInput
from referral_net.geo import sql as geo_sql
from referral_net.geo.convert import geodesic_bbox
from referral_net.matching.model import Locale
from referral_net.opening_hours import is_open
from referral_net.security.roles import Principal
from referral_net.text import fold

# Counting every match would cost a scan at a million rows; counts stop here and say so
# (``total_is_lower_bound``); an unbounded nearest search counts the whole country, so its cap
# is lower.
COUNT_CAP = 1_000
NEAREST_COUNT_CAP = 200
# SpatiaLite's first window, and the size past which the window is the whole country.
_FIRST_WINDOW_M = 5_000.0
_WHOLE_COUNTRY_M = 1_500_000.0


@dataclass(frozen=True)
class SearchQuery:
    """A validated search: one mode, a reference point where there is one, and filters."""

    mode: SearchMode
    latitude: float | None = None
    longitude: float | None = None
    radius_m: float | None = None
    box: tuple[float, float, float, float] | None = None
    area_code: str | None = None
    categories: tuple[str, ...] = ()
    language: str | None = None
    age: int | None = None
    gender: str | None = None
    lgbtiq_affirming: bool | None = None
    accepts_children: bool | None = None
    open_at: datetime | None = None
    has_capacity: bool | None = None
    text: str | None = None
    verified_within_days: int | None = None
    limit: int = 10
    page: int = 1
    locale: Locale = "es"
    evaluated_at: datetime = field(default_factory=lambda: datetime.now().astimezone())
    today: date = field(default_factory=date.today)
    capacity_stale_after: timedelta = timedelta(hours=72)
    max_radius_m: float = 500_000.0

    @property
    def has_point(self) -> bool:
        """True when results can carry a distance."""
        return self.latitude is not None and self.longitude is not None

    @property
    def offset(self) -> int:
        """Rows before this page."""
        return (self.page - 1) * self.limit


@dataclass(frozen=True)
class Hit:
    link_id: uuid.UUID
    service_id: uuid.UUID
    location_id: uuid.UUID
    distance_m: float | None


@dataclass
class _Plan:
    statement: Select[Any]
    geom: ColumnElement[Any]
    column: str
    distance: ColumnElement[float] | None
    name_order: ColumnElement[Any]


def _escape_like(token: str) -> str:
    return token.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filters(session: Session, query: SearchQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.categories:
        conditions.append(
            taxonomy.in_categories_clause(
                session=session,
                link_entity=services.LINK_ENTITY,
                link_id=col(Service.id),
                codes=list(query.categories),
            )
        )
    if query.language is not None:
        conditions.append(
            exists(
                select(literal(1))
                .select_from(Language)
                .where(
                    col(Language.service_id) == col(Service.id),
                    col(Language.code) == query.language,
                )
            )
        )
    if query.age is not None:
        conditions.append(
            and_(
                or_(col(Service.minimum_age).is_(None), col(Service.minimum_age) <= query.age),
                or_(col(Service.maximum_age).is_(None), col(Service.maximum_age) >= query.age),
                or_(col(Service.minors_only).is_(False), literal(query.age < 18)),
            )
        )
    if query.gender is not None:
        conditions.append(geo_sql.gender_rule(session, query.gender))
    if query.lgbtiq_affirming is not None:
        conditions.append(col(Service.lgbtiq_affirming).is_(query.lgbtiq_affirming))
    if query.accepts_children is not None:
        conditions.append(col(Service.accepts_accompanying_children).is_(query.accepts_children))
    if query.has_capacity is not None:
        free = exists(
            select(literal(1))
            .select_from(ServiceCapacity)
            .where(
                col(ServiceCapacity.service_id) == col(Service.id),
                col(ServiceCapacity.available) > 0,
            )
        )
        conditions.append(free if query.has_capacity else not_(free))
    if query.text:
        for token in fold(query.text).split():
            conditions.append(
                col(Service.search_text).like(f"%{_escape_like(token)}%", escape="\\")
            )
    if query.verified_within_days is not None:
        since = query.today - timedelta(days=query.verified_within_days)
        conditions.append(col(Service.assured_date) >= since)
    return conditions


def _plan(session: Session, principal: Principal, query: SearchQuery) -> _Plan:
    trusted = access.sees_exact_points_everywhere(principal)
    geom: ColumnElement[Any] = Location.__table__.c["geom" if trusted else "public_geom"]  # type: ignore[attr-defined]
    column = "geom" if trusted else "public_geom"
    distance = (
        geo_sql.distance_m(session, geom, latitude=query.latitude, longitude=query.longitude)
        if query.latitude is not None and query.longitude is not None
        else None
    )
    columns: list[Any] = [
        col(ServiceAtLocation.id),
        col(ServiceAtLocation.service_id),
        col(ServiceAtLocation.location_id),
        (distance if distance is not None else literal(None)).label("distance_m"),
    ]
    statement = (
        select(*columns)
        .select_from(ServiceAtLocation)
        .join(Service, col(Service.id) == col(ServiceAtLocation.service_id))
        .join(Location, col(Location.id) == col(ServiceAtLocation.location_id))
        .join(Organization, col(Organization.id) == col(Service.organization_id))
        .where(
            col(Service.status) == RecordStatus.ACTIVE.value,
            col(Location.status) != RecordStatus.DEFUNCT.value,
            col(Organization.status) != RecordStatus.DEFUNCT.value,
            geom.is_not(None),
            *_filters(session, query),
        )
    )
    if query.mode == "bbox" and query.box is not None:
        statement = statement.where(
            geo_sql.in_box(session, table="location", column=column, geom=geom, box=query.box)
        )
    elif query.mode in ("department", "municipality") and query.area_code is not None:
        statement = statement.where(
            geo_sql.in_admin_area(
                session, table="location", column=column, geom=geom, code=query.area_code
            )
        )
    elif query.mode == "covers" and query.latitude is not None and query.longitude is not None:
        statement = statement.where(
            geo_sql.service_area_covers(
                session,
                service_id=Service.__table__.c["id"],  # type: ignore[attr-defined]
                latitude=query.latitude,
                longitude=query.longitude,
            )
        )
    return _Plan(
        statement=statement,
        geom=geom,
        column=column,
        distance=distance,
        name_order=geo_sql.code_point_order(session, col(Service.name)),
    )


def _within(session: Session, plan: _Plan, query: SearchQuery, radius_m: float) -> Select[Any]:
    if plan.distance is None or query.latitude is None or query.longitude is None:
        raise ValueError("a radius needs a reference point")
    box = geodesic_bbox(query.latitude, query.longitude, radius_m)
    return plan.statement.where(
        geo_sql.in_box(session, table="location", column=plan.column, geom=plan.geom, box=box),
        plan.distance <= radius_m,
    )


def _ordered(plan: _Plan, statement: Select[Any]) -> Select[Any]:
    if plan.distance is not None:
        return statement.order_by(plan.distance, col(ServiceAtLocation.id))
    return statement.order_by(plan.name_order, col(ServiceAtLocation.id))


def _hits(session: Session, statement: Select[Any]) -> list[Hit]:
    return [
        Hit(
            link_id=row[0],
            service_id=row[1],
            location_id=row[2],
            distance_m=None if row[3] is None else float(row[3]),
        )
        for row in session.execute(statement)
    ]


def _nearest_bound(session: Session, plan: _Plan, query: SearchQuery, k: int) -> float | None:
    """An upper bound on the k-th nearest distance, or None when fewer than k rows match."""
    if plan.distance is None or query.latitude is None or query.longitude is None:
        raise ValueError("nearest needs a reference point")
    knn = geo_sql.knn_order(session, plan.geom, latitude=query.latitude, longitude=query.longitude)
    if knn is not None:
        rows = _hits(session, plan.statement.order_by(knn).limit(k))
        if len(rows) < k:
            return None
        return max(r.distance_m or 0.0 for r in rows)
    radius = _FIRST_WINDOW_M
    while radius < _WHOLE_COUNTRY_M:
        window = _hits(session, _ordered(plan, _within(session, plan, query, radius)).limit(k))
        if len(window) == k:
            return window[-1].distance_m
        radius *= 4
    return None


def _count(
    session: Session, statement: Select[Any], cap: int | None, *, keep_order: bool = False
) -> tuple[int, bool]:
    # Count rows, not distances: the select list is replaced so nothing is computed per row.
    inner = statement.with_only_columns(literal(1))
    if not keep_order:
        inner = inner.order_by(None)
    if cap is not None:
        inner = inner.limit(cap + 1)
    total = int(session.execute(select(func.count()).select_from(inner.subquery())).scalar_one())
    if cap is not None and total > cap:
        return cap, True
    return total, False


def _candidates(session: Session, plan: _Plan, query: SearchQuery) -> tuple[Select[Any], bool]:
    """The statement whose ordered rows are the results, and whether counts must be capped."""
    if query.mode == "near" and query.radius_m is not None:
        return _within(session, plan, query, query.radius_m), True
    if query.mode == "near":
        return plan.statement, True
    return plan.statement, True


def _page_hits(
    session: Session, plan: _Plan, query: SearchQuery, *, with_total: bool = True
) -> tuple[list[Hit], int, bool]:
    statement, capped = _candidates(session, plan, query)
    if query.open_at is not None:
        return _open_filtered(session, plan, query, statement)
    if not with_total:
        total, lower_bound = -1, True
    elif query.mode == "near" and query.radius_m is None:
        total, lower_bound = _count(session, statement, NEAREST_COUNT_CAP)
    else:
        total, lower_bound = _count(session, statement, COUNT_CAP if capped else None)
    if query.mode == "near" and query.radius_m is None:
        k = query.offset + query.limit
        bound = _nearest_bound(session, plan, query, k)
        if bound is not None:
            statement = _within(session, plan, query, bound)
    page = _hits(session, _ordered(plan, statement).offset(query.offset).limit(query.limit))
    return page, total, lower_bound


def _open_filtered(
    session: Session, plan: _Plan, query: SearchQuery, statement: Select[Any]
) -> tuple[list[Hit], int, bool]:
    """Opening hours are evaluated in Python (pure module), so filter before paginating.

    An unbounded nearest search is bounded here by the largest allowed radius.
    """
    assert query.open_at is not None
    if query.mode == "near" and query.radius_m is None:
        statement = _within(session, plan, query, query.max_radius_m)
    hits = _hits(session, _ordered(plan, statement))
    schedules = services.schedules_by_service(
        session=session, service_ids=[h.service_id for h in hits]
    )
    open_hits = [
        h
        for h in hits
        if schedules.get(h.service_id) and is_open(schedules[h.service_id], query.open_at)
    ]
    return open_hits[query.offset : query.offset + query.limit], len(open_hits), False


def validate_area(*, session: Session, mode: str, code: str) -> None:
    """Refuse an unknown department or municipality code (a 422, never an empty page)."""
    area = session.get(AdminArea, code)
    if area is None or area.level != mode:
        raise InvalidInput(
            f"unknown {mode} code: {code}",
            errors=[
                {"field": f"query.{mode}", "message": f"unknown {mode} code", "type": "value_error"}
            ],
        )


def find_hits(*, session: Session, principal: Principal, query: SearchQuery) -> list[Hit]:
    """The ordered page of raw hits, without shaping or counting (used by matching)."""
    if query.categories:
        taxonomy.resolve_codes(session=session, codes=list(query.categories))
    plan = _plan(session, principal, query)
    hits, _, _ = _page_hits(session, plan, query, with_total=False)
    return hits


def search(*, session: Session, principal: Principal, query: SearchQuery) -> SearchPage:
    """Run a search for a caller and shape one page of results."""
    if query.categories:
        taxonomy.resolve_codes(session=session, codes=list(query.categories))
    if query.area_code is not None:
        validate_area(session=session, mode=query.mode, code=query.area_code)
    plan = _plan(session, principal, query)
    hits, total, lower_bound = _page_hits(session, plan, query)
    return SearchPage(
        mode=query.mode,
        total_items=total,
        total_is_lower_bound=lower_bound,
        page_number=query.page,
        limit=query.limit,
        size=len(hits),
        contents=_shape(session, principal, query, hits),
    )


def _shape(
    session: Session, principal: Principal, query: SearchQuery, hits: Sequence[Hit]
) -> list[SearchResult]:
    if not hits:
        return []
    service_rows = {
        s.id: s
        for s in session.exec(
            model_select(Service).where(col(Service.id).in_({h.service_id for h in hits}))
        )
    }
    location_rows = {
        loc.id: loc
        for loc in session.exec(
            model_select(Location).where(col(Location.id).in_({h.location_id for h in hits}))
        )
    }
    org_ids = {s.organization_id for s in service_rows.values()}
    org_names: dict[uuid.UUID, str] = {
        org.id: org.name
        for org in session.exec(model_select(Organization).where(col(Organization.id).in_(org_ids)))
    }
    context = services.ReadContext(
        locale=query.locale, at=query.evaluated_at, capacity_stale_after=query.capacity_stale_after
    )
    reads = {
        r.id: r
        for r in services.read_many(
            session=session, services=list(service_rows.values()), context=context, summary=True
        )
    }
    results = []
    shown_exact: list[uuid.UUID] = []  # non-public sites shown exactly: audited below
    for hit in hits:
        service = service_rows[hit.service_id]
        location = location_rows[hit.location_id]
        read = reads[hit.service_id]
        view = access.location_view(
            principal, visibility=location.visibility, organization_id=location.organization_id
        )
        exact = view is access.LocationView.EXACT
        if exact and location.visibility != Visibility.PUBLIC:
            shown_exact.append(location.id)
        lat, lon = shown_point(session, location, exact)
        results.append(
            SearchResult(
                service_at_location_id=hit.link_id,
                distance_m=None if hit.distance_m is None else round(hit.distance_m, 3),
                service=SearchService(
                    id=service.id,
                    name=service.name,
                    organization_id=service.organization_id,
                    organization_name=org_names.get(service.organization_id, ""),
                    minimum_age=read.eligibility.minimum_age,
                    maximum_age=read.eligibility.maximum_age,
                    genders_served=service.genders_served,
                    lgbtiq_affirming=service.lgbtiq_affirming,
                    accepts_accompanying_children=service.accepts_accompanying_children,
                ),
                location=SearchLocation(
                    id=location.id,
                    name=location.name,
                    latitude=lat,
                    longitude=lon,
                    precision="exact" if exact else "municipality",
                    department_code=location.department_code,
                    municipality_code=location.municipality_code,
                    intake_phone=location.intake_phone,
                    intake_description=location.intake_description,
                ),
                categories=read.categories,
                languages=read.languages,
                open_now=read.open_now,
                open_24h=read.open_24h,
                capacity=read.capacity,
                last_verified=service.assured_date,
            )
        )
    audit.record_exact_reads(session=session, principal=principal, location_ids=shown_exact)
    return results


def shown_point(
    session: Session, location: Location, exact: bool
) -> tuple[float | None, float | None]:
    if exact:
        return location.latitude, location.longitude
    code = location.municipality_code or location.department_code
    area = session.get(AdminArea, code) if code else None
    if area is None:
        return None, None
    return area.representative_latitude, area.representative_longitude
