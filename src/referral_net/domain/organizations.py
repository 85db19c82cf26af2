"""Organizations: create, read, list, update, soft delete, with change history."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from referral_net.db.models import Organization, Phone
from referral_net.domain import access, history
from referral_net.domain.common import children_by, replace_children
from referral_net.domain.record_ids import record_id
from referral_net.domain.recorded_write import recorded_write
from referral_net.errors import Forbidden, InvalidInput, NotFound
from referral_net.schemas.directory import (
    OrganizationCreate,
    OrganizationRead,
    OrganizationUpdate,
    PhoneIn,
    PhoneOut,
)
from referral_net.security.roles import Principal, Role
from referral_net.vocab import RecordStatus

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


def _phones(rows: list[PhoneIn]) -> list[Phone]:
    return [Phone(**p.model_dump()) for p in rows]


def to_read(organization: Organization, phones: list[Phone]) -> OrganizationRead:
    """Shape an organization for the API."""
    return OrganizationRead(
        **organization.model_dump(exclude={"version"}),
        phones=[PhoneOut.model_validate(p, from_attributes=True) for p in phones],
    )


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


def read(*, session: Session, principal: Principal, organization_id: uuid.UUID) -> OrganizationRead:
    """Read one organization with its phones."""
    organization = get(session=session, principal=principal, organization_id=organization_id)
    phones = children_by(session, Phone, "organization_id", [organization.id])[organization.id]
    return to_read(organization, phones)


def list_page(
    *,
    session: Session,
    principal: Principal,
    offset: int,
    limit: int,
    search: str | None = None,
    include_defunct: bool = False,
) -> tuple[list[OrganizationRead], int]:
    """One page of organizations ordered by name then id, and the total count."""
    query = select(Organization)
    if not (include_defunct and access.can_see_defunct(principal)):
        query = query.where(col(Organization.status) != RecordStatus.DEFUNCT.value)
    if search:
        query = query.where(func.lower(Organization.name).contains(search.lower()))
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = list(
        session.exec(
            query.order_by(col(Organization.name), col(Organization.id)).offset(offset).limit(limit)
        )
    )
    phones = children_by(session, Phone, "organization_id", [o.id for o in rows])
    return [to_read(o, phones[o.id]) for o in rows], int(total)


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
        replace_children(session, Phone, "organization_id", organization.id, _phones(data.phones))
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
    """Apply a partial update and record each changed field; only stewards change the parent."""
    changes = data.model_dump(exclude_unset=True, exclude={"phones"})
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
            replace_children(
                session, Phone, "organization_id", organization.id, _phones(data.phones)
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
