"""Tests for referral_net.matching.eligibility and the profile/candidate checks in model."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from referral_net.matching import Candidate, ExclusionReason, Need, NeedProfile
from referral_net.matching.eligibility import (
    age_bounds,
    first_exclusion,
    gender_served,
    is_eligible,
)
from referral_net.vocab import Gender

SHELTER = Need("protection.shelter", "soon")
EMERGENCY = Need("protection.shelter", "emergency")


def cand(**overrides: Any) -> Candidate:
    """A shelter candidate that anyone may use, with fields overridden."""
    fields: dict[str, Any] = {
        "service_id": "svc",
        "location_id": "loc",
        "organization_id": "org",
        "service_name": "Albergue",
        "organization_name": "Organización",
        "categories": frozenset({"protection", "protection.shelter"}),
        "distance_m": 1000.0,
    }
    fields.update(overrides)
    return Candidate(**fields)


def person(**overrides: Any) -> NeedProfile:
    """A profile with one shelter need, fields overridden."""
    fields: dict[str, Any] = {"needs": (SHELTER,)}
    fields.update(overrides)
    return NeedProfile(**fields)


def reason(profile: NeedProfile, candidate: Candidate, need: Need = SHELTER) -> str | None:
    found = first_exclusion(profile, need, candidate)
    return None if found is None else found.value


# --- model checks -------------------------------------------------------------------------------


def test_is_minor_is_derived_from_age() -> None:
    assert person(age=16).is_minor is True
    assert person(age=18).is_minor is False
    assert person().is_minor is None
    assert person(is_minor=True).is_minor is True


def test_contradicting_is_minor_is_rejected() -> None:
    with pytest.raises(ValueError, match="contradicts"):
        person(age=30, is_minor=True)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"needs": ()}, "at least one need"),
        ({"needs": (SHELTER, EMERGENCY)}, "only once"),
        ({"age": -1}, "age"),
        ({"gender": "female"}, "gender"),
        ({"locale": "fr"}, "locale"),
        ({"accompanying_children": -1}, "children"),
        ({"max_distance_km": 0.0}, "max_distance_km"),
        ({"max_distance_km": float("nan")}, "max_distance_km"),
    ],
)
def test_invalid_profiles_are_rejected(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        person(**overrides)


def test_need_checks() -> None:
    with pytest.raises(ValueError, match="empty"):
        Need(" ")
    with pytest.raises(ValueError, match="urgency"):
        Need("protection.shelter", "now")  # type: ignore[arg-type]


def test_profile_languages_are_normalised_keeping_preference() -> None:
    assert person(languages=("MAM", "spa", "mam")).languages == ("mam", "spa")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"distance_m": -1.0}, "distance_m"),
        ({"distance_m": float("inf")}, "distance_m"),
        ({"genders_served": frozenset({"female"})}, "genders_served"),
        ({"genders_served": frozenset({"undisclosed"})}, "genders_served"),
        ({"capacity_updated": datetime(2026, 1, 1)}, "timezone-aware"),
    ],
)
def test_invalid_candidates_are_rejected(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cand(**overrides)


# --- rules --------------------------------------------------------------------------------------


def test_open_candidate_is_eligible() -> None:
    assert reason(person(), cand()) is None


def test_need_must_be_in_categories() -> None:
    legal = Need("protection.legal_aid")
    assert reason(person(needs=(legal,)), cand(), legal) == "need_not_served"


def test_inactive_service_is_excluded() -> None:
    assert reason(person(), cand(status="inactive")) == "inactive"
    assert reason(person(), cand(status="defunct")) == "inactive"


def test_age_range_with_known_age() -> None:
    adolescents = cand(minimum_age=12, maximum_age=17)
    assert reason(person(age=11), adolescents) == "below_minimum_age"
    assert reason(person(age=12), adolescents) is None
    assert reason(person(age=17), adolescents) is None
    assert reason(person(age=18), adolescents) == "above_maximum_age"


def test_age_range_with_only_is_minor_known() -> None:
    adults = cand(minimum_age=18)
    children = cand(maximum_age=12)
    adolescents = cand(minimum_age=12, maximum_age=17)
    assert reason(person(is_minor=True), adults) == "below_minimum_age"
    assert reason(person(is_minor=True), children) is None
    assert reason(person(is_minor=True), adolescents) is None
    assert reason(person(is_minor=False), adults) is None
    assert reason(person(is_minor=False), adolescents) == "above_maximum_age"
    assert reason(person(is_minor=False), cand(minimum_age=16, maximum_age=25)) is None


def test_age_range_is_not_checked_when_age_is_unknown() -> None:
    assert age_bounds(person()) is None
    assert reason(person(), cand(minimum_age=18)) is None
    assert reason(person(), cand(maximum_age=17)) is None


def test_minors_only_needs_a_known_minor() -> None:
    minors = cand(minors_only=True)
    assert reason(person(age=16), minors) is None
    assert reason(person(is_minor=True), minors) is None
    assert reason(person(age=18), minors) == "minors_only"
    assert reason(person(), minors) == "minors_only"


WOMEN_ONLY = frozenset({"woman"})
MEN_ONLY = frozenset({"man"})


@pytest.mark.parametrize(
    ("gender", "served", "trans_inclusive", "affirming", "expected"),
    [
        # Open to all: everyone, including undisclosed and unknown.
        ("woman", None, False, False, True),
        ("undisclosed", None, False, False, True),
        (None, None, False, False, True),
        # Listed genders pass.
        ("woman", WOMEN_ONLY, False, False, True),
        ("man", WOMEN_ONLY, False, False, False),
        ("man", MEN_ONLY, False, False, True),
        # Trans women at women-only services: only when trans-inclusive or affirming.
        ("trans_woman", WOMEN_ONLY, False, False, False),
        ("trans_woman", WOMEN_ONLY, True, False, True),
        ("trans_woman", WOMEN_ONLY, False, True, True),
        ("trans_woman", MEN_ONLY, True, True, False),
        ("trans_woman", frozenset({"trans_woman"}), False, False, True),
        # Trans men likewise at men-only services.
        ("trans_man", MEN_ONLY, False, False, False),
        ("trans_man", MEN_ONLY, True, False, True),
        ("trans_man", WOMEN_ONLY, True, True, False),
        # Non-binary people: only where listed or open to all.
        ("non_binary", WOMEN_ONLY, True, True, False),
        ("non_binary", frozenset({"woman", "non_binary"}), False, False, True),
        # Undisclosed or unknown gender: nothing shows they qualify for a restricted service.
        ("undisclosed", frozenset({"woman", "non_binary"}), True, True, False),
        (None, WOMEN_ONLY, True, True, False),
        # A cis woman does not pass a trans-women-only service.
        ("woman", frozenset({"trans_woman"}), False, False, False),
    ],
)
def test_gender_rules(
    gender: Gender | None,
    served: frozenset[str] | None,
    trans_inclusive: bool,
    affirming: bool,
    expected: bool,
) -> None:
    candidate = cand(
        genders_served=served, trans_inclusive=trans_inclusive, lgbtiq_affirming=affirming
    )
    profile = person(gender=gender)
    assert gender_served(profile, candidate) is expected
    assert (reason(profile, candidate) is None) is expected


def test_accompanying_children_need_acceptance() -> None:
    assert reason(person(accompanying_children=2), cand()) == "children_not_accepted"
    assert reason(person(accompanying_children=2), cand(accepts_accompanying_children=True)) is None
    assert reason(person(accompanying_children=0), cand()) is None


def test_emergency_needs_open_now_or_24h() -> None:
    profile = person(needs=(EMERGENCY,))
    assert reason(profile, cand(), EMERGENCY) == "not_open_now"
    assert reason(profile, cand(open_now=True), EMERGENCY) is None
    assert reason(profile, cand(open_24h=True), EMERGENCY) is None
    # Routine needs do not require the service to be open right now.
    assert reason(person(), cand()) is None


def test_emergency_needs_free_capacity_where_tracked() -> None:
    profile = person(needs=(EMERGENCY,))
    assert reason(profile, cand(open_24h=True, capacity_available=0), EMERGENCY) == "no_capacity"
    assert reason(profile, cand(open_24h=True, capacity_available=1), EMERGENCY) is None
    assert reason(profile, cand(open_24h=True, capacity_available=None), EMERGENCY) is None
    # Outside emergencies a full service is still proposed (the caution shows it is full).
    assert reason(person(), cand(capacity_available=0)) is None


def test_open_now_only_limits_every_need() -> None:
    profile = person(open_now_only=True)
    assert reason(profile, cand()) == "not_open_now"
    assert reason(profile, cand(open_now=True)) is None


def test_first_failing_rule_is_reported_in_declared_order() -> None:
    everything_wrong = cand(
        status="inactive",
        minimum_age=18,
        minors_only=True,
        genders_served=MEN_ONLY,
        capacity_available=0,
    )
    profile = person(needs=(EMERGENCY,), age=10, gender="woman", accompanying_children=1)
    assert first_exclusion(profile, EMERGENCY, everything_wrong) is ExclusionReason.INACTIVE
    assert [member.value for member in ExclusionReason] == [
        "need_not_served",
        "inactive",
        "below_minimum_age",
        "above_maximum_age",
        "minors_only",
        "gender_not_served",
        "children_not_accepted",
        "not_open_now",
        "no_capacity",
    ]


def test_migrant_status_never_excludes() -> None:
    assert reason(person(migrant=True), cand()) is None
    assert reason(person(migrant=False), cand()) is None


# --- boundaries a mutation run showed untested (issue 10) ---------------------------------------


def test_age_bounds_are_exact_for_each_kind_of_knowledge() -> None:
    assert age_bounds(person(age=0)) == (0, 0)
    assert age_bounds(person(age=17)) == (17, 17)
    assert age_bounds(person(is_minor=True)) == (0, 17)
    assert age_bounds(person(is_minor=False)) == (18, 130)


def test_minimum_age_17_admits_a_minor_of_unknown_age() -> None:
    # A minor may be 17, so a service for 17 and over cannot rule them out.
    assert reason(person(is_minor=True), cand(minimum_age=17)) is None
    assert reason(person(is_minor=True), cand(minimum_age=18)) == "below_minimum_age"
    assert reason(person(age=16), cand(minimum_age=17)) == "below_minimum_age"
    assert reason(person(age=17), cand(minimum_age=17)) is None


def test_a_minor_of_unknown_age_may_be_a_newborn() -> None:
    assert reason(person(is_minor=True), cand(maximum_age=0)) is None
    assert reason(person(is_minor=False), cand(maximum_age=0)) == "above_maximum_age"


def test_maximum_age_18_admits_an_adult_of_unknown_age() -> None:
    # An adult may be exactly 18, so a service up to 18 cannot rule them out.
    assert reason(person(is_minor=False), cand(maximum_age=18)) is None
    assert reason(person(is_minor=False), cand(maximum_age=17)) == "above_maximum_age"
    assert reason(person(age=18), cand(maximum_age=18)) is None
    assert reason(person(age=19), cand(maximum_age=18)) == "above_maximum_age"


def test_the_oldest_possible_adult_meets_any_minimum_age_up_to_the_maximum() -> None:
    assert reason(person(is_minor=False), cand(minimum_age=130)) is None
    assert reason(person(age=130), cand(minimum_age=130, maximum_age=130)) is None


@pytest.mark.parametrize(
    "gender", [None, "woman", "man", "trans_woman", "non_binary", "undisclosed"]
)
def test_an_empty_genders_served_list_serves_nobody(gender: Gender | None) -> None:
    # None means "all genders"; an empty list is a (strange) rule that admits no one, and is not
    # read as "all", which would be the unsafe direction.
    nobody = cand(genders_served=frozenset(), trans_inclusive=True, lgbtiq_affirming=True)
    profile = person(gender=gender)
    assert gender_served(profile, nobody) is False
    assert reason(profile, nobody) == "gender_not_served"


@pytest.mark.parametrize(
    ("need_code", "categories"),
    [
        ("protection.legal", {"protection.legal_aid"}),
        ("protection.legal_aid", {"protection.legal"}),
        ("protection.shelter.women", {"protection", "protection.shelter"}),
        ("protection.shelte", {"protection.shelter"}),
    ],
)
def test_a_category_code_that_is_a_text_prefix_of_another_does_not_match(
    need_code: str, categories: set[str]
) -> None:
    need = Need(need_code)
    candidate = cand(categories=frozenset(categories))
    assert reason(person(needs=(need,)), candidate, need) == "need_not_served"


def test_one_accompanying_child_needs_acceptance() -> None:
    assert reason(person(accompanying_children=1), cand()) == "children_not_accepted"
    assert reason(person(accompanying_children=1), cand(accepts_accompanying_children=True)) is None


def test_trans_inclusion_alone_or_affirmation_alone_is_enough() -> None:
    profile = person(gender="trans_man")
    assert reason(profile, cand(genders_served=MEN_ONLY, trans_inclusive=True)) is None
    assert reason(profile, cand(genders_served=MEN_ONLY, lgbtiq_affirming=True)) is None
    assert reason(profile, cand(genders_served=MEN_ONLY)) == "gender_not_served"


def test_is_eligible_agrees_with_first_exclusion() -> None:
    assert is_eligible(person(), SHELTER, cand()) is True
    assert is_eligible(person(), SHELTER, cand(status="inactive")) is False
    assert is_eligible(person(age=10), SHELTER, cand(minimum_age=18)) is False
