"""Needs matching: eligibility, scoring, explanations and the referral plan (pure core).

The endpoint gathers candidate services near the person for each need and calls ``match``. The
core never reads the clock, the database or the network, so the same input always gives the same
output (see docs/matching.md).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime

from referral_net.matching.eligibility import first_exclusion, is_eligible
from referral_net.matching.explain import (
    beyond_limit_message,
    candidate_explanation,
    excluded_labels,
    none_eligible_message,
    profile_warnings,
)
from referral_net.matching.model import (
    Candidate,
    ExclusionReason,
    MatchResult,
    Need,
    NeedProfile,
    NeedResult,
    NeedStatus,
    PlanAssignment,
    PlanVisit,
    RankedCandidate,
    ReferralPlan,
    Urgency,
)
from referral_net.matching.plan import DEFAULT_PLAN_TOP_K, MAX_PLAN_NEEDS, build_plan
from referral_net.matching.scoring import WEIGHTS, Score, score
from referral_net.vocab import Gender, Locale

__all__ = [
    "DEFAULT_PLAN_TOP_K",
    "DEFAULT_TOP_N",
    "MAX_PLAN_NEEDS",
    "WEIGHTS",
    "Candidate",
    "ExclusionReason",
    "Gender",
    "Locale",
    "MatchResult",
    "Need",
    "NeedProfile",
    "NeedResult",
    "NeedStatus",
    "PlanAssignment",
    "PlanVisit",
    "RankedCandidate",
    "ReferralPlan",
    "Urgency",
    "build_plan",
    "first_exclusion",
    "is_eligible",
    "match",
    "rank_need",
]

DEFAULT_TOP_N = 5


def _ranking_key(item: tuple[Candidate, Score]) -> tuple[float, float, str, str]:
    """Score descending, then distance, then ids: a total order, so ranking is deterministic."""
    candidate, candidate_score = item
    return (
        -candidate_score.total,
        candidate.distance_m,
        candidate.service_id,
        candidate.location_id,
    )


def _unique(candidates: Sequence[Candidate]) -> list[Candidate]:
    """The candidates with exact repeats dropped; conflicting repeats are an error."""
    seen: dict[tuple[str, str], Candidate] = {}
    for candidate in candidates:
        previous = seen.setdefault(candidate.key, candidate)
        if previous != candidate:
            # Two different records for one service at one place: which one is true is unknown,
            # and picking by input order would make the result depend on that order.
            raise ValueError(f"conflicting candidates for service/location {candidate.key}")
    return list(seen.values())


def _top(
    ordered: Sequence[tuple[Candidate, Score]], count: int, *, keep_nearest: bool
) -> list[int]:
    """Indices into ``ordered`` of the first ``count``, optionally forcing the nearest in."""
    chosen = list(range(min(count, len(ordered))))
    if keep_nearest and ordered:
        nearest = min(
            range(len(ordered)),
            key=lambda index: (
                ordered[index][0].distance_m,
                ordered[index][0].service_id,
                ordered[index][0].location_id,
            ),
        )
        if nearest not in chosen:
            # Beyond the limit the nearest option must always be shown: it is the one the
            # message names, and distance is what the caseworker asked to limit.
            chosen = [*chosen[: count - 1], nearest]
    return chosen


def rank_need(
    profile: NeedProfile,
    need: Need,
    candidates: Sequence[Candidate],
    *,
    now: datetime,
    top_n: int = DEFAULT_TOP_N,
    plan_top_k: int = DEFAULT_PLAN_TOP_K,
) -> tuple[NeedResult, tuple[RankedCandidate, ...]]:
    """Rank one need's candidates: its result (top ``top_n``) and its plan options (top K)."""
    excluded: Counter[ExclusionReason] = Counter()
    eligible: list[tuple[Candidate, Score]] = []
    for candidate in _unique(candidates):
        reason = first_exclusion(profile, need, candidate)
        if reason is None:
            eligible.append((candidate, score(profile, need, candidate, now)))
        else:
            excluded[reason] += 1
    limit_m = math.inf if profile.max_distance_km is None else profile.max_distance_km * 1000
    # A service covering the person's area reaches them wherever its office is: the distance
    # limit is about travelling to an office, so it never puts such a service out of range.
    in_range = [item for item in eligible if item[0].covers_area or item[0].distance_m <= limit_m]
    status: NeedStatus
    message: str | None = None
    if in_range:
        status, pool = "in_range", in_range
    elif eligible:
        status, pool = "beyond_limit", eligible
        assert profile.max_distance_km is not None  # else every eligible one is in range
        nearest_m = min(candidate.distance_m for candidate, _ in eligible)
        message = beyond_limit_message(profile.max_distance_km, nearest_m, profile.locale)
    else:
        status, pool = "none_eligible", []
        message = none_eligible_message(sum(excluded.values()), profile.locale)
    ordered = sorted(pool, key=_ranking_key)
    beyond = status == "beyond_limit"
    made: dict[int, RankedCandidate] = {}

    def ranked_at(index: int) -> RankedCandidate:
        if index not in made:
            candidate, candidate_score = ordered[index]
            reasons, cautions = candidate_explanation(
                profile, need, candidate, now, beyond_limit=beyond
            )
            made[index] = RankedCandidate(
                candidate=candidate,
                rank=index + 1,
                score=candidate_score.total,
                components=candidate_score.components,
                reasons=reasons,
                cautions=cautions,
                beyond_limit=beyond,
            )
        return made[index]

    shown = tuple(ranked_at(index) for index in _top(ordered, top_n, keep_nearest=beyond))
    options = tuple(ranked_at(index) for index in _top(ordered, plan_top_k, keep_nearest=beyond))
    counts = {reason: excluded[reason] for reason in ExclusionReason if excluded[reason]}
    result = NeedResult(
        need=need,
        status=status,
        ranked=shown,
        eligible_count=len(eligible),
        out_of_range_count=len(eligible) - len(in_range) if in_range else 0,
        excluded_counts=counts,
        excluded_labels=excluded_labels(counts, profile.locale),
        message=message,
    )
    return result, options


def match(
    profile: NeedProfile,
    candidates_by_need: Mapping[str, Sequence[Candidate]],
    *,
    now: datetime,
    top_n: int = DEFAULT_TOP_N,
    plan_top_k: int = DEFAULT_PLAN_TOP_K,
) -> MatchResult:
    """Rank eligible services for each need of the profile and build the referral plan."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if top_n < 1 or plan_top_k < 1:
        raise ValueError("top_n and plan_top_k must be at least 1")
    if len(profile.needs) > MAX_PLAN_NEEDS:
        raise ValueError(f"at most {MAX_PLAN_NEEDS} needs can be matched at once")
    unknown = set(candidates_by_need) - {need.code for need in profile.needs}
    if unknown:
        raise ValueError(f"candidates given for needs not in the profile: {sorted(unknown)}")
    results: list[NeedResult] = []
    plan_options: list[tuple[Need, tuple[RankedCandidate, ...]]] = []
    for need in profile.needs:
        result, options = rank_need(
            profile,
            need,
            candidates_by_need.get(need.code, ()),
            now=now,
            top_n=top_n,
            plan_top_k=plan_top_k,
        )
        results.append(result)
        plan_options.append((need, options))
    plan = build_plan(plan_options, top_k=plan_top_k, locale=profile.locale)
    return MatchResult(needs=tuple(results), plan=plan, now=now, warnings=profile_warnings(profile))
