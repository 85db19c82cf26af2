"""Referrals (issue 17): thin HTTP layer over ``domain.referrals`` (docs/referrals.md).

- ``POST /api/v1/referrals``: a caseworker (or justice staff) of an organization sends one;
- ``GET /api/v1/referrals?box=inbox|outbox``: the caller's organization's referrals (``overdue``
  lists those not acknowledged in time);
- ``GET /api/v1/referrals/{id}``: one referral with its history; 404 for anyone but its two
  organizations; every read is audited;
- ``POST /api/v1/referrals/{id}/transitions``: move it along; 409 on an illegal move, 412 on a
  stale ``If-Match`` (optional: without it the move is still compare-and-set);
- ``GET /api/v1/reports/referrals``: aggregates for stewards, small cells suppressed, JSON or CSV;
- ``PUT``/``DELETE /api/v1/referral-webhooks/{organization_id}``: stewards set webhooks.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status

from referral_net.api.deps import SessionDep, SettingsDep, require_roles
from referral_net.api.etag import check_if_match, set_etag
from referral_net.api.pagination import PageDep
from referral_net.api.params import KnownQueryOnly
from referral_net.domain import referrals, referrals_webhooks
from referral_net.domain.referral_workflow import Status
from referral_net.schemas.common import Page
from referral_net.schemas.referrals import (
    Box,
    ReferralCreate,
    ReferralRead,
    ReferralReport,
    ReferralStatus,
    TransitionIn,
    WebhookIn,
    WebhookRead,
)
from referral_net.security.roles import Principal, Role

router = APIRouter(prefix="/api/v1", tags=["referrals"])
Worker = Annotated[Principal, Depends(require_roles(Role.CASEWORKER, Role.JUSTICE, Role.PROVIDER))]
Sender = Annotated[Principal, Depends(require_roles(Role.CASEWORKER, Role.JUSTICE))]
Steward = Annotated[Principal, Depends(require_roles(Role.STEWARD))]
_NO_STORE = "no-store"


@router.post(
    "/referrals",
    summary="Send a referral to one service at one location",
    response_model=ReferralRead,
    status_code=status.HTTP_201_CREATED,
)
def create_referral(
    body: ReferralCreate,
    session: SessionDep,
    principal: Sender,
    settings: SettingsDep,
    response: Response,
) -> ReferralRead:
    """Needs, urgency, non-identifying traits, consent, an optional encrypted note and the
    /match proposals it came from. Without current consent only an emergency override passes."""
    policy = referrals.ReferralPolicy.from_settings(settings)
    now = datetime.now(UTC)
    record = referrals.create(
        session=session, principal=principal, body=body, policy=policy, now=now
    )
    response.headers["Location"] = f"/api/v1/referrals/{record.id}"
    response.headers["Cache-Control"] = _NO_STORE
    set_etag(response, record.id, record.version)
    return referrals.shape(
        record,
        policy=policy,
        now=now,
        steps=referrals.history(session=session, referral_id=record.id),
    )


@router.get(
    "/referrals",
    summary="The referrals of the caller's organization: inbox or outbox",
    response_model=Page[ReferralRead],
    dependencies=[KnownQueryOnly],
)
def list_referrals(
    session: SessionDep,
    principal: Worker,
    settings: SettingsDep,
    page: PageDep,
    response: Response,
    box: Annotated[Box, Query(description="inbox: received; outbox: sent.")] = "inbox",
    status_filter: Annotated[ReferralStatus | None, Query(alias="status")] = None,
    overdue: Annotated[
        bool, Query(description="Only referrals not acknowledged in time (24 h; 2 h emergency).")
    ] = False,
) -> Page[ReferralRead]:
    """Newest first. Each listed referral's read is audited."""
    policy = referrals.ReferralPolicy.from_settings(settings)
    now = datetime.now(UTC)
    rows, total = referrals.list_box(
        session=session,
        principal=principal,
        box=box,
        policy=policy,
        status=status_filter,
        overdue=overdue,
        offset=page.offset,
        limit=page.per_page,
        now=now,
    )
    items = [referrals.shape(row, policy=policy, now=now) for row in rows]
    referrals.audit_reads(session=session, principal=principal, referral_ids=[r.id for r in rows])
    response.headers["Cache-Control"] = _NO_STORE
    return Page[ReferralRead].build(items, total=total, page=page.page, per_page=page.per_page)


@router.get(
    "/referrals/{referral_id}",
    summary="One referral with its status history (its two organizations only)",
    response_model=ReferralRead,
)
def get_referral(
    referral_id: uuid.UUID,
    session: SessionDep,
    principal: Worker,
    settings: SettingsDep,
    response: Response,
) -> ReferralRead:
    """404 for anyone but the sending and receiving organizations. The read is audited."""
    policy = referrals.ReferralPolicy.from_settings(settings)
    record = referrals.visible(session=session, principal=principal, referral_id=referral_id)
    shaped = referrals.shape(
        record,
        policy=policy,
        now=datetime.now(UTC),
        steps=referrals.history(session=session, referral_id=record.id),
    )
    referrals.audit_reads(session=session, principal=principal, referral_ids=[record.id])
    set_etag(response, record.id, record.version)
    response.headers["Cache-Control"] = _NO_STORE
    return shaped


@router.post(
    "/referrals/{referral_id}/transitions",
    summary="Move a referral to another status",
    response_model=ReferralRead,
    responses={
        409: {"description": "Illegal move, or no free place for an emergency"},
        412: {"description": "If-Match names a stale version"},
    },
)
def transition_referral(
    referral_id: uuid.UUID,
    body: TransitionIn,
    request: Request,
    session: SessionDep,
    principal: Worker,
    settings: SettingsDep,
    response: Response,
) -> ReferralRead:
    """The receiving organization receives, accepts or declines (with a reason), starts,
    completes or closes; the sending organization cancels before completion."""
    policy = referrals.ReferralPolicy.from_settings(settings)
    record = referrals.visible(session=session, principal=principal, referral_id=referral_id)
    check_if_match(request, record.id, record.version)
    expected = record.version if request.headers.get("if-match") is not None else None
    moved = referrals.transition(
        session=session,
        principal=principal,
        referral_id=record.id,
        target=Status(body.status),
        reason=body.reason,
        expected_version=expected,
        policy=policy,
    )
    set_etag(response, moved.id, moved.version)
    response.headers["Cache-Control"] = _NO_STORE
    return referrals.shape(
        moved,
        policy=policy,
        now=datetime.now(UTC),
        steps=referrals.history(session=session, referral_id=moved.id),
    )


@router.get(
    "/reports/referrals",
    summary="Referral counts for the partnership (stewards), small cells suppressed",
    response_model=ReferralReport,
    dependencies=[KnownQueryOnly],
    responses={200: {"content": {"text/csv": {}}}},
)
def referral_report(
    session: SessionDep,
    principal: Steward,
    settings: SettingsDep,
    report_format: Annotated[
        Literal["json", "csv"], Query(alias="format", description="json (default) or csv.")
    ] = "json",
) -> ReferralReport | Response:
    """Counts by month, category, department, outcome, time to acceptance and first proposal
    accepted; a cell under ``REFERRAL_NET_REFERRAL_REPORT_MIN_CELL`` (5) shows no count."""
    data = referrals.report(session=session, min_cell=settings.referral_report_min_cell)
    if report_format == "csv":
        return Response(
            content=referrals.report_csv(data),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="referrals-report.csv"'},
        )
    return data


@router.put(
    "/referral-webhooks/{organization_id}",
    summary="Set an organization's referral webhook (stewards)",
    response_model=WebhookRead,
)
def put_webhook(
    organization_id: uuid.UUID, body: WebhookIn, session: SessionDep, principal: Steward
) -> WebhookRead:
    """Events about the organization's referrals are POSTed there, signed with the secret."""
    hook = referrals_webhooks.set_webhook(
        session=session,
        principal=principal,
        organization_id=organization_id,
        url=body.url,
        secret=body.secret,
    )
    return WebhookRead(
        organization_id=hook.organization_id, url=hook.url, created_at=hook.created_at
    )


@router.delete(
    "/referral-webhooks/{organization_id}",
    summary="Remove an organization's referral webhook (stewards)",
    status_code=status.HTTP_204_NO_CONTENT,
)
def delete_webhook(organization_id: uuid.UUID, session: SessionDep, principal: Steward) -> Response:
    """Stop sending events to the organization."""
    referrals_webhooks.delete_webhook(
        session=session, principal=principal, organization_id=organization_id
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
