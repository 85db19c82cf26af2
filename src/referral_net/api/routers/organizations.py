"""Organizations: thin HTTP layer over ``domain.organizations``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from referral_net.api.deps import PrincipalDep, SessionDep, require_roles
from referral_net.api.etag import check_if_match, set_etag
from referral_net.api.pagination import PageDep
from referral_net.api.params import KnownQueryOnly
from referral_net.domain import organizations
from referral_net.schemas.common import Page
from referral_net.schemas.directory import (
    OrganizationCreate,
    OrganizationRead,
    OrganizationUpdate,
)
from referral_net.security.roles import Principal, Role

router = APIRouter(prefix="/api/v1/organizations", tags=["organizations"])
Editor = Annotated[Principal, Depends(require_roles(Role.STEWARD, Role.PROVIDER))]
Steward = Annotated[Principal, Depends(require_roles(Role.STEWARD))]


@router.get(
    "",
    summary="List organizations",
    response_model=Page[OrganizationRead],
    dependencies=[KnownQueryOnly],
)
def list_organizations(
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    search: Annotated[str | None, Query(max_length=200, description="Text in the name.")] = None,
    include_defunct: Annotated[bool, Query(description="Stewards only.")] = False,
) -> Page[OrganizationRead]:
    """Organizations ordered by name, paginated (HSDS envelope)."""
    items, total = organizations.list_page(
        session=session,
        principal=principal,
        offset=page.offset,
        limit=page.per_page,
        search=search,
        include_defunct=include_defunct,
    )
    return Page[OrganizationRead].build(items, total=total, page=page.page, per_page=page.per_page)


@router.post(
    "",
    summary="Create an organization",
    response_model=OrganizationRead,
    status_code=status.HTTP_201_CREATED,
)
def create_organization(
    body: OrganizationCreate, session: SessionDep, principal: Steward, response: Response
) -> OrganizationRead:
    """Create an organization (stewards)."""
    created = organizations.create(session=session, principal=principal, data=body)
    set_etag(response, created.id, created.version)
    response.headers["Location"] = f"{router.prefix}/{created.id}"
    return organizations.read(session=session, principal=principal, organization_id=created.id)


@router.get("/{organization_id}", summary="Read an organization", response_model=OrganizationRead)
def read_organization(
    organization_id: uuid.UUID, session: SessionDep, principal: PrincipalDep, response: Response
) -> OrganizationRead:
    """One organization with its phones; the ETag header gives its version."""
    record = organizations.get(
        session=session, principal=principal, organization_id=organization_id
    )
    set_etag(response, record.id, record.version)
    return organizations.read(session=session, principal=principal, organization_id=record.id)


@router.patch(
    "/{organization_id}",
    summary="Update an organization (partial; If-Match honoured)",
    response_model=OrganizationRead,
    responses={412: {"description": "If-Match names a stale version"}},
)
def update_organization(
    organization_id: uuid.UUID,
    body: OrganizationUpdate,
    request: Request,
    session: SessionDep,
    principal: Editor,
    response: Response,
) -> OrganizationRead:
    """Change the fields present in the body."""
    record = organizations.editable(
        session=session, principal=principal, organization_id=organization_id
    )
    check_if_match(request, record.id, record.version)
    organizations.update(session=session, principal=principal, organization=record, data=body)
    set_etag(response, record.id, record.version)
    return organizations.read(session=session, principal=principal, organization_id=record.id)


@router.delete(
    "/{organization_id}",
    summary="Delete an organization (soft: status defunct)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={412: {"description": "If-Match names a stale version"}},
)
def delete_organization(
    organization_id: uuid.UUID, request: Request, session: SessionDep, principal: Steward
) -> Response:
    """Mark the organization defunct; stewards can still read it."""
    record = organizations.editable(
        session=session, principal=principal, organization_id=organization_id
    )
    check_if_match(request, record.id, record.version)
    organizations.soft_delete(session=session, principal=principal, organization=record)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
