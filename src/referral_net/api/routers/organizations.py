"""Organizations: thin HTTP layer over ``domain.organizations``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlmodel import Session

from referral_net.api.deps import PrincipalDep, SessionDep, SettingsDep, require_roles
from referral_net.api.etag import check_if_match, set_etag
from referral_net.api.hsds import (
    NDJSON_MEDIA_TYPE,
    FormatParam,
    FullParam,
    check_ndjson_paging,
    hsds_router,
    ndjson_stream,
)
from referral_net.api.i18n import ContentLocaleDep, LocaleDep
from referral_net.api.pagination import PageDep
from referral_net.api.params import KnownQueryOnly
from referral_net.domain import organizations, services
from referral_net.domain.common import refuse_changed_read_only
from referral_net.schemas.common import Page
from referral_net.schemas.directory import (
    OrganizationCreate,
    OrganizationRead,
    OrganizationUpdate,
)
from referral_net.schemas.instants import UtcInstant
from referral_net.security.roles import Principal, Role
from referral_net.settings import Settings
from referral_net.vocab import Locale

router = hsds_router(prefix="/api/v1/organizations", tags=["organizations"])
Editor = Annotated[Principal, Depends(require_roles(Role.STEWARD, Role.PROVIDER))]
Steward = Annotated[Principal, Depends(require_roles(Role.STEWARD))]


FullServiceParam = Annotated[
    bool, Query(description="HSDS: each organization's services as whole service records.")
]


def _with_services(
    session: Session,
    principal: Principal,
    settings: Settings,
    locale: Locale,
    records: list[OrganizationRead],
    *,
    full_service: bool,
) -> list[OrganizationRead]:
    """The records with their ``services``: id, name and status, or whole records."""
    by_id = {record.id: record for record in records}
    if not full_service:
        shaped = organizations.with_services(session=session, principal=principal, records=by_id)
        return [shaped[record.id] for record in records]
    context = services.ReadContext(
        locale=locale,
        at=datetime.now(UTC),
        capacity_stale_after=timedelta(hours=settings.capacity_stale_hours),
    )
    found = services.by_organization(
        session=session, principal=principal, organization_ids=list(by_id), context=context
    )
    return [record.model_copy(update={"services": list(found[record.id])}) for record in records]


@router.get(
    "",
    summary="List organizations",
    response_model=Page[OrganizationRead],
    dependencies=[KnownQueryOnly],
    responses={200: {"content": {NDJSON_MEDIA_TYPE: {}}}},
)
def list_organizations(  # noqa: PLR0913 - one parameter per query parameter
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    locale: ContentLocaleDep,
    page: PageDep,
    search: Annotated[str | None, Query(max_length=200, description="Text in the name.")] = None,
    include_defunct: Annotated[bool, Query(description="Stewards only.")] = False,
    modified_after: Annotated[
        UtcInstant | None,
        Query(description="ISO 8601; on or after this instant; a naive time is UTC."),
    ] = None,
    full: FullParam = False,
    full_service: FullServiceParam = False,
    format: FormatParam = "json",
) -> Page[OrganizationRead] | StreamingResponse:
    """Organizations ordered by name, paginated (HSDS envelope). ``full=true`` adds each one's
    services (id, name, status); ``full_service=true`` adds them as whole records;
    ``format=ndjson`` streams every organization, one per line."""
    if modified_after is not None and modified_after.tzinfo is None:
        modified_after = modified_after.replace(tzinfo=UTC)

    def page_of(offset: int, limit: int) -> tuple[list[OrganizationRead], int]:
        items, total = organizations.list_page(
            session=session,
            principal=principal,
            offset=offset,
            limit=limit,
            search=search,
            include_defunct=include_defunct,
            modified_after=modified_after,
            locale=locale,
        )
        if full or full_service:
            items = _with_services(
                session, principal, settings, locale, items, full_service=full_service
            )
        return items, total

    if format == "ndjson":
        check_ndjson_paging(request)
        return ndjson_stream(lambda offset, limit: page_of(offset, limit)[0])
    items, total = page_of(page.offset, page.per_page)
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


@router.get(
    "/{organization_id}",
    summary="Read an organization",
    response_model=OrganizationRead,
    dependencies=[KnownQueryOnly],
)
def read_organization(
    organization_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    locale: ContentLocaleDep,
    response: Response,
    full_service: FullServiceParam = False,
) -> OrganizationRead:
    """One organization, fully nested, with its services (id, name, status; whole records with
    ``full_service=true``); the ETag header gives its version."""
    record = organizations.get(
        session=session, principal=principal, organization_id=organization_id
    )
    set_etag(response, record.id, record.version)
    read = organizations.read(
        session=session, principal=principal, organization_id=record.id, locale=locale
    )
    if not full_service:
        return read
    return _with_services(session, principal, settings, locale, [read], full_service=True)[0]


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
    locale: LocaleDep,
    response: Response,
) -> OrganizationRead:
    """Change the fields present in the body (``phones`` replaces the list; items keep the ids
    they name). The organization as GET serves it is a valid body: read-only fields are accepted
    when unchanged, refused (422) otherwise."""
    record = organizations.editable(
        session=session, principal=principal, organization_id=organization_id
    )
    check_if_match(request, record.id, record.version)
    refuse_changed_read_only(
        body,
        lambda: organizations.read(
            session=session, principal=principal, organization_id=record.id, locale=locale
        ),
    )
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
