"""Shaping a page of read-model entries into results, with no further query.

Each entry's ``doc`` holds the audience-independent fields, pre-rendered in both locales; what
depends on the request is computed here: the distance, opening hours now (from the compact weekly
schedule), capacity freshness at the evaluated instant, and where the audience is shown the site
(``domain.places``: the exact point, or the coarse point the entry carries).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from referral_net.domain import services
from referral_net.domain.places import Audience
from referral_net.domain.search.entry import Entry
from referral_net.domain.search.query import SearchQuery
from referral_net.domain.search_model import from_compact
from referral_net.opening_hours import WeeklySchedule, is_open, is_open_24h, to_guatemala
from referral_net.schemas.directory import CapacityOut
from referral_net.schemas.search import SearchResult


def weekly(entry: Entry) -> list[WeeklySchedule]:
    """The entry's weekly schedules, ready for ``opening_hours``."""
    return from_compact(entry.doc["schedules"])


def capacity(
    items: Sequence[Mapping[str, Any]], context: services.ReadContext
) -> list[CapacityOut]:
    """The stored capacity figures with their freshness at the context's instant."""
    return [
        services.capacity_item(
            unit=item["unit"],
            available=item["available"],
            maximum=item["maximum"],
            description=item["description"],
            updated=datetime.fromisoformat(item["updated"]),
            context=context,
        )
        for item in items
    ]


def _result(
    entry: Entry, placed: Any, query: SearchQuery, context: services.ReadContext, today: date
) -> SearchResult:
    doc = entry.doc
    schedules = weekly(entry)
    return SearchResult(
        service_at_location_id=entry.link_id,
        distance_m=None if entry.distance_m is None else round(entry.distance_m, 3),
        service=doc["service"],
        location=placed,
        categories=doc["categories"][query.locale],
        languages=doc["languages"][query.locale],
        open_now=is_open(schedules, query.evaluated_at) if schedules else None,
        open_24h=bool(schedules) and is_open_24h(schedules, on=today),
        capacity=capacity(doc["capacity"], context),
        last_verified=doc["last_verified"],
    )


def results(audience: Audience, query: SearchQuery, entries: Sequence[Entry]) -> list[SearchResult]:
    """The results of a page of entries, each site placed for the audience."""
    if not entries:
        return []
    places = audience.place([entry.site() for entry in entries])
    context = services.ReadContext(
        locale=query.locale, at=query.evaluated_at, capacity_stale_after=query.capacity_stale_after
    )
    today = to_guatemala(query.evaluated_at).date()
    return [_result(entry, places[entry.location_id], query, context, today) for entry in entries]
