"""Service-at-location links: thin HTTP layer over ``domain.service_at_locations``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from referral_net.api.deps import PrincipalDep, SessionDep, require_roles
from referral_net.api.etag import check_if_match_tag, content_etag
from referral_net.api.pagination import PageDep
from referral_net.api.params import KnownQueryOnly
from referral_net.db.models import ServiceAtLocation
from referral_net.domain import service_at_locations as links
from referral_net.schemas.common import Page
from referral_net.schemas.directory import (
    ServiceAtLocationCreate,
    ServiceAtLocationRead,
    ServiceAtLocationUpdate,
)
from referral_net.security.roles import Principal, Role

router = APIRouter(prefix="/api/v1/service_at_locations", tags=["service_at_locations"])
Editor = Annotated[Principal, Depends(require_roles(Role.STEWARD, Role.PROVIDER))]


def _etag(link: ServiceAtLocation) -> str:
    return content_etag(link.id, link.service_id, link.location_id, link.description)


@router.get(
    "",
    summary="List services at locations",
    response_model=Page[ServiceAtLocationRead],
    dependencies=[KnownQueryOnly],
)
def list_links(
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    service_id: uuid.UUID | None = None,
    location_id: uuid.UUID | None = None,
    organization_id: uuid.UUID | None = None,
) -> Page[ServiceAtLocationRead]:
    """Links whose location the caller may know about, in a stable order."""
    items, total = links.list_page(
        session=session,
        principal=principal,
        offset=page.offset,
        limit=page.per_page,
        service_id=service_id,
        location_id=location_id,
        organization_id=organization_id,
    )
    return Page[ServiceAtLocationRead].build(
        items, total=total, page=page.page, per_page=page.per_page
    )


@router.post(
    "",
    summary="Link a service to a location",
    response_model=ServiceAtLocationRead,
    status_code=status.HTTP_201_CREATED,
)
def create_link(
    body: ServiceAtLocationCreate, session: SessionDep, principal: Editor, response: Response
) -> ServiceAtLocationRead:
    """Deliver a service at a location of the caller's organization."""
    link = links.create(session=session, principal=principal, data=body)
    response.headers["ETag"] = _etag(link)
    response.headers["Location"] = f"{router.prefix}/{link.id}"
    return links.read(session=session, principal=principal, link_id=link.id)


@router.get(
    "/{link_id}", summary="Read a service at a location", response_model=ServiceAtLocationRead
)
def read_link(
    link_id: uuid.UUID, session: SessionDep, principal: PrincipalDep, response: Response
) -> ServiceAtLocationRead:
    """One link."""
    link = links.get(session=session, principal=principal, link_id=link_id)
    response.headers["ETag"] = _etag(link)
    return links.read(session=session, principal=principal, link_id=link.id)


@router.patch(
    "/{link_id}",
    summary="Update a service at a location",
    response_model=ServiceAtLocationRead,
    responses={412: {"description": "If-Match names a stale version"}},
)
def update_link(
    link_id: uuid.UUID,
    body: ServiceAtLocationUpdate,
    request: Request,
    session: SessionDep,
    principal: Editor,
    response: Response,
) -> ServiceAtLocationRead:
    """Change the link's description."""
    link = links.editable(session=session, principal=principal, link_id=link_id)
    check_if_match_tag(request, _etag(link))
    links.update(session=session, principal=principal, link=link, data=body)
    response.headers["ETag"] = _etag(link)
    return links.read(session=session, principal=principal, link_id=link.id)


@router.delete(
    "/{link_id}",
    summary="Remove a service from a location",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={412: {"description": "If-Match names a stale version"}},
)
def delete_link(
    link_id: uuid.UUID, request: Request, session: SessionDep, principal: Editor
) -> Response:
    """Remove the link; the change history keeps it."""
    link = links.editable(session=session, principal=principal, link_id=link_id)
    check_if_match_tag(request, _etag(link))
    links.delete(session=session, principal=principal, link=link)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
