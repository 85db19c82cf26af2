"""Services: structured eligibility, categories, schedules and open-now, service areas as real
polygons, capacity with freshness, verification, and change history on every write.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import MultiPolygon
from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from referral_net import opening_hours
from referral_net.db.models import (
    CostOption,
    Language,
    Phone,
    RequiredDocument,
    Schedule,
    Service,
    ServiceArea,
    ServiceCapacity,
    Unit,
)
from referral_net.domain import access, history, organizations, taxonomy
from referral_net.domain.common import children_by, replace_children
from referral_net.domain.languages import language_name
from referral_net.domain.record_ids import record_id
from referral_net.domain.recorded_write import recorded_write
from referral_net.errors import Forbidden, NotFound
from referral_net.geo.convert import to_geojson
from referral_net.schemas.directory import (
    CapacityIn,
    CapacityOut,
    CategoryOut,
    CostOptionOut,
    EligibilityOut,
    LanguageOut,
    PhoneOut,
    RequiredDocumentOut,
    ScheduleOut,
    ServiceAreaOut,
    ServiceCreate,
    ServiceRead,
    ServiceUpdate,
    VerificationDue,
)
from referral_net.security.roles import Principal
from referral_net.text import search_document
from referral_net.validation import check_area_geometry
from referral_net.vocab import Locale, RecordStatus

logger = logging.getLogger(__name__)
RESOURCE = "service"
LINK_ENTITY = "service"
_ELIGIBILITY_COLUMNS = (
    "minimum_age",
    "maximum_age",
    "genders_served",
    "trans_inclusive",
    "lgbtiq_affirming",
    "accepts_accompanying_children",
    "minors_only",
)
_UNIT_NAMES = {"bed": "Cama / Bed", "place": "Plaza / Place", "room": "Habitación / Room"}

# What the change history follows (see ``history``): these columns, the eligibility as one
# field, and each nested list as one field. Capacity has its own history (``set_capacity``).
HISTORY_COLUMNS = (
    "id",
    "organization_id",
    "program_id",
    "name",
    "alternate_name",
    "description",
    "url",
    "email",
    "status",
    "interpretation_services",
    "application_process",
    "fees_description",
    "wait_time",
    "accreditations",
    "licenses",
    "alert",
    "assured_date",
    "assured_by",
    "listed_despite_hidden_sites",
)
_ELIGIBILITY_FLAG_COLUMNS = (
    "genders_served",
    "trans_inclusive",
    "lgbtiq_affirming",
    "accepts_accompanying_children",
    "minors_only",
)
_PHONE_HISTORY_COLUMNS = ("number", "extension", "type", "description")
_SCHEDULE_HISTORY_COLUMNS = (
    "freq",
    "interval",
    "byday",
    "bymonthday",
    "opens_at",
    "closes_at",
    "valid_from",
    "valid_to",
    "dtstart",
    "until",
    "description",
    "notes",
)
_COST_OPTION_HISTORY_COLUMNS = (
    "option",
    "currency",
    "amount_description",
    "valid_from",
    "valid_to",
)
_REQUIRED_DOCUMENT_HISTORY_COLUMNS = ("document", "uri")
_SERVICE_AREA_HISTORY_COLUMNS = ("id", "name", "description", "extent_type", "uri")


@dataclass(frozen=True)
class ReadContext:
    """What shapes a service read beyond the record: language, instant and freshness window."""

    locale: Locale
    at: datetime
    capacity_stale_after: timedelta


@dataclass
class _Children:
    phones: dict[uuid.UUID, list[Phone]]
    schedules: dict[uuid.UUID, list[Schedule]]
    languages: dict[uuid.UUID, list[Language]]
    cost_options: dict[uuid.UUID, list[CostOption]]
    required_documents: dict[uuid.UUID, list[RequiredDocument]]
    service_areas: dict[uuid.UUID, list[ServiceArea]]
    capacity: dict[uuid.UUID, list[ServiceCapacity]]
    units: dict[uuid.UUID, Unit]
    categories: dict[uuid.UUID, list[Any]]


def _load_children(session: Session, ids: list[uuid.UUID], *, summary: bool = False) -> _Children:
    """Nested rows of many services; ``summary`` skips what search results do not show."""
    skipped: dict[uuid.UUID, list[Any]] = defaultdict(list)
    capacity = children_by(session, ServiceCapacity, "service_id", ids)
    unit_ids = {c.unit_id for rows in capacity.values() for c in rows}
    units = (
        {u.id: u for u in session.exec(select(Unit).where(col(Unit.id).in_(unit_ids)))}
        if unit_ids
        else {}
    )
    return _Children(
        phones=skipped if summary else children_by(session, Phone, "service_id", ids),
        schedules=children_by(session, Schedule, "service_id", ids),
        languages=children_by(session, Language, "service_id", ids),
        cost_options=skipped if summary else children_by(session, CostOption, "service_id", ids),
        required_documents=(
            skipped if summary else children_by(session, RequiredDocument, "service_id", ids)
        ),
        service_areas=skipped if summary else children_by(session, ServiceArea, "service_id", ids),
        capacity=capacity,
        units=units,
        categories=taxonomy.categories_for(session=session, link_entity=LINK_ENTITY, link_ids=ids),
    )


def weekly_schedules(rows: Sequence[Schedule]) -> list[opening_hours.WeeklySchedule]:
    """Turn stored HSDS schedules into the pure evaluator's input.

    Writes are validated, but imported rows may not be: a malformed row is left out (it can
    never make a service look open) rather than failing the whole read.
    """
    out = []
    for row in rows:
        try:
            out.append(
                opening_hours.WeeklySchedule(
                    freq=row.freq or "WEEKLY",
                    interval=row.interval or 1,
                    byday=row.byday,
                    bymonthday=row.bymonthday,
                    opens_at=row.opens_at,
                    closes_at=row.closes_at,
                    valid_from=row.valid_from,
                    valid_to=row.valid_to,
                    dtstart=row.dtstart,
                    until=row.until,
                )
            )
        except ValueError:
            logger.warning("schedule %s is malformed and was ignored", row.id)
    return out


def schedules_by_service(
    *, session: Session, service_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[opening_hours.WeeklySchedule]]:
    """The evaluable schedules of many services, in one query."""
    rows = children_by(session, Schedule, "service_id", list(dict.fromkeys(service_ids)))
    return {sid: weekly_schedules(found) for sid, found in rows.items()}


def capacity_item(
    *,
    unit: str,
    available: float,
    maximum: float | None,
    description: str | None,
    updated: datetime,
    context: ReadContext,
) -> CapacityOut:
    """One stored capacity figure with its freshness at the context's instant."""
    return CapacityOut(
        unit=unit,
        available=int(available),
        maximum=None if maximum is None else int(maximum),
        description=description,
        updated=updated,
        stale=context.at - updated > context.capacity_stale_after,
    )


def _capacity_out(
    rows: list[ServiceCapacity], units: dict[uuid.UUID, Unit], context: ReadContext
) -> list[CapacityOut]:
    return [
        capacity_item(
            unit=units[row.unit_id].identifier or units[row.unit_id].name,
            available=row.available,
            maximum=row.maximum,
            description=row.description,
            updated=row.updated,
            context=context,
        )
        for row in sorted(rows, key=lambda r: (units[r.unit_id].identifier or "", str(r.id)))
    ]


def _area_extent(area: ServiceArea) -> dict[str, Any] | None:
    """The area's polygon as GeoJSON (from the geometry column, the one the search uses)."""
    return to_geojson(to_shape(area.geom)) if area.geom is not None else None


def _area_out(area: ServiceArea) -> ServiceAreaOut:
    return ServiceAreaOut(
        id=area.id,
        name=area.name,
        description=area.description,
        extent=_area_extent(area),
        extent_type=area.extent_type,
        uri=area.uri,
    )


def to_read(service: Service, children: _Children, context: ReadContext) -> ServiceRead:
    """Shape a service for the API, evaluating open-now and capacity freshness."""
    sid = service.id
    schedules = weekly_schedules(children.schedules[sid])
    categories = []
    for term in children.categories.get(sid, []):
        name, _ = taxonomy.term_label(term, context.locale)
        categories.append(CategoryOut(code=term.code or "", name=name))
    categories.sort(key=lambda c: c.code)
    base = service.model_dump(
        exclude={*_ELIGIBILITY_COLUMNS, "eligibility_description", "version", "fees", "search_text"}
    )
    return ServiceRead(
        **base,
        eligibility=EligibilityOut(
            minimum_age=None if service.minimum_age is None else int(service.minimum_age),
            maximum_age=None if service.maximum_age is None else int(service.maximum_age),
            genders_served=service.genders_served,
            trans_inclusive=service.trans_inclusive,
            lgbtiq_affirming=service.lgbtiq_affirming,
            accepts_accompanying_children=service.accepts_accompanying_children,
            minors_only=service.minors_only,
            description=service.eligibility_description,
        ),
        categories=categories,
        languages=[
            LanguageOut(
                code=lang.code, name=language_name(lang.code, context.locale, stored=lang.name)
            )
            for lang in sorted(children.languages[sid], key=lambda lang: lang.code)
        ],
        phones=[PhoneOut.model_validate(p, from_attributes=True) for p in children.phones[sid]],
        schedules=[
            ScheduleOut.model_validate(s, from_attributes=True) for s in children.schedules[sid]
        ],
        cost_options=[
            CostOptionOut.model_validate(c, from_attributes=True)
            for c in children.cost_options[sid]
        ],
        required_documents=[
            RequiredDocumentOut.model_validate(d, from_attributes=True)
            for d in children.required_documents[sid]
        ],
        service_areas=[_area_out(a) for a in children.service_areas[sid]],
        capacity=_capacity_out(children.capacity[sid], children.units, context),
        open_now=opening_hours.is_open(schedules, context.at) if schedules else None,
        open_24h=bool(schedules)
        and opening_hours.is_open_24h(schedules, on=opening_hours.to_guatemala(context.at).date()),
    )


def _eligibility_snapshot(service: Service) -> dict[str, Any]:
    return {
        "minimum_age": None if service.minimum_age is None else int(service.minimum_age),
        "maximum_age": None if service.maximum_age is None else int(service.maximum_age),
        **history.fields_of(service, _ELIGIBILITY_FLAG_COLUMNS),
        "description": service.eligibility_description,
    }


def _snapshot(session: Session, service: Service) -> dict[str, Any]:
    """The fields the change history follows (not the API shape: see ``history``)."""
    sid = service.id
    children = _load_children(session, [sid])
    weekly = weekly_schedules(children.schedules[sid])
    today = opening_hours.to_guatemala(datetime.now(UTC)).date()
    return history.fields_of(service, HISTORY_COLUMNS) | {
        "eligibility": _eligibility_snapshot(service),
        "categories": sorted(term.code or "" for term in children.categories.get(sid, [])),
        "languages": [
            {"code": lang.code, "name": language_name(lang.code, "es", stored=lang.name)}
            for lang in sorted(children.languages[sid], key=lambda lang: lang.code)
        ],
        "phones": [history.fields_of(p, _PHONE_HISTORY_COLUMNS) for p in children.phones[sid]],
        "schedules": [
            history.fields_of(s, _SCHEDULE_HISTORY_COLUMNS) for s in children.schedules[sid]
        ],
        "cost_options": [
            history.fields_of(c, _COST_OPTION_HISTORY_COLUMNS)
            | {"amount": history.as_float(c.amount)}
            for c in children.cost_options[sid]
        ],
        "required_documents": [
            history.fields_of(d, _REQUIRED_DOCUMENT_HISTORY_COLUMNS)
            for d in children.required_documents[sid]
        ],
        "service_areas": [
            history.fields_of(a, _SERVICE_AREA_HISTORY_COLUMNS) | {"extent": _area_extent(a)}
            for a in children.service_areas[sid]
        ],
        # Derived from the schedules, but recorded since the first release: kept so that a
        # service's history reads the same before and after this snapshot left the API schema.
        "open_24h": bool(weekly) and opening_hours.is_open_24h(weekly, on=today),
    }


def get(*, session: Session, principal: Principal, service_id: uuid.UUID) -> Service:
    """Fetch a service the caller may know about, else 404 (never 403, like a hidden site).

    Defunct services only for stewards; a service seen only at sites hidden from the caller
    is unknown to them (``access.visible_services_clause``).
    """
    service = session.get(Service, service_id)
    if service is None or (
        service.status == RecordStatus.DEFUNCT and not access.can_see_defunct(principal)
    ):
        raise NotFound("No such service.")
    known = session.exec(
        select(col(Service.id)).where(
            col(Service.id) == service.id, access.visible_services_clause(principal)
        )
    ).first()
    if known is None:
        raise NotFound("No such service.")
    return service


def _for_caller(principal: Principal, read: ServiceRead) -> ServiceRead:
    """Blank the listing flag for callers who may not see it (``access.sees_listing_flag``)."""
    if access.sees_listing_flag(principal, read.organization_id):
        return read
    return read.model_copy(update={"listed_despite_hidden_sites": None})


def read(
    *, session: Session, principal: Principal, service_id: uuid.UUID, context: ReadContext
) -> ServiceRead:
    """Read one service with everything nested."""
    service = get(session=session, principal=principal, service_id=service_id)
    return _for_caller(principal, to_read(service, _load_children(session, [service.id]), context))


def read_many(
    *,
    session: Session,
    principal: Principal,
    services: Sequence[Service],
    context: ReadContext,
    summary: bool = False,
) -> list[ServiceRead]:
    """Shape several services with one query per nested table (fewer with ``summary``)."""
    children = _load_children(session, [s.id for s in services], summary=summary)
    return [_for_caller(principal, to_read(s, children, context)) for s in services]


def list_page(  # noqa: PLR0913 - one keyword per filter of GET /services
    *,
    session: Session,
    principal: Principal,
    context: ReadContext,
    offset: int,
    limit: int,
    organization_id: uuid.UUID | None = None,
    categories: Sequence[str] = (),
    taxonomy_term_id: uuid.UUID | None = None,
    search: str | None = None,
    open_only: bool = False,
    include_defunct: bool = False,
    modified_after: datetime | None = None,
) -> tuple[list[ServiceRead], int]:
    """One page of the services the caller may know about, ordered by name then id, filtered;
    ``open_only`` uses context.at. The total counts the same services."""
    query = select(Service).where(access.visible_services_clause(principal))
    if not (include_defunct and access.can_see_defunct(principal)):
        query = query.where(col(Service.status) != RecordStatus.DEFUNCT.value)
    if organization_id is not None:
        query = query.where(col(Service.organization_id) == organization_id)
    if categories:
        linked = taxonomy.link_ids_with_categories(
            session=session, link_entity=LINK_ENTITY, codes=categories
        )
        query = query.where(col(Service.id).in_(linked))
    if taxonomy_term_id is not None:
        linked_by_id = taxonomy.link_ids_with_term_id(
            session=session, link_entity=LINK_ENTITY, term_id=taxonomy_term_id
        )
        query = query.where(col(Service.id).in_(linked_by_id))
    if search:
        needle = f"%{search.lower()}%"
        query = query.where(
            or_(
                func.lower(Service.name).like(needle),
                func.lower(func.coalesce(Service.description, "")).like(needle),
            )
        )
    if modified_after is not None:
        query = query.where(col(Service.last_modified) > modified_after)
    query = query.order_by(col(Service.name), col(Service.id))
    if open_only:
        # Opening hours are evaluated in Python (pure module); filter before paginating.
        services = list(session.exec(query))
        schedules = children_by(session, Schedule, "service_id", [s.id for s in services])
        services = [
            s
            for s in services
            if schedules[s.id]
            and opening_hours.is_open(weekly_schedules(schedules[s.id]), context.at)
        ]
        total = len(services)
        page = services[offset : offset + limit]
    else:
        total = int(session.exec(select(func.count()).select_from(query.subquery())).one())
        page = list(session.exec(query.offset(offset).limit(limit)))
    return read_many(session=session, principal=principal, services=page, context=context), total


# --- writes ----------------------------------------------------------------------------------


def _unit(session: Session, identifier: str) -> Unit:
    unit = session.exec(select(Unit).where(col(Unit.identifier) == identifier)).first()
    if unit is None:
        unit = Unit(
            name=_UNIT_NAMES.get(identifier, identifier),
            identifier=identifier,
            scheme="referral-net",
        )
        session.add(unit)
        session.flush()
    return unit


def _capacity_rows(
    session: Session, rows: Sequence[CapacityIn], when: datetime
) -> list[ServiceCapacity]:
    return [
        ServiceCapacity(
            unit_id=_unit(session, row.unit).id,
            available=row.available,
            maximum=row.maximum,
            description=row.description,
            updated=when,
        )
        for row in rows
    ]


def _area_rows(data: ServiceCreate | ServiceUpdate) -> list[ServiceArea] | None:
    if data.service_areas is None:
        return None
    rows = []
    for area in data.service_areas:
        geom = check_area_geometry(area.extent)
        multi = geom if isinstance(geom, MultiPolygon) else MultiPolygon([geom])
        rows.append(
            ServiceArea(
                name=area.name,
                description=area.description,
                uri=area.uri,
                extent=json.dumps(area.extent, separators=(",", ":")),
                extent_type="geojson",
                geom=from_shape(multi, srid=4326),
            )
        )
    return rows


def _apply_nested(session: Session, service: Service, data: ServiceCreate | ServiceUpdate) -> None:
    sid = service.id
    if data.categories is not None:
        taxonomy.set_categories(
            session=session, link_entity=LINK_ENTITY, link_id=sid, codes=list(data.categories)
        )
    if data.languages is not None:
        replace_children(
            session,
            Language,
            "service_id",
            sid,
            [Language(code=c, name=language_name(c)) for c in dict.fromkeys(data.languages)],
        )
    if data.phones is not None:
        replace_children(
            session, Phone, "service_id", sid, [Phone(**p.model_dump()) for p in data.phones]
        )
    if data.schedules is not None:
        replace_children(
            session,
            Schedule,
            "service_id",
            sid,
            [Schedule(**s.model_dump()) for s in data.schedules],
        )
    if data.cost_options is not None:
        replace_children(
            session,
            CostOption,
            "service_id",
            sid,
            [CostOption(**c.model_dump()) for c in data.cost_options],
        )
    if data.required_documents is not None:
        replace_children(
            session,
            RequiredDocument,
            "service_id",
            sid,
            [RequiredDocument(**d.model_dump()) for d in data.required_documents],
        )
    areas = _area_rows(data)
    if areas is not None:
        replace_children(session, ServiceArea, "service_id", sid, areas)


def _refresh_search_text(service: Service) -> None:
    service.search_text = search_document(
        (service.name, service.alternate_name, service.description)
    )


def _apply_eligibility(service: Service, data: ServiceCreate | ServiceUpdate) -> None:
    if data.eligibility is None:
        return
    values = data.eligibility.model_dump()
    for column in _ELIGIBILITY_COLUMNS:
        setattr(service, column, values[column])
    service.eligibility_description = values["description"]


_NESTED = {
    "eligibility",
    "categories",
    "languages",
    "phones",
    "schedules",
    "cost_options",
    "required_documents",
    "service_areas",
    "capacity",
}


def _check_listing_flag(principal: Principal, *, current: bool, requested: bool | None) -> None:
    """Only a steward sets or changes ``listed_despite_hidden_sites`` (restating it is fine)."""
    if (
        requested is not None
        and requested != current
        and not access.may_list_despite_hidden_sites(principal)
    ):
        raise Forbidden("Only stewards list a service despite its hidden sites.")


def create(
    *, session: Session, principal: Principal, data: ServiceCreate, trusted_ids: bool = False
) -> Service:
    """Create a service of an organization the caller may edit.

    ``trusted_ids`` lets an import keep its ids; otherwise only stewards may choose one.
    """
    organizations.editable(
        session=session, principal=principal, organization_id=data.organization_id
    )
    _check_listing_flag(principal, current=False, requested=data.listed_despite_hidden_sites)
    if data.categories:
        taxonomy.resolve_codes(session=session, codes=data.categories)
    service = Service(
        **data.model_dump(exclude={"id", *_NESTED}),
        id=record_id(session, Service, data.id, principal=principal, trusted=trusted_ids),
    )
    _apply_eligibility(service, data)
    _refresh_search_text(service)
    with recorded_write(
        session,
        principal,
        service,
        resource_type=RESOURCE,
        action=history.CREATE,
        snapshot=_snapshot,
    ):
        _apply_nested(session, service, data)
        if data.capacity:
            replace_children(
                session,
                ServiceCapacity,
                "service_id",
                service.id,
                _capacity_rows(session, data.capacity, datetime.now(UTC)),
            )
    return service


def editable(*, session: Session, principal: Principal, service_id: uuid.UUID) -> Service:
    """Fetch a service the caller may edit: 404 when unknown to them, 403 when not theirs."""
    service = get(session=session, principal=principal, service_id=service_id)
    if not access.can_edit(principal, service.organization_id):
        raise Forbidden("You may not edit this service.")
    return service


def update(
    *, session: Session, principal: Principal, service: Service, data: ServiceUpdate
) -> Service:
    """Apply a partial update; nested lists present in the body replace the stored ones."""
    _check_listing_flag(
        principal,
        current=service.listed_despite_hidden_sites,
        requested=data.listed_despite_hidden_sites,
    )
    if data.categories:
        taxonomy.resolve_codes(session=session, codes=data.categories)
    with recorded_write(
        session,
        principal,
        service,
        resource_type=RESOURCE,
        action=history.UPDATE,
        snapshot=_snapshot,
    ):
        for field, value in data.model_dump(exclude_unset=True, exclude=_NESTED).items():
            setattr(service, field, value)
        _apply_eligibility(service, data)
        _refresh_search_text(service)
        _apply_nested(session, service, data)
    return service


def soft_delete(*, session: Session, principal: Principal, service: Service) -> None:
    """Mark a service defunct (HSDS status); it stays readable for stewards."""
    with recorded_write(
        session,
        principal,
        service,
        resource_type=RESOURCE,
        action=history.DELETE,
        snapshot=_snapshot,
    ):
        service.status = RecordStatus.DEFUNCT.value


def set_capacity(
    *,
    session: Session,
    principal: Principal,
    service: Service,
    rows: Sequence[CapacityIn],
    when: datetime | None = None,
) -> Service:
    """Replace a service's capacity figures, stamped now; history records old and new."""
    when = when or datetime.now(UTC)
    with recorded_write(
        session,
        principal,
        service,
        resource_type=RESOURCE,
        action=history.UPDATE,
        snapshot=_capacity_snapshot,
        when=when,
    ):
        replace_children(
            session, ServiceCapacity, "service_id", service.id, _capacity_rows(session, rows, when)
        )
    return service


def _capacity_snapshot(session: Session, service: Service) -> dict[str, Any]:
    """What the history follows of a capacity update: the figures per unit, not their stamps."""
    rows = children_by(session, ServiceCapacity, "service_id", [service.id])[service.id]
    units = {u.id: u for u in session.exec(select(Unit))}
    figures = sorted(
        (
            {"unit": units[r.unit_id].identifier, "available": r.available, "maximum": r.maximum}
            for r in rows
        ),
        key=lambda item: str(item["unit"]),
    )
    return {"capacity": figures}


def verify(
    *, session: Session, principal: Principal, service: Service, assured: date | None = None
) -> Service:
    """Mark a listing verified: sets assured_date and who verified it."""
    with recorded_write(
        session,
        principal,
        service,
        resource_type=RESOURCE,
        action=history.UPDATE,
        snapshot=_snapshot,
    ):
        service.assured_date = assured or datetime.now(UTC).date()
        service.assured_by = principal.audit_name
    return service


def verification_due(
    *, session: Session, period_days: int, today: date, offset: int, limit: int
) -> tuple[list[VerificationDue], int]:
    """Active listings never verified or not verified within the period, oldest first."""
    cutoff = today - timedelta(days=period_days)
    query = select(Service).where(
        col(Service.status) != RecordStatus.DEFUNCT.value,
        or_(col(Service.assured_date).is_(None), col(Service.assured_date) < cutoff),
    )
    total = int(session.exec(select(func.count()).select_from(query.subquery())).one())
    rows = session.exec(
        query.order_by(
            col(Service.assured_date).is_not(None), col(Service.assured_date), col(Service.id)
        )
        .offset(offset)
        .limit(limit)
    )
    return [
        VerificationDue(
            service_id=s.id,
            name=s.name,
            organization_id=s.organization_id,
            assured_date=s.assured_date,
            days_since_verified=None if s.assured_date is None else (today - s.assured_date).days,
        )
        for s in rows
    ], total
