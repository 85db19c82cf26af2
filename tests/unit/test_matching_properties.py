"""Property tests: whatever the input, no proposed service breaks a hard rule.

The rules are re-stated here independently of ``matching.eligibility`` (written from the brief and
docs/matching.md, not by calling the code under test), so a slip in either shows up as a failure.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from referral_net.matching import Candidate, MatchResult, Need, NeedProfile, match
from referral_net.vocab import GUATEMALA_TZ

NOW = datetime(2026, 11, 27, 21, 0, tzinfo=GUATEMALA_TZ)
CODES = ("protection.shelter", "protection.legal_aid", "protection.health.medical")
SERVED_GENDERS = ("woman", "man", "trans_woman", "trans_man", "non_binary")
PERSON_GENDERS = (*SERVED_GENDERS, "undisclosed")
LANGUAGES = ("spa", "mam", "quc", "kek")
EDGE_AGES = (0, 12, 16, 17, 18, 19, 25, 130)


def violates_hard_rule(  # noqa: C901, PLR0911, PLR0912 - a flat oracle, one return per rule
    profile: NeedProfile, need: Need, c: Candidate, minor: bool | None
) -> str:
    """The rule the candidate breaks for this person and need ("" if none); independent code."""
    if need.code not in c.categories:
        return "category"
    if c.status != "active":
        return "status"
    age = profile.age
    if age is not None:
        if c.minimum_age is not None and age < c.minimum_age:
            return "minimum age"
        if c.maximum_age is not None and age > c.maximum_age:
            return "maximum age"
    elif minor is True:
        if c.minimum_age is not None and c.minimum_age >= 18:
            return "adult service for a minor"
    elif minor is False and c.maximum_age is not None and c.maximum_age < 18:
        return "child service for an adult"
    if c.minors_only and minor is not True:
        return "minors only"
    if c.genders_served is not None:
        g = profile.gender
        allowed = g in c.genders_served
        inclusive = c.trans_inclusive or c.lgbtiq_affirming
        if g == "trans_woman" and "woman" in c.genders_served and inclusive:
            allowed = True
        if g == "trans_man" and "man" in c.genders_served and inclusive:
            allowed = True
        if not allowed:
            return "gender"
    if profile.accompanying_children >= 1 and not c.accepts_accompanying_children:
        return "children"
    open_required = need.urgency == "emergency" or profile.open_now_only
    if open_required and not c.open_now and not c.open_24h:
        return "closed"
    tracked = c.capacity_available is not None
    if need.urgency == "emergency" and tracked and (c.capacity_available or 0) < 1:
        return "full"
    return ""


@st.composite
def profiles(draw: st.DrawFn) -> tuple[NeedProfile, bool | None]:
    """A profile and, independently worked out, whether the person is a minor."""
    codes = draw(st.lists(st.sampled_from(CODES), min_size=1, max_size=3, unique=True))
    needs = tuple(
        Need(code, draw(st.sampled_from(["emergency", "soon", "routine"]))) for code in codes
    )
    # Ages around the adult edge (17/18) are drawn often, not left to chance.
    age = draw(st.none() | st.sampled_from(EDGE_AGES) | st.integers(min_value=0, max_value=90))
    is_minor = None if age is not None else draw(st.none() | st.booleans())
    minor = (age < 18) if age is not None else is_minor
    profile = NeedProfile(
        needs=needs,
        age=age,
        is_minor=is_minor,
        gender=draw(st.none() | st.sampled_from(PERSON_GENDERS)),
        lgbtiq=draw(st.booleans()),
        languages=tuple(draw(st.lists(st.sampled_from(LANGUAGES), max_size=2, unique=True))),
        accompanying_children=draw(st.sampled_from([0, 0, 0, 1, 3])),
        mobility_needs=tuple(draw(st.lists(st.sampled_from(["wheelchair"]), max_size=1))),
        max_distance_km=draw(st.none() | st.sampled_from([5.0, 20.0, 50.0])),
        open_now_only=draw(st.sampled_from([False, False, True])),
        locale=draw(st.sampled_from(["es", "en"])),
    )
    return profile, minor


@st.composite
def candidates(draw: st.DrawFn, code: str, index: int) -> Candidate:
    """A random candidate, usually (not always) in the need's category."""
    # Service age limits at and around the adult edge: a minimum of 17 or 18 and a maximum of 17
    # or 18 decide whether a minor (0-17) or an adult (18+) of unknown age may go.
    low = draw(st.none() | st.sampled_from(EDGE_AGES))
    high = draw(st.none() | st.sampled_from([a for a in EDGE_AGES if low is None or a >= low]))
    ages = (low, high)
    updated_hours = draw(st.none() | st.integers(min_value=0, max_value=200))
    return Candidate(
        service_id=f"{code}-{index}",
        location_id=draw(st.sampled_from(["L1", "L2", "L3", f"L-{code}-{index}"])),
        organization_id=draw(st.sampled_from(["A", "B", "C", "D"])),
        service_name="servicio",
        organization_name="organización",
        # Mostly in the need's category, sometimes not (the caller may pass a wrong one).
        categories=draw(
            st.sampled_from(
                [frozenset({code}), frozenset({code, "protection"}), frozenset({code}), frozenset()]
            )
        ),
        distance_m=draw(st.floats(min_value=0, max_value=120_000)),
        languages=frozenset(draw(st.lists(st.sampled_from(LANGUAGES), max_size=2))),
        interpretation_offered=draw(st.booleans()),
        minimum_age=ages[0],
        maximum_age=ages[1],
        genders_served=draw(
            st.one_of(
                st.none(),
                st.none(),
                st.frozensets(st.sampled_from(SERVED_GENDERS), min_size=1, max_size=2),
            )
        ),
        trans_inclusive=draw(st.booleans()),
        lgbtiq_affirming=draw(st.booleans()),
        minors_only=draw(st.sampled_from([False, False, False, True])),
        accepts_accompanying_children=draw(st.sampled_from([True, True, False])),
        status=draw(st.sampled_from(["active", "active", "active", "inactive"])),
        open_now=draw(st.booleans()),
        open_24h=draw(st.booleans()),
        capacity_available=draw(st.none() | st.integers(min_value=0, max_value=3)),
        capacity_updated=None if updated_hours is None else NOW - timedelta(hours=updated_hours),
        assured_date=draw(st.none() | st.dates(date(2024, 1, 1), date(2026, 11, 27))),
        accessibility=frozenset(draw(st.lists(st.sampled_from(["wheelchair"]), max_size=1))),
    )


@st.composite
def situations(
    draw: st.DrawFn,
) -> tuple[NeedProfile, bool | None, dict[str, list[Candidate]]]:
    profile, minor = draw(profiles())
    by_need = {
        need.code: [
            draw(candidates(need.code, index))
            for index in range(draw(st.integers(min_value=0, max_value=7)))
        ]
        for need in profile.needs
    }
    return profile, minor, by_need


def proposals(result: MatchResult) -> list[tuple[Need, Candidate]]:
    """Every (need, candidate) the result proposes: rankings and plan."""
    found = [(item.need, ranked.candidate) for item in result.needs for ranked in item.ranked]
    found += [(item.need, item.candidate) for item in result.plan.assignments]
    return found


@settings(max_examples=300, deadline=None)
@given(situations())
def test_no_proposal_ever_breaks_a_hard_rule(
    situation: tuple[NeedProfile, bool | None, dict[str, list[Candidate]]],
) -> None:
    profile, minor, by_need = situation
    result = match(profile, by_need, now=NOW)
    for need, candidate in proposals(result):
        assert violates_hard_rule(profile, need, candidate, minor) == "", candidate


@settings(max_examples=200, deadline=None)
@given(situations())
def test_accounting_and_coverage_are_consistent(
    situation: tuple[NeedProfile, bool | None, dict[str, list[Candidate]]],
) -> None:
    profile, minor, by_need = situation
    result = match(profile, by_need, now=NOW)
    for item in result.needs:
        given_count = len(by_need[item.need.code])
        eligible = [
            c
            for c in by_need[item.need.code]
            if not violates_hard_rule(profile, item.need, c, minor)
        ]
        # Every candidate is either eligible or counted under exactly one exclusion reason.
        assert item.eligible_count == len(eligible)
        assert item.eligible_count + item.excluded_total == given_count
        # Never an empty success: no proposals only when nothing is eligible, with a message.
        assert bool(item.ranked) == bool(eligible)
        if not item.ranked:
            assert item.status == "none_eligible"
            assert item.message
        # Within range whenever anything eligible is in range.
        if profile.max_distance_km is not None and item.status == "in_range":
            limit = profile.max_distance_km * 1000
            assert all(r.candidate.distance_m <= limit for r in item.ranked)
        # Rankings are sorted by score, then distance, then ids.
        keys = [
            (-r.score, r.candidate.distance_m, r.candidate.service_id, r.candidate.location_id)
            for r in item.ranked
        ]
        assert keys == sorted(keys)
    planned = {assignment.need.code for assignment in result.plan.assignments}
    with_options = {item.need.code for item in result.needs if item.ranked}
    assert planned == with_options
    assert {need.code for need in result.plan.uncovered} == {
        item.need.code for item in result.needs if not item.ranked
    }


@settings(max_examples=200, deadline=None)
@given(situations(), st.randoms(use_true_random=False))
def test_candidate_order_never_changes_the_result(
    situation: tuple[NeedProfile, bool | None, dict[str, list[Candidate]]],
    shuffler: random.Random,
) -> None:
    profile, _, by_need = situation
    shuffled = {code: shuffler.sample(items, len(items)) for code, items in by_need.items()}
    assert match(profile, shuffled, now=NOW) == match(profile, by_need, now=NOW)
