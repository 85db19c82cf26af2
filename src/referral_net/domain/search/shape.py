"""Shaping a page of read-model entries into result documents, with no further query.

Each entry's ``doc`` holds the audience-independent fields, pre-rendered in both locales; what
depends on the request is computed here: the distance, opening hours now (from the compact weekly
schedule), capacity freshness at the evaluated instant, and where the audience is shown the site
(``domain.places``: the exact point, or the coarse point the entry carries).

A result is a JSON-ready document, not the ``SearchResult`` model: a dict with the model's fields
in its order, each value as the model holds it (a ``UUID``, an aware ``datetime``), so orjson
writes the page byte for byte as ``model_dump_json`` would (``schemas.search.page_json``;
tests/test_search_documents.py). Building and validating a page's twenty models, then dumping
them, was about a quarter of a search's Python (docs/performance.md); ``domain.search.search``
still gives the validated model, for the callers that want one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from referral_net.domain import services
from referral_net.domain.places import Audience
from referral_net.domain.search.entry import Entry
from referral_net.domain.search.hours import HoursAt
from referral_net.domain.search.query import SearchQuery


def capacity(
    items: Sequence[Mapping[str, Any]], context: services.ReadContext
) -> list[dict[str, Any]]:
    """The stored capacity figures with their freshness at the context's instant (documents)."""
    return [
        services.capacity_document(
            unit=item["unit"],
            available=item["available"],
            maximum=item["maximum"],
            description=item["description"],
            updated=datetime.fromisoformat(item["updated"]),
            context=context,
        )
        for item in items
    ]


def phones(doc: Mapping[str, Any], placed: Mapping[str, Any]) -> list[str]:
    """The numbers a result shows its audience: a site shown at its municipality's point gives
    its intake phone alone (its own phones, and its links', would point at it); an exact one
    gives the link's, the site's and the service's, then the intake phone, each number once.

    ``placed``: the site's location document (``places.Audience.locations``)."""
    intake = [placed["intake_phone"]] if placed["intake_phone"] else []
    if placed["precision"] != "exact":
        return intake
    held = doc.get("phones") or {}  # entries written before phones were kept have none
    numbers = [*held.get("link", []), *held.get("location", []), *held.get("service", [])]
    return list(dict.fromkeys([*numbers, *intake]))


def _service(service: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": service["id"],
        "name": service["name"],
        "organization_id": service["organization_id"],
        "organization_name": service["organization_name"],
        "minimum_age": service["minimum_age"],
        "maximum_age": service["maximum_age"],
        "genders_served": service["genders_served"],
        "lgbtiq_affirming": service["lgbtiq_affirming"],
        "accepts_accompanying_children": service["accepts_accompanying_children"],
    }


def result(
    entry: Entry,
    placed: Mapping[str, Any],
    query: SearchQuery,
    context: services.ReadContext,
    hours: HoursAt,
) -> dict[str, Any]:
    """One result as a JSON-ready document: ``SearchResult``'s fields in its order, each value
    as that model holds it, so ``orjson`` writes what ``model_dump_json`` would
    (``schemas.search.page_json``; tests/test_search_documents.py)."""
    doc = entry.doc
    locale = query.locale
    schedules = doc["schedules"]
    return {
        "service_at_location_id": entry.link_id,
        "distance_m": None if entry.distance_m is None else round(entry.distance_m, 3),
        "service": _service(doc["service"]),
        "location": placed,
        "categories": [
            {"code": category["code"], "name": category["name"]}
            for category in doc["categories"][locale]
        ],
        "languages": [
            {"code": language["code"], "name": language.get("name")}
            for language in doc["languages"][locale]
        ],
        "open_now": hours.is_open(schedules) if schedules else None,
        "open_24h": hours.is_open_24h(schedules),
        "hours": hours.described(schedules, locale),
        "phones": phones(doc, placed),
        "capacity": capacity(doc["capacity"], context),
        "last_verified": doc["last_verified"],
    }


def results(
    audience: Audience, query: SearchQuery, entries: Sequence[Entry]
) -> list[dict[str, Any]]:
    """The result documents of a page of entries, each site placed for the audience."""
    if not entries:
        return []
    places = audience.locations([entry.site() for entry in entries])
    context = services.ReadContext(
        locale=query.locale, at=query.evaluated_at, capacity_stale_after=query.capacity_stale_after
    )
    hours = HoursAt(query.evaluated_at)
    return [result(entry, places[entry.location_id], query, context, hours) for entry in entries]
