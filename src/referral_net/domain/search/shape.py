"""Shaping a page of search rows into results: the services' child tables (categories,
languages, capacity, schedules), opening hours now, and each site placed for the audience."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Select, select
from sqlmodel import Session, col

from referral_net.db.models import Language, ServiceCapacity, Unit
from referral_net.domain import services, taxonomy
from referral_net.domain.languages import language_name
from referral_net.domain.places import Audience, Site
from referral_net.domain.search.plan import connection
from referral_net.domain.search.query import SearchQuery
from referral_net.opening_hours import WeeklySchedule, is_open, is_open_24h, to_guatemala
from referral_net.schemas.directory import CapacityOut, CategoryOut, LanguageOut
from referral_net.schemas.search import SearchResult, SearchService


@dataclass
class _Extras:
    """What results show from the services' child tables, by service id."""

    categories: dict[uuid.UUID, list[CategoryOut]]
    languages: dict[uuid.UUID, list[LanguageOut]]
    capacity: dict[uuid.UUID, list[CapacityOut]]
    schedules: dict[uuid.UUID, list[WeeklySchedule]]


def _languages(
    session: Session, service_ids: list[uuid.UUID], query: SearchQuery
) -> dict[uuid.UUID, list[LanguageOut]]:
    statement: Select[Any] = (
        select(
            col(Language.service_id).label("service_id"),
            col(Language.code).label("code"),
            col(Language.name).label("name"),
        )
        .where(col(Language.service_id).in_(service_ids))
        .order_by(col(Language.code), col(Language.id))
    )
    languages: dict[uuid.UUID, list[LanguageOut]] = defaultdict(list)
    for row in connection(session).execute(statement):
        languages[row.service_id].append(
            LanguageOut(code=row.code, name=language_name(row.code, query.locale, stored=row.name))
        )
    return languages


def _capacity(
    session: Session, service_ids: list[uuid.UUID], query: SearchQuery
) -> dict[uuid.UUID, list[CapacityOut]]:
    context = services.ReadContext(
        locale=query.locale, at=query.evaluated_at, capacity_stale_after=query.capacity_stale_after
    )
    statement: Select[Any] = (
        select(
            col(ServiceCapacity.service_id).label("service_id"),
            col(Unit.identifier).label("unit_identifier"),
            col(Unit.name).label("unit_name"),
            col(ServiceCapacity.available).label("available"),
            col(ServiceCapacity.maximum).label("maximum"),
            col(ServiceCapacity.description).label("description"),
            col(ServiceCapacity.updated).label("updated"),
            col(ServiceCapacity.id).label("capacity_id"),
        )
        .join(Unit, col(Unit.id) == col(ServiceCapacity.unit_id))
        .where(col(ServiceCapacity.service_id).in_(service_ids))
    )
    rows = sorted(
        connection(session).execute(statement),
        key=lambda row: (row.unit_identifier or "", str(row.capacity_id)),  # as a service read
    )
    capacity: dict[uuid.UUID, list[CapacityOut]] = defaultdict(list)
    for row in rows:
        capacity[row.service_id].append(
            services.capacity_item(
                unit=row.unit_identifier or row.unit_name,
                available=row.available,
                maximum=row.maximum,
                description=row.description,
                updated=row.updated,
                context=context,
            )
        )
    return capacity


def _extras(session: Session, service_ids: list[uuid.UUID], query: SearchQuery) -> _Extras:
    """Four small queries of only the columns shown (no ORM objects: this is the hot path)."""
    labels = taxonomy.category_labels_for(
        session=session, link_entity=services.LINK_ENTITY, link_ids=service_ids, locale=query.locale
    )
    return _Extras(
        categories={
            sid: [CategoryOut(code=code, name=name) for code, name in pairs]
            for sid, pairs in labels.items()
        },
        languages=_languages(session, service_ids, query),
        capacity=_capacity(session, service_ids, query),
        schedules=services.schedules_by_service(session=session, service_ids=service_ids),
    )


def _site(row: Row[Any]) -> Site:
    return Site(
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


def _service(row: Row[Any]) -> SearchService:
    return SearchService(
        id=row.service_id,
        name=row.service_name,
        organization_id=row.service_organization_id,
        organization_name=row.organization_name or "",
        minimum_age=None if row.minimum_age is None else int(row.minimum_age),
        maximum_age=None if row.maximum_age is None else int(row.maximum_age),
        genders_served=row.genders_served,
        lgbtiq_affirming=row.lgbtiq_affirming,
        accepts_accompanying_children=row.accepts_accompanying_children,
    )


def results(
    session: Session, audience: Audience, query: SearchQuery, rows: Sequence[Row[Any]]
) -> list[SearchResult]:
    """The results of a page of rows selected with the display columns (``plan.with_display``)."""
    if not rows:
        return []
    service_ids = list(dict.fromkeys(row.service_id for row in rows))
    extras = _extras(session, service_ids, query)
    places = audience.place([_site(row) for row in rows])
    today = to_guatemala(query.evaluated_at).date()
    shaped = []
    for row in rows:
        schedules = extras.schedules.get(row.service_id, [])
        shaped.append(
            SearchResult(
                service_at_location_id=row.link_id,
                distance_m=None if row.distance_m is None else round(float(row.distance_m), 3),
                service=_service(row),
                location=places[row.location_id],
                categories=extras.categories.get(row.service_id, []),
                languages=extras.languages.get(row.service_id, []),
                open_now=is_open(schedules, query.evaluated_at) if schedules else None,
                open_24h=bool(schedules) and is_open_24h(schedules, on=today),
                capacity=extras.capacity.get(row.service_id, []),
                last_verified=row.assured_date,
            )
        )
    return shaped
