"""Building a search's SQL: which point column the caller searches, the filters, the mode.

The audience rule comes first: ``access`` decides which point column a caller searches (the exact
``geom`` for trusted roles, ``public_geom`` for everyone else) and therefore which rows exist for
them at all. Dialect SQL comes from ``db.dialect``; everything here is portable.

Every statement selects labelled columns (``HIT_COLUMNS``, ``DISPLAY_COLUMNS``) and every reader
reads rows by those names, never by position.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    and_,
    exists,
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
)
from referral_net.domain import access, services, taxonomy
from referral_net.domain.eligibility_sql import gender_rule
from referral_net.domain.search.query import Hit, SearchQuery
from referral_net.errors import InvalidInput
from referral_net.geo.convert import geodesic_bbox
from referral_net.security.roles import Principal
from referral_net.text import fold
from referral_net.vocab import RecordStatus

# Shown with every result; selected with the page (the page query already joins these tables).
DISPLAY_COLUMNS: tuple[ColumnElement[Any], ...] = (
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


@dataclass(frozen=True)
class Plan:
    """A search's base statement (every match, unordered) and the parts that order and bound it.

    ``statement`` selects ``link_id``, ``service_id``, ``location_id`` and ``distance_m`` (null
    without a reference point); ``column`` names the point column that ``geom`` is.
    """

    statement: Select[Any]
    geom: ColumnElement[Any]
    column: str
    distance: ColumnElement[float] | None
    name_order: ColumnElement[Any]


def connection(session: Session) -> Connection:
    """The session's connection, for search's plain column selects.

    Search only reads: its statements go straight to the session's connection (same
    transaction), skipping the ORM execution layer, which showed up per statement on the hot
    path and has nothing to do for plain column selects.
    """
    return session.connection()


def hit(row: Row[Any]) -> Hit:
    """The hit a row of the plan's statement stands for."""
    distance = row.distance_m
    return Hit(
        link_id=row.link_id,
        service_id=row.service_id,
        location_id=row.location_id,
        distance_m=None if distance is None else float(distance),
    )


def _escape_like(token: str) -> str:
    return token.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filters(session: Session, query: SearchQuery) -> list[ColumnElement[bool]]:
    return [*_person_filters(session, query), *_offer_filters(query)]


def _person_filters(session: Session, query: SearchQuery) -> list[ColumnElement[bool]]:
    """What the person needs: categories, a language, their age and gender."""
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
        conditions.append(gender_rule(session, query.gender))
    return conditions


def _offer_filters(query: SearchQuery) -> list[ColumnElement[bool]]:
    """What the service offers: flags, free capacity, text, a recent verification."""
    conditions: list[ColumnElement[bool]] = []
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
        conditions.extend(
            col(Service.search_text).like(f"%{_escape_like(token)}%", escape="\\")
            for token in fold(query.text).split()
        )
    if query.verified_within_days is not None:
        since = query.today - timedelta(days=query.verified_within_days)
        conditions.append(col(Service.assured_date) >= since)
    return conditions


def _in_mode(
    session: Session, query: SearchQuery, *, column: str, geom: ColumnElement[Any]
) -> list[ColumnElement[bool]]:
    """The condition of the geometric mode; none for ``near`` (bounded later, by distance)."""
    if query.mode == "bbox" and query.box is not None:
        return [dialect.in_box(session, table="location", column=column, geom=geom, box=query.box)]
    if query.mode in ("department", "municipality") and query.area_code is not None:
        return [
            dialect.in_admin_area(
                session, table="location", column=column, geom=geom, code=query.area_code
            )
        ]
    if query.mode == "covers" and query.latitude is not None and query.longitude is not None:
        return [
            dialect.service_area_covers(
                session,
                service_id=Service.__table__.c["id"],  # type: ignore[attr-defined]
                latitude=query.latitude,
                longitude=query.longitude,
            )
        ]
    return []


def build(session: Session, principal: Principal, query: SearchQuery) -> Plan:
    """The plan of a search for a caller (unknown category codes are refused here: a 422)."""
    column = "geom" if access.sees_exact_points_everywhere(principal) else "public_geom"
    geom: ColumnElement[Any] = Location.__table__.c[column]  # type: ignore[attr-defined]
    distance = (
        dialect.distance_m(session, geom, latitude=query.latitude, longitude=query.longitude)
        if query.latitude is not None and query.longitude is not None
        else None
    )
    statement: Select[Any] = (
        select(
            col(ServiceAtLocation.id).label("link_id"),
            col(ServiceAtLocation.service_id).label("service_id"),
            col(ServiceAtLocation.location_id).label("location_id"),
            (distance if distance is not None else literal(None)).label("distance_m"),
        )
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
            *_in_mode(session, query, column=column, geom=geom),
        )
    )
    return Plan(
        statement=statement,
        geom=geom,
        column=column,
        distance=distance,
        name_order=dialect.code_point_order(session, col(Service.name)),
    )


def within(session: Session, plan: Plan, query: SearchQuery, radius_m: float) -> Select[Any]:
    """The plan's rows within ``radius_m`` geodesic metres of the reference point."""
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


def ordered(plan: Plan, statement: Select[Any]) -> Select[Any]:
    """Nearest first (ties by id) with a reference point; otherwise by name, then id."""
    if plan.distance is not None:
        return statement.order_by(plan.distance, col(ServiceAtLocation.id))
    return statement.order_by(plan.name_order, col(ServiceAtLocation.id))


def with_display(statement: Select[Any]) -> Select[Any]:
    """The statement with the columns a result shows (``DISPLAY_COLUMNS``) added."""
    return statement.add_columns(*DISPLAY_COLUMNS)


def only_links(statement: Select[Any], link_ids: list[uuid.UUID]) -> Select[Any]:
    """The statement narrowed to these services at locations."""
    return statement.where(col(ServiceAtLocation.id).in_(link_ids))


def validate_area(*, session: Session, mode: str, code: str) -> None:
    """Refuse an unknown department or municipality code (a 422, never an empty page)."""
    level = (
        connection(session)
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
