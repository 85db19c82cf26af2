"""``GET /api/v1/search``: the checked query (``api.params.SearchParams``), then the domain."""

from __future__ import annotations

from fastapi import APIRouter

from referral_net.api.deps import PrincipalDep, SessionDep
from referral_net.api.params import KnownQueryOnly, SearchParams
from referral_net.domain import search as search_domain
from referral_net.schemas.search import SearchPage

router = APIRouter(prefix="/api/v1", tags=["search"])


@router.get(
    "/search",
    summary="Search services at locations: nearest, radius, bbox, area or coverage, with filters",
    response_model=SearchPage,
    dependencies=[KnownQueryOnly],
)
def search(session: SessionDep, principal: PrincipalDep, query: SearchParams) -> SearchPage:
    """Find services at locations for one geometric mode and any filters (combined with AND).

    Distances are geodesic metres on WGS 84. Restricted sites are placed at their
    municipality's representative point for audiences that may not see them exactly;
    confidential ones do not exist for those audiences. Bad queries get a 400/422 problem.
    """
    return search_domain.search(session=session, principal=principal, query=query)
