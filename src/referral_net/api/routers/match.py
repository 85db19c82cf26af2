"""``POST /api/v1/match``: rank eligible services for one person's needs and propose a plan."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from referral_net.api.deps import SessionDep, in_one_hop, reads_only, require_roles
from referral_net.api.i18n import ContentLocaleDep
from referral_net.domain import match as match_domain
from referral_net.schemas.match import MatchRequest, MatchResponse
from referral_net.security.roles import Principal, Role

router = APIRouter(prefix="/api/v1", tags=["match"])
Matcher = Annotated[Principal, Depends(require_roles(Role.CASEWORKER, Role.JUSTICE, Role.STEWARD))]


@router.post(
    "/match",
    summary="Match one person's needs to eligible services, with reasons and a referral plan",
    response_model=MatchResponse,
)
@reads_only
async def match(
    body: MatchRequest,
    session: SessionDep,
    principal: Matcher,
    locale: ContentLocaleDep,
    response: Response,
) -> Response:
    """Hard rules exclude; soft scores rank; every proposal says why (docs/matching.md).

    The profile identifies nobody and is not stored.
    """
    response.headers["Cache-Control"] = "no-store"

    def answer() -> Response:
        proposals = match_domain.match(
            session=session,
            principal=principal,
            request=body,
            now=datetime.now(UTC),
            locale=locale,
        )
        # What FastAPI would send for response_model=MatchResponse, without a second validation.
        return Response(proposals.model_dump_json(by_alias=True), media_type="application/json")

    return await in_one_hop(session, answer, response.headers.raw)
