"""Opening hours of read-model entries at one instant, and the ``open_at`` filter.

:class:`HoursAt` answers "open now?", "open around the clock?" and "which hours?" for the compact
weekly schedules entries hold, working out each distinct schedule once: a page, a tile or a
match's candidates share a handful (office hours, around the clock), and parsing one and walking
its recurrence costs about a tenth of a millisecond.

The ``open_at`` filter: opening hours are evaluated in Python (``opening_hours``, pure), so
every match is read with its compact weekly schedule and filtered before the page is cut; then
the page's entries are read. The count of open rows is exact.

A nearest search without a radius is bounded here by the largest allowed radius.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Row
from sqlmodel import Session

from referral_net.domain.search import plan
from referral_net.domain.search.entry import Entry, read_entries
from referral_net.domain.search.query import SearchQuery
from referral_net.domain.search_model import from_compact
from referral_net.opening_hours import (
    WeeklySchedule,
    describe_hours,
    is_open,
    is_open_24h,
    to_guatemala,
)

# A compact schedule list as a dictionary key: its schedules' field values, in order.
_Key = tuple[tuple[Any, ...], ...]


class HoursAt:
    """What opening hours say at one instant (``at``, aware), each distinct compact schedule
    list (``search_model.to_compact``) evaluated once for the life of the object (one request:
    "open now" holds for its instant only); parsing, text and "around the clock" are kept for
    the process."""

    def __init__(self, at: datetime) -> None:
        """Answers at ``at``; "around the clock" is judged over the week from its Guatemala date."""
        self.at = at
        self.today = to_guatemala(at).date()
        self._open: dict[_Key, bool] = {}

    def is_open(self, compact: Sequence[Sequence[Any]]) -> bool:
        """True if a schedule has a period holding the instant (False with no schedule)."""
        key = _key(compact)
        answer = self._open.get(key)
        if answer is None:
            schedules = _parsed(key)
            answer = self._open[key] = bool(schedules) and is_open(schedules, self.at)
        return answer

    def is_open_24h(self, compact: Sequence[Sequence[Any]]) -> bool:
        """True if the schedules cover every instant of the week from the instant's date."""
        return _open_all_week(_key(compact), self.today)

    def described(self, compact: Sequence[Sequence[Any]], locale: str) -> list[str]:
        """The hours as text (``opening_hours.describe_hours``), a new list each call."""
        return list(_described(_key(compact), locale))


def _key(compact: Sequence[Sequence[Any]]) -> _Key:
    return tuple(map(tuple, compact))


# Parsed schedules, their text and "around the clock" hold for any request (the last for one
# date), so they are kept for the process; a directory has far fewer distinct schedule lists
# than the bounds. ``WeeklySchedule`` is frozen, so requests may share one.
@lru_cache(maxsize=4096)
def _parsed(key: _Key) -> tuple[WeeklySchedule, ...]:
    return tuple(from_compact(key))


@lru_cache(maxsize=4096)
def _described(key: _Key, locale: str) -> tuple[str, ...]:
    return tuple(describe_hours(_parsed(key), locale))


@lru_cache(maxsize=4096)
def _open_all_week(key: _Key, on: date) -> bool:
    schedules = _parsed(key)
    return bool(schedules) and is_open_24h(schedules, on=on)


def _open_rows(
    session: Session, shape: plan.Shape, query: SearchQuery, values: dict[str, Any]
) -> list[Row[Any]]:
    if query.open_at is None:
        raise ValueError("the opening-hours filter needs open_at")
    if query.mode == "near":
        radius = query.radius_m or query.max_radius_m
        shape = dataclasses.replace(shape, radius=True, window=True)
        values = {**values, **plan.radius_parameters(shape, query, radius)}
    rows = session.connection().execute(plan.candidates(shape), values)
    hours = HoursAt(query.open_at)
    return [row for row in rows if row.schedules and hours.is_open(row.schedules)]


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
