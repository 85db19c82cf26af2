"""Needs matching: gather candidates through search and the audience rules, then call the pure
core in ``referral_net.matching`` and shape its result.

Candidates are gathered in one nearest-first query over all needed categories (the exact
k-nearest search) and one query for services whose service area covers the person's place
(wherever their office is), plus, for a need left with no eligible candidate, one more query
with the hard rules SQL can express (age, gender, accompanying children), so an eligible service
further away is still found. Everything the core needs is loaded in a handful of batch queries.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from referral_net import matching
from referral_net.db import dialect
from referral_net.db.models import (
    Accessibility,
    AdminArea,
    Language,
    Location,
    Organization,
    Service,
    ServiceCapacity,
)
from referral_net.domain import places, search, services, taxonomy
from referral_net.domain.common import children_by
from referral_net.errors import InvalidInput
from referral_net.geo.country import point_in_guatemala
from referral_net.matching.explain import outside_country_warning
from referral_net.opening_hours import is_open, is_open_24h, to_guatemala
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
from referral_net.vocab import Locale

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


def _accessibility_tags(rows: Sequence[Accessibility]) -> frozenset[str]:
    text = " ".join(f"{r.description or ''} {r.details or ''}" for r in rows).lower()
    return frozenset(
        tag for tag, pattern in _ACCESSIBILITY_PATTERNS.items() if re.search(pattern, text)
    )


def _covering(session: Session, service_ids: Sequence[uuid.UUID], place: _Place) -> set[uuid.UUID]:
    """The services among ``service_ids`` with a service area that contains the place."""
    if not service_ids:
        return set()
    statement = select(col(Service.id)).where(
        col(Service.id).in_(service_ids),
        dialect.service_area_covers(
            session,
            service_id=Service.__table__.c["id"],  # type: ignore[attr-defined]
            latitude=place.latitude,
            longitude=place.longitude,
        ),
    )
    return set(session.exec(statement))


def _candidates(
    session: Session, hits: Sequence[search.Hit], now: datetime, place: _Place
) -> dict[uuid.UUID, tuple[search.Hit, matching.Candidate]]:
    """Build the core's candidates for hits, keyed by service-at-location id, in batch queries."""
    service_ids = list({h.service_id for h in hits})
    covering = _covering(session, service_ids, place)
    location_ids = list({h.location_id for h in hits})
    service_rows = {
        s.id: s for s in session.exec(select(Service).where(col(Service.id).in_(service_ids)))
    }
    org_ids = {s.organization_id for s in service_rows.values()}
    org_names = {
        o.id: o.name
        for o in session.exec(select(Organization).where(col(Organization.id).in_(org_ids)))
    }
    languages = children_by(session, Language, "service_id", service_ids)
    capacity = children_by(session, ServiceCapacity, "service_id", service_ids)
    accessibility = children_by(session, Accessibility, "location_id", location_ids)
    schedules = services.schedules_by_service(session=session, service_ids=service_ids)
    terms = taxonomy.categories_for(
        session=session, link_entity=services.LINK_ENTITY, link_ids=service_ids
    )
    parents = taxonomy.parent_map(session=session)
    today = to_guatemala(now).date()
    out: dict[uuid.UUID, tuple[search.Hit, matching.Candidate]] = {}
    for hit in hits:
        service = service_rows[hit.service_id]
        codes: set[str] = set()
        for term in terms.get(service.id, []):
            if term.code:
                codes.add(term.code)
                codes.update(taxonomy.ancestor_codes(term.code, parents))
        rows = capacity[service.id]
        weekly = schedules.get(service.id, [])
        out[hit.link_id] = (
            hit,
            matching.Candidate(
                service_id=str(service.id),
                location_id=str(hit.location_id),
                organization_id=str(service.organization_id),
                service_name=service.name,
                organization_name=org_names.get(service.organization_id, ""),
                categories=frozenset(codes),
                distance_m=hit.distance_m or 0.0,
                languages=frozenset(lang.code for lang in languages[service.id]),
                interpretation_offered=bool((service.interpretation_services or "").strip()),
                minimum_age=None if service.minimum_age is None else int(service.minimum_age),
                maximum_age=None if service.maximum_age is None else int(service.maximum_age),
                genders_served=None
                if service.genders_served is None
                else frozenset(service.genders_served),
                trans_inclusive=service.trans_inclusive,
                lgbtiq_affirming=service.lgbtiq_affirming,
                minors_only=service.minors_only,
                accepts_accompanying_children=service.accepts_accompanying_children,
                status=service.status,
                open_now=bool(weekly) and is_open(weekly, now),
                open_24h=bool(weekly) and is_open_24h(weekly, on=today),
                capacity_available=int(sum(r.available for r in rows)) if rows else None,
                capacity_maximum=(
                    int(sum(r.maximum for r in rows if r.maximum is not None))
                    if rows and any(r.maximum is not None for r in rows)
                    else None
                ),
                capacity_updated=min(r.updated for r in rows) if rows else None,
                assured_date=service.assured_date,
                accessibility=_accessibility_tags(accessibility[hit.location_id]),
                covers_area=service.id in covering,
            ),
        )
    return out


def match(
    *, session: Session, principal: Principal, request: MatchRequest, now: datetime, locale: Locale
) -> MatchResponse:
    """Rank eligible services for each need and propose a referral plan."""
    codes = [need.code for need in request.needs]
    taxonomy.resolve_codes(session=session, codes=codes, field="needs")
    place = _person_point(session, request)
    profile = _profile(request, locale)
    hits = search.find_hits(
        session=session, principal=principal, query=_query(place, codes, GATHER_LIMIT)
    )
    # Services whose area covers the place count whatever their office's distance (a national
    # service far away), so they are gathered on their own, not only among the nearest.
    seen = {hit.link_id for hit in hits}
    hits += [
        hit
        for hit in search.find_hits(
            session=session,
            principal=principal,
            query=_query(place, codes, GATHER_LIMIT, mode="covers"),
        )
        if hit.link_id not in seen
    ]
    built = _candidates(session, hits, now, place)
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
        more = search.find_hits(
            session=session,
            principal=principal,
            query=_query(place, [need.code], FALLBACK_LIMIT, filters=filters),
        )
        extra = _candidates(session, [h for h in more if h.link_id not in built], now, place)
        built.update(extra)
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
    built: dict[uuid.UUID, tuple[search.Hit, matching.Candidate]],
) -> dict[str, list[tuple[search.Hit, matching.Candidate]]]:
    grouped: dict[str, list[tuple[search.Hit, matching.Candidate]]] = defaultdict(list)
    for hit, candidate in built.values():
        for need in profile.needs:
            if need.code in candidate.categories:
                grouped[need.code].append((hit, candidate))
    return grouped


def _shape(
    session: Session,
    principal: Principal,
    result: matching.MatchResult,
    built: dict[uuid.UUID, tuple[search.Hit, matching.Candidate]],
    now: datetime,
    *,
    abroad: bool,
    locale: Locale,
) -> MatchResponse:
    link_of = {(c.service_id, c.location_id): hit.link_id for hit, c in built.values()}
    location_ids = {uuid.UUID(r.candidate.location_id) for n in result.needs for r in n.ranked}
    sites = [
        places.Site(
            id=loc.id,
            name=loc.name,
            latitude=loc.latitude,
            longitude=loc.longitude,
            visibility=loc.visibility,
            organization_id=loc.organization_id,
            department_code=loc.department_code,
            municipality_code=loc.municipality_code,
            intake_phone=loc.intake_phone,
            intake_description=loc.intake_description,
        )
        for loc in session.exec(select(Location).where(col(Location.id).in_(location_ids)))
    ]
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
