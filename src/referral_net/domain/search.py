"""Geospatial search over services at locations: one geometric mode plus typed filters.

The audience rule comes first: ``access`` decides which point column a caller searches (the exact
``geom`` for trusted roles, ``public_geom`` for everyone else) and therefore which rows exist for
them at all. Dialect SQL comes from ``db.dialect``; everything here is portable.

Nearest-first without a radius is exact on both engines in two steps: find an upper bound D on
the k-th nearest distance (PostGIS: KNN ``<->`` on the GiST index; SpatiaLite: an R*Tree window
that grows until it holds k rows), then run an index-windowed radius query with radius D, ordered
by geodesic distance and id. Any row nearer than D lies inside that window, so nothing is missed.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    and_,
    exists,
    func,
    literal,
    not_,
    or_,
    select,
)
from sqlmodel import Session, col

from referral_net.db import dialect
from referral_net.db.models import (
    AdminArea,
    Language,
    Location,
    Organization,
    Service,
    ServiceAtLocation,
    ServiceCapacity,
    Unit,
)
from referral_net.domain import access, audit, services, taxonomy
from referral_net.domain.languages import language_name
from referral_net.errors import InvalidInput
from referral_net.geo.convert import geodesic_bbox
from referral_net.opening_hours import WeeklySchedule, is_open, is_open_24h, to_guatemala
from referral_net.schemas.directory import CapacityOut, CategoryOut, LanguageOut
from referral_net.schemas.search import (
    SearchLocation,
    SearchMode,
    SearchPage,
    SearchResult,
    SearchService,
)
from referral_net.security.roles import Principal
from referral_net.text import fold
from referral_net.vocab import Locale, RecordStatus, Visibility

# Counting every match would cost a scan at a million rows; counts stop here and say so
# (``total_is_lower_bound``). Near mode, with or without a radius, counts rows in distance
# order's window (the whole country, or a dense city's 10 km), so its cap is lower: the count
# was the largest statement of a radius search at 1M rows.
COUNT_CAP = 1_000
NEAREST_COUNT_CAP = 200
# SpatiaLite's first window, its growth per step (see _growth), and the size past which the
# window is the whole country.
_FIRST_WINDOW_M = 1_000.0
_MIN_GROWTH, _MAX_GROWTH = 1.5, 4.0
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
        conditions.append(dialect.gender_rule(session, query.gender))
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
        dialect.distance_m(session, geom, latitude=query.latitude, longitude=query.longitude)
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
            dialect.in_box(session, table="location", column=column, geom=geom, box=query.box)
        )
    elif query.mode in ("department", "municipality") and query.area_code is not None:
        statement = statement.where(
            dialect.in_admin_area(
                session, table="location", column=column, geom=geom, code=query.area_code
            )
        )
    elif query.mode == "covers" and query.latitude is not None and query.longitude is not None:
        statement = statement.where(
            dialect.service_area_covers(
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
        name_order=dialect.code_point_order(session, col(Service.name)),
    )


def _within(session: Session, plan: _Plan, query: SearchQuery, radius_m: float) -> Select[Any]:
    if plan.distance is None or query.latitude is None or query.longitude is None:
        raise ValueError("a radius needs a reference point")
    box = geodesic_bbox(query.latitude, query.longitude, radius_m)
    # The index window only pre-selects; the geodesic distance is the exact test.
    return plan.statement.where(
        dialect.index_window(
            session, table="location", column=plan.column, geom=plan.geom, box=box
        ),
        plan.distance <= radius_m,
    )


def _ordered(plan: _Plan, statement: Select[Any]) -> Select[Any]:
    if plan.distance is not None:
        return statement.order_by(plan.distance, col(ServiceAtLocation.id))
    return statement.order_by(plan.name_order, col(ServiceAtLocation.id))


def _core(session: Session) -> Connection:
    # Search only reads: its statements go straight to the session's connection (same
    # transaction), skipping the ORM execution layer, which showed up per statement on the hot
    # path and has nothing to do for plain column selects.
    return session.connection()


def _hit(row: Row[Any]) -> Hit:
    return Hit(
        link_id=row[0],
        service_id=row[1],
        location_id=row[2],
        distance_m=None if row[3] is None else float(row[3]),
    )


def _hits(session: Session, statement: Select[Any]) -> list[Hit]:
    return [_hit(row) for row in _core(session).execute(statement)]


def _nearest_bound(
    session: Session, plan: _Plan, query: SearchQuery, k: int, *, within_m: float | None = None
) -> float | None:
    """An upper bound on the k-th nearest distance; None when fewer than k rows match.

    With ``within_m`` (a radius search) None means that no bound below the radius was found, so
    the radius itself bounds the page.
    """
    if plan.distance is None or query.latitude is None or query.longitude is None:
        raise ValueError("nearest needs a reference point")
    # Any k rows bound the k-th nearest distance by their largest geodesic distance; the cheap
    # order picks k rows that are nearly the nearest, so the bound is tight, and the engine
    # computes geodesic distances for those k rows only.
    cheap = dialect.cheap_distance_order(
        session, plan.geom, latitude=query.latitude, longitude=query.longitude
    )
    largest = min(_WHOLE_COUNTRY_M, within_m) if within_m is not None else _WHOLE_COUNTRY_M
    # PostGIS: the KNN index walks outwards by itself, one statement. SpatiaLite: R*Tree windows
    # that grow until one holds k rows.
    window: float | None = None if dialect.has_knn_index(session) else min(_FIRST_WINDOW_M, largest)
    while True:
        statement = plan.statement
        if window is not None:  # the index window alone: rows in its corners still bound
            box = geodesic_bbox(query.latitude, query.longitude, window)
            statement = statement.where(
                dialect.index_window(
                    session, table="location", column=plan.column, geom=plan.geom, box=box
                )
            )
        nearest = statement.with_only_columns(plan.distance).order_by(cheap).limit(k)
        distances = [float(d) for (d,) in _core(session).execute(nearest)]
        if len(distances) == k:
            bound = max(distances)
            return None if within_m is not None and bound > within_m else bound
        if window is None or window >= largest:
            return None
        window = min(largest, window * _growth(found=len(distances), wanted=k))


def _growth(*, found: int, wanted: int) -> float:
    """How much to widen a window that held ``found`` of ``wanted`` rows.

    The area needed grows like wanted/found where the density is even, so the radius by its
    square root (with a margin); between 1.5x and 4x. A fixed 4x overshoots where a sparse
    window's next step reaches a city: at 1M rows one such step took 1.2 s on SpatiaLite.
    """
    if found == 0:
        return _MAX_GROWTH
    return min(_MAX_GROWTH, max(_MIN_GROWTH, 1.25 * math.sqrt(wanted / found)))


def _count(session: Session, statement: Select[Any], cap: int) -> tuple[int, bool]:
    # Count rows, not distances: the select list is replaced so nothing is computed per row.
    inner = statement.with_only_columns(literal(1)).order_by(None).limit(cap + 1)
    total = int(
        _core(session).execute(select(func.count()).select_from(inner.subquery())).scalar_one()
    )
    if total > cap:
        return cap, True
    return total, False


def _page_statement(session: Session, plan: _Plan, query: SearchQuery) -> Select[Any]:
    """The statement whose rows, ordered, are all the results (before paging).

    Nearest-first searches are bounded by the k-th nearest distance (k = the rows up to the end
    of this page): a 10 km radius in a city holds tens of thousands of rows at 1M, and ordering
    them all costs what a scan does; the bound keeps the window to about k rows.
    """
    if query.mode != "near":
        return plan.statement
    bound = _nearest_bound(
        session, plan, query, query.offset + query.limit, within_m=query.radius_m
    )
    if bound is not None:
        return _within(session, plan, query, bound)
    if query.radius_m is not None:
        return _within(session, plan, query, query.radius_m)
    return plan.statement


def _counted(session: Session, plan: _Plan, query: SearchQuery) -> tuple[int, bool]:
    if query.mode == "near" and query.radius_m is not None:
        return _count(session, _within(session, plan, query, query.radius_m), NEAREST_COUNT_CAP)
    if query.mode == "near":
        return _count(session, plan.statement, NEAREST_COUNT_CAP)
    return _count(session, plan.statement, COUNT_CAP)


def _page_rows(
    session: Session, plan: _Plan, query: SearchQuery, *, with_total: bool, display: bool
) -> tuple[list[Row[Any]], int, bool]:
    """One page of rows (ids and distance, plus display columns when asked) and the total."""
    if query.open_at is not None:
        return _open_filtered(session, plan, query, display=display)
    total, lower_bound = _counted(session, plan, query) if with_total else (-1, True)
    page = _ordered(plan, _page_statement(session, plan, query))
    page = page.offset(query.offset).limit(query.limit)
    if display:
        page = page.add_columns(*_DISPLAY_COLUMNS)
    return list(_core(session).execute(page)), total, lower_bound


def _open_filtered(
    session: Session, plan: _Plan, query: SearchQuery, *, display: bool
) -> tuple[list[Row[Any]], int, bool]:
    """Opening hours are evaluated in Python (pure module), so filter before paginating.

    A nearest search without a radius is bounded here by the largest allowed radius.
    """
    assert query.open_at is not None
    statement = plan.statement
    if query.mode == "near":
        statement = _within(session, plan, query, query.radius_m or query.max_radius_m)
    rows = list(_core(session).execute(_ordered(plan, statement)))
    schedules = services.schedules_by_service(
        session=session, service_ids=list({row[1] for row in rows})
    )
    open_rows = [
        row for row in rows if schedules.get(row[1]) and is_open(schedules[row[1]], query.open_at)
    ]
    page = open_rows[query.offset : query.offset + query.limit]
    if display and page:
        wanted = [row[0] for row in page]
        shown = {
            row[0]: row
            for row in _core(session).execute(
                plan.statement.add_columns(*_DISPLAY_COLUMNS).where(
                    col(ServiceAtLocation.id).in_(wanted)
                )
            )
        }
        page = [shown[link_id] for link_id in wanted]
    return page, len(open_rows), False


def validate_area(*, session: Session, mode: str, code: str) -> None:
    """Refuse an unknown department or municipality code (a 422, never an empty page)."""
    level = (
        _core(session)
        .execute(select(col(AdminArea.level)).where(col(AdminArea.code) == code))
        .scalar_one_or_none()
    )
    if level != mode:
        raise InvalidInput(
            f"unknown {mode} code: {code}",
            errors=[
                {"field": f"query.{mode}", "message": f"unknown {mode} code", "type": "value_error"}
            ],
        )


def find_hits(*, session: Session, principal: Principal, query: SearchQuery) -> list[Hit]:
    """The ordered page of raw hits, without shaping or counting (used by matching).

    Unknown category codes are refused (422) while the filter is built.
    """
    plan = _plan(session, principal, query)
    rows, _, _ = _page_rows(session, plan, query, with_total=False, display=False)
    return [_hit(row) for row in rows]


def search(*, session: Session, principal: Principal, query: SearchQuery) -> SearchPage:
    """Run a search for a caller and shape one page of results."""
    if query.area_code is not None:
        validate_area(session=session, mode=query.mode, code=query.area_code)
    plan = _plan(session, principal, query)
    rows, total, lower_bound = _page_rows(session, plan, query, with_total=True, display=True)
    return SearchPage(
        mode=query.mode,
        total_items=total,
        total_is_lower_bound=lower_bound,
        page_number=query.page,
        limit=query.limit,
        size=len(rows),
        contents=_shape(session, principal, query, rows),
    )


# Shown with every result; selected with the page (the page query already joins these tables).
_DISPLAY_COLUMNS: tuple[ColumnElement[Any], ...] = (
    col(Service.name).label("service_name"),
    col(Service.organization_id).label("service_organization_id"),
    col(Organization.name).label("organization_name"),
    col(Service.minimum_age).label("minimum_age"),
    col(Service.maximum_age).label("maximum_age"),
    col(Service.genders_served).label("genders_served"),
    col(Service.lgbtiq_affirming).label("lgbtiq_affirming"),
    col(Service.accepts_accompanying_children).label("accepts_accompanying_children"),
    col(Service.assured_date).label("assured_date"),
    col(Location.name).label("location_name"),
    col(Location.latitude).label("latitude"),
    col(Location.longitude).label("longitude"),
    col(Location.visibility).label("visibility"),
    col(Location.organization_id).label("location_organization_id"),
    col(Location.department_code).label("department_code"),
    col(Location.municipality_code).label("municipality_code"),
    col(Location.intake_phone).label("intake_phone"),
    col(Location.intake_description).label("intake_description"),
)


@dataclass
class _Extras:
    """What results show from the services' child tables, by service id."""

    categories: dict[uuid.UUID, list[CategoryOut]]
    languages: dict[uuid.UUID, list[LanguageOut]]
    capacity: dict[uuid.UUID, list[CapacityOut]]
    schedules: dict[uuid.UUID, list[WeeklySchedule]]


def _extras(session: Session, service_ids: list[uuid.UUID], query: SearchQuery) -> _Extras:
    """Four small queries of only the columns shown (no ORM objects: this is the hot path)."""
    context = services.ReadContext(
        locale=query.locale, at=query.evaluated_at, capacity_stale_after=query.capacity_stale_after
    )
    labels = taxonomy.category_labels_for(
        session=session, link_entity=services.LINK_ENTITY, link_ids=service_ids, locale=query.locale
    )
    languages: dict[uuid.UUID, list[LanguageOut]] = defaultdict(list)
    for service_id, code, name in _core(session).execute(
        select(col(Language.service_id), col(Language.code), col(Language.name))
        .where(col(Language.service_id).in_(service_ids))
        .order_by(col(Language.code), col(Language.id))
    ):
        languages[service_id].append(
            LanguageOut(code=code, name=language_name(code, query.locale, stored=name))
        )
    capacity_rows = sorted(
        _core(session).execute(
            select(
                col(ServiceCapacity.service_id),
                col(Unit.identifier),
                col(Unit.name),
                col(ServiceCapacity.available),
                col(ServiceCapacity.maximum),
                col(ServiceCapacity.description),
                col(ServiceCapacity.updated),
                col(ServiceCapacity.id),
            )
            .join(Unit, col(Unit.id) == col(ServiceCapacity.unit_id))
            .where(col(ServiceCapacity.service_id).in_(service_ids))
        ),
        key=lambda r: (r[1] or "", str(r[7])),  # as in a service read
    )
    capacity: dict[uuid.UUID, list[CapacityOut]] = defaultdict(list)
    for row in capacity_rows:
        capacity[row[0]].append(
            services.capacity_item(
                unit=row[1] or row[2],
                available=row[3],
                maximum=row[4],
                description=row[5],
                updated=row[6],
                context=context,
            )
        )
    return _Extras(
        categories={
            sid: [CategoryOut(code=code, name=name) for code, name in pairs]
            for sid, pairs in labels.items()
        },
        languages=languages,
        capacity=capacity,
        schedules=services.schedules_by_service(session=session, service_ids=service_ids),
    )


def _shape(
    session: Session, principal: Principal, query: SearchQuery, rows: Sequence[Row[Any]]
) -> list[SearchResult]:
    if not rows:
        return []
    service_ids = list(dict.fromkeys(row.service_id for row in rows))
    extras = _extras(session, service_ids, query)
    places = place_sites(
        session,
        principal,
        [
            Site(
                id=row.location_id,
                name=row.location_name,
                latitude=row.latitude,
                longitude=row.longitude,
                visibility=row.visibility,
                organization_id=row.location_organization_id,
                department_code=row.department_code,
                municipality_code=row.municipality_code,
                intake_phone=row.intake_phone,
                intake_description=row.intake_description,
            )
            for row in rows
        ],
    )
    today = to_guatemala(query.evaluated_at).date()
    results = []
    for row in rows:
        schedules = extras.schedules.get(row.service_id, [])
        results.append(
            SearchResult(
                service_at_location_id=row.id,
                distance_m=None if row.distance_m is None else round(float(row.distance_m), 3),
                service=SearchService(
                    id=row.service_id,
                    name=row.service_name,
                    organization_id=row.service_organization_id,
                    organization_name=row.organization_name or "",
                    minimum_age=None if row.minimum_age is None else int(row.minimum_age),
                    maximum_age=None if row.maximum_age is None else int(row.maximum_age),
                    genders_served=row.genders_served,
                    lgbtiq_affirming=row.lgbtiq_affirming,
                    accepts_accompanying_children=row.accepts_accompanying_children,
                ),
                location=places[row.location_id],
                categories=extras.categories.get(row.service_id, []),
                languages=extras.languages.get(row.service_id, []),
                open_now=is_open(schedules, query.evaluated_at) if schedules else None,
                open_24h=bool(schedules) and is_open_24h(schedules, on=today),
                capacity=extras.capacity.get(row.service_id, []),
                last_verified=row.assured_date,
            )
        )
    return results


@dataclass(frozen=True)
class Site:
    """A location's fields that a result shows, before the audience rule decides how."""

    id: uuid.UUID
    name: str | None
    latitude: float | None
    longitude: float | None
    visibility: str
    organization_id: uuid.UUID | None
    department_code: str | None
    municipality_code: str | None
    intake_phone: str | None
    intake_description: str | None


def place_sites(
    session: Session, principal: Principal, sites: Sequence[Site]
) -> dict[uuid.UUID, SearchLocation]:
    """Each site as precisely as the caller may see it, by location id (search and matching).

    Sites the caller may not see exactly sit at their municipality's representative point;
    exact views of non-public sites are audited (this commits, see ``audit``). Callers pass only
    sites the caller may know exist: hidden ones never reach a result.
    """
    views = {
        site.id: access.location_view(
            principal, visibility=site.visibility, organization_id=site.organization_id
        )
        for site in sites
    }
    coarse = representative_points(
        session,
        [
            site.municipality_code or site.department_code
            for site in sites
            if views[site.id] is not access.LocationView.EXACT
        ],
    )
    places: dict[uuid.UUID, SearchLocation] = {}
    shown_exact: list[uuid.UUID] = []
    for site in sites:
        exact = views[site.id] is access.LocationView.EXACT
        if exact and site.visibility != Visibility.PUBLIC:
            shown_exact.append(site.id)
        if exact:
            lat, lon = site.latitude, site.longitude
        else:
            lat, lon = coarse.get(
                site.municipality_code or site.department_code or "", (None, None)
            )
        places[site.id] = SearchLocation(
            id=site.id,
            name=site.name,
            latitude=lat,
            longitude=lon,
            precision="exact" if exact else "municipality",
            department_code=site.department_code,
            municipality_code=site.municipality_code,
            intake_phone=site.intake_phone,
            intake_description=site.intake_description,
        )
    audit.record_exact_reads(session=session, principal=principal, location_ids=shown_exact)
    return places


def representative_points(
    session: Session, codes: Sequence[str | None]
) -> dict[str, tuple[float, float]]:
    """The representative (lat, lon) of administrative areas, by code (no polygons loaded)."""
    wanted = {code for code in codes if code}
    if not wanted:
        return {}
    rows = _core(session).execute(
        select(
            col(AdminArea.code),
            col(AdminArea.representative_latitude),
            col(AdminArea.representative_longitude),
        ).where(col(AdminArea.code).in_(wanted))
    )
    return {code: (lat, lon) for code, lat, lon in rows}
