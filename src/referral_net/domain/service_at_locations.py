"""Links between services and the locations where they are delivered."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select

from referral_net.db.models import Location, Service, ServiceAtLocation
from referral_net.domain import access, history, locations, nested, services, taxonomy
from referral_net.domain.record_ids import record_id
from referral_net.domain.recorded_write import recorded_write
from referral_net.errors import Conflict, Forbidden, NotFound
from referral_net.schemas.directory import (
    ServiceAtLocationCreate,
    ServiceAtLocationRead,
    ServiceAtLocationUpdate,
)
from referral_net.security.roles import Principal
from referral_net.vocab import Locale, RecordStatus

RESOURCE = "service_at_location"
# What the change history follows (see ``history``).
HISTORY_COLUMNS = ("service_id", "location_id", "description")
# session.info key: (service id, location id) pairs no stored link joins (``note_unlinked``).
_UNLINKED = "referral_net.service_at_locations.unlinked"
# Service ids per IN list when checking a page's pairs (well inside every driver's bind limits).
_PAIR_CHUNK = 500


def _snapshot(session: Session, link: ServiceAtLocation) -> dict[str, Any]:
    """The fields the change history follows (not the API shape: see ``history``)."""
    return history.fields_of(link, HISTORY_COLUMNS)


def _shaped(
    session: Session, principal: Principal, rows: list[Any], locale: Locale
) -> list[ServiceAtLocationRead]:
    """Links with their HSDS nested records. Phones and contacts of a link belong to its site:
    they are shown only to callers who see the site exactly (``locations.view_for``)."""
    ids = [link.id for link, _, _ in rows]
    phones = nested.phones(session, "service_at_location_id", ids, locale)
    contacts = nested.contacts(session, "service_at_location_id", ids, locale)
    schedules = nested.schedules(session, "service_at_location_id", ids)
    shaped = []
    for link, service, location in rows:
        exact = locations.view_for(principal, location) is access.LocationView.EXACT
        changes = [stamp for stamp in (service.last_modified, location.last_modified) if stamp]
        shaped.append(
            ServiceAtLocationRead(
                id=link.id,
                service_id=link.service_id,
                location_id=link.location_id,
                description=link.description,
                service_name=service.name,
                location_name=location.name,
                phones=phones.get(link.id, []) if exact else [],
                contacts=contacts.get(link.id, []) if exact else [],
                schedules=schedules.get(link.id, []),
                last_modified=max(changes) if changes else None,
            )
        )
    return shaped


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


def read(
    *, session: Session, principal: Principal, link_id: uuid.UUID, locale: Locale = "es"
) -> ServiceAtLocationRead:
    """Read one link."""
    row = session.exec(
        _visible_query(principal).where(col(ServiceAtLocation.id) == link_id)
    ).first()
    if row is None:
        raise NotFound("No such service at location.")
    return _shaped(session, principal, [row], locale)[0]


@dataclass(frozen=True)
class ListFilters:
    """The filters of ``GET /service_at_locations`` (HSDS parameters and the profile's)."""

    service_id: uuid.UUID | None = None
    location_id: uuid.UUID | None = None
    organization_id: uuid.UUID | None = None
    search: str | None = None
    taxonomy_term_id: uuid.UUID | None = None
    taxonomy_id: uuid.UUID | None = None
    modified_after: datetime | None = None


def _filtered(session: Session, principal: Principal, filters: ListFilters) -> Any:
    query = _visible_query(principal)
    if filters.service_id is not None:
        query = query.where(col(ServiceAtLocation.service_id) == filters.service_id)
    if filters.location_id is not None:
        query = query.where(col(ServiceAtLocation.location_id) == filters.location_id)
    if filters.organization_id is not None:
        query = query.where(col(Service.organization_id) == filters.organization_id)
    if filters.search:
        # The service's name and description, and the site's name (as the caller may see it:
        # a restricted site's name is shown in its public form too).
        needle = f"%{filters.search.lower()}%"
        query = query.where(
            or_(
                func.lower(Service.name).like(needle),
                func.lower(func.coalesce(Service.description, "")).like(needle),
                func.lower(func.coalesce(Location.name, "")).like(needle),
            )
        )
    if filters.taxonomy_term_id is not None:
        query = query.where(
            col(Service.id).in_(
                taxonomy.link_ids_with_term_id(
                    session=session,
                    link_entity=services.LINK_ENTITY,
                    term_id=filters.taxonomy_term_id,
                )
            )
        )
    if filters.taxonomy_id is not None:
        query = query.where(
            col(Service.id).in_(
                taxonomy.link_ids_with_taxonomy_id(
                    session=session,
                    link_entity=services.LINK_ENTITY,
                    taxonomy_id=filters.taxonomy_id,
                )
            )
        )
    if filters.modified_after is not None:
        # A link changes with its service or its site: either counts (HSDS: on or after).
        query = query.where(
            or_(
                col(Service.last_modified) >= filters.modified_after,
                col(Location.last_modified) >= filters.modified_after,
            )
        )
    return query


def list_page(
    *,
    session: Session,
    principal: Principal,
    offset: int,
    limit: int,
    filters: ListFilters,
    locale: Locale = "es",
) -> tuple[list[ServiceAtLocationRead], int]:
    """One page of links whose locations the caller may know about, in a stable order."""
    query = _filtered(session, principal, filters)
    total = int(session.exec(select(func.count()).select_from(query.subquery())).one())
    rows = session.exec(
        query.order_by(col(Service.name), col(Location.name), col(ServiceAtLocation.id))
        .offset(offset)
        .limit(limit)
    )
    return _shaped(session, principal, list(rows), locale), total


def nest(
    *,
    session: Session,
    principal: Principal,
    links: list[ServiceAtLocationRead],
    context: services.ReadContext,
) -> list[ServiceAtLocationRead]:
    """HSDS ``full``: each link with its service and its location nested, the location as the
    caller may see it (exact views of hidden sites audited, as a location read is)."""
    found = list(
        session.exec(
            select(Service).where(col(Service.id).in_({link.service_id for link in links}))
        )
    )
    by_service = {
        read.id: read
        for read in services.read_many(
            session=session, principal=principal, services=found, context=context
        )
    }
    by_location = locations.read_visible(
        session=session,
        principal=principal,
        location_ids=list({link.location_id for link in links}),
        locale=context.locale,
    )
    return [
        link.model_copy(
            update={
                "service": by_service.get(link.service_id),
                "location": by_location.get(link.location_id),
            }
        )
        for link in links
    ]


def note_unlinked(session: Session, pairs: Iterable[tuple[uuid.UUID, uuid.UUID]]) -> None:
    """Tell the session which of these (service id, location id) pairs no stored link joins
    (one query per chunk of pairs; an import's page of new links): linking such a pair once
    then skips the duplicate check's own query."""
    wanted = set(pairs)
    listed = sorted({service_id for service_id, _ in wanted})
    stored: set[tuple[uuid.UUID, uuid.UUID]] = set()
    for start in range(0, len(listed), _PAIR_CHUNK):
        rows = session.exec(
            select(col(ServiceAtLocation.service_id), col(ServiceAtLocation.location_id)).where(
                col(ServiceAtLocation.service_id).in_(listed[start : start + _PAIR_CHUNK])
            )
        )
        stored.update((service_id, location_id) for service_id, location_id in rows)
    unlinked: set[tuple[uuid.UUID, uuid.UUID]] = session.info.setdefault(_UNLINKED, set())
    unlinked.update(wanted - stored)


def _linked(session: Session, service_id: uuid.UUID, location_id: uuid.UUID) -> bool:
    """Whether a link joins the service and the location (stored, or added in this session)."""
    unlinked: set[tuple[uuid.UUID, uuid.UUID]] | None = session.info.get(_UNLINKED)
    if unlinked is not None and (service_id, location_id) in unlinked:
        unlinked.discard((service_id, location_id))  # once: a second link of the pair is checked
        return False
    exists = session.exec(
        select(col(ServiceAtLocation.id)).where(
            col(ServiceAtLocation.service_id) == service_id,
            col(ServiceAtLocation.location_id) == location_id,
        )
    ).first()
    return exists is not None


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
    if _linked(session, service.id, location.id):
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
