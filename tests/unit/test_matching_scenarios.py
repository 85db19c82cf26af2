"""End-to-end tests of ``match`` on hand-built situations whose right answer is known."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from referral_net.matching import (
    Candidate,
    ExclusionReason,
    MatchResult,
    Need,
    NeedProfile,
    match,
)
from referral_net.vocab import GUATEMALA_TZ

# Friday night in Quetzaltenango.
NOW = datetime(2026, 11, 27, 21, 0, tzinfo=GUATEMALA_TZ)
VERIFIED = date(2026, 11, 7)

SHELTER = "protection.shelter"
SHELTER_CODES = frozenset({"protection", SHELTER})
WOMEN_SHELTER = SHELTER_CODES | {"protection.shelter.women"}
ADOLESCENT_SHELTER = SHELTER_CODES | {"protection.shelter.children_adolescents"}
MEDICAL = "protection.health.medical"
PSYCHOSOCIAL = "protection.health.mental_psychosocial"
LEGAL = "protection.legal_aid"
INTERPRETATION = "protection.interpretation"
HEALTH_CODES = frozenset({"protection", "protection.health"})


def cand(service_id: str, km: float, categories: frozenset[str], **overrides: Any) -> Candidate:
    """A candidate named after its service, its own organization and place unless overridden."""
    fields: dict[str, Any] = {
        "service_id": service_id,
        "location_id": f"loc-{service_id}",
        "organization_id": f"org-{service_id}",
        "service_name": service_id.replace("-", " ").title(),
        "organization_name": f"Organización {service_id}",
        "categories": categories,
        "distance_m": km * 1000,
        "languages": frozenset({"spa"}),
        "assured_date": VERIFIED,
    }
    fields.update(overrides)
    fields["organization_name"] = f"Organización {fields['organization_id']}"
    return Candidate(**fields)


def ids(result: MatchResult, need_index: int = 0) -> list[str]:
    return [item.candidate.service_id for item in result.needs[need_index].ranked]


# --- a trans woman needing shelter --------------------------------------------------------------


def test_trans_woman_is_not_sent_to_a_non_affirming_women_only_shelter() -> None:
    profile = NeedProfile(needs=(Need(SHELTER, "soon"),), age=24, gender="trans_woman")
    near = cand("refugio-mujeres", 2, WOMEN_SHELTER, genders_served=frozenset({"woman"}))
    affirming = cand(
        "casa-diversa",
        15,
        WOMEN_SHELTER,
        genders_served=frozenset({"woman"}),
        lgbtiq_affirming=True,
    )
    result = match(profile, {SHELTER: [near, affirming]}, now=NOW)
    need = result.needs[0]
    assert ids(result) == ["casa-diversa"]
    assert need.excluded_counts == {ExclusionReason.GENDER_NOT_SERVED: 1}
    assert need.excluded_labels == ("1 excluido: no atiende a personas de este género",)
    assert "afirmativo LGBTIQ+" in need.ranked[0].reasons
    assert need.ranked[0].components["lgbtiq"] == 1.0
    assert [item.candidate.service_id for item in result.plan.assignments] == ["casa-diversa"]


# --- a 16-year-old needing an adolescents' shelter tonight ---------------------------------------


def test_adolescent_in_an_emergency_gets_the_adolescent_shelter_not_the_nearer_adult_one() -> None:
    profile = NeedProfile(needs=(Need(SHELTER, "emergency"),), age=16, gender="woman")
    adult = cand("albergue-adultos", 3, SHELTER_CODES, minimum_age=18, open_24h=True)
    closed_teen = cand(
        "hogar-cerrado", 8, ADOLESCENT_SHELTER, minors_only=True, minimum_age=12, maximum_age=17
    )
    teen = cand(
        "hogar-adolescentes",
        20,
        ADOLESCENT_SHELTER,
        minors_only=True,
        minimum_age=12,
        maximum_age=17,
        open_24h=True,
        capacity_available=2,
        capacity_maximum=12,
        capacity_updated=NOW - timedelta(hours=3),
    )
    result = match(profile, {SHELTER: [adult, closed_teen, teen]}, now=NOW)
    need = result.needs[0]
    assert ids(result) == ["hogar-adolescentes"]
    assert need.excluded_counts == {
        ExclusionReason.BELOW_MINIMUM_AGE: 1,
        ExclusionReason.NOT_OPEN_NOW: 1,
    }
    assert need.ranked[0].reasons == (
        "a 20 km",
        "abierto 24 h",
        "2 camas libres (actualizado hace 3 h)",
        "verificado hace 20 días",
    )
    assert result.plan.provider_ids == ("org-hogar-adolescentes",)


def test_adult_is_not_sent_to_a_minors_only_shelter() -> None:
    profile = NeedProfile(needs=(Need(SHELTER),), age=19, locale="en")
    teen = cand("hogar", 1, ADOLESCENT_SHELTER, minors_only=True)
    result = match(profile, {SHELTER: [teen]}, now=NOW)
    assert result.needs[0].excluded_labels == ("1 excluded: serves minors only",)
    assert result.needs[0].status == "none_eligible"


# --- a Mam speaker ------------------------------------------------------------------------------


@pytest.mark.parametrize("urgency", ["emergency", "soon", "routine"])
def test_mam_speaking_service_further_away_outranks_spanish_only(urgency: str) -> None:
    profile = NeedProfile(needs=(Need(LEGAL, urgency),), languages=("mam",), age=35)  # type: ignore[arg-type]
    spanish = cand("bufete-centro", 5, frozenset({"protection", LEGAL}), open_now=True)
    mam = cand(
        "defensoria-mam",
        15,
        frozenset({"protection", LEGAL}),
        languages=frozenset({"mam", "spa"}),
        open_now=True,
    )
    result = match(profile, {LEGAL: [spanish, mam]}, now=NOW)
    assert ids(result) == ["defensoria-mam", "bufete-centro"]
    top, second = result.needs[0].ranked
    assert "habla mam" in top.reasons
    assert "no habla mam ni ofrece interpretación" in second.cautions
    assert top.components["distance"] < second.components["distance"]


def test_mam_reason_in_english() -> None:
    profile = NeedProfile(needs=(Need(LEGAL),), languages=("mam",), locale="en", age=35)
    mam = cand("defensoria-mam", 15, frozenset({LEGAL}), languages=frozenset({"mam"}))
    result = match(profile, {LEGAL: [mam]}, now=NOW)
    assert "speaks Mam" in result.needs[0].ranked[0].reasons
    assert "15 km away" in result.needs[0].ranked[0].reasons


# --- an emergency where the nearest shelter is full -----------------------------------------------


def test_full_nearest_shelter_is_excluded_in_an_emergency() -> None:
    profile = NeedProfile(needs=(Need(SHELTER, "emergency"),), age=30, gender="woman")
    full = cand(
        "albergue-lleno",
        1,
        SHELTER_CODES,
        open_24h=True,
        capacity_available=0,
        capacity_updated=NOW - timedelta(hours=1),
    )
    free = cand(
        "albergue-libre",
        8,
        SHELTER_CODES,
        open_24h=True,
        capacity_available=3,
        capacity_updated=NOW - timedelta(hours=2),
    )
    untracked = cand("albergue-municipal", 12, SHELTER_CODES, open_now=True)
    result = match(profile, {SHELTER: [full, free, untracked]}, now=NOW)
    assert ids(result) == ["albergue-libre", "albergue-municipal"]
    assert result.needs[0].excluded_counts == {ExclusionReason.NO_CAPACITY: 1}
    assert result.needs[0].excluded_labels == ("1 excluido: sin cupo disponible",)
    assert result.plan.assignments[0].candidate.service_id == "albergue-libre"


def test_full_shelter_is_still_shown_for_a_routine_need_with_a_caution() -> None:
    profile = NeedProfile(needs=(Need(SHELTER),), age=30)
    full = cand(
        "albergue-lleno",
        1,
        SHELTER_CODES,
        capacity_available=0,
        capacity_updated=NOW - timedelta(hours=1),
    )
    result = match(profile, {SHELTER: [full]}, now=NOW)
    assert "sin camas libres (actualizado hace 1 h)" in result.needs[0].ranked[0].cautions


# --- nothing in range ---------------------------------------------------------------------------


def test_nothing_in_range_returns_the_nearest_beyond_the_limit_with_a_message() -> None:
    profile = NeedProfile(needs=(Need(LEGAL),), age=30, max_distance_km=20)
    inactive_near = cand("cerrado", 5, frozenset({LEGAL}), status="inactive")
    far = cand("lejano", 34, frozenset({LEGAL}))
    farther = cand("muy-lejano", 50, frozenset({LEGAL}))
    result = match(profile, {LEGAL: [farther, inactive_near, far]}, now=NOW)
    need = result.needs[0]
    assert need.status == "beyond_limit"
    assert ids(result) == ["lejano", "muy-lejano"]
    assert all(item.beyond_limit for item in need.ranked)
    assert need.message is not None
    assert "20 km" in need.message
    assert "a 34 km" in need.message
    assert "fuera del límite de 20 km" in need.ranked[0].cautions
    assert result.plan.assignments[0].beyond_limit
    assert result.plan.uncovered == ()


def test_beyond_the_limit_the_nearest_is_always_shown() -> None:
    profile = NeedProfile(needs=(Need(LEGAL),), age=30, max_distance_km=5, languages=("quc",))
    near_spanish = cand("cercano", 9, frozenset({LEGAL}))
    far_kiche = [
        cand(f"kiche-{index}", 10 + index, frozenset({LEGAL}), languages=frozenset({"quc"}))
        for index in range(3)
    ]
    result = match(profile, {LEGAL: [near_spanish, *far_kiche]}, now=NOW, top_n=2)
    assert ids(result) == ["kiche-0", "cercano"]
    assert [item.rank for item in result.needs[0].ranked] == [1, 4]


def test_in_range_results_drop_the_ones_beyond_the_limit() -> None:
    profile = NeedProfile(needs=(Need(LEGAL),), age=30, max_distance_km=20)
    near = cand("cercano", 10, frozenset({LEGAL}))
    far = cand("lejano", 30, frozenset({LEGAL}))
    result = match(profile, {LEGAL: [near, far]}, now=NOW)
    assert result.needs[0].status == "in_range"
    assert ids(result) == ["cercano"]
    assert result.needs[0].out_of_range_count == 1
    assert result.needs[0].message is None


# --- a service whose area covers the place ------------------------------------------------------

REPATRIATION = "protection.repatriation"


@pytest.mark.parametrize(
    ("locale", "covers_text", "distance_text"),
    [("es", "cubre su zona", "a 250 km"), ("en", "covers your area", "250 km away")],
)
def test_a_national_service_covering_the_area_is_in_range_despite_its_distant_office(
    locale: str, covers_text: str, distance_text: str
) -> None:
    # A returnee in Huehuetenango, at most 50 km: the national repatriation service has its
    # office 250 km away in the capital but its area covers the place; a regional one is 60 km
    # away and covers nothing; a capital-only one is 240 km away.
    profile = NeedProfile(needs=(Need(REPATRIATION),), age=30, max_distance_km=50, locale=locale)
    national = cand("nacional", 250, frozenset({REPATRIATION}), covers_area=True)
    regional = cand("regional", 60, frozenset({REPATRIATION}))
    capital = cand("capital", 240, frozenset({REPATRIATION}))
    result = match(profile, {REPATRIATION: [regional, national, capital]}, now=NOW)
    need = result.needs[0]
    assert need.status == "in_range"
    assert ids(result) == ["nacional"]
    assert need.out_of_range_count == 2
    (proposal,) = need.ranked
    assert not proposal.beyond_limit
    assert proposal.reasons[:2] == (distance_text, covers_text)
    assert not any("límite" in c or "limit" in c for c in proposal.cautions)
    assert [a.candidate.service_id for a in result.plan.assignments] == ["nacional"]


def test_coverage_does_not_change_the_score_or_the_order_within_range() -> None:
    # Coverage decides who is a candidate, not who is better: the nearer service still ranks
    # first, and the covering one is scored on its real distance.
    profile = NeedProfile(needs=(Need(REPATRIATION),), age=30, max_distance_km=50)
    near = cand("cercano", 10, frozenset({REPATRIATION}))
    national = cand("nacional", 250, frozenset({REPATRIATION}), covers_area=True)
    plain = cand("nacional", 250, frozenset({REPATRIATION}), location_id="otra")
    result = match(profile, {REPATRIATION: [national, near]}, now=NOW)
    assert ids(result) == ["cercano", "nacional"]
    without = match(
        NeedProfile(needs=(Need(REPATRIATION),), age=30), {REPATRIATION: [plain]}, now=NOW
    )
    assert result.needs[0].ranked[1].score == without.needs[0].ranked[0].score
    assert "cubre su zona" not in without.needs[0].ranked[0].reasons


def test_no_eligible_service_at_all_is_a_message_and_an_uncovered_need() -> None:
    profile = NeedProfile(needs=(Need(SHELTER, "emergency"), Need(LEGAL)), age=30)
    closed = cand("albergue", 1, SHELTER_CODES)
    legal = cand("bufete", 2, frozenset({LEGAL}))
    result = match(profile, {SHELTER: [closed], LEGAL: [legal]}, now=NOW)
    shelter = result.needs[0]
    assert shelter.status == "none_eligible"
    assert shelter.ranked == ()
    assert shelter.message is not None
    assert shelter.message.startswith("Ningún servicio elegible")
    assert [need.code for need in result.plan.uncovered] == [SHELTER]
    assert result.plan.summary == (
        "1 organización cubre 1 necesidad. 1 necesidad sin servicio elegible."
    )


def test_need_with_no_candidates_given() -> None:
    profile = NeedProfile(needs=(Need(LEGAL),), age=30)
    result = match(profile, {}, now=NOW)
    assert result.needs[0].status == "none_eligible"
    assert result.needs[0].excluded_counts == {}


# --- five needs, two providers ------------------------------------------------------------------


def five_need_network() -> tuple[NeedProfile, dict[str, list[Candidate]]]:
    """A centre offering three services at one place, a legal NGO, and nearer single options."""
    profile = NeedProfile(
        needs=(
            Need(SHELTER, "soon"),
            Need(MEDICAL, "soon"),
            Need(PSYCHOSOCIAL, "routine"),
            Need(LEGAL, "routine"),
            Need(INTERPRETATION, "routine"),
        ),
        age=28,
        gender="woman",
        languages=("quc", "spa"),
    )
    centre = {"organization_id": "centro-integral", "location_id": "centro-xela"}
    ngo = {"organization_id": "ong-derechos", "location_id": "ong-xela"}
    candidates = {
        SHELTER: [
            cand("centro-albergue", 6, SHELTER_CODES, **centre),
            cand("albergue-cercano", 2, SHELTER_CODES),
        ],
        MEDICAL: [
            cand("centro-medico", 6, HEALTH_CODES | {MEDICAL}, **centre),
            cand("clinica-cercana", 1, HEALTH_CODES | {MEDICAL}, open_now=True),
        ],
        PSYCHOSOCIAL: [
            cand("centro-psicologia", 6, HEALTH_CODES | {PSYCHOSOCIAL}, **centre),
            cand("psicologa-privada", 3, HEALTH_CODES | {PSYCHOSOCIAL}),
        ],
        LEGAL: [
            cand("ong-legal", 4, frozenset({"protection", LEGAL}), **ngo),
            cand("bufete-popular", 2, frozenset({"protection", LEGAL})),
        ],
        INTERPRETATION: [
            cand(
                "ong-interpretes",
                4,
                frozenset({"protection", INTERPRETATION}),
                languages=frozenset({"quc", "spa"}),
                **ngo,
            ),
            cand("interpretes-juzgado", 3, frozenset({"protection", INTERPRETATION})),
        ],
    }
    return profile, candidates


def test_five_needs_covered_by_two_providers() -> None:
    profile, candidates = five_need_network()
    result = match(profile, candidates, now=NOW)
    # Each nearer single option ranks first for its own need ...
    assert ids(result, 0)[0] == "albergue-cercano"
    assert ids(result, 1)[0] == "clinica-cercana"
    # ... but the plan uses two providers, the centre at one place for three needs.
    plan = result.plan
    assert plan.provider_count == 2
    assert plan.provider_ids == ("centro-integral", "ong-derechos")
    assert plan.location_count == 2
    assert [item.candidate.service_id for item in plan.assignments] == [
        "centro-albergue",
        "centro-medico",
        "centro-psicologia",
        "ong-legal",
        "ong-interpretes",
    ]
    assert [visit.need_codes for visit in plan.visits] == [
        (SHELTER, MEDICAL, PSYCHOSOCIAL),
        (LEGAL, INTERPRETATION),
    ]
    assert plan.total_distance_m == 10_000
    assert plan.summary == "2 organizaciones cubren 5 necesidades."


# --- determinism --------------------------------------------------------------------------------


def test_same_input_gives_equal_output() -> None:
    profile, candidates = five_need_network()
    assert match(profile, candidates, now=NOW) == match(profile, candidates, now=NOW)


@pytest.mark.parametrize("seed", range(10))
def test_shuffled_candidates_give_the_same_output(seed: int) -> None:
    profile, candidates = five_need_network()
    expected = match(profile, candidates, now=NOW)
    shuffler = random.Random(seed)
    keys = list(candidates)
    shuffler.shuffle(keys)
    shuffled = {key: shuffler.sample(candidates[key], len(candidates[key])) for key in keys}
    assert match(profile, shuffled, now=NOW) == expected


def test_ties_are_broken_by_ids() -> None:
    profile = NeedProfile(needs=(Need(LEGAL),), age=30)
    twins = [cand(name, 5, frozenset({LEGAL})) for name in ("b", "c", "a")]
    result = match(profile, {LEGAL: twins}, now=NOW)
    assert ids(result) == ["a", "b", "c"]


def test_exact_duplicates_are_merged_and_conflicts_rejected() -> None:
    profile = NeedProfile(needs=(Need(LEGAL),), age=30)
    one = cand("a", 5, frozenset({LEGAL}))
    assert ids(match(profile, {LEGAL: [one, one]}, now=NOW)) == ["a"]
    other = cand("a", 6, frozenset({LEGAL}))
    with pytest.raises(ValueError, match="conflicting"):
        match(profile, {LEGAL: [one, other]}, now=NOW)


# --- input checks -------------------------------------------------------------------------------


def test_match_rejects_bad_calls() -> None:
    profile = NeedProfile(needs=(Need(LEGAL),), age=30)
    with pytest.raises(ValueError, match="timezone-aware"):
        match(profile, {}, now=datetime(2026, 11, 27, 21, 0))
    with pytest.raises(ValueError, match="not in the profile"):
        match(profile, {SHELTER: []}, now=NOW)
    with pytest.raises(ValueError, match="at least 1"):
        match(profile, {}, now=NOW, top_n=0)
    nine = NeedProfile(needs=tuple(Need(f"need.{index}") for index in range(9)))
    with pytest.raises(ValueError, match="at most 8"):
        match(nine, {}, now=NOW)


def test_top_n_limits_the_ranking_but_not_the_plan_options() -> None:
    profile = NeedProfile(needs=(Need(LEGAL),), age=30)
    many = [cand(f"s{index}", index + 1, frozenset({LEGAL})) for index in range(8)]
    result = match(profile, {LEGAL: many}, now=NOW, top_n=3)
    assert ids(result) == ["s0", "s1", "s2"]
    assert result.needs[0].eligible_count == 8


def test_warnings_when_age_and_gender_are_unknown() -> None:
    profile = NeedProfile(needs=(Need(LEGAL),))
    result = match(profile, {}, now=NOW)
    assert len(result.warnings) == 2
