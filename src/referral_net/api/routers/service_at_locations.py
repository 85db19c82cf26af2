"""Service-at-location links: thin HTTP layer over ``domain.service_at_locations``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlmodel import Session

from referral_net.api.deps import PrincipalDep, SessionDep, SettingsDep, require_roles
from referral_net.api.etag import check_if_match_tag, content_etag
from referral_net.api.hsds import (
    NDJSON_MEDIA_TYPE,
    FormatParam,
    FullParam,
    UnsupportedPostcode,
    UnsupportedProximity,
    check_ndjson_paging,
    hsds_router,
    ndjson_stream,
    refuse_postcode,
)
from referral_net.api.i18n import ContentLocaleDep, LocaleDep
from referral_net.api.pagination import PageDep
from referral_net.api.params import KnownQueryOnly
from referral_net.db.models import Location, Service, ServiceAtLocation
from referral_net.domain import access, locations, services
from referral_net.domain import service_at_locations as links
from referral_net.domain.common import refuse_changed_read_only
from referral_net.schemas.common import Page
from referral_net.schemas.directory import (
    ServiceAtLocationCreate,
    ServiceAtLocationRead,
    ServiceAtLocationUpdate,
)
from referral_net.schemas.instants import UtcInstant
from referral_net.security.roles import Principal, Role
from referral_net.settings import Settings
from referral_net.vocab import Locale

router = hsds_router(prefix="/api/v1/service_at_locations", tags=["service_at_locations"])
Editor = Annotated[Principal, Depends(require_roles(Role.STEWARD, Role.PROVIDER))]


def _etag(link: ServiceAtLocation) -> str:
    return content_etag(link.id, link.service_id, link.location_id, link.description)


@router.get(
    "",
    summary="List services at locations",
    response_model=Page[ServiceAtLocationRead],
    dependencies=[KnownQueryOnly],
    responses={200: {"content": {NDJSON_MEDIA_TYPE: {}}}},
)
def list_links(  # noqa: PLR0913 - one parameter per query parameter of the HSDS list
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    locale: ContentLocaleDep,
    page: PageDep,
    service_id: uuid.UUID | None = None,
    location_id: uuid.UUID | None = None,
    organization_id: uuid.UUID | None = None,
    search: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Text in the service's name or description or the site's name.",
        ),
    ] = None,
    taxonomy_term_id: Annotated[
        uuid.UUID | None, Query(description="Services with this term (or one below it).")
    ] = None,
    taxonomy_id: Annotated[
        uuid.UUID | None, Query(description="Services with any term of this taxonomy.")
    ] = None,
    modified_after: Annotated[
        UtcInstant | None,
        Query(description="Service or site changed on or after this instant (naive = UTC)."),
    ] = None,
    full: FullParam = False,
    format: FormatParam = "json",
    postcode: UnsupportedPostcode = None,
    proximity: UnsupportedProximity = None,
) -> Page[ServiceAtLocationRead] | StreamingResponse:
    """Links whose location the caller may know about, in a stable order. ``full=true`` nests
    each one's service and location (the site as the caller may see it); ``format=ndjson``
    streams every link, one per line."""
    refuse_postcode(postcode, proximity)
    if modified_after is not None and modified_after.tzinfo is None:
        modified_after = modified_after.replace(tzinfo=UTC)
    filters = links.ListFilters(
        service_id=service_id,
        location_id=location_id,
        organization_id=organization_id,
        search=search,
        taxonomy_term_id=taxonomy_term_id,
        taxonomy_id=taxonomy_id,
        modified_after=modified_after,
    )

    def page_of(offset: int, limit: int) -> tuple[list[ServiceAtLocationRead], int]:
        items, total = links.list_page(
            session=session,
            principal=principal,
            offset=offset,
            limit=limit,
            filters=filters,
            locale=locale,
        )
        if full:
            context = services.ReadContext(
                locale=locale,
                at=datetime.now(UTC),
                capacity_stale_after=timedelta(hours=settings.capacity_stale_hours),
            )
            items = links.nest(session=session, principal=principal, links=items, context=context)
        return items, total

    if format == "ndjson":
        check_ndjson_paging(request)
        return ndjson_stream(lambda offset, limit: page_of(offset, limit)[0])
    items, total = page_of(page.offset, page.per_page)
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
    link_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    locale: ContentLocaleDep,
    response: Response,
) -> ServiceAtLocationRead:
    """One link, fully nested as HSDS reads it: its service and its location (the site as the
    caller may see it)."""
    link = links.get(session=session, principal=principal, link_id=link_id)
    response.headers["ETag"] = _etag(link)
    read = links.read(session=session, principal=principal, link_id=link.id, locale=locale)
    context = services.ReadContext(
        locale=locale,
        at=datetime.now(UTC),
        capacity_stale_after=timedelta(hours=settings.capacity_stale_hours),
    )
    return links.nest(session=session, principal=principal, links=[read], context=context)[0]


def _served_for_comparison(
    session: Session,
    principal: Principal,
    settings: Settings,
    locale: Locale,
    link: ServiceAtLocation,
) -> ServiceAtLocationRead:
    """The link as GET serves it (service and location nested), for comparing a PATCH body's
    read-only fields: as ``links.nest`` shapes it, but without the audit entry (and commit) of a
    read inside the write's transaction; the write itself is recorded and audited."""
    read = links.read(session=session, principal=principal, link_id=link.id, locale=locale)
    context = services.ReadContext(
        locale=locale,
        at=datetime.now(UTC),
        capacity_stale_after=timedelta(hours=settings.capacity_stale_hours),
    )
    service = session.get(Service, link.service_id)
    location = session.get(Location, link.location_id)
    nested_service = (
        None
        if service is None
        else services.read_many(
            session=session, principal=principal, services=[service], context=context
        )[0]
    )
    nested_location = (
        None
        if location is None or locations.view_for(principal, location) is access.LocationView.HIDDEN
        else locations.served_for_comparison(
            session=session, principal=principal, location=location, locale=locale
        )
    )
    return read.model_copy(update={"service": nested_service, "location": nested_location})


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
    settings: SettingsDep,
    locale: LocaleDep,
    response: Response,
) -> ServiceAtLocationRead:
    """Change the link's description. The link as GET serves it is a valid body: its read-only
    fields are accepted when unchanged, refused (422) otherwise."""
    link = links.editable(session=session, principal=principal, link_id=link_id)
    check_if_match_tag(request, _etag(link))
    refuse_changed_read_only(
        body, lambda: _served_for_comparison(session, principal, settings, locale, link)
    )
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
