"""Services, their capacity and verification: thin HTTP layer over ``domain.services``."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, cast

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlmodel import Session

from referral_net import validation
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
from referral_net.api.params import KnownQueryOnly, evaluation_instant
from referral_net.domain import services
from referral_net.domain.common import refuse_changed_read_only
from referral_net.errors import BadRequest, InvalidInput
from referral_net.schemas.common import Page
from referral_net.schemas.directory import (
    CapacityUpdate,
    ServiceCreate,
    ServiceMinimal,
    ServiceRead,
    ServiceUpdate,
    VerificationDue,
    VerifyRequest,
)
from referral_net.schemas.instants import GuatemalaInstant, UtcInstant
from referral_net.security.roles import Principal, Role
from referral_net.settings import Settings
from referral_net.vocab import Locale

router = hsds_router(prefix="/api/v1/services", tags=["services"])
verification_router = APIRouter(prefix="/api/v1/verification", tags=["verification"])
Editor = Annotated[Principal, Depends(require_roles(Role.STEWARD, Role.PROVIDER))]
Steward = Annotated[Principal, Depends(require_roles(Role.STEWARD))]


def _context(settings: Settings, locale: Locale, at: datetime) -> services.ReadContext:
    return services.ReadContext(
        locale=locale,
        at=at,
        capacity_stale_after=timedelta(hours=settings.capacity_stale_hours),
    )


def _read_now(
    session: Session,
    principal: Principal,
    settings: Settings,
    locale: Locale,
    service_id: uuid.UUID,
) -> ServiceRead:
    """The service as it reads right after a write (open-now evaluated at this instant)."""
    return services.read(
        session=session,
        principal=principal,
        service_id=service_id,
        context=_context(settings, locale, datetime.now(UTC)),
    )


@router.get(
    "",
    summary="List services",
    response_model=Page[ServiceRead] | Page[ServiceMinimal],
    dependencies=[KnownQueryOnly],
    responses={200: {"content": {NDJSON_MEDIA_TYPE: {}}}},
)
def list_services(  # noqa: PLR0913 - one parameter per query parameter of GET /services
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    locale: ContentLocaleDep,
    page: PageDep,
    organization_id: uuid.UUID | None = None,
    category: Annotated[
        list[str] | None,
        Query(description="Taxonomy code; repeatable; a parent includes its descendants."),
    ] = None,
    taxonomy_term_id: uuid.UUID | None = None,
    taxonomy_id: Annotated[
        uuid.UUID | None, Query(description="HSDS: services with any term of this taxonomy.")
    ] = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
    open_now: Annotated[bool, Query(description="Only services open now.")] = False,
    open_at: Annotated[
        GuatemalaInstant | None,
        Query(description="Only services open at this ISO 8601 time (naive = Guatemala time)."),
    ] = None,
    modified_after: Annotated[
        UtcInstant | None,
        Query(description="ISO 8601; on or after this instant; a naive time is UTC."),
    ] = None,
    include_defunct: Annotated[bool, Query(description="Stewards only.")] = False,
    full: FullParam = False,
    minimal: Annotated[
        bool, Query(description="HSDS: each service as its id and last_modified only.")
    ] = False,
    format: FormatParam = "json",
) -> Page[ServiceRead] | Page[ServiceMinimal] | StreamingResponse:
    """Services ordered by name, paginated; each carries open-now and capacity freshness.

    ``full=true`` nests each service's organization (as ``GET /services/{id}`` does);
    ``minimal=true`` gives ids and modification times only (for incremental sync);
    ``format=ndjson`` streams every matching service, one per line.
    """
    if full and minimal:
        raise BadRequest("full and minimal exclude each other.")
    at = evaluation_instant(open_now, open_at)
    if modified_after is not None and modified_after.tzinfo is None:
        modified_after = modified_after.replace(tzinfo=UTC)
    filters = services.ListFilters(
        organization_id=organization_id,
        categories=category or (),
        taxonomy_term_id=taxonomy_term_id,
        taxonomy_id=taxonomy_id,
        search=search,
        open_only=open_now or open_at is not None,
        include_defunct=include_defunct,
        modified_after=modified_after,
    )
    context = _context(settings, locale, at)

    def page_of(offset: int, limit: int) -> tuple[list[ServiceRead] | list[ServiceMinimal], int]:
        if minimal:
            return services.list_minimal(
                session=session, principal=principal, filters=filters, offset=offset, limit=limit
            )
        return services.list_page(
            session=session,
            principal=principal,
            context=context,
            offset=offset,
            limit=limit,
            filters=filters,
            full=full,
        )

    if format == "ndjson":
        check_ndjson_paging(request)
        return ndjson_stream(lambda offset, limit: page_of(offset, limit)[0])
    items, total = page_of(page.offset, page.per_page)
    if minimal:
        return Page[ServiceMinimal].build(
            cast("list[ServiceMinimal]", items), total=total, page=page.page, per_page=page.per_page
        )
    return Page[ServiceRead].build(
        cast("list[ServiceRead]", items), total=total, page=page.page, per_page=page.per_page
    )


@router.post(
    "", summary="Create a service", response_model=ServiceRead, status_code=status.HTTP_201_CREATED
)
def create_service(
    body: ServiceCreate,
    session: SessionDep,
    principal: Editor,
    settings: SettingsDep,
    locale: LocaleDep,
    response: Response,
) -> ServiceRead:
    """Create a service with its nested records."""
    created = services.create(session=session, principal=principal, data=body)
    set_etag(response, created.id, created.version)
    response.headers["Location"] = f"{router.prefix}/{created.id}"
    return _read_now(session, principal, settings, locale, created.id)


@router.get("/{service_id}", summary="Read a service", response_model=ServiceRead)
def read_service(
    service_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    locale: ContentLocaleDep,
    response: Response,
    open_at: Annotated[
        GuatemalaInstant | None,
        Query(description="Evaluate open_now at this time (naive = Guatemala time)."),
    ] = None,
) -> ServiceRead:
    """One service with everything nested; the ETag header gives its version."""
    record = services.get(session=session, principal=principal, service_id=service_id)
    set_etag(response, record.id, record.version)
    return services.read(
        session=session,
        principal=principal,
        service_id=record.id,
        context=_context(settings, locale, evaluation_instant(False, open_at)),
    )


@router.patch(
    "/{service_id}",
    summary="Update a service (partial; If-Match honoured)",
    response_model=ServiceRead,
    responses={412: {"description": "If-Match names a stale version"}},
)
def update_service(
    service_id: uuid.UUID,
    body: ServiceUpdate,
    request: Request,
    session: SessionDep,
    principal: Editor,
    settings: SettingsDep,
    locale: LocaleDep,
    response: Response,
) -> ServiceRead:
    """Change the fields present; nested lists present replace the stored ones (items keep the
    ids they name). The service as GET serves it is a valid body: read-only fields are accepted
    when unchanged, refused (422) otherwise."""
    record = services.editable(session=session, principal=principal, service_id=service_id)
    check_if_match(request, record.id, record.version)
    refuse_changed_read_only(
        body, lambda: _read_now(session, principal, settings, locale, record.id)
    )
    services.update(session=session, principal=principal, service=record, data=body)
    set_etag(response, record.id, record.version)
    return _read_now(session, principal, settings, locale, record.id)


@router.delete(
    "/{service_id}",
    summary="Delete a service (soft: status defunct)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={412: {"description": "If-Match names a stale version"}},
)
def delete_service(
    service_id: uuid.UUID, request: Request, session: SessionDep, principal: Editor
) -> Response:
    """Mark the service defunct; it leaves search, stewards can still read it."""
    record = services.editable(session=session, principal=principal, service_id=service_id)
    check_if_match(request, record.id, record.version)
    services.soft_delete(session=session, principal=principal, service=record)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put(
    "/{service_id}/capacity",
    summary="Replace a service's capacity (provider staff and stewards)",
    response_model=ServiceRead,
    responses={412: {"description": "If-Match names a stale version"}},
)
def put_capacity(
    service_id: uuid.UUID,
    body: CapacityUpdate,
    request: Request,
    session: SessionDep,
    principal: Editor,
    settings: SettingsDep,
    locale: LocaleDep,
    response: Response,
) -> ServiceRead:
    """Update only the capacity figures (free and total beds or places), stamped now."""
    record = services.editable(session=session, principal=principal, service_id=service_id)
    check_if_match(request, record.id, record.version)
    services.set_capacity(session=session, principal=principal, service=record, rows=body.capacity)
    set_etag(response, record.id, record.version)
    return _read_now(session, principal, settings, locale, record.id)


@router.post(
    "/{service_id}/verify",
    summary="Mark a listing verified (stewards)",
    response_model=ServiceRead,
)
def verify_service(
    service_id: uuid.UUID,
    body: VerifyRequest,
    session: SessionDep,
    principal: Steward,
    settings: SettingsDep,
    locale: LocaleDep,
    response: Response,
) -> ServiceRead:
    """Set assured_date (today by default) and who verified the listing."""
    record = services.editable(session=session, principal=principal, service_id=service_id)
    if body.assured_date is not None and body.assured_date > datetime.now(UTC).date():
        raise BadRequest("assured_date cannot be in the future.")
    services.verify(session=session, principal=principal, service=record, assured=body.assured_date)
    set_etag(response, record.id, record.version)
    return _read_now(session, principal, settings, locale, record.id)


@verification_router.get(
    "/due",
    summary="Listings due for verification (stewards)",
    response_model=Page[VerificationDue],
    dependencies=[KnownQueryOnly],
)
def verification_due(
    session: SessionDep,
    principal: Steward,
    settings: SettingsDep,
    page: PageDep,
    period_days: Annotated[
        int | None, Query(ge=1, le=3650, description="Default: the configured 180 days.")
    ] = None,
    today: Annotated[date | None, Query(description="Evaluate as of this date.")] = None,
) -> Page[VerificationDue]:
    """Active listings never verified or not verified within the period, oldest first."""
    period = period_days or settings.verification_period_days
    as_of = today or datetime.now(UTC).date()
    try:
        validation.days_before(as_of, period)
    except ValueError as exc:
        raise InvalidInput(
            f"today: {exc}",
            errors=[
                {
                    "field": "query.today",
                    "location": "query",
                    "message": str(exc),
                    "type": "value_error",
                }
            ],
        ) from None
    items, total = services.verification_due(
        session=session,
        period_days=period,
        today=as_of,
        offset=page.offset,
        limit=page.per_page,
    )
    return Page[VerificationDue].build(items, total=total, page=page.page, per_page=page.per_page)
