"""Organizations: create, read, list, update, soft delete, with change history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from referral_net.db.models import Organization, Phone, Service
from referral_net.domain import access, history, nested
from referral_net.domain.common import children_by, replace_phones
from referral_net.domain.record_ids import record_id
from referral_net.domain.recorded_write import recorded_write
from referral_net.errors import Forbidden, InvalidInput, NotFound
from referral_net.schemas.directory import (
    OrganizationCreate,
    OrganizationRead,
    OrganizationServiceRead,
    OrganizationUpdate,
    PhoneIn,
    ServiceRead,
)
from referral_net.security.roles import Principal, Role
from referral_net.vocab import Locale, RecordStatus

RESOURCE = "organization"
# What the change history follows (see ``history``): the columns below and the phone list.
HISTORY_COLUMNS = (
    "id",
    "name",
    "alternate_name",
    "description",
    "email",
    "website",
    "tax_status",
    "tax_id",
    "year_incorporated",
    "legal_status",
    "logo",
    "uri",
    "parent_organization_id",
    "status",
)
PHONE_HISTORY_COLUMNS = ("number", "extension", "type", "description")


def _phones(
    session: Session, organization_id: uuid.UUID, items: list[PhoneIn], *, may_choose_ids: bool
) -> None:
    """Replace the organization's phones (and their languages), keeping the ids they name."""
    replace_phones(
        session,
        "organization_id",
        organization_id,
        items,
        field="body.phones",
        may_choose_ids=may_choose_ids,
    )


def read_records(
    *, session: Session, organization_ids: Sequence[uuid.UUID], locale: Locale
) -> dict[uuid.UUID, OrganizationRead]:
    """Many organizations with their HSDS nested records (phones, contacts, funding, programs,
    identifiers), by id, in a fixed number of queries. No access check: the caller's."""
    ids = list(organization_ids)
    if not ids:
        return {}
    rows = session.exec(select(Organization).where(col(Organization.id).in_(ids)))
    phones = nested.phones(session, "organization_id", ids, locale)
    contacts = nested.contacts(session, "organization_id", ids, locale)
    funding = nested.funding(session, "organization_id", ids)
    programs = nested.programs(session, "organization_id", ids)
    identifiers = nested.organization_identifiers(session, ids)
    return {
        row.id: OrganizationRead(
            **row.model_dump(exclude={"version"}),
            phones=phones.get(row.id, []),
            contacts=contacts.get(row.id, []),
            funding=funding.get(row.id, []),
            programs=programs.get(row.id, []),
            organization_identifiers=identifiers.get(row.id, []),
        )
        for row in rows
    }


def _snapshot(session: Session, organization: Organization) -> dict[str, Any]:
    """The fields the change history follows (not the API shape: see ``history``)."""
    phones = children_by(session, Phone, "organization_id", [organization.id])[organization.id]
    return history.fields_of(organization, HISTORY_COLUMNS) | {
        "phones": [history.fields_of(p, PHONE_HISTORY_COLUMNS) for p in phones]
    }


def get(*, session: Session, principal: Principal, organization_id: uuid.UUID) -> Organization:
    """Fetch an organization the caller may read (defunct ones only for stewards)."""
    organization = session.get(Organization, organization_id)
    if organization is None or (
        organization.status == RecordStatus.DEFUNCT and not access.can_see_defunct(principal)
    ):
        raise NotFound("No such organization.")
    return organization


def read(
    *,
    session: Session,
    principal: Principal,
    organization_id: uuid.UUID,
    locale: Locale = "es",
) -> OrganizationRead:
    """Read one organization, fully nested, with the id, name and status of each of its services
    the caller may know about."""
    organization = get(session=session, principal=principal, organization_id=organization_id)
    return with_services(
        session=session,
        principal=principal,
        records=read_records(session=session, organization_ids=[organization.id], locale=locale),
    )[organization.id]


def with_services(
    *, session: Session, principal: Principal, records: dict[uuid.UUID, OrganizationRead]
) -> dict[uuid.UUID, OrganizationRead]:
    """The organizations with their ``services`` array (id, name, status of each service the
    caller may know about, by name), in one query."""
    query = (
        select(
            col(Service.organization_id), col(Service.id), col(Service.name), col(Service.status)
        )
        .where(
            col(Service.organization_id).in_(list(records)),
            col(Service.status) != RecordStatus.DEFUNCT.value,
            access.visible_services_clause(principal),
        )
        .order_by(col(Service.name), col(Service.id))
    )
    found: dict[uuid.UUID, list[OrganizationServiceRead | ServiceRead]] = {
        key: [] for key in records
    }
    for organization_id, sid, name, status in session.exec(query):
        found[organization_id].append(OrganizationServiceRead(id=sid, name=name, status=status))
    return {
        key: record.model_copy(update={"services": found[key]}) for key, record in records.items()
    }


def list_page(
    *,
    session: Session,
    principal: Principal,
    offset: int,
    limit: int,
    search: str | None = None,
    include_defunct: bool = False,
    modified_after: datetime | None = None,
    locale: Locale = "es",
) -> tuple[list[OrganizationRead], int]:
    """One page of organizations ordered by name then id, and the total count
    (``modified_after``: on or after that instant, as HSDS says)."""
    query = select(Organization)
    if not (include_defunct and access.can_see_defunct(principal)):
        query = query.where(col(Organization.status) != RecordStatus.DEFUNCT.value)
    if search:
        query = query.where(func.lower(Organization.name).contains(search.lower()))
    if modified_after is not None:
        query = query.where(col(Organization.last_modified) >= modified_after)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = list(
        session.exec(
            query.order_by(col(Organization.name), col(Organization.id)).offset(offset).limit(limit)
        )
    )
    records = read_records(session=session, organization_ids=[o.id for o in rows], locale=locale)
    return [records[o.id] for o in rows], int(total)


def _check_parent(
    session: Session,
    principal: Principal,
    organization_id: uuid.UUID,
    parent_id: uuid.UUID | None,
) -> None:
    """Setting, changing or clearing a parent link is a steward's call; the parent must exist
    and must not descend from the organization (no cycles)."""
    if not access.may_link_organizations(principal):
        raise Forbidden("Only stewards link organizations.")
    ancestor = (
        None
        if parent_id is None
        else get(session=session, principal=principal, organization_id=parent_id)
    )
    seen: set[uuid.UUID] = set()
    while ancestor is not None and ancestor.id not in seen:
        if ancestor.id == organization_id:
            raise InvalidInput(
                "Invalid values in: body.parent_organization_id",
                errors=[
                    {
                        "field": "body.parent_organization_id",
                        "location": "body",
                        "message": "an organization cannot be its own parent or ancestor",
                        "type": "value_error",
                    }
                ],
            )
        seen.add(ancestor.id)
        parent = ancestor.parent_organization_id
        ancestor = None if parent is None else session.get(Organization, parent)


def create(
    *,
    session: Session,
    principal: Principal,
    data: OrganizationCreate,
    trusted_ids: bool = False,
) -> Organization:
    """Create an organization (stewards only) and record its history.

    ``trusted_ids`` lets an import keep its ids (stewards may always choose one).
    """
    if principal.role is not Role.STEWARD:
        raise Forbidden("Only stewards create organizations.")
    new_id = record_id(session, Organization, data.id, principal=principal, trusted=trusted_ids)
    if data.parent_organization_id is not None:
        _check_parent(session, principal, new_id, data.parent_organization_id)
    organization = Organization(**data.model_dump(exclude={"id", "phones"}), id=new_id)
    with recorded_write(
        session,
        principal,
        organization,
        resource_type=RESOURCE,
        action=history.CREATE,
        snapshot=_snapshot,
    ):
        _phones(
            session,
            organization.id,
            data.phones,
            may_choose_ids=trusted_ids or access.may_choose_ids(principal),
        )
    return organization


def editable(*, session: Session, principal: Principal, organization_id: uuid.UUID) -> Organization:
    """Fetch an organization the caller may edit: 404 if unknown to them, 403 if not theirs."""
    organization = get(session=session, principal=principal, organization_id=organization_id)
    if not access.can_edit(principal, organization.id):
        raise Forbidden("You may not edit this organization.")
    return organization


def update(
    *, session: Session, principal: Principal, organization: Organization, data: OrganizationUpdate
) -> Organization:
    """Apply a partial update and record each changed field; only stewards change the parent.

    Read-only fields are the caller's to check first (``common.refuse_changed_read_only``).
    """
    changes = data.model_dump(exclude_unset=True, exclude={"phones", *data.read_only})
    parent = changes.get("parent_organization_id", organization.parent_organization_id)
    if parent != organization.parent_organization_id:
        _check_parent(session, principal, organization.id, parent)
    with recorded_write(
        session,
        principal,
        organization,
        resource_type=RESOURCE,
        action=history.UPDATE,
        snapshot=_snapshot,
    ):
        for field, value in changes.items():
            setattr(organization, field, value)
        if data.phones is not None:
            _phones(
                session,
                organization.id,
                data.phones,
                may_choose_ids=access.may_choose_ids(principal),
            )
    return organization


def soft_delete(*, session: Session, principal: Principal, organization: Organization) -> None:
    """Mark an organization defunct (HSDS status); it stays readable for stewards."""
    with recorded_write(
        session,
        principal,
        organization,
        resource_type=RESOURCE,
        action=history.DELETE,
        snapshot=_snapshot,
    ):
        organization.status = RecordStatus.DEFUNCT.value
