"""The search read model: one ``search_entry`` row per service at a location, kept in step with
the directory in the same transaction as every write (issue 13).

    entries     computed in Python from the tables for a set of services at locations, in a few
                set-based queries (never one per row), with the helpers search shows today
    refresh     delete those entries and insert them anew (``db.dialect`` writes the arrays or
                the side tables, and the points)
    rebuild     every entry, in batches: ``referral-net search rebuild`` and the migration
    hooks       session events: each flush records which records it wrote; before the commit the
                entries they reach are refreshed, in the same transaction, so a rolled-back write
                leaves the model as it was and a committed one is never stale

Rows the database deletes itself (a link, or a service or location deleted with its links) take
their entries with them: ``search_entry`` references ``service_at_location`` ON DELETE CASCADE.
ORM bulk ``update()``/``delete()`` statements run through ``session.execute`` are seen too (the
rows they reach are read before they run); statements sent straight to a connection are not, and
their caller must call :func:`refresh`.

``doc`` holds a result's audience-independent fields, rendered as search shows them today::

    {"service":    {id, name, organization_id, organization_name, minimum_age, maximum_age,
                    genders_served, lgbtiq_affirming, accepts_accompanying_children},
     "location":   {id, name, latitude, longitude (exact), department_code, municipality_code,
                    intake_phone, intake_description, geocoding_precision},
     "categories": {"es": [{code, name}], "en": [...]}     ordered by code
     "languages":  {"es": [{code, name}], "en": [...]}     ordered by code, then record id
     "capacity":   [{unit, available, maximum, description, updated (ISO)}]   stored values,
                   in the order a service read shows them; freshness is the reader's
     "schedules":  to_compact(...) of the valid weekly schedules; from_compact() gives them back
     "last_verified": "YYYY-MM-DD" | null,
     "phones":     {"link": [number], "location": [number], "service": [number]}   by record id;
                   who may see which is the reader's (``search.shape``)
     "matching":   {interpretation_offered, trans_inclusive, accessibility_text}}
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, time
from functools import cache
from itertools import chain
from typing import Any, cast

from sqlalchemy import (
    Result,
    Row,
    Select,
    and_,
    bindparam,
    delete,
    event,
    func,
    or_,
    select,
    union,
)
from sqlalchemy.orm import ORMExecuteState, SessionTransaction, UOWTransaction
from sqlalchemy.orm.attributes import get_history
from sqlalchemy.orm.base import PASSIVE_NO_INITIALIZE
from sqlmodel import Session

from referral_net.db import dialect
from referral_net.db.models import (
    Accessibility,
    AdminArea,
    Attribute,
    Language,
    Location,
    Organization,
    Phone,
    Schedule,
    SearchEntry,
    SearchEntryCategory,
    SearchEntryLanguage,
    Service,
    ServiceAtLocation,
    ServiceCapacity,
    TaxonomyTerm,
    Unit,
)
from referral_net.domain import services, taxonomy
from referral_net.domain.languages import language_name
from referral_net.geo.tiles import grid_mm, to_mercator
from referral_net.matching.eligibility import gender_served
from referral_net.matching.model import Candidate, Need, NeedProfile
from referral_net.opening_hours import WeeklySchedule
from referral_net.vocab import GENDERS, LOCALES, SERVED_GENDERS, RecordStatus

# Services at locations per statement: keeps IN lists well under SQLite's variable limit.
BATCH_SIZE = 500

# --- the compact weekly schedule ---------------------------------------------------------------

# One schedule is a list of these fields, in this order; times and dates in ISO form. New fields
# go at the end: an entry written before them is a shorter list, read with their defaults.
_SCHEDULE_FIELDS = (
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
    "count",
    "wkst",
    "byweekno",
    "byyearday",
)
_TIME_FIELDS = frozenset({"opens_at", "closes_at"})
_DATE_FIELDS = frozenset({"valid_from", "valid_to", "dtstart", "until"})


def to_compact(schedules: Sequence[WeeklySchedule]) -> list[list[Any]]:
    """Weekly schedules as JSON-ready lists (one per schedule, fields in a fixed order)."""
    return [
        [
            value.isoformat() if isinstance(value, time | date) else value
            for value in (getattr(schedule, name) for name in _SCHEDULE_FIELDS)
        ]
        for schedule in schedules
    ]


def from_compact(compact: Sequence[Sequence[Any]]) -> list[WeeklySchedule]:
    """The weekly schedules :func:`to_compact` wrote, ready for ``opening_hours``.

    Entries written before the last fields were added are shorter; those fields keep their
    defaults. A list longer than the fields known here is an error, never silently cut.
    """
    out = []
    for values in compact:
        names = _SCHEDULE_FIELDS[: len(values)]
        fields: dict[str, Any] = dict(zip(names, values, strict=True))
        for name in _TIME_FIELDS:
            if fields.get(name) is not None:
                fields[name] = time.fromisoformat(fields[name])
        for name in _DATE_FIELDS:
            if fields.get(name) is not None:
                fields[name] = date.fromisoformat(fields[name])
        out.append(WeeklySchedule(**fields))
    return out


# --- computing entries -------------------------------------------------------------------------

_SAL = ServiceAtLocation.__table__.c  # type: ignore[attr-defined]
_SERVICE = Service.__table__.c  # type: ignore[attr-defined]
_LOCATION = Location.__table__.c  # type: ignore[attr-defined]
_ORGANIZATION = Organization.__table__.c  # type: ignore[attr-defined]
_ENTRY = SearchEntry.__table__  # type: ignore[attr-defined]
_TERM = TaxonomyTerm.__table__.c  # type: ignore[attr-defined]
_AREA = AdminArea.__table__.c  # type: ignore[attr-defined]
_ATTRIBUTE = Attribute.__table__.c  # type: ignore[attr-defined]
_LANGUAGE = Language.__table__.c  # type: ignore[attr-defined]
_CAPACITY = ServiceCapacity.__table__.c  # type: ignore[attr-defined]
_UNIT = Unit.__table__.c  # type: ignore[attr-defined]
_SCHEDULE = Schedule.__table__.c  # type: ignore[attr-defined]
_ACCESSIBILITY = Accessibility.__table__.c  # type: ignore[attr-defined]
_PHONE = Phone.__table__.c  # type: ignore[attr-defined]


def _ids() -> Any:
    # One expanding parameter: each statement below is built and compiled once, then bound.
    return bindparam("ids", expanding=True)


# The service, organization and location columns of links.
_LINK_ROWS: Select[Any] = (
    select(
        _SAL.id.label("link_id"),
        _SAL.service_id,
        _SAL.location_id,
        _SERVICE.organization_id,
        _SERVICE.name.label("service_name"),
        _SERVICE.status.label("service_status"),
        _SERVICE.minimum_age,
        _SERVICE.maximum_age,
        _SERVICE.genders_served,
        _SERVICE.trans_inclusive,
        _SERVICE.lgbtiq_affirming,
        _SERVICE.accepts_accompanying_children,
        _SERVICE.minors_only,
        _SERVICE.search_text,
        _SERVICE.assured_date,
        _SERVICE.interpretation_services,
        _ORGANIZATION.name.label("organization_name"),
        _ORGANIZATION.status.label("organization_status"),
        _LOCATION.name.label("location_name"),
        _LOCATION.latitude,
        _LOCATION.longitude,
        _LOCATION.visibility,
        _LOCATION.organization_id.label("location_organization_id"),
        _LOCATION.department_code,
        _LOCATION.municipality_code,
        _LOCATION.intake_phone,
        _LOCATION.intake_description,
        _LOCATION.geocoding_precision,
        _LOCATION.status.label("location_status"),
        # The points' own coordinates: written back as points, bit for bit.
        func.ST_X(_LOCATION.geom).label("exact_x"),
        func.ST_Y(_LOCATION.geom).label("exact_y"),
        func.ST_X(_LOCATION.public_geom).label("public_x"),
        func.ST_Y(_LOCATION.public_geom).label("public_y"),
        # The point a site is shown at to an audience that may not see it: its municipality's
        # (else its department's) representative point, as ``places.representative_points``.
        _AREA.representative_latitude.label("area_latitude"),
        _AREA.representative_longitude.label("area_longitude"),
    )
    .select_from(ServiceAtLocation)
    .join(Service, _SERVICE.id == _SAL.service_id)
    .join(Location, _LOCATION.id == _SAL.location_id)
    .join(Organization, _ORGANIZATION.id == _SERVICE.organization_id)
    .outerjoin(
        AdminArea,
        _AREA.code == func.coalesce(_LOCATION.municipality_code, _LOCATION.department_code),
    )
    .where(_SAL.id.in_(_ids()))
)
_TERMS: Select[Any] = select(_TERM.id, _TERM.code, _TERM.parent_id)
# As ``taxonomy.category_labels_for`` reads them, with the term ids for the ancestors.
_CATEGORY_ROWS: Select[Any] = (
    select(_ATTRIBUTE.link_id, _TERM.id, _TERM.code, _TERM.name, _TERM.translations)
    .join(TaxonomyTerm, _TERM.id == _ATTRIBUTE.taxonomy_term_id)
    .where(
        _ATTRIBUTE.link_entity == services.LINK_ENTITY,
        _ATTRIBUTE.link_type == taxonomy.CATEGORY_LINK_TYPE,
        _ATTRIBUTE.link_id.in_(_ids()),
        # an imported taxonomy's term is no category, whatever link_type its source gave it
        taxonomy.own_terms(),
    )
    .order_by(_TERM.code, _ATTRIBUTE.link_id)
)
# As search's result shaping reads them.
_LANGUAGE_ROWS: Select[Any] = (
    select(_LANGUAGE.service_id, _LANGUAGE.code, _LANGUAGE.name)
    .where(_LANGUAGE.service_id.in_(_ids()))
    .order_by(_LANGUAGE.code, _LANGUAGE.id)
)
_CAPACITY_ROWS: Select[Any] = (
    select(
        _CAPACITY.service_id,
        _CAPACITY.id,
        _UNIT.identifier,
        _UNIT.name,
        _CAPACITY.available,
        _CAPACITY.maximum,
        _CAPACITY.description,
        _CAPACITY.updated,
    )
    .join(Unit, _UNIT.id == _CAPACITY.unit_id)
    .where(_CAPACITY.service_id.in_(_ids()))
)
# The columns ``services.weekly_schedules`` reads, as ``services.schedules_by_service`` orders.
_SCHEDULE_ROWS: Select[Any] = (
    select(
        _SCHEDULE.id,
        _SCHEDULE.service_id,
        *(_SCHEDULE[name] for name in _SCHEDULE_FIELDS),
    )
    .where(_SCHEDULE.service_id.in_(_ids()))
    .order_by(_SCHEDULE.id)
)
_ACCESSIBILITY_ROWS: Select[Any] = (
    select(_ACCESSIBILITY.location_id, _ACCESSIBILITY.description, _ACCESSIBILITY.details)
    .where(_ACCESSIBILITY.location_id.in_(_ids()))
    .order_by(_ACCESSIBILITY.id)
)
# The phones of links, locations and services (an entry shows those of its own three records).
_PHONE_ROWS: Select[Any] = (
    select(_PHONE.service_at_location_id, _PHONE.location_id, _PHONE.service_id, _PHONE.number)
    .where(
        or_(
            _PHONE.service_at_location_id.in_(bindparam("links", expanding=True)),
            _PHONE.location_id.in_(bindparam("locations", expanding=True)),
            _PHONE.service_id.in_(bindparam("services", expanding=True)),
        )
    )
    .order_by(_PHONE.id)
)
# FOR NO KEY UPDATE on PostgreSQL (it does not block the entries' foreign-key checks); nothing
# on SQLite, whose compiler leaves the clause out.
_LOCK_LINKS: Select[Any] = (
    select(_SAL.id).where(_SAL.id.in_(_ids())).order_by(_SAL.id).with_for_update(key_share=True)
)
_DELETE_ENTRIES = delete(_ENTRY).where(_ENTRY.c.service_at_location_id.in_(_ids()))


def _rows(session: Session, statement: Any, ids: Iterable[Any]) -> Result[Any]:
    return session.connection().execute(statement, {"ids": list(ids)})


@dataclass
class _ServiceParts:
    """What an entry takes from its service's child tables."""

    categories: dict[str, list[dict[str, str]]] = field(
        default_factory=lambda: {locale: [] for locale in LOCALES}
    )
    category_codes: set[str] = field(default_factory=set)
    languages: dict[str, list[dict[str, str]]] = field(
        default_factory=lambda: {locale: [] for locale in LOCALES}
    )
    language_codes: set[str] = field(default_factory=set)
    capacity: list[dict[str, Any]] = field(default_factory=list)
    has_capacity: bool = False
    capacity_updated: Any = None
    schedules: list[list[Any]] = field(default_factory=list)


def _term_parents(session: Session) -> tuple[dict[uuid.UUID, uuid.UUID], dict[uuid.UUID, str]]:
    """Every term's parent and code, by id (the taxonomy is small: one query of all terms)."""
    parents: dict[uuid.UUID, uuid.UUID] = {}
    codes: dict[uuid.UUID, str] = {}
    for term_id, code, parent_id in session.connection().execute(_TERMS):
        if parent_id is not None:
            parents[term_id] = parent_id
        if code is not None:
            codes[term_id] = code
    return parents, codes


def _codes_up_from(
    term_id: uuid.UUID, parents: Mapping[uuid.UUID, uuid.UUID], codes: Mapping[uuid.UUID, str]
) -> set[str]:
    """The codes of a term and of all its ancestors: the category filters it answers to.

    Search asks whether a service is linked to a term in the subtree of a wanted code; that is
    whether the wanted code is the code of the linked term or of one of its ancestors.
    """
    found: set[str] = set()
    seen: set[uuid.UUID] = set()
    current: uuid.UUID | None = term_id
    while current is not None and current not in seen:  # guards against a cycle
        seen.add(current)
        if current in codes:
            found.add(codes[current])
        current = parents.get(current)
    return found


def _add_categories(
    session: Session, parts: Mapping[uuid.UUID, _ServiceParts], service_ids: list[uuid.UUID]
) -> None:
    """Category labels (as ``taxonomy.category_labels_for``) and codes with their ancestors."""
    rows = list(_rows(session, _CATEGORY_ROWS, service_ids))
    if not rows:
        return
    parents, codes = _term_parents(session)
    for service_id, term_id, code, name, translations in rows:
        target = parts[service_id]
        for locale in LOCALES:
            label, _ = taxonomy.localized_label(name, "", translations, locale)
            target.categories[locale].append({"code": code or "", "name": label})
        target.category_codes |= _codes_up_from(term_id, parents, codes)


def _add_languages(
    session: Session, parts: Mapping[uuid.UUID, _ServiceParts], service_ids: list[uuid.UUID]
) -> None:
    """The service's languages, named in each locale as search names them."""
    for service_id, code, stored in _rows(session, _LANGUAGE_ROWS, service_ids):
        target = parts[service_id]
        for locale in LOCALES:
            target.languages[locale].append(
                {"code": code, "name": language_name(code, locale, stored=stored)}
            )
        target.language_codes.add(code)


def _add_capacity(
    session: Session, parts: Mapping[uuid.UUID, _ServiceParts], service_ids: list[uuid.UUID]
) -> None:
    """Capacity figures as stored, in a service read's order; whether any is free; the oldest
    stamp (what matching calls the capacity's age)."""
    rows = sorted(
        _rows(session, _CAPACITY_ROWS, service_ids),
        key=lambda row: (row.identifier or "", str(row.id)),  # as a service read
    )
    for row in rows:
        target = parts[row.service_id]
        target.capacity.append(
            {
                "unit": row.identifier or row.name,
                "available": row.available,
                "maximum": row.maximum,
                "description": row.description,
                "updated": row.updated.isoformat(),
            }
        )
        target.has_capacity = target.has_capacity or row.available > 0
        if target.capacity_updated is None or row.updated < target.capacity_updated:
            target.capacity_updated = row.updated


def _service_parts(
    session: Session, service_ids: list[uuid.UUID]
) -> dict[uuid.UUID, _ServiceParts]:
    parts = {service_id: _ServiceParts() for service_id in service_ids}
    if not service_ids:
        return parts
    _add_categories(session, parts, service_ids)
    _add_languages(session, parts, service_ids)
    _add_capacity(session, parts, service_ids)
    stored: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for row in _rows(session, _SCHEDULE_ROWS, service_ids):
        stored[row.service_id].append(row)
    for service_id, rows in stored.items():
        # The rows carry every column weekly_schedules reads (plain rows: no ORM objects).
        weekly = services.weekly_schedules(cast(list[Schedule], rows))
        parts[service_id].schedules = to_compact(weekly)
    return parts


def _accessibility_text(session: Session, location_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The text matching reads a site's accessibility tags from (as ``domain/match`` joins it)."""
    texts: dict[uuid.UUID, list[str]] = defaultdict(list)
    if location_ids:
        for location_id, description, details in _rows(session, _ACCESSIBILITY_ROWS, location_ids):
            texts[location_id].append(f"{description or ''} {details or ''}")
    return {location_id: " ".join(parts).lower() for location_id, parts in texts.items()}


_ANY_NEED = (Need(code="any"),)
_PROFILES = {gender: NeedProfile(needs=_ANY_NEED, gender=gender) for gender in GENDERS}


@cache
def served_genders(
    genders_served: frozenset[str] | None, *, trans_inclusive: bool, lgbtiq_affirming: bool
) -> tuple[str, ...]:
    """The person genders a service admits, by matching's own rule (``gender_served``).

    Codes no person can have are left out first: they never change the rule's answer.
    """
    candidate = Candidate(
        service_id="",
        location_id="",
        organization_id="",
        service_name="",
        organization_name="",
        categories=frozenset(),
        distance_m=0.0,
        genders_served=None if genders_served is None else genders_served & SERVED_GENDERS,
        trans_inclusive=trans_inclusive,
        lgbtiq_affirming=lgbtiq_affirming,
    )
    return tuple(gender for gender in GENDERS if gender_served(_PROFILES[gender], candidate))


@dataclass
class _Phones:
    """Phone numbers by the record that holds them."""

    links: dict[uuid.UUID, list[str]] = field(default_factory=lambda: defaultdict(list))
    locations: dict[uuid.UUID, list[str]] = field(default_factory=lambda: defaultdict(list))
    services: dict[uuid.UUID, list[str]] = field(default_factory=lambda: defaultdict(list))

    def of(self, row: Row[Any]) -> dict[str, list[str]]:
        """The ``doc["phones"]`` of one link row."""
        return {
            "link": self.links.get(row.link_id, []),
            "location": self.locations.get(row.location_id, []),
            "service": self.services.get(row.service_id, []),
        }


def _phones(session: Session, rows: Sequence[Row[Any]]) -> _Phones:
    """The phones of the rows' links, locations and services, in one statement."""
    found = _Phones()
    values = {
        "links": [row.link_id for row in rows],
        "locations": list({row.location_id for row in rows}),
        "services": list({row.service_id for row in rows}),
    }
    for link_id, location_id, service_id, number in session.connection().execute(
        _PHONE_ROWS, values
    ):
        # A phone names one holder; the three maps are read by holder id, so a number is filed
        # under each id it carries.
        if link_id is not None:
            found.links[link_id].append(number)
        if location_id is not None:
            found.locations[location_id].append(number)
        if service_id is not None:
            found.services[service_id].append(number)
    return found


def _whole(value: float | None) -> int | None:
    return None if value is None else int(value)


def top_category(categories: Sequence[Mapping[str, Any]]) -> str | None:
    """The top level of the first category code of a ``doc``'s list (ordered by code), the
    category a map counts a service under; None when it has no coded category."""
    codes = [category["code"] for category in categories if category.get("code")]
    return str(codes[0]).split(".", 1)[0] if codes else None


def _on_grid(longitude: float | None, latitude: float | None) -> tuple[int | None, int | None]:
    """A public point's position on the map's cluster grid (``geo.tiles.grid_mm``)."""
    if longitude is None or latitude is None:
        return (None, None)
    return grid_mm(*to_mercator(longitude, latitude))


def _entry(
    row: Row[Any],
    parts: _ServiceParts,
    accessibility_text: Mapping[uuid.UUID, str],
    phones: _Phones,
) -> dict[str, Any]:
    """One entry's column values (points as coordinates: see ``dialect.insert_search_entries``)."""
    genders = row.genders_served
    east_mm, south_mm = _on_grid(row.public_x, row.public_y)
    doc = {
        "service": {
            "id": str(row.service_id),
            "name": row.service_name,
            "organization_id": str(row.organization_id),
            "organization_name": row.organization_name or "",
            "minimum_age": _whole(row.minimum_age),
            "maximum_age": _whole(row.maximum_age),
            "genders_served": genders,
            "lgbtiq_affirming": row.lgbtiq_affirming,
            "accepts_accompanying_children": row.accepts_accompanying_children,
        },
        "location": {
            "id": str(row.location_id),
            "name": row.location_name,
            "latitude": row.latitude,
            "longitude": row.longitude,
            "department_code": row.department_code,
            "municipality_code": row.municipality_code,
            "intake_phone": row.intake_phone,
            "intake_description": row.intake_description,
            "geocoding_precision": row.geocoding_precision,
        },
        "categories": parts.categories,
        "languages": parts.languages,
        "capacity": parts.capacity,
        "schedules": parts.schedules,
        "last_verified": None if row.assured_date is None else row.assured_date.isoformat(),
        "phones": phones.of(row),
        "matching": {
            "interpretation_offered": bool((row.interpretation_services or "").strip()),
            "trans_inclusive": row.trans_inclusive,
            "accessibility_text": accessibility_text.get(row.location_id, ""),
        },
    }
    return {
        "service_at_location_id": row.link_id,
        "service_id": row.service_id,
        "location_id": row.location_id,
        "organization_id": row.organization_id,
        "location_organization_id": row.location_organization_id,
        "listed": row.service_status == RecordStatus.ACTIVE.value
        and RecordStatus.DEFUNCT.value not in (row.location_status, row.organization_status),
        "visibility": row.visibility,
        "exact_geom_x": row.exact_x,
        "exact_geom_y": row.exact_y,
        "public_geom_x": row.public_x,
        "public_geom_y": row.public_y,
        "department_code": row.department_code,
        "municipality_code": row.municipality_code,
        "public_latitude": row.area_latitude,
        "public_longitude": row.area_longitude,
        "category_codes": sorted(parts.category_codes),
        "language_codes": sorted(parts.language_codes),
        "served_genders": list(
            served_genders(
                None if genders is None else frozenset(genders),
                trans_inclusive=row.trans_inclusive,
                lgbtiq_affirming=row.lgbtiq_affirming,
            )
        ),
        # An integer age meets a stored bound exactly when it meets these.
        "minimum_age": None if row.minimum_age is None else math.ceil(row.minimum_age),
        "maximum_age": None if row.maximum_age is None else math.floor(row.maximum_age),
        "minors_only": row.minors_only,
        "lgbtiq_affirming": row.lgbtiq_affirming,
        "accepts_accompanying_children": row.accepts_accompanying_children,
        "has_capacity": parts.has_capacity,
        "capacity_updated": parts.capacity_updated,
        "search_text": row.search_text,
        "assured_date": row.assured_date,
        "service_name": row.service_name,
        "top_category": top_category(parts.categories[LOCALES[0]]),
        "public_east_mm": east_mm,
        "public_south_mm": south_mm,
        "doc": doc,
    }


def entries(session: Session, link_ids: Sequence[uuid.UUID]) -> list[dict[str, Any]]:
    """The entries of these services at locations, computed from the tables (links that do not
    exist have none), in a fixed number of queries whatever the number of links."""
    rows = list(_rows(session, _LINK_ROWS, link_ids)) if link_ids else []
    if not rows:
        return []
    parts = _service_parts(session, list(dict.fromkeys(row.service_id for row in rows)))
    accessibility = _accessibility_text(
        session, list(dict.fromkeys(row.location_id for row in rows))
    )
    phones = _phones(session, rows)
    return [_entry(row, parts[row.service_id], accessibility, phones) for row in rows]


def _batches(ids: Sequence[uuid.UUID], size: int) -> Iterator[Sequence[uuid.UUID]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def refresh(session: Session, *, service_at_location_ids: Iterable[uuid.UUID]) -> int:
    """Recompute these entries from the tables (delete, then insert); returns how many exist.

    Does not commit: it is part of the caller's transaction. The links are locked first
    (PostgreSQL), so two transactions that reach one entry refresh it one after the other, the
    second reading what the first committed; SQLite has one writer at a time anyway.
    """
    ids = sorted(set(service_at_location_ids))  # locks are taken in one order: no deadlock
    written = 0
    for batch in _batches(ids, BATCH_SIZE):
        _rows(session, _LOCK_LINKS, batch)
        _rows(session, _DELETE_ENTRIES, batch)
        computed = entries(session, batch)
        dialect.insert_search_entries(session, computed)
        written += len(computed)
    return written


def rebuild(session: Session, *, batch_size: int = BATCH_SIZE) -> int:
    """Recreate every entry from the tables, in batches; returns the count. Does not commit.

    Writers that refresh entries meanwhile wait until this transaction ends (the table lock).
    """
    dialect.lock_search_entries(session)
    dialect.defer_cluster_cells(session)  # refilled once at the end
    connection = session.connection()
    for table in (SearchEntryCategory, SearchEntryLanguage, SearchEntry):
        connection.execute(delete(table.__table__))  # type: ignore[union-attr]
    written = 0
    after: uuid.UUID | None = None
    while True:
        page = select(_SAL.id).order_by(_SAL.id).limit(batch_size)
        if after is not None:
            page = page.where(_SAL.id > after)
        batch = list(connection.execute(page).scalars())
        if not batch:
            dialect.refill_cluster_cells(session)
            return written
        computed = entries(session, batch)
        dialect.insert_search_entries(session, computed)
        written += len(computed)
        after = batch[-1]


# --- keeping it in step: session hooks --------------------------------------------------------


@dataclass
class _Touched:
    """The records a transaction wrote that entries are built from, by kind."""

    links: set[Any] = field(default_factory=set)
    services: set[Any] = field(default_factory=set)
    locations: set[Any] = field(default_factory=set)
    organizations: set[Any] = field(default_factory=set)
    terms: set[Any] = field(default_factory=set)
    units: set[Any] = field(default_factory=set)
    areas: set[Any] = field(default_factory=set)

    def add(self, kind: str, values: Iterable[Any]) -> None:
        """Record the ids (or area codes) of one kind; None is no record."""
        getattr(self, kind).update(value for value in values if value is not None)


# Table -> the (kind of record, column that names it) pairs of every record it hangs from. Every
# table an entry reads; a phone hangs from a link, a location or a service (one of them).
_TRACKED: dict[str, tuple[tuple[str, str], ...]] = {
    ServiceAtLocation.__tablename__: (("links", "id"),),
    Service.__tablename__: (("services", "id"),),
    Location.__tablename__: (("locations", "id"),),
    Organization.__tablename__: (("organizations", "id"),),
    Schedule.__tablename__: (("services", "service_id"),),
    Language.__tablename__: (("services", "service_id"),),
    ServiceCapacity.__tablename__: (("services", "service_id"),),
    # Category links of any record; only a service's reach an entry.
    Attribute.__tablename__: (("services", "link_id"),),
    Accessibility.__tablename__: (("locations", "location_id"),),
    Phone.__tablename__: (
        ("links", "service_at_location_id"),
        ("locations", "location_id"),
        ("services", "service_id"),
    ),
    TaxonomyTerm.__tablename__: (("terms", "id"),),
    Unit.__tablename__: (("units", "id"),),
    AdminArea.__tablename__: (("areas", "code"),),
}
_PENDING = "referral_net.search_model.touched"
_REFRESHING = "referral_net.search_model.refreshing"
_DEFERRED = "referral_net.search_model.deferred"


def _touched(session: Session) -> _Touched:
    pending: _Touched = session.info.setdefault(_PENDING, _Touched())
    return pending


def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    """Record the tracked records this flush wrote: their names now and before the flush (a
    language moved to another service touches both)."""
    for record in chain(session.new, session.dirty, session.deleted):
        table = getattr(record, "__tablename__", None)
        specs = _TRACKED.get(table, ()) if isinstance(table, str) else ()
        for kind, attribute in specs:
            # Passive: loads nothing. (Not ``inspect(record).attrs[...]``: that builds a state
            # for every attribute of the record, a cost each flushed row paid.)
            history = get_history(record, attribute, passive=PASSIVE_NO_INITIALIZE)
            _touched(session).add(
                kind,
                chain([record.__dict__.get(attribute)], history.added or (), history.deleted or ()),
            )


def _before_bulk_write(execution: ORMExecuteState) -> Result[Any] | None:
    """Record the rows an ORM bulk ``update()``/``delete()`` of a tracked table reaches.

    Read before the statement runs (after it, a delete has no rows to read); an update is read
    again afterwards by primary key, for the names it may have changed.
    """
    if not (execution.is_update or execution.is_delete):
        return None
    statement: Any = execution.statement
    specs = _TRACKED.get(getattr(statement.table, "name", ""), ())
    if not specs:
        return None
    table = statement.table
    named = [table.c[attribute] for _, attribute in specs]
    keys = list(table.primary_key.columns)
    reach = select(*named, *keys)
    if statement.whereclause is not None:
        reach = reach.where(statement.whereclause)
    connection = execution.session.connection()
    before = list(connection.execute(reach))
    touched = _touched(execution.session)  # type: ignore[arg-type]
    for index, (kind, _) in enumerate(specs):
        touched.add(kind, (row[index] for row in before))
    if execution.is_update and before:
        result = execution.invoke_statement()
        if len(keys) == 1:
            pks = [row[len(specs)] for row in before]
            for after in connection.execute(select(*named).where(keys[0].in_(pks))):
                for index, (kind, _) in enumerate(specs):
                    touched.add(kind, (after[index],))
        return result
    return None


def _affected_links(session: Session, touched: _Touched) -> set[uuid.UUID]:
    """The services at locations whose entries read any of the touched records."""
    reached: set[uuid.UUID] = set(touched.links)
    branches: list[Select[Any]] = []
    if touched.services:
        branches.append(select(_SAL.id).where(_SAL.service_id.in_(touched.services)))
    if touched.locations:
        branches.append(select(_SAL.id).where(_SAL.location_id.in_(touched.locations)))
    if touched.organizations:
        branches.append(
            select(_SAL.id)
            .join(Service, _SERVICE.id == _SAL.service_id)
            .where(_SERVICE.organization_id.in_(touched.organizations))
        )
    if touched.terms:
        # A term's code or parent reaches every service linked to it or to a term below it.
        parents, _ = _term_parents(session)
        below = set(touched.terms)
        grew = True
        while grew:
            grown = {child for child, parent in parents.items() if parent in below} - below
            below |= grown
            grew = bool(grown)
        branches.append(
            select(_SAL.id)
            .join(Attribute, _ATTRIBUTE.link_id == _SAL.service_id)
            .where(
                _ATTRIBUTE.link_entity == services.LINK_ENTITY,
                _ATTRIBUTE.taxonomy_term_id.in_(below),
            )
        )
    if touched.units:
        branches.append(
            select(_SAL.id)
            .join(ServiceCapacity, _CAPACITY.service_id == _SAL.service_id)
            .where(_CAPACITY.unit_id.in_(touched.units))
        )
    if touched.areas:
        branches.append(
            select(_SAL.id)
            .join(Location, _LOCATION.id == _SAL.location_id)
            .where(
                or_(
                    _LOCATION.municipality_code.in_(touched.areas),
                    and_(
                        _LOCATION.municipality_code.is_(None),
                        _LOCATION.department_code.in_(touched.areas),
                    ),
                )
            )
        )
    if branches:
        statement = branches[0] if len(branches) == 1 else union(*branches)
        reached.update(session.connection().execute(statement).scalars())
    return reached


def refresh_pending(session: Session) -> None:
    """Refresh the entries this transaction's writes so far reach (flushing pending changes
    first). Runs before every commit; a reader calls it to see its own transaction's writes."""
    if session.info.get(_REFRESHING):
        return
    if session.new or session.dirty or session.deleted:
        session.flush()  # the commit's own flush comes after this hook: record its writes now
    touched: _Touched | None = session.info.pop(_PENDING, None)
    if touched is None:
        return
    deferred: _Touched | None = session.info.get(_DEFERRED)
    if deferred is not None:
        for kind in vars(touched):
            deferred.add(kind, getattr(touched, kind))
        return
    session.info[_REFRESHING] = True
    try:
        refresh(session, service_at_location_ids=_affected_links(session, touched))
    finally:
        session.info.pop(_REFRESHING, None)


@contextmanager
def refreshed_once(session: Session) -> Iterator[None]:
    """Within the block, the session's commits gather what they touched instead of refreshing
    it; the entries are refreshed in one pass when the block ends without an exception.

    For a batch of writes whose session commits per record but whose transaction is one (an
    import's page): per commit, a refresh would run its statements for one entry each time. If
    the block raises nothing is refreshed: its caller rolls the writes back too.
    """
    session.info[_DEFERRED] = _Touched()
    try:
        yield
    except BaseException:
        session.info.pop(_DEFERRED, None)
        raise
    gathered: _Touched = session.info.pop(_DEFERRED)
    for kind in vars(gathered):
        _touched(session).add(kind, getattr(gathered, kind))
    refresh_pending(session)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    """Forget what a rolled-back transaction wrote (the database forgot it too). A savepoint's
    rollback keeps the list: what its outer transaction wrote is still to refresh."""
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


_HOOKS: tuple[tuple[str, Any], ...] = (
    ("after_flush", _after_flush),
    ("do_orm_execute", _before_bulk_write),
    ("before_commit", refresh_pending),
    ("after_transaction_end", _after_transaction_end),
)


def install() -> None:
    """Register the hooks on every session (idempotent; done when ``referral_net.domain`` is
    imported, so no session that writes through the domain can miss them)."""
    for name, hook in _HOOKS:
        if not event.contains(Session, name, hook):
            event.listen(Session, name, hook)


def uninstall() -> None:
    """Remove the hooks (the tests prove that the model goes stale without them)."""
    for name, hook in _HOOKS:
        if event.contains(Session, name, hook):
            event.remove(Session, name, hook)


install()
