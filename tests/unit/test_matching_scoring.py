"""Tests for referral_net.matching.scoring."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from referral_net.matching import Candidate, Need, NeedProfile
from referral_net.matching import scoring as sc
from referral_net.vocab import GUATEMALA_TZ

NOW = datetime(2026, 11, 27, 21, 0, tzinfo=GUATEMALA_TZ)
ROUTINE = Need("protection.legal_aid", "routine")
EMERGENCY = Need("protection.legal_aid", "emergency")


def cand(**overrides: Any) -> Candidate:
    """A legal-aid candidate with fields overridden."""
    fields: dict[str, Any] = {
        "service_id": "svc",
        "location_id": "loc",
        "organization_id": "org",
        "service_name": "Asesoría legal",
        "organization_name": "Organización",
        "categories": frozenset({"protection", "protection.legal_aid"}),
        "distance_m": 0.0,
    }
    fields.update(overrides)
    return Candidate(**fields)


def person(**overrides: Any) -> NeedProfile:
    """A profile with one routine legal-aid need, fields overridden."""
    fields: dict[str, Any] = {"needs": (ROUTINE,)}
    fields.update(overrides)
    return NeedProfile(**fields)


def test_weights_sum_to_one_and_match_the_named_constants() -> None:
    assert math.isclose(sum(sc.WEIGHTS.values()), 1.0)
    assert sc.WEIGHTS == {
        "distance": sc.WEIGHT_DISTANCE,
        "language": sc.WEIGHT_LANGUAGE,
        "open_now": sc.WEIGHT_OPEN_NOW,
        "capacity": sc.WEIGHT_CAPACITY,
        "lgbtiq": sc.WEIGHT_LGBTIQ,
        "verification": sc.WEIGHT_VERIFICATION,
        "accessibility": sc.WEIGHT_ACCESSIBILITY,
    }
    assert all(0 < weight < 1 for weight in sc.WEIGHTS.values())


def test_distance_decays_faster_in_an_emergency() -> None:
    far = cand(distance_m=10_000)
    assert sc.distance_component(ROUTINE, cand()) == 1.0
    assert sc.distance_component(ROUTINE, far) == pytest.approx(math.exp(-10 / 30))
    assert sc.distance_component(EMERGENCY, far) == pytest.approx(math.exp(-10 / 5))
    assert sc.distance_component(Need("x", "soon"), far) == pytest.approx(math.exp(-10 / 15))


def test_language_component_levels() -> None:
    profile = person(languages=("mam", "spa"))
    assert sc.language_component(profile, cand(languages=frozenset({"mam"}))) == 1.0
    assert sc.language_component(profile, cand(languages=frozenset({"spa"}))) == 0.8
    interpreted = cand(languages=frozenset({"eng"}), interpretation_offered=True)
    assert sc.language_component(profile, interpreted) == 0.6
    assert sc.language_component(profile, cand(languages=frozenset({"eng"}))) == 0.0
    # No languages given: neutral.
    assert sc.language_component(person(), cand()) == 1.0


def test_language_codes_compare_case_insensitively() -> None:
    profile = person(languages=("MAM",))
    assert sc.language_component(profile, cand(languages=frozenset({"Mam"}))) == 1.0


def test_lgbtiq_component() -> None:
    affirming = cand(lgbtiq_affirming=True)
    inclusive = cand(trans_inclusive=True)
    assert sc.lgbtiq_component(person(lgbtiq=True), affirming) == 1.0
    assert sc.lgbtiq_component(person(lgbtiq=True), cand()) == 0.0
    assert sc.lgbtiq_component(person(gender="trans_man"), inclusive) == 0.5
    # Neutral for a person who did not ask.
    assert sc.lgbtiq_component(person(gender="woman"), cand()) == 1.0


def test_capacity_fresh_free_full_unknown() -> None:
    fresh = NOW - timedelta(hours=0)
    assert sc.capacity_component(person(), cand(), NOW) == 0.5
    free = cand(capacity_available=3, capacity_updated=fresh)
    assert sc.capacity_component(person(), free, NOW) == 1.0
    full = cand(capacity_available=0, capacity_updated=fresh)
    assert sc.capacity_component(person(), full, NOW) == 0.0
    # Room for the person but not for her three children.
    assert sc.capacity_component(person(accompanying_children=3), free, NOW) == 0.5


def test_capacity_report_fades_to_unknown_by_72_hours() -> None:
    def value(hours: float) -> float:
        updated = NOW - timedelta(hours=hours)
        return sc.capacity_component(
            person(), cand(capacity_available=2, capacity_updated=updated), NOW
        )

    assert value(36) == pytest.approx(0.75)
    assert value(72) == 0.5
    assert value(500) == 0.5
    assert value(-5) == 1.0  # a report from a clock slightly ahead counts as fresh
    undated = cand(capacity_available=2)
    assert sc.capacity_component(person(), undated, NOW) == 0.5


def test_verification_recency() -> None:
    today = NOW.date()
    assert sc.verification_component(cand(), NOW) == 0.0
    assert sc.verification_component(cand(assured_date=today), NOW) == 1.0
    assert sc.verification_component(cand(assured_date=today - timedelta(days=180)), NOW) == 1.0
    older = cand(assured_date=today - timedelta(days=360))
    assert sc.verification_component(older, NOW) == pytest.approx(0.5)
    assert sc.verification_age_days(cand(assured_date=date(2026, 11, 7)), NOW) == 20


def test_verification_uses_the_guatemala_date() -> None:
    at = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)  # still the 27th in Guatemala
    assert sc.verification_age_days(cand(assured_date=date(2026, 11, 27)), at) == 0


def test_accessibility_share() -> None:
    profile = person(mobility_needs=("wheelchair",), sensory_needs=("sign_language",))
    assert sc.accessibility_component(person(), cand()) == 1.0
    assert sc.accessibility_component(profile, cand()) == 0.0
    half = cand(accessibility=frozenset({"wheelchair"}))
    assert sc.accessibility_component(profile, half) == 0.5


def test_score_is_the_weighted_sum_of_components() -> None:
    candidate = cand(
        distance_m=4000,
        languages=frozenset({"spa"}),
        open_now=True,
        assured_date=NOW.date(),
    )
    result = sc.score(person(languages=("spa",)), ROUTINE, candidate, NOW)
    expected = sum(sc.WEIGHTS[name] * value for name, value in result.components.items())
    assert result.total == pytest.approx(expected, abs=1e-5)
    assert set(result.components) == set(sc.WEIGHTS)


@settings(max_examples=200, deadline=None)
@given(
    distance=st.floats(min_value=0, max_value=500_000),
    available=st.none() | st.integers(min_value=-2, max_value=50),
    hours=st.none() | st.floats(min_value=-10, max_value=1000),
    days=st.none() | st.integers(min_value=-5, max_value=5000),
    languages=st.lists(st.sampled_from(["spa", "mam", "quc"]), max_size=3),
    spoken=st.frozensets(st.sampled_from(["spa", "mam", "quc", "eng"])),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans(), st.booleans()),
    urgency=st.sampled_from(["emergency", "soon", "routine"]),
)
def test_components_and_total_stay_in_unit_interval(
    distance: float,
    available: int | None,
    hours: float | None,
    days: int | None,
    languages: list[str],
    spoken: frozenset[str],
    flags: tuple[bool, bool, bool, bool, bool],
    urgency: str,
) -> None:
    lgbtiq, affirming, inclusive, interpretation, open_now = flags
    need = Need("protection.legal_aid", urgency)  # type: ignore[arg-type]
    candidate = cand(
        distance_m=distance,
        capacity_available=available,
        capacity_updated=None if hours is None else NOW - timedelta(hours=hours),
        assured_date=None if days is None else NOW.date() - timedelta(days=days),
        languages=spoken,
        lgbtiq_affirming=affirming,
        trans_inclusive=inclusive,
        interpretation_offered=interpretation,
        open_now=open_now,
    )
    result = sc.score(person(lgbtiq=lgbtiq, languages=tuple(languages)), need, candidate, NOW)
    assert 0.0 <= result.total <= 1.0
    assert all(0.0 <= value <= 1.0 for value in result.components.values())


@pytest.mark.parametrize(
    ("urgency", "break_even_km"),
    [("routine", 30 * math.log(3)), ("soon", 15 * math.log(3)), ("emergency", 5 * math.log(3))],
)
def test_own_language_outweighs_distance_as_documented(urgency: str, break_even_km: float) -> None:
    # docs/matching.md: a service in the person's only language beats a Spanish-only one next
    # door while within 30/15/5 * ln 3 km.
    need = Need("protection.legal_aid", urgency)  # type: ignore[arg-type]
    profile = person(languages=("mam",))
    next_door = cand(languages=frozenset({"spa"}))

    def mam_at(km: float) -> Candidate:
        return cand(distance_m=km * 1000, languages=frozenset({"mam"}))

    spanish = sc.score(profile, need, next_door, NOW).total
    assert sc.score(profile, need, mam_at(break_even_km - 0.2), NOW).total > spanish
    assert sc.score(profile, need, mam_at(break_even_km + 0.2), NOW).total < spanish
