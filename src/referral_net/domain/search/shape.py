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
from referral_net.opening_hours import (
    WeeklySchedule,
    describe_hours,
    is_open,
    is_open_24h,
    to_guatemala,
)
from referral_net.schemas.directory import CapacityOut
from referral_net.schemas.search import SearchLocation, SearchResult


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


def phones(doc: Mapping[str, Any], placed: SearchLocation) -> list[str]:
    """The numbers a result shows its audience: a site shown at its municipality's point gives
    its intake phone alone (its own phones, and its links', would point at it); an exact one
    gives the link's, the site's and the service's, then the intake phone, each number once."""
    intake = [placed.intake_phone] if placed.intake_phone else []
    if placed.precision != "exact":
        return intake
    held = doc.get("phones") or {}  # entries written before phones were kept have none
    numbers = [*held.get("link", []), *held.get("location", []), *held.get("service", [])]
    return list(dict.fromkeys([*numbers, *intake]))


def _result(
    entry: Entry,
    placed: SearchLocation,
    query: SearchQuery,
    context: services.ReadContext,
    today: date,
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
        hours=describe_hours(schedules, query.locale),
        phones=phones(doc, placed),
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
