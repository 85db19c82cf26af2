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
from sqlmodel import Session, SQLModel, col, select
from sqlmodel.sql.expression import SelectOfScalar

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
from referral_net.domain import access, attributes, history, nested, organizations, taxonomy
from referral_net.domain.common import (
    children_by,
    field_error,
    history_language,
    history_schedule,
    replace_children,
    replace_languages,
    replace_nested,
    replace_phones,
    row_of,
)
from referral_net.domain.record_ids import record_id
from referral_net.domain.recorded_write import recorded_write
from referral_net.errors import Forbidden, NotFound
from referral_net.geo.convert import to_geojson
from referral_net.schemas.directory import (
    CapacityIn,
    CapacityOut,
    CategoryOut,
    EligibilityOut,
    OrganizationRead,
    ServiceAreaIn,
    ServiceCreate,
    ServiceFields,
    ServiceMinimal,
    ServiceRead,
    ServiceUpdate,
    VerificationDue,
)
from referral_net.schemas.nested import (
    AttributeRead,
    ContactRead,
    CostOptionRead,
    FundingRead,
    LanguageRead,
    PhoneRead,
    ProgramRead,
    RequiredDocumentRead,
    ScheduleRead,
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


@dataclass
class _Shaped:
    """The HSDS nested records of many services, shaped for a read."""

    languages: dict[uuid.UUID, list[LanguageRead]]
    phones: dict[uuid.UUID, list[PhoneRead]]
    schedules: dict[uuid.UUID, list[ScheduleRead]]
    contacts: dict[uuid.UUID, list[ContactRead]]
    funding: dict[uuid.UUID, list[FundingRead]]
    attributes: dict[uuid.UUID, list[AttributeRead]]
    programs: dict[uuid.UUID, ProgramRead]
    # The providers, nested in full records only (``full``); None otherwise.
    organizations: dict[uuid.UUID, OrganizationRead] | None = None


def _shape_children(
    session: Session, services: Sequence[Service], locale: Locale, *, full: bool
) -> _Shaped:
    """Load and shape the nested records of many services (a fixed number of queries)."""
    ids = [s.id for s in services]
    program_ids = list({s.program_id for s in services if s.program_id is not None})
    programs = nested.programs(session, "id", program_ids)
    providers = None
    if full:
        providers = organizations.read_records(
            session=session,
            organization_ids=list(dict.fromkeys(s.organization_id for s in services)),
            locale=locale,
        )
    return _Shaped(
        languages=nested.languages(session, "service_id", ids, locale),
        phones=nested.phones(session, "service_id", ids, locale),
        schedules=nested.schedules(session, "service_id", ids),
        contacts=nested.contacts(session, "service_id", ids, locale),
        funding=nested.funding(session, "service_id", ids),
        attributes=nested.attributes(session, LINK_ENTITY, ids),
        programs={pid: found[0] for pid, found in programs.items()},
        organizations=providers,
    )


def _load_children(session: Session, ids: list[uuid.UUID], *, for_read: bool = False) -> _Children:
    """Nested rows of many services. ``for_read`` skips the phones and languages, which a read
    takes shaped from ``_shape_children`` (the change history needs the rows)."""
    skipped: dict[uuid.UUID, list[Any]] = defaultdict(list)
    capacity = children_by(session, ServiceCapacity, "service_id", ids)
    return _Children(
        phones=skipped if for_read else children_by(session, Phone, "service_id", ids),
        schedules=children_by(session, Schedule, "service_id", ids),
        languages=skipped if for_read else children_by(session, Language, "service_id", ids),
        cost_options=children_by(session, CostOption, "service_id", ids),
        required_documents=children_by(session, RequiredDocument, "service_id", ids),
        service_areas=children_by(session, ServiceArea, "service_id", ids),
        capacity=capacity,
        units=nested.units_of(session, {c.unit_id for rows in capacity.values() for c in rows}),
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
                    count=row.count,
                    wkst=row.wkst,
                    byweekno=row.byweekno,
                    byyearday=row.byyearday,
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


def capacity_document(
    *,
    unit: str,
    available: float,
    maximum: float | None,
    description: str | None,
    updated: datetime,
    context: ReadContext,
) -> dict[str, Any]:
    """One stored capacity figure with its freshness at the context's instant, as a JSON-ready
    document: ``CapacityOut``'s fields in its order (search answers are written from it; a
    service read validates it into the model)."""
    return {
        "unit": unit,
        "available": int(available),
        "maximum": None if maximum is None else int(maximum),
        "description": description,
        "updated": updated,
        "stale": context.at - updated > context.capacity_stale_after,
    }


def _capacity_out(
    rows: list[ServiceCapacity], units: dict[uuid.UUID, Unit], context: ReadContext
) -> list[CapacityOut]:
    return [
        CapacityOut(
            **capacity_document(
                unit=units[row.unit_id].identifier or units[row.unit_id].name,
                available=row.available,
                maximum=row.maximum,
                description=row.description,
                updated=row.updated,
                context=context,
            )
        )
        for row in sorted(rows, key=lambda r: (units[r.unit_id].identifier or "", str(r.id)))
    ]


def _area_extent(area: ServiceArea) -> dict[str, Any] | None:
    """The area's polygon as GeoJSON (from the geometry column, the one the search uses)."""
    return to_geojson(to_shape(area.geom)) if area.geom is not None else None


def to_read(
    service: Service, children: _Children, shaped: _Shaped, context: ReadContext
) -> ServiceRead:
    """Shape a service for the API (HSDS fields plus the profile's), evaluating open-now and
    capacity freshness."""
    sid = service.id
    schedules = weekly_schedules(children.schedules[sid])
    categories = []
    for term in children.categories.get(sid, []):
        name, _ = taxonomy.term_label(term, context.locale)
        categories.append(CategoryOut(code=term.code or "", name=name))
    categories.sort(key=lambda c: c.code)
    base = service.model_dump(exclude={*_ELIGIBILITY_COLUMNS, "version", "search_text"})
    minimum_age = None if service.minimum_age is None else int(service.minimum_age)
    maximum_age = None if service.maximum_age is None else int(service.maximum_age)
    return ServiceRead(
        **base,
        minimum_age=minimum_age,
        maximum_age=maximum_age,
        organization=(
            None
            if shaped.organizations is None
            else shaped.organizations.get(service.organization_id)
        ),
        program=None if service.program_id is None else shaped.programs.get(service.program_id),
        attributes=shaped.attributes.get(sid, []),
        eligibility=EligibilityOut(
            minimum_age=minimum_age,
            maximum_age=maximum_age,
            genders_served=service.genders_served,
            trans_inclusive=service.trans_inclusive,
            lgbtiq_affirming=service.lgbtiq_affirming,
            accepts_accompanying_children=service.accepts_accompanying_children,
            minors_only=service.minors_only,
            description=service.eligibility_description,
        ),
        categories=categories,
        languages=shaped.languages.get(sid, []),
        phones=shaped.phones.get(sid, []),
        schedules=shaped.schedules.get(sid, []),
        contacts=shaped.contacts.get(sid, []),
        funding=shaped.funding.get(sid, []),
        cost_options=[
            CostOptionRead.model_validate(c, from_attributes=True)
            for c in children.cost_options[sid]
        ],
        required_documents=[
            RequiredDocumentRead.model_validate(d, from_attributes=True)
            for d in children.required_documents[sid]
        ],
        service_areas=[nested.service_area(a) for a in children.service_areas[sid]],
        capacities=nested.capacities(children.capacity[sid], children.units),
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
            history_language(lang)
            for lang in sorted(children.languages[sid], key=lambda lang: lang.code)
        ],
        "phones": [history.fields_of(p, _PHONE_HISTORY_COLUMNS) for p in children.phones[sid]],
        "schedules": [history_schedule(s) for s in children.schedules[sid]],
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
    if access.knows_every_service(principal):
        return service
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
    return read_many(
        session=session, principal=principal, services=[service], context=context, full=True
    )[0]


def read_many(
    *,
    session: Session,
    principal: Principal,
    services: Sequence[Service],
    context: ReadContext,
    full: bool = False,
) -> list[ServiceRead]:
    """Shape several services with one query per nested table; ``full`` nests each one's
    organization too."""
    children = _load_children(session, [s.id for s in services], for_read=True)
    shaped = _shape_children(session, services, context.locale, full=full)
    return [_for_caller(principal, to_read(s, children, shaped, context)) for s in services]


@dataclass(frozen=True)
class ListFilters:
    """The filters of ``GET /services`` (HSDS parameters and the profile's)."""

    organization_id: uuid.UUID | None = None
    categories: Sequence[str] = ()
    taxonomy_term_id: uuid.UUID | None = None
    taxonomy_id: uuid.UUID | None = None
    search: str | None = None
    open_only: bool = False
    include_defunct: bool = False
    modified_after: datetime | None = None


def _filtered(
    session: Session, principal: Principal, filters: ListFilters
) -> SelectOfScalar[Service]:
    """The services the caller may know about that pass the filters, ordered by name then id
    (all but ``open_only``, which is evaluated in Python)."""
    query = select(Service).where(access.visible_services_clause(principal))
    if not (filters.include_defunct and access.can_see_defunct(principal)):
        query = query.where(col(Service.status) != RecordStatus.DEFUNCT.value)
    if filters.organization_id is not None:
        query = query.where(col(Service.organization_id) == filters.organization_id)
    linked = []
    if filters.categories:
        linked.append(
            taxonomy.link_ids_with_categories(
                session=session, link_entity=LINK_ENTITY, codes=filters.categories
            )
        )
    if filters.taxonomy_term_id is not None:
        linked.append(
            taxonomy.link_ids_with_term_id(
                session=session, link_entity=LINK_ENTITY, term_id=filters.taxonomy_term_id
            )
        )
    if filters.taxonomy_id is not None:
        linked.append(
            taxonomy.link_ids_with_taxonomy_id(
                session=session, link_entity=LINK_ENTITY, taxonomy_id=filters.taxonomy_id
            )
        )
    for ids in linked:
        query = query.where(col(Service.id).in_(ids))
    if filters.search:
        needle = f"%{filters.search.lower()}%"
        query = query.where(
            or_(
                func.lower(Service.name).like(needle),
                func.lower(func.coalesce(Service.description, "")).like(needle),
            )
        )
    if filters.modified_after is not None:
        # HSDS: "modified on or after this datetime".
        query = query.where(col(Service.last_modified) >= filters.modified_after)
    return query.order_by(col(Service.name), col(Service.id))


def _page_of(
    session: Session,
    query: SelectOfScalar[Service],
    filters: ListFilters,
    *,
    at: datetime,
    offset: int,
    limit: int,
) -> tuple[list[Service], int]:
    if not filters.open_only:
        total = int(session.exec(select(func.count()).select_from(query.subquery())).one())
        return list(session.exec(query.offset(offset).limit(limit))), total
    # Opening hours are evaluated in Python (pure module); filter before paginating.
    found = list(session.exec(query))
    schedules = children_by(session, Schedule, "service_id", [s.id for s in found])
    found = [
        s
        for s in found
        if schedules[s.id] and opening_hours.is_open(weekly_schedules(schedules[s.id]), at)
    ]
    return found[offset : offset + limit], len(found)


def list_page(
    *,
    session: Session,
    principal: Principal,
    context: ReadContext,
    offset: int,
    limit: int,
    filters: ListFilters,
    full: bool = False,
) -> tuple[list[ServiceRead], int]:
    """One page of the services the caller may know about, ordered by name then id, filtered;
    ``open_only`` uses context.at; ``full`` nests each one's organization. The total counts the
    same services."""
    query = _filtered(session, principal, filters)
    page, total = _page_of(session, query, filters, at=context.at, offset=offset, limit=limit)
    shaped = read_many(
        session=session, principal=principal, services=page, context=context, full=full
    )
    return shaped, total


def by_organization(
    *,
    session: Session,
    principal: Principal,
    organization_ids: Sequence[uuid.UUID],
    context: ReadContext,
) -> dict[uuid.UUID, list[ServiceRead]]:
    """The services (whole records) of many organizations that the caller may know about, by
    organization, ordered by name (HSDS ``full_service``); defunct ones left out."""
    query = (
        select(Service)
        .where(
            col(Service.organization_id).in_(list(organization_ids)),
            col(Service.status) != RecordStatus.DEFUNCT.value,
            access.visible_services_clause(principal),
        )
        .order_by(col(Service.name), col(Service.id))
    )
    found = list(session.exec(query))
    grouped: dict[uuid.UUID, list[ServiceRead]] = {key: [] for key in organization_ids}
    for record in read_many(session=session, principal=principal, services=found, context=context):
        grouped[record.organization_id].append(record)
    return grouped


def list_minimal(
    *, session: Session, principal: Principal, filters: ListFilters, offset: int, limit: int
) -> tuple[list[ServiceMinimal], int]:
    """HSDS ``minimal``: the same services as :func:`list_page`, as id and last_modified."""
    query = _filtered(session, principal, filters)
    page, total = _page_of(
        session, query, filters, at=datetime.now(UTC), offset=offset, limit=limit
    )
    return [ServiceMinimal(id=s.id, last_modified=s.last_modified) for s in page], total


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


def _area_rows(items: Sequence[ServiceAreaIn]) -> list[ServiceArea]:
    """Rows for service areas: the polygon (checked again into shapely) as the search's
    MultiPolygon and as the GeoJSON text HSDS calls ``extent``."""
    rows = []
    for area in items:
        extent = area.geojson()
        geom = check_area_geometry(extent)
        multi = geom if isinstance(geom, MultiPolygon) else MultiPolygon([geom])
        row = row_of(ServiceArea, area, exclude={"extent", "extent_type", "geometry"})
        row.extent = json.dumps(extent, separators=(",", ":"))
        row.extent_type = "geojson"
        row.geom = from_shape(multi, srid=4326)
        rows.append(row)
    return rows


# The nested lists written one row per item (the rest have their own rules below).
_PLAIN_NESTED: tuple[tuple[str, type[SQLModel]], ...] = (
    ("schedules", Schedule),
    ("cost_options", CostOption),
    ("required_documents", RequiredDocument),
)


def _apply_nested(
    session: Session,
    service: Service,
    data: ServiceCreate | ServiceUpdate,
    categories: list[attributes.CategoryLink] | None,
    *,
    may_choose_ids: bool,
) -> None:
    """Write the nested lists present in the body (each replaces the stored one, ids kept)."""
    sid = service.id
    if categories is not None:
        attributes.write(session=session, link_entity=LINK_ENTITY, link_id=sid, links=categories)
    if data.languages is not None:
        replace_languages(
            session,
            "service_id",
            sid,
            data.languages,
            field="body.languages",
            may_choose_ids=may_choose_ids,
        )
    if data.phones is not None:
        replace_phones(
            session,
            "service_id",
            sid,
            data.phones,
            field="body.phones",
            may_choose_ids=may_choose_ids,
        )
    for name, model in _PLAIN_NESTED:
        items = getattr(data, name)
        if items is not None:
            replace_nested(
                session,
                model,
                "service_id",
                sid,
                items,
                field=f"body.{name}",
                may_choose_ids=may_choose_ids,
            )
    if data.service_areas is not None:
        replace_nested(
            session,
            ServiceArea,
            "service_id",
            sid,
            data.service_areas,
            field="body.service_areas",
            may_choose_ids=may_choose_ids,
            build=_area_rows,
        )


def _refresh_search_text(service: Service) -> None:
    service.search_text = search_document(
        (service.name, service.alternate_name, service.description)
    )


# HSDS's top-level eligibility fields, and where each sits in the profile's ``eligibility``.
_TOP_LEVEL_ELIGIBILITY = (
    ("minimum_age", "minimum_age"),
    ("maximum_age", "maximum_age"),
    ("eligibility_description", "description"),
)


def _apply_eligibility(
    service: Service, data: ServiceCreate | ServiceUpdate, *, creating: bool
) -> dict[str, Any]:
    """The eligibility columns the body sets, column -> value (applied by the caller, inside its
    recorded write). ``eligibility`` (the profile's object) and the HSDS top-level fields may both
    be given; a value given in both places must be the same (422 naming the top-level field)."""
    given = data.model_fields_set
    structured = data.eligibility if (creating or "eligibility" in given) else None
    changes: dict[str, Any] = {}
    if structured is not None:
        changes = {column: getattr(structured, column) for column in _ELIGIBILITY_COLUMNS}
        changes["eligibility_description"] = structured.description
    for top, inner in _TOP_LEVEL_ELIGIBILITY:
        if top not in given:
            continue
        value = getattr(data, top)
        if (
            structured is not None
            and inner in structured.model_fields_set
            and getattr(structured, inner) != value
        ):
            raise field_error(f"body.{top}", f"differs from eligibility.{inner}: give one value")
        changes[top] = value
    low = changes.get("minimum_age", service.minimum_age)
    high = changes.get("maximum_age", service.maximum_age)
    if low is not None and high is not None and low > high:
        raise field_error("body.minimum_age", "minimum_age is above maximum_age")
    return changes


# Request fields that are columns of the service, written as given.
_COLUMN_FIELDS = frozenset(
    {*ServiceFields.model_fields, "name", "status", "listed_despite_hidden_sites"}
) - {"attributes", *(top for top, _ in _TOP_LEVEL_ELIGIBILITY)}


def _check_listing_flag(principal: Principal, *, current: bool, requested: bool | None) -> None:
    """Only a steward sets or changes ``listed_despite_hidden_sites`` (restating it is fine)."""
    if (
        requested is not None
        and requested != current
        and not access.may_list_despite_hidden_sites(principal)
    ):
        raise Forbidden("Only stewards list a service despite its hidden sites.")


def _category_plan(
    session: Session,
    service_id: uuid.UUID,
    data: ServiceCreate | ServiceUpdate,
    *,
    may_choose_ids: bool,
) -> list[attributes.CategoryLink] | None:
    """The categories the body sets (``categories`` and/or HSDS ``attributes``), checked."""
    return attributes.plan(
        session=session,
        link_entity=LINK_ENTITY,
        link_id=service_id,
        categories=data.categories if "categories" in data.model_fields_set else None,
        attributes=data.attributes,
        may_choose_ids=may_choose_ids,
    )


def create(
    *, session: Session, principal: Principal, data: ServiceCreate, trusted_ids: bool = False
) -> Service:
    """Create a service of an organization the caller may edit.

    ``trusted_ids`` lets an import keep its ids (of the service and of its nested records);
    otherwise only stewards may choose one.
    """
    organizations.editable(
        session=session, principal=principal, organization_id=data.organization_id
    )
    _check_listing_flag(principal, current=False, requested=data.listed_despite_hidden_sites)
    may_choose_ids = trusted_ids or access.may_choose_ids(principal)
    service = Service(
        **data.model_dump(include={*_COLUMN_FIELDS, "organization_id"}),
        id=record_id(session, Service, data.id, principal=principal, trusted=trusted_ids),
    )
    categories = _category_plan(session, service.id, data, may_choose_ids=may_choose_ids)
    for column, value in _apply_eligibility(service, data, creating=True).items():
        setattr(service, column, value)
    _refresh_search_text(service)
    with recorded_write(
        session,
        principal,
        service,
        resource_type=RESOURCE,
        action=history.CREATE,
        snapshot=_snapshot,
    ):
        _apply_nested(session, service, data, categories, may_choose_ids=may_choose_ids)
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
    """Apply a partial update; nested lists present in the body replace the stored ones, their
    items keeping the ids they name. Read-only fields are the caller's to check first
    (``common.refuse_changed_read_only``)."""
    _check_listing_flag(
        principal,
        current=service.listed_despite_hidden_sites,
        requested=data.listed_despite_hidden_sites,
    )
    may_choose_ids = access.may_choose_ids(principal)
    categories = _category_plan(session, service.id, data, may_choose_ids=may_choose_ids)
    eligibility = _apply_eligibility(service, data, creating=False)
    with recorded_write(
        session,
        principal,
        service,
        resource_type=RESOURCE,
        action=history.UPDATE,
        snapshot=_snapshot,
    ):
        changes = data.model_dump(exclude_unset=True, include=set(_COLUMN_FIELDS))
        for field, value in (changes | eligibility).items():
            setattr(service, field, value)
        _refresh_search_text(service)
        _apply_nested(session, service, data, categories, may_choose_ids=may_choose_ids)
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
