"""Geospatial search over the read model (``search_entry``): one geometric mode plus filters.

A search page is one statement over the read model, plus one that counts (and refuses unknown
codes); on PostGIS, near mode counts in its page statement: one in all. One module per step:

    plan    the statements, built once per query shape; the audience rule (``access``) picks
            the point column; every value is bound
    bound   nearest-first proven exact from the statement's own answer (SpatiaLite may widen
            its index window and run again where rows are sparse)
    count   the total up to a cap (``total_is_lower_bound`` when it stopped there), with the
            checks of the query's category and area codes
    hours   opening hours at one instant (``HoursAt``), and the ``open_at`` filter, evaluated
            in Python before paging
    shape   entries -> result documents, straight from each entry's pre-rendered ``doc``

``entry`` is one row as read (``Entry``, what matching gets); ``query`` holds the input
(``SearchQuery``). Where a result shows a site, and the audit of exact views of hidden sites, are
``domain.places``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from referral_net.db import dialect
from referral_net.db.dialect import ResultRow
from referral_net.domain import places, search_model
from referral_net.domain.search import bound, count, hours, plan
from referral_net.domain.search import shape as shaping
from referral_net.domain.search.entry import Entry, read_entries
from referral_net.domain.search.query import SearchQuery
from referral_net.schemas.search import SearchPage
from referral_net.security.roles import Principal

__all__ = ["Entry", "SearchQuery", "find_entries", "search", "search_page"]


def _up_to_date(session: Session) -> None:
    """Refresh the entries this transaction's flushed writes reach, so a search in the same
    transaction sees them (the model is otherwise refreshed just before a commit)."""
    search_model.refresh_pending(session)


@dataclass
class _Nearest:
    """Near mode's page and, when its statement counted, the summary row of its first run."""

    entries: list[Entry]
    summary: ResultRow | None


def _nearest(
    session: Session,
    base: plan.Shape,
    query: SearchQuery,
    values: dict[str, Any],
    total: count.Total | None = None,
) -> _Nearest:
    """Near mode's page, exact (``bound``). A ``counted`` shape counts in its first run only;
    an exact total spares SpatiaLite windows."""
    matches = None if total is None or total.is_lower_bound else total.items
    knn = dialect.dialect_named(base.engine).has_knn_index()
    first: list[ResultRow] = []

    def run(window_m: float | None, fetch: int) -> bound.Attempt:
        shape = base if not first else dataclasses.replace(base, counted=False, checked=False)
        bound_values = {**values, "limit": query.limit, "offset": query.offset, "fetch": fetch}
        if window_m is not None:  # SpatiaLite: this index window (within the radius)
            shape = dataclasses.replace(shape, window=True)
            bound_values.update(plan.window_parameters(query, window_m))
        rows = dialect.read_rows(session.connection(), plan.nearest(shape), bound_values)
        if not first:
            first.append(rows[0])
        return bound.Attempt(
            rows=bound.page_of(rows), fetched=int(rows[0].fetched), reach=rows[0].reach
        )

    rows = bound.nearest(run, query, windowed=not knn, planar=knn, matches=matches)
    summary = first[0] if base.counted or base.checked else None
    return _Nearest(entries=read_entries(rows), summary=summary)


def _page(
    session: Session,
    shape: plan.Shape,
    query: SearchQuery,
    values: dict[str, Any],
    total: count.Total | None = None,
) -> list[Entry]:
    if query.mode == "near":
        return _nearest(session, shape, query, values, total).entries
    paging = {"limit": query.limit, "offset": query.offset}
    rows = session.connection().execute(plan.listing(shape), {**values, **paging}).all()
    return read_entries(rows)


def _counted_page(
    session: Session, shape: plan.Shape, query: SearchQuery, values: dict[str, Any]
) -> tuple[list[Entry], count.Total]:
    """The page and its total: one statement where the KNN index makes near mode's run one
    (PostGIS), else the count first (its exact total may spare SpatiaLite windows)."""
    if query.mode == "near" and dialect.dialect_named(shape.engine).has_knn_index():
        counted = dataclasses.replace(shape, counted=True)
        found = _nearest(session, counted, query, {**values, **count.cap_parameter(query)})
        if found.summary is None:
            raise ValueError("a counted nearest statement returns its summary row")
        return found.entries, count.of_row(session, counted, query, found.summary)
    total = count.total(session, shape, query, values)
    return _page(session, shape, query, values, total), total


def find_entries(
    *,
    session: Session,
    principal: Principal,
    query: SearchQuery,
    check_categories_as: str | None = None,
) -> list[Entry]:
    """The ordered page of entries, with what matching reads, without shaping or counting.

    Used by matching. ``check_categories_as``: refuse unknown category codes (a 422 naming that
    field) from the near statement's own summary row, so the check costs no statement of its
    own; None when the caller checked them already.
    """
    _up_to_date(session)
    shape = plan.shape_of(session, principal, query, matching=True)
    values = plan.parameters(shape, query)
    if check_categories_as is None:
        if query.open_at is not None:
            return hours.open_page(session, shape, query, values)[0]
        return _page(session, shape, query, values)
    if query.mode != "near" or query.open_at is not None:
        raise ValueError("codes are checked in near mode's own statement")
    checked = dataclasses.replace(shape, checked=True)
    found = _nearest(session, checked, query, values)
    if found.summary is None:
        raise ValueError("a checked nearest statement returns its summary row")
    count.check(session, checked, query, found.summary, category_field=check_categories_as)
    return found.entries


def search_page(*, session: Session, principal: Principal, query: SearchQuery) -> dict[str, Any]:
    """Run a search for a caller and shape one page of results, as a JSON-ready document:
    ``SearchPage``'s fields in its order (``schemas.search.page_json`` writes it).

    Unknown area and category codes are refused (422; checked in the counting statement).
    Exact views of hidden sites are audited after the page is shaped (``places.audience``).
    """
    _up_to_date(session)
    shape = plan.shape_of(session, principal, query)
    values = plan.parameters(shape, query)
    if query.open_at is not None:
        count.check_only(session, shape, query, values)
        entries, open_total = hours.open_page(session, shape, query, values)
        total = count.Total(items=open_total, is_lower_bound=False)
    else:
        entries, total = _counted_page(session, shape, query, values)
    with places.audience(session, principal) as audience:
        shaped = {
            "mode": query.mode,
            "total_items": total.items,
            "total_is_lower_bound": total.is_lower_bound,
            "page_number": query.page,
            "limit": query.limit,
            "size": len(entries),
            "contents": shaping.results(audience, query, entries),
        }
    return shaped


def search(*, session: Session, principal: Principal, query: SearchQuery) -> SearchPage:
    """:func:`search_page` as the validated response model."""
    return SearchPage.model_validate(search_page(session=session, principal=principal, query=query))
