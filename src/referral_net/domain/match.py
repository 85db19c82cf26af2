"""Needs matching: gather candidates from the search read model and the audience rules, then
call the pure core in ``referral_net.matching`` and shape its result.

Candidates are gathered with search's own statement over the read model (``search_entry``): one
nearest-first page over all needed categories (the exact k-nearest search), one page of services
whose service area covers the person's place (wherever their office is), plus, for a need left
with no eligible candidate, one more page with the hard rules SQL can express (age, gender,
accompanying children), so an eligible service further away is still found. Each row carries
everything the core reads (its pre-rendered ``doc``, its category codes with their ancestors,
whether its service area covers the place), so nothing else is queried.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from referral_net import matching
from referral_net.db.models import AdminArea
from referral_net.domain import places, search
from referral_net.domain.search.hours import HoursAt
from referral_net.errors import InvalidInput
from referral_net.geo.country import point_in_guatemala
from referral_net.matching.explain import outside_country_warning
from referral_net.schemas.match import (
    ExcludedCount,
    MatchRequest,
    MatchResponse,
    NeedMatch,
    Plan,
    PlanStep,
    Proposal,
)
from referral_net.schemas.search import SearchLocation, SearchMode
from referral_net.security.roles import Principal
from referral_net.vocab import Locale, RecordStatus

# How many nearest services at locations are gathered, over all needs, then per fallback need.
GATHER_LIMIT = 60
FALLBACK_LIMIT = 30
# Location accessibility is free text in HSDS; these patterns turn it into the tags that the
# profile's mobility and sensory needs name. A heuristic: listings should say it plainly.
_ACCESSIBILITY_PATTERNS = {
    "wheelchair": r"silla de ruedas|rampa|wheelchair|ramp|a nivel|step.free",
    "reduced_mobility": r"silla de ruedas|rampa|wheelchair|ramp|a nivel|ascensor|elevator",
    "deaf": r"señas|lensegua|sign language",
    "hard_of_hearing": r"señas|lensegua|sign language|bucle|hearing loop",
    "blind": r"braille|guía|audio|screen reader",
    "low_vision": r"braille|letra grande|large print|audio",
}


@dataclass(frozen=True)
class _Place:
    latitude: float
    longitude: float


def _person_point(session: Session, request: MatchRequest) -> _Place:
    where = request.location
    if where.latitude is not None and where.longitude is not None:
        return _Place(where.latitude, where.longitude)
    area = session.get(AdminArea, where.municipality) if where.municipality else None
    if area is None or area.level != "municipality":
        raise InvalidInput(
            "unknown municipality code",
            errors=[
                {
                    "field": "body.location.municipality",
                    "message": "unknown municipality",
                    "type": "value_error",
                }
            ],
        )
    return _Place(area.representative_latitude, area.representative_longitude)


def _profile(request: MatchRequest, locale: Locale) -> matching.NeedProfile:
    return matching.NeedProfile(
        needs=tuple(matching.Need(code=n.code, urgency=n.urgency) for n in request.needs),
        age=request.age,
        is_minor=request.is_minor,
        gender=request.gender,
        lgbtiq=request.lgbtiq,
        languages=tuple(request.languages),
        accompanying_children=request.accompanying_children,
        mobility_needs=tuple(request.mobility_needs),
        sensory_needs=tuple(request.sensory_needs),
        migrant=request.migrant,
        max_distance_km=request.max_distance_km,
        open_now_only=request.open_now,
        locale=locale,
    )


def _query(
    place: _Place,
    codes: Sequence[str],
    limit: int,
    *,
    mode: SearchMode = "near",
    filters: Mapping[str, object] | None = None,
) -> search.SearchQuery:
    return search.SearchQuery(
        mode=mode,
        latitude=place.latitude,
        longitude=place.longitude,
        categories=tuple(codes),
        limit=limit,
        **(filters or {}),  # type: ignore[arg-type]
    )


def _accessibility_tags(text: str) -> frozenset[str]:
    """The tags a site's accessibility text names (the read model holds it lowercased)."""
    return frozenset(
        tag for tag, pattern in _ACCESSIBILITY_PATTERNS.items() if re.search(pattern, text)
    )


def _capacity_totals(
    rows: Sequence[Mapping[str, Any]],
) -> tuple[int | None, int | None, datetime | None]:
    """Free and total places over all units, and the oldest figure's time (None: untracked)."""
    if not rows:
        return None, None, None
    maxima = [row["maximum"] for row in rows if row["maximum"] is not None]
    return (
        int(sum(row["available"] for row in rows)),
        int(sum(maxima)) if maxima else None,
        min(datetime.fromisoformat(row["updated"]) for row in rows),
    )


def _candidate(entry: search.Entry, hours: HoursAt) -> matching.Candidate:
    """The core's candidate for one read-model entry, its opening hours at ``hours``' instant."""
    doc = entry.doc
    service, extra = doc["service"], doc["matching"]
    weekly = doc["schedules"]
    available, maximum, updated = _capacity_totals(doc["capacity"])
    genders = service["genders_served"]
    verified = doc["last_verified"]
    return matching.Candidate(
        service_id=str(entry.service_id),
        location_id=str(entry.location_id),
        organization_id=service["organization_id"],
        service_name=service["name"],
        organization_name=service["organization_name"],
        categories=entry.category_codes,
        distance_m=entry.distance_m or 0.0,
        languages=frozenset(language["code"] for language in doc["languages"]["es"]),
        interpretation_offered=extra["interpretation_offered"],
        minimum_age=service["minimum_age"],
        maximum_age=service["maximum_age"],
        genders_served=None if genders is None else frozenset(genders),
        trans_inclusive=extra["trans_inclusive"],
        lgbtiq_affirming=service["lgbtiq_affirming"],
        minors_only=entry.minors_only,
        accepts_accompanying_children=service["accepts_accompanying_children"],
        status=RecordStatus.ACTIVE.value,  # the read model lists active services only
        open_now=hours.is_open(weekly),
        open_24h=hours.is_open_24h(weekly),
        capacity_available=available,
        capacity_maximum=maximum,
        capacity_updated=updated,
        assured_date=None if verified is None else date.fromisoformat(verified),
        accessibility=_accessibility_tags(extra["accessibility_text"]),
        covers_area=entry.covers_area,
    )


def _candidates(
    entries: Sequence[search.Entry], hours: HoursAt
) -> dict[uuid.UUID, tuple[search.Entry, matching.Candidate]]:
    """The core's candidates for entries, keyed by service-at-location id (no query)."""
    return {entry.link_id: (entry, _candidate(entry, hours)) for entry in entries}


def match(
    *, session: Session, principal: Principal, request: MatchRequest, now: datetime, locale: Locale
) -> MatchResponse:
    """Rank eligible services for each need and propose a referral plan."""
    codes = [need.code for need in request.needs]
    place = _person_point(session, request)
    profile = _profile(request, locale)
    # The need codes are checked by the first search's own statement (unknown: 422 on "needs").
    found = search.find_entries(
        session=session,
        principal=principal,
        query=_query(place, codes, GATHER_LIMIT),
        check_categories_as="needs",
    )
    # Services whose area covers the place count whatever their office's distance (a national
    # service far away), so they are gathered on their own, not only among the nearest.
    seen = {entry.link_id for entry in found}
    found += [
        entry
        for entry in search.find_entries(
            session=session,
            principal=principal,
            query=_query(place, codes, GATHER_LIMIT, mode="covers"),
        )
        if entry.link_id not in seen
    ]
    # Candidates share a few schedules (office hours, around the clock): each is evaluated once.
    hours = HoursAt(now)
    built = _candidates(found, hours)
    by_need = _group(profile, built)
    missing = [
        need
        for need in profile.needs
        if not any(matching.is_eligible(profile, need, c) for _, c in by_need[need.code])
    ]
    for need in missing:
        filters: dict[str, object] = {}
        if request.age is not None:
            filters["age"] = request.age
        if request.gender is not None:
            filters["gender"] = request.gender
        if request.accompanying_children > 0:
            filters["accepts_children"] = True
        more = search.find_entries(
            session=session,
            principal=principal,
            query=_query(place, [need.code], FALLBACK_LIMIT, filters=filters),
        )
        built.update(_candidates([e for e in more if e.link_id not in built], hours))
        by_need = _group(profile, built)
    result = matching.match(
        profile,
        {code: [c for _, c in pairs] for code, pairs in by_need.items()},
        now=now,
    )
    abroad = not point_in_guatemala(place.latitude, place.longitude)
    return _shape(session, principal, result, built, now, abroad=abroad, locale=locale)


def _group(
    profile: matching.NeedProfile,
    built: dict[uuid.UUID, tuple[search.Entry, matching.Candidate]],
) -> dict[str, list[tuple[search.Entry, matching.Candidate]]]:
    grouped: dict[str, list[tuple[search.Entry, matching.Candidate]]] = defaultdict(list)
    for entry, candidate in built.values():
        for need in profile.needs:
            if need.code in candidate.categories:
                grouped[need.code].append((entry, candidate))
    return grouped


def _shape(
    session: Session,
    principal: Principal,
    result: matching.MatchResult,
    built: dict[uuid.UUID, tuple[search.Entry, matching.Candidate]],
    now: datetime,
    *,
    abroad: bool,
    locale: Locale,
) -> MatchResponse:
    link_of = {(c.service_id, c.location_id): entry.link_id for entry, c in built.values()}
    site_of = {entry.location_id: entry.site() for entry, _ in built.values()}
    shown = dict.fromkeys(
        uuid.UUID(r.candidate.location_id) for n in result.needs for r in n.ranked
    )
    sites = [site_of[location_id] for location_id in shown]
    # Exact views of hidden sites are audited once the whole answer is shaped (places.audience).
    with places.audience(session, principal) as audience:
        shaped = _response(
            result, link_of, audience.place(sites), now, abroad=abroad, locale=locale
        )
    return shaped


def _response(
    result: matching.MatchResult,
    link_of: Mapping[tuple[str, str], uuid.UUID],
    placed: Mapping[uuid.UUID, SearchLocation],
    now: datetime,
    *,
    abroad: bool,
    locale: Locale,
) -> MatchResponse:
    needs = []
    for need_result in result.needs:
        needs.append(
            NeedMatch(
                code=need_result.need.code,
                urgency=need_result.need.urgency,
                status=need_result.status,
                message=need_result.message,
                eligible_count=need_result.eligible_count,
                out_of_range_count=need_result.out_of_range_count,
                excluded=[
                    ExcludedCount(reason=str(reason), count=count, label=label)
                    for (reason, count), label in zip(
                        need_result.excluded_counts.items(),
                        need_result.excluded_labels,
                        strict=False,
                    )
                ],
                proposals=[
                    Proposal(
                        rank=r.rank,
                        score=round(r.score, 4),
                        components={k: round(v, 4) for k, v in r.components.items()},
                        reasons=list(r.reasons),
                        cautions=list(r.cautions),
                        beyond_limit=r.beyond_limit,
                        covers_area=r.candidate.covers_area,
                        service_at_location_id=link_of.get(
                            (r.candidate.service_id, r.candidate.location_id)
                        ),
                        service_id=uuid.UUID(r.candidate.service_id),
                        service_name=r.candidate.service_name,
                        organization_id=uuid.UUID(r.candidate.organization_id),
                        organization_name=r.candidate.organization_name,
                        distance_m=round(r.candidate.distance_m, 1),
                        location=placed[uuid.UUID(r.candidate.location_id)],
                    )
                    for r in need_result.ranked
                ],
            )
        )
    plan = result.plan
    return MatchResponse(
        needs=needs,
        plan=Plan(
            steps=[
                PlanStep(
                    organization_id=uuid.UUID(v.organization_id),
                    organization_name=v.organization_name,
                    location_id=uuid.UUID(v.location_id),
                    distance_m=round(v.distance_m, 1),
                    need_codes=list(v.need_codes),
                    service_ids=[uuid.UUID(s) for s in v.service_ids],
                )
                for v in plan.visits
            ],
            provider_count=len(plan.provider_ids),
            location_count=plan.location_count,
            total_distance_m=round(plan.total_distance_m, 1),
            total_score=round(plan.total_score, 4),
            uncovered=[n.code for n in plan.uncovered],
            summary=plan.summary,
        ),
        # Only a point given with outside_country can lie abroad (the schema refuses the rest).
        warnings=[*result.warnings, *([outside_country_warning(locale)] if abroad else [])],
        outside_country=abroad,
        evaluated_at=now.isoformat(),
    )
