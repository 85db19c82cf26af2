"""Links between services and the locations where they are delivered."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select

from referral_net.db.models import Location, Service, ServiceAtLocation
from referral_net.domain import access, history, locations, services
from referral_net.domain.record_ids import record_id
from referral_net.domain.recorded_write import recorded_write
from referral_net.errors import Conflict, Forbidden, NotFound
from referral_net.schemas.directory import (
    ServiceAtLocationCreate,
    ServiceAtLocationRead,
    ServiceAtLocationUpdate,
)
from referral_net.security.roles import Principal
from referral_net.vocab import RecordStatus

RESOURCE = "service_at_location"
# What the change history follows (see ``history``).
HISTORY_COLUMNS = ("service_id", "location_id", "description")


def _snapshot(session: Session, link: ServiceAtLocation) -> dict[str, Any]:
    """The fields the change history follows (not the API shape: see ``history``)."""
    return history.fields_of(link, HISTORY_COLUMNS)


def _read(link: ServiceAtLocation, service: Service, location: Location) -> ServiceAtLocationRead:
    return ServiceAtLocationRead(
        id=link.id,
        service_id=link.service_id,
        location_id=link.location_id,
        description=link.description,
        service_name=service.name,
        location_name=location.name,
    )


def _visible_query(
    principal: Principal,
) -> Select[ServiceAtLocation, Service, Location]:
    query = (
        select(ServiceAtLocation, Service, Location)
        .join(Service, col(Service.id) == col(ServiceAtLocation.service_id))
        .join(Location, col(Location.id) == col(ServiceAtLocation.location_id))
        .where(access.visible_locations_clause(principal))
    )
    if not access.can_see_defunct(principal):
        query = query.where(
            col(Service.status) != RecordStatus.DEFUNCT.value,
            col(Location.status) != RecordStatus.DEFUNCT.value,
        )
    return query


def get(*, session: Session, principal: Principal, link_id: uuid.UUID) -> ServiceAtLocation:
    """Fetch a link the caller may know about (its location visible to them), else 404."""
    row = session.exec(
        _visible_query(principal).where(col(ServiceAtLocation.id) == link_id)
    ).first()
    if row is None:
        raise NotFound("No such service at location.")
    link: ServiceAtLocation = row[0]
    return link


def read(*, session: Session, principal: Principal, link_id: uuid.UUID) -> ServiceAtLocationRead:
    """Read one link."""
    row = session.exec(
        _visible_query(principal).where(col(ServiceAtLocation.id) == link_id)
    ).first()
    if row is None:
        raise NotFound("No such service at location.")
    return _read(*row)


def list_page(
    *,
    session: Session,
    principal: Principal,
    offset: int,
    limit: int,
    service_id: uuid.UUID | None = None,
    location_id: uuid.UUID | None = None,
    organization_id: uuid.UUID | None = None,
) -> tuple[list[ServiceAtLocationRead], int]:
    """One page of links whose locations the caller may know about, in a stable order."""
    query = _visible_query(principal)
    if service_id is not None:
        query = query.where(col(ServiceAtLocation.service_id) == service_id)
    if location_id is not None:
        query = query.where(col(ServiceAtLocation.location_id) == location_id)
    if organization_id is not None:
        query = query.where(col(Service.organization_id) == organization_id)
    total = int(session.exec(select(func.count()).select_from(query.subquery())).one())
    rows = session.exec(
        query.order_by(col(Service.name), col(Location.name), col(ServiceAtLocation.id))
        .offset(offset)
        .limit(limit)
    )
    return [_read(*row) for row in rows], total


def create(
    *,
    session: Session,
    principal: Principal,
    data: ServiceAtLocationCreate,
    trusted_ids: bool = False,
) -> ServiceAtLocation:
    """Link a service to a location of the same organization, both editable by the caller.

    ``trusted_ids`` lets an import keep its ids; otherwise only stewards may choose one.
    """
    service = services.editable(session=session, principal=principal, service_id=data.service_id)
    location = locations.editable(
        session=session, principal=principal, location_id=data.location_id
    )
    if location.organization_id not in (None, service.organization_id) and not (
        access.can_edit(principal, location.organization_id)
    ):
        raise Forbidden("The location belongs to another organization.")
    exists = session.exec(
        select(ServiceAtLocation).where(
            col(ServiceAtLocation.service_id) == service.id,
            col(ServiceAtLocation.location_id) == location.id,
        )
    ).first()
    if exists is not None:
        raise Conflict("The service is already linked to that location.")
    link = ServiceAtLocation(
        id=record_id(session, ServiceAtLocation, data.id, principal=principal, trusted=trusted_ids),
        service_id=service.id,
        location_id=location.id,
        description=data.description,
    )
    with recorded_write(
        session, principal, link, resource_type=RESOURCE, action=history.CREATE, snapshot=_snapshot
    ):
        pass  # adding the link is the whole write: it has no nested rows
    return link


def editable(*, session: Session, principal: Principal, link_id: uuid.UUID) -> ServiceAtLocation:
    """Fetch a link the caller may edit."""
    link = get(session=session, principal=principal, link_id=link_id)
    service = session.get(Service, link.service_id)
    if service is None or not access.can_edit(principal, service.organization_id):
        raise Forbidden("You may not edit this link.")
    return link


def update(
    *,
    session: Session,
    principal: Principal,
    link: ServiceAtLocation,
    data: ServiceAtLocationUpdate,
) -> ServiceAtLocation:
    """Change a link's description."""
    with recorded_write(
        session, principal, link, resource_type=RESOURCE, action=history.UPDATE, snapshot=_snapshot
    ):
        if "description" in data.model_fields_set:
            link.description = data.description
    return link


def delete(*, session: Session, principal: Principal, link: ServiceAtLocation) -> None:
    """Remove a link (links carry no status in HSDS; the history keeps what it was)."""
    with recorded_write(
        session, principal, link, resource_type=RESOURCE, action=history.DELETE, snapshot=_snapshot
    ):
        session.delete(link)
