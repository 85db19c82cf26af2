"""The ``open_at`` filter: opening hours are evaluated in Python (``opening_hours``, pure), so
every match is read with its compact weekly schedule and filtered before the page is cut; then
the page's entries are read. The count of open rows is exact.

A nearest search without a radius is bounded here by the largest allowed radius.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import Row
from sqlmodel import Session

from referral_net.domain.search import plan
from referral_net.domain.search.entry import Entry, read_entries
from referral_net.domain.search.query import SearchQuery
from referral_net.domain.search_model import from_compact
from referral_net.opening_hours import is_open


def _open_rows(
    session: Session, shape: plan.Shape, query: SearchQuery, values: dict[str, Any]
) -> list[Row[Any]]:
    if query.open_at is None:
        raise ValueError("the opening-hours filter needs open_at")
    if query.mode == "near":
        radius = query.radius_m or query.max_radius_m
        shape = dataclasses.replace(shape, radius=True, window=True)
        values = {**values, "radius": radius, **plan.window_parameters(query, radius)}
    rows = session.connection().execute(plan.candidates(shape), values)
    at = query.open_at
    return [row for row in rows if row.schedules and is_open(from_compact(row.schedules), at)]


def open_page(
    session: Session, shape: plan.Shape, query: SearchQuery, values: dict[str, Any]
) -> tuple[list[Entry], int]:
    """The page among the matches open at ``query.open_at``, and how many are open."""
    open_rows = _open_rows(session, shape, query, values)
    page = open_rows[query.offset : query.offset + query.limit]
    if not page:
        return [], len(open_rows)
    wanted = [row.link_id for row in page]
    shown = {
        row.link_id: row
        for row in session.connection().execute(plan.entries(shape), {**values, "links": wanted})
    }
    entries = read_entries(
        [shown[link] for link in wanted], distances=[row.distance_m for row in page]
    )
    return entries, len(open_rows)
