"""The referral plan: the fewest providers that together cover every need.

For each need one of its top-K eligible candidates is chosen. Among all choices the plan is the
best by this order (each step only breaks ties left by the previous one):

1. fewer providers (organizations): fewer institutions to contact and to tell the story to;
2. fewer distinct locations: one place covering several needs means one trip;
3. smaller total distance: the sum, over the distinct locations, of the distance to each
   (rounded to the metre; a place reported at several distances counts at the smallest);
4. higher total score (the sum of the chosen candidates' scores);
5. lexicographic ids (organization, service, location per need, in profile order).

The last key makes the order total, so the plan is unique whatever order candidates came in.
The search is exact: depth-first over the choices with branch and bound, pruning a branch once a
lower bound of its (providers, locations, distance) is already worse than the best plan found.
With at most 8 needs and 5 options each that is at most 390 625 complete plans, and far fewer are
visited in practice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from referral_net.matching.explain import plan_summary
from referral_net.matching.model import (
    URGENCIES,
    Need,
    PlanAssignment,
    PlanVisit,
    RankedCandidate,
    ReferralPlan,
)
from referral_net.vocab import Locale

MAX_PLAN_NEEDS = 8
DEFAULT_PLAN_TOP_K = 5
# Scores are summed as integers in millionths so the sum cannot depend on the order of addition.
_SCORE_UNITS = 1_000_000

_Key = tuple[int, int, int, int, tuple[tuple[str, str, str], ...]]


@dataclass(frozen=True)
class _Option:
    """A candidate choice for one need, with the integer figures the search compares."""

    ranked: RankedCandidate
    provider: str
    location: str
    distance: int
    score_units: int
    ids: tuple[str, str, str]


def _option(ranked: RankedCandidate, place_distance: dict[str, float]) -> _Option:
    candidate = ranked.candidate
    return _Option(
        ranked=ranked,
        provider=candidate.organization_id,
        location=candidate.location_id,
        distance=round(place_distance[candidate.location_id]),
        score_units=round(ranked.score * _SCORE_UNITS),
        ids=(candidate.organization_id, candidate.service_id, candidate.location_id),
    )


class _Search:
    """Branch and bound over one option per need (needs in profile order)."""

    def __init__(self, slots: Sequence[Sequence[_Option]]) -> None:
        self.slots = slots
        self.providers: Counter[str] = Counter()
        self.locations: Counter[str] = Counter()
        self.location_distance: dict[str, int] = {}
        self.chosen: list[_Option] = []
        self.best_key: _Key | None = None
        self.best: tuple[_Option, ...] = ()

    def run(self) -> tuple[_Option, ...]:
        """The best choice of one option per slot."""
        self._visit(0, 0)
        return self.best

    def _lower_bound(self, index: int, distance: int) -> tuple[int, int, int]:
        """Providers, locations and distance that every completion of this branch reaches."""
        remaining = self.slots[index:]
        needs_new_provider = any(
            all(option.provider not in self.providers for option in slot) for slot in remaining
        )
        # Each remaining slot with no option at a place already chosen adds a new place at least
        # as far as its nearest option; several such slots may share one place, hence max not sum.
        extra_distance = [
            min(option.distance for option in slot)
            for slot in remaining
            if all(option.location not in self.locations for option in slot)
        ]
        return (
            len(self.providers) + int(needs_new_provider),
            len(self.locations) + int(bool(extra_distance)),
            distance + max(extra_distance, default=0),
        )

    def _visit(self, index: int, distance: int) -> None:
        if self.best_key is not None and self._lower_bound(index, distance) > self.best_key[:3]:
            return
        if index == len(self.slots):
            key: _Key = (
                len(self.providers),
                len(self.locations),
                distance,
                -sum(option.score_units for option in self.chosen),
                tuple(option.ids for option in self.chosen),
            )
            if self.best_key is None or key < self.best_key:
                self.best_key = key
                self.best = tuple(self.chosen)
            return
        # Try options that reuse a provider or place first: good plans are found early, which
        # makes pruning bite. The result does not depend on this order (the key is total).
        options = sorted(
            self.slots[index],
            key=lambda option: (
                option.provider not in self.providers,
                option.location not in self.locations,
                option.distance,
                option.ids,
            ),
        )
        for option in options:
            added = 0 if option.location in self.locations else option.distance
            self.providers[option.provider] += 1
            self.locations[option.location] += 1
            self.chosen.append(option)
            self._visit(index + 1, distance + added)
            self.chosen.pop()
            self._release(self.locations, option.location)
            self._release(self.providers, option.provider)

    @staticmethod
    def _release(counter: Counter[str], key: str) -> None:
        counter[key] -= 1
        if counter[key] == 0:
            del counter[key]


def _visits(assignments: Sequence[PlanAssignment]) -> tuple[PlanVisit, ...]:
    """Group the assignments by place, most urgent need first, then nearest."""
    grouped: dict[tuple[str, str], list[PlanAssignment]] = {}
    for assignment in assignments:
        candidate = assignment.candidate
        grouped.setdefault((candidate.organization_id, candidate.location_id), []).append(
            assignment
        )
    visits = []
    for (organization_id, location_id), items in grouped.items():
        visits.append(
            (
                min(URGENCIES.index(item.need.urgency) for item in items),
                PlanVisit(
                    organization_id=organization_id,
                    organization_name=items[0].candidate.organization_name,
                    location_id=location_id,
                    distance_m=min(item.candidate.distance_m for item in items),
                    need_codes=tuple(item.need.code for item in items),
                    service_ids=tuple(dict.fromkeys(item.candidate.service_id for item in items)),
                ),
            )
        )
    visits.sort(
        key=lambda pair: (pair[0], pair[1].distance_m, pair[1].organization_id, pair[1].location_id)
    )
    return tuple(visit for _, visit in visits)


def build_plan(
    options_by_need: Sequence[tuple[Need, Sequence[RankedCandidate]]],
    *,
    top_k: int = DEFAULT_PLAN_TOP_K,
    locale: Locale = "es",
) -> ReferralPlan:
    """The best referral plan choosing, per need, one of its first ``top_k`` ranked candidates."""
    if len(options_by_need) > MAX_PLAN_NEEDS:
        raise ValueError(f"a referral plan covers at most {MAX_PLAN_NEEDS} needs")
    if top_k < 1:
        raise ValueError("top_k must be at least 1")
    covered = [(need, ranked[:top_k]) for need, ranked in options_by_need if ranked]
    uncovered = tuple(need for need, ranked in options_by_need if not ranked)
    # One distance per place (the smallest reported): the search's bounds rely on a place having
    # a single distance, and callers may round the same place's distance differently.
    place_distance: dict[str, float] = {}
    for _, options in covered:
        for ranked in options:
            location, metres = ranked.candidate.location_id, ranked.candidate.distance_m
            place_distance[location] = min(metres, place_distance.get(location, metres))
    slots = [[_option(ranked, place_distance) for ranked in options] for _, options in covered]
    best = _Search(slots).run() if slots else ()
    assignments = tuple(
        PlanAssignment(
            need=need,
            candidate=option.ranked.candidate,
            rank=option.ranked.rank,
            score=option.ranked.score,
            beyond_limit=option.ranked.beyond_limit,
        )
        for (need, _), option in zip(covered, best, strict=True)
    )
    # As in the search: each distinct place counts once.
    places = {
        item.candidate.location_id: place_distance[item.candidate.location_id]
        for item in assignments
    }
    provider_ids = tuple(sorted({option.provider for option in best}))
    return ReferralPlan(
        assignments=assignments,
        visits=_visits(assignments),
        uncovered=uncovered,
        provider_ids=provider_ids,
        location_count=len(places),
        total_distance_m=sum(places.values()),
        total_score=round(sum(option.score_units for option in best) / _SCORE_UNITS, 6),
        summary=plan_summary(len(provider_ids), len(assignments), len(uncovered), locale),
    )
