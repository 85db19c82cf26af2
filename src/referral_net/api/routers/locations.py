"""Locations: thin HTTP layer over ``domain.locations`` (visibility applied there)."""

from __future__ import annotations

import uuid
from datetime import UTC
from typing import Annotated

from fastapi import Depends, Query, Request, Response, status

from referral_net.api.deps import PrincipalDep, SessionDep, require_roles
from referral_net.api.etag import check_if_match, set_etag
from referral_net.api.hsds import hsds_router
from referral_net.api.i18n import LocaleDep
from referral_net.api.pagination import PageDep
from referral_net.api.params import KnownQueryOnly
from referral_net.domain import locations
from referral_net.domain.common import refuse_changed_read_only
from referral_net.schemas.common import Page
from referral_net.schemas.directory import LocationCreate, LocationRead, LocationUpdate
from referral_net.schemas.instants import UtcInstant
from referral_net.security.roles import Principal, Role

router = hsds_router(prefix="/api/v1/locations", tags=["locations"])
Editor = Annotated[Principal, Depends(require_roles(Role.STEWARD, Role.PROVIDER))]
AreaCode = Annotated[str | None, Query(pattern=r"^\d{4}$", description="Municipality INE code.")]
DepartmentCode = Annotated[str | None, Query(pattern=r"^\d{2}$", description="Department code.")]


@router.get(
    "", summary="List locations", response_model=Page[LocationRead], dependencies=[KnownQueryOnly]
)
def list_locations(
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    organization_id: uuid.UUID | None = None,
    municipality: AreaCode = None,
    department: DepartmentCode = None,
    include_defunct: Annotated[bool, Query(description="Stewards only.")] = False,
    modified_after: Annotated[
        UtcInstant | None,
        Query(description="ISO 8601; on or after this instant; a naive time is UTC."),
    ] = None,
    locale: LocaleDep = "es",
) -> Page[LocationRead]:
    """Locations the caller may know about, ordered by name; restricted ones coarsened."""
    if modified_after is not None and modified_after.tzinfo is None:
        modified_after = modified_after.replace(tzinfo=UTC)
    items, total = locations.list_page(
        session=session,
        principal=principal,
        offset=page.offset,
        limit=page.per_page,
        organization_id=organization_id,
        municipality_code=municipality,
        department_code=department,
        include_defunct=include_defunct,
        modified_after=modified_after,
        locale=locale,
    )
    return Page[LocationRead].build(items, total=total, page=page.page, per_page=page.per_page)


@router.post(
    "",
    summary="Create a location",
    response_model=LocationRead,
    status_code=status.HTTP_201_CREATED,
)
def create_location(
    body: LocationCreate, session: SessionDep, principal: Editor, response: Response
) -> LocationRead:
    """Create a location; its INE codes are filled from the boundary polygons."""
    created = locations.create(session=session, principal=principal, data=body)
    set_etag(response, created.id, created.version)
    response.headers["Location"] = f"{router.prefix}/{created.id}"
    return locations.read(session=session, principal=principal, location_id=created.id)


@router.get("/{location_id}", summary="Read a location", response_model=LocationRead)
def read_location(
    location_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    response: Response,
    locale: LocaleDep = "es",
) -> LocationRead:
    """One location as the caller may see it (language names in the caller's language)."""
    record = locations.get(session=session, principal=principal, location_id=location_id)
    set_etag(response, record.id, record.version)
    return locations.read(
        session=session, principal=principal, location_id=record.id, locale=locale
    )


@router.patch(
    "/{location_id}",
    summary="Update a location (partial; If-Match honoured)",
    response_model=LocationRead,
    responses={412: {"description": "If-Match names a stale version"}},
)
def update_location(
    location_id: uuid.UUID,
    body: LocationUpdate,
    request: Request,
    session: SessionDep,
    principal: Editor,
    response: Response,
    locale: LocaleDep = "es",
) -> LocationRead:
    """Change the fields present; a new point refreshes the INE codes; nested lists present
    replace the stored ones (items keep the ids they name). The location as GET serves it is a
    valid body: read-only fields are accepted when unchanged, refused (422) otherwise."""
    record = locations.editable(session=session, principal=principal, location_id=location_id)
    check_if_match(request, record.id, record.version)
    refuse_changed_read_only(
        body,
        lambda: locations.served_for_comparison(
            session=session, principal=principal, location=record, locale=locale
        ),
    )
    locations.update(session=session, principal=principal, location=record, data=body)
    set_etag(response, record.id, record.version)
    return locations.read(session=session, principal=principal, location_id=record.id)


@router.delete(
    "/{location_id}",
    summary="Delete a location (soft: status defunct)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={412: {"description": "If-Match names a stale version"}},
)
def delete_location(
    location_id: uuid.UUID, request: Request, session: SessionDep, principal: Editor
) -> Response:
    """Mark the location defunct; it leaves search, stewards can still read it."""
    record = locations.editable(session=session, principal=principal, location_id=location_id)
    check_if_match(request, record.id, record.version)
    locations.soft_delete(session=session, principal=principal, location=record)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
