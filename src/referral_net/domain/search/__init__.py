"""Geospatial search over services at locations: one geometric mode plus typed filters.

A search runs in five steps, one module each:

    plan    the SQL: the caller's point column (``access``), the filters, the mode
    bound   nearest-first without a scan: a bound on the k-th nearest distance, then a window
    count   the total, up to a cap (``total_is_lower_bound`` when it stopped there)
    hours   the ``open_at`` filter, evaluated in Python before paging
    shape   rows -> results: child tables, opening hours now, sites placed for the audience

``query`` holds the input (``SearchQuery``) and the raw answer matching uses (``Hit``). Where a
result shows a site, and the audit of exact views of hidden sites, are ``domain.places``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row
from sqlmodel import Session

from referral_net.domain import places
from referral_net.domain.search import bound, count, hours, shape
from referral_net.domain.search.plan import (
    Plan,
    build,
    connection,
    hit,
    only_links,
    ordered,
    validate_area,
    with_display,
)
from referral_net.domain.search.query import Hit, SearchQuery
from referral_net.schemas.search import SearchPage
from referral_net.security.roles import Principal

__all__ = ["Hit", "SearchQuery", "find_hits", "search", "validate_area"]


@dataclass(frozen=True)
class _PageRows:
    """One page of rows (ids and distance, plus display columns when asked) and the total."""

    rows: list[Row[Any]]
    total: count.Total


def _page_rows(
    session: Session, plan: Plan, query: SearchQuery, *, with_total: bool, display: bool
) -> _PageRows:
    if query.open_at is not None:
        return _open_page_rows(session, plan, query, display=display)
    total = count.total(session, plan, query) if with_total else count.NOT_COUNTED
    page = ordered(plan, bound.bounded(session, plan, query))
    page = page.offset(query.offset).limit(query.limit)
    if display:
        page = with_display(page)
    return _PageRows(rows=list(connection(session).execute(page)), total=total)


def _open_page_rows(
    session: Session, plan: Plan, query: SearchQuery, *, display: bool
) -> _PageRows:
    """The page among the rows open at ``query.open_at``; their count is exact."""
    open_rows = hours.open_rows(session, plan, query)
    page = open_rows[query.offset : query.offset + query.limit]
    if display and page:
        wanted = [row.link_id for row in page]
        shown = {
            row.link_id: row
            for row in connection(session).execute(only_links(with_display(plan.statement), wanted))
        }
        page = [shown[link_id] for link_id in wanted]
    return _PageRows(rows=page, total=count.Total(items=len(open_rows), is_lower_bound=False))


def find_hits(*, session: Session, principal: Principal, query: SearchQuery) -> list[Hit]:
    """The ordered page of raw hits, without shaping or counting (used by matching).

    Unknown category codes are refused (422) while the filter is built.
    """
    plan = build(session, principal, query)
    page = _page_rows(session, plan, query, with_total=False, display=False)
    return [hit(row) for row in page.rows]


def search(*, session: Session, principal: Principal, query: SearchQuery) -> SearchPage:
    """Run a search for a caller and shape one page of results.

    Exact views of hidden sites are audited after the page is shaped (``places.audience``).
    """
    if query.area_code is not None:
        validate_area(session=session, mode=query.mode, code=query.area_code)
    plan = build(session, principal, query)
    page = _page_rows(session, plan, query, with_total=True, display=True)
    with places.audience(session, principal) as audience:
        shaped = SearchPage(
            mode=query.mode,
            total_items=page.total.items,
            total_is_lower_bound=page.total.is_lower_bound,
            page_number=query.page,
            limit=query.limit,
            size=len(page.rows),
            contents=shape.results(session, audience, query, page.rows),
        )
    return shaped
