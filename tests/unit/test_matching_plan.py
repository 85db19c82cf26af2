"""Tests for referral_net.matching.plan: the smallest set of providers covering every need."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from referral_net.matching import Candidate, Need, RankedCandidate, build_plan
from referral_net.matching.plan import MAX_PLAN_NEEDS


def option(
    service_id: str,
    organization_id: str,
    location_id: str,
    km: float,
    score: float = 0.5,
    rank: int = 1,
) -> RankedCandidate:
    """A ranked option; only the fields the plan reads matter."""
    candidate = Candidate(
        service_id=service_id,
        location_id=location_id,
        organization_id=organization_id,
        service_name=service_id,
        organization_name=f"Org {organization_id}",
        categories=frozenset(),
        distance_m=km * 1000,
    )
    return RankedCandidate(
        candidate=candidate,
        rank=rank,
        score=score,
        components={},
        reasons=(),
        cautions=(),
    )


def needs(count: int) -> list[Need]:
    return [Need(f"need.{index}") for index in range(count)]


def chosen(plan_options: Sequence[tuple[Need, Sequence[RankedCandidate]]]) -> list[str]:
    plan = build_plan(plan_options)
    return [assignment.candidate.service_id for assignment in plan.assignments]


def test_empty_plan() -> None:
    plan = build_plan([])
    assert plan.assignments == ()
    assert plan.provider_count == 0
    assert plan.uncovered == ()


def test_one_provider_covering_several_needs_beats_the_best_per_need() -> None:
    a, b, c = needs(3)
    plan_options = [
        (a, [option("best-a", "X", "x1", 1, 0.9), option("hub-a", "HUB", "h", 9, 0.4)]),
        (b, [option("best-b", "Y", "y1", 1, 0.9), option("hub-b", "HUB", "h", 9, 0.4)]),
        (c, [option("hub-c", "HUB", "h", 9, 0.4)]),
    ]
    plan = build_plan(plan_options)
    assert [item.candidate.service_id for item in plan.assignments] == ["hub-a", "hub-b", "hub-c"]
    assert plan.provider_ids == ("HUB",)
    assert plan.location_count == 1
    assert plan.total_distance_m == 9000
    assert len(plan.visits) == 1
    assert plan.visits[0].need_codes == ("need.0", "need.1", "need.2")


def test_fewer_locations_break_provider_ties() -> None:
    a, b = needs(2)
    plan_options = [
        (a, [option("a-north", "ORG", "north", 2), option("a-south", "ORG", "south", 5)]),
        (b, [option("b-south", "ORG", "south", 5)]),
    ]
    assert chosen(plan_options) == ["a-south", "b-south"]


def test_total_distance_breaks_location_ties() -> None:
    a, b = needs(2)
    plan_options = [
        (a, [option("a1", "P", "p1", 8), option("a2", "Q", "q1", 3)]),
        (b, [option("b1", "P", "p2", 4), option("b2", "Q", "q2", 3)]),
    ]
    assert chosen(plan_options) == ["a2", "b2"]


def test_a_place_reported_at_several_distances_counts_at_the_smallest() -> None:
    a, b = needs(2)
    plan = build_plan(
        [
            (a, [option("a1", "P", "same", 2), option("a2", "Q", "q", 1)]),
            (b, [option("b1", "P", "same", 1)]),
        ]
    )
    assert [item.candidate.service_id for item in plan.assignments] == ["a1", "b1"]
    assert plan.total_distance_m == 1000


def test_total_distance_counts_each_place_once() -> None:
    a, b = needs(2)
    plan = build_plan([(a, [option("a1", "P", "same", 4)]), (b, [option("b1", "Q", "same", 4)])])
    assert plan.location_count == 1
    assert plan.total_distance_m == 4000
    assert len(plan.visits) == 2  # two providers at one address are two visits


def test_score_then_ids_break_the_remaining_ties() -> None:
    (a,) = needs(1)
    assert chosen([(a, [option("s1", "P", "p", 3, 0.5), option("s2", "Q", "q", 3, 0.7)])]) == ["s2"]
    assert chosen([(a, [option("s2", "P", "p", 3, 0.5), option("s1", "P", "p", 3, 0.5)])]) == ["s1"]


def test_needs_without_options_are_uncovered() -> None:
    a, b = needs(2)
    plan = build_plan([(a, [option("s1", "P", "p", 1)]), (b, [])])
    assert plan.uncovered == (b,)
    assert [item.need for item in plan.assignments] == [a]
    assert "sin servicio elegible" in plan.summary


def test_only_the_top_k_options_are_considered() -> None:
    a, b = needs(2)
    shared = option("a-shared", "P", "p", 1)
    plan_options = [
        (a, [option("a1", "X", "x", 1), option("a2", "Y", "y", 1), shared]),
        (b, [option("b1", "P", "p", 1)]),
    ]
    assert chosen(plan_options) == ["a-shared", "b1"]
    plan = build_plan(plan_options, top_k=2)
    assert [item.candidate.service_id for item in plan.assignments] == ["a1", "b1"]


def test_more_than_eight_needs_is_rejected() -> None:
    plan_options = [(need, [option("s", "P", "p", 1)]) for need in needs(MAX_PLAN_NEEDS + 1)]
    with pytest.raises(ValueError, match="at most 8"):
        build_plan(plan_options)
    with pytest.raises(ValueError, match="top_k"):
        build_plan([], top_k=0)


def test_eight_needs_with_five_options_each_is_fast_and_exact() -> None:
    # Worst case for the search: every option a different provider at a different place.
    plan_options = [
        (
            need,
            [
                option(f"s{index}-{choice}", f"P{index}-{choice}", f"L{index}-{choice}", choice + 1)
                for choice in range(5)
            ],
        )
        for index, need in enumerate(needs(8))
    ]
    plan = build_plan(plan_options)
    assert plan.provider_count == 8
    assert [item.candidate.service_id for item in plan.assignments] == [
        f"s{index}-0" for index in range(8)
    ]


def test_visits_are_ordered_most_urgent_first() -> None:
    plan = build_plan(
        [
            (Need("legal", "routine"), [option("l", "L", "l", 1)]),
            (Need("shelter", "emergency"), [option("s", "S", "s", 20)]),
        ]
    )
    assert [visit.organization_id for visit in plan.visits] == ["S", "L"]


# --- exactness against brute force ----------------------------------------------------------------


def brute_force(
    plan_options: Sequence[tuple[Need, Sequence[RankedCandidate]]],
) -> list[str]:
    """The documented order, evaluated over every combination (independent of the search)."""
    slots = [options for _, options in plan_options if options]

    def key(combo: tuple[RankedCandidate, ...]) -> tuple[object, ...]:
        places: dict[str, int] = {}
        for item in combo:
            places.setdefault(item.candidate.location_id, round(item.candidate.distance_m))
        return (
            len({item.candidate.organization_id for item in combo}),
            len(places),
            sum(places.values()),
            -sum(round(item.score * 1_000_000) for item in combo),
            tuple(
                (
                    item.candidate.organization_id,
                    item.candidate.service_id,
                    item.candidate.location_id,
                )
                for item in combo
            ),
        )

    best = min(itertools.product(*slots), key=key)
    return [item.candidate.service_id for item in best]


@st.composite
def plan_inputs(draw: st.DrawFn) -> list[tuple[Need, list[RankedCandidate]]]:
    count = draw(st.integers(min_value=1, max_value=5))
    result = []
    for index, need in enumerate(needs(count)):
        size = draw(st.integers(min_value=0, max_value=4))
        options = []
        for choice in range(size):
            organization = draw(st.sampled_from(["A", "B", "C", "D"]))
            location = draw(st.sampled_from(["1", "2", "3"]))
            score = draw(st.sampled_from([0.2, 0.5, 0.8]))
            # A place has one distance from the person.
            km = {"1": 1.0, "2": 4.0, "3": 2.0}[location] + {"A": 0.0, "B": 0.5}.get(
                organization, 3
            )
            options.append(
                option(f"s{index}-{choice}", organization, f"{organization}{location}", km, score)
            )
        result.append((need, options))
    return result


@settings(max_examples=300, deadline=None)
@given(plan_inputs())
def test_branch_and_bound_matches_brute_force(
    plan_options: list[tuple[Need, list[RankedCandidate]]],
) -> None:
    if not any(options for _, options in plan_options):
        assert build_plan(plan_options).assignments == ()
        return
    assert chosen(plan_options) == brute_force(plan_options)
