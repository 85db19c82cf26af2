"""Tests for referral_net.matching.explain (reasons, cautions and labels in es and en)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from referral_net.matching import Candidate, ExclusionReason, Need, NeedProfile
from referral_net.matching import explain as ex
from referral_net.vocab import GUATEMALA_TZ, Locale

NOW = datetime(2026, 11, 27, 21, 0, tzinfo=GUATEMALA_TZ)
SHELTER = Need("protection.shelter", "soon")
LEGAL = Need("protection.legal_aid", "routine")


def cand(**overrides: Any) -> Candidate:
    """A shelter candidate with fields overridden."""
    fields: dict[str, Any] = {
        "service_id": "svc",
        "location_id": "loc",
        "organization_id": "org",
        "service_name": "Albergue",
        "organization_name": "Organización",
        "categories": frozenset({"protection", "protection.shelter", "protection.legal_aid"}),
        "distance_m": 12_000.0,
    }
    fields.update(overrides)
    return Candidate(**fields)


def explain(
    candidate: Candidate, need: Need = SHELTER, *, beyond: bool = False, **profile: Any
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Reasons and cautions for one candidate and a profile built from keywords."""
    return ex.candidate_explanation(
        NeedProfile(needs=(need,), **profile), need, candidate, NOW, beyond_limit=beyond
    )


@pytest.mark.parametrize(
    ("code", "es", "en"),
    [
        ("spa", "español", "Spanish"),
        ("eng", "inglés", "English"),
        ("quc", "k'iche'", "K'iche'"),
        ("mam", "mam", "Mam"),
        ("kek", "q'eqchi'", "Q'eqchi'"),
        ("cak", "kaqchikel", "Kaqchikel"),
        ("tzj", "tz'utujil", "Tz'utujil"),
        ("poc", "poqomam", "Poqomam"),
        ("ixl", "ixil", "Ixil"),
        ("kjb", "q'anjob'al", "Q'anjob'al"),
        ("knj", "akateko", "Akateko"),
        ("jac", "popti'", "Popti'"),
        ("cac", "chuj", "Chuj"),
        ("acr", "achi", "Achi"),
        ("cab", "garífuna", "Garifuna"),
        ("xyz", "xyz", "xyz"),
    ],
)
def test_language_names(code: str, es: str, en: str) -> None:
    assert ex.language_name(code, "es") == es
    assert ex.language_name(code, "en") == en


@pytest.mark.parametrize(
    ("metres", "es", "en"),
    [
        (0, "a 0 m", "0 m away"),
        (840, "a 840 m", "840 m away"),
        (999.6, "a 1 km", "1 km away"),
        (3000, "a 3 km", "3 km away"),
        (3449, "a 3.4 km", "3.4 km away"),
        (12_000, "a 12 km", "12 km away"),
        (12_600, "a 13 km", "13 km away"),
    ],
)
def test_format_distance(metres: float, es: str, en: str) -> None:
    assert ex.format_distance(metres, "es") == es
    assert ex.format_distance(metres, "en") == en


@pytest.mark.parametrize(
    ("hours", "es", "en"),
    [
        (0.0, "hace 1 min", "1 min ago"),
        (0.75, "hace 45 min", "45 min ago"),
        (3.2, "hace 3 h", "3 h ago"),
        (47.9, "hace 47 h", "47 h ago"),
        (50, "hace 2 días", "2 days ago"),
    ],
)
def test_format_hours_ago(hours: float, es: str, en: str) -> None:
    assert ex.format_hours_ago(hours, "es") == es
    assert ex.format_hours_ago(hours, "en") == en


def test_format_days_ago() -> None:
    assert ex.format_days_ago(0, "es") == "hoy"
    assert ex.format_days_ago(1, "es") == "hace 1 día"
    assert ex.format_days_ago(20, "en") == "20 days ago"
    assert ex.format_days_ago(1, "en") == "1 day ago"


def test_every_exclusion_reason_has_both_labels() -> None:
    for reason in ExclusionReason:
        assert ex.exclusion_label(reason, "es")
        assert ex.exclusion_label(reason, "en")
    assert ex.exclusion_label(ExclusionReason.MINORS_ONLY, "es") == "atiende solo a menores de edad"
    assert ex.exclusion_label(ExclusionReason.MINORS_ONLY, "en") == "serves minors only"


def test_excluded_labels_largest_first_with_plurals() -> None:
    counts = {ExclusionReason.NOT_OPEN_NOW: 1, ExclusionReason.MINORS_ONLY: 4}
    assert ex.excluded_labels(counts, "es") == (
        "4 excluidos: atiende solo a menores de edad",
        "1 excluido: cerrado ahora",
    )
    assert ex.excluded_labels(counts, "en") == (
        "4 excluded: serves minors only",
        "1 excluded: closed now",
    )
    assert ex.excluded_labels({}, "es") == ()


def test_reasons_for_a_well_suited_shelter_in_spanish() -> None:
    candidate = cand(
        languages=frozenset({"mam", "spa"}),
        open_24h=True,
        capacity_available=2,
        capacity_updated=NOW - timedelta(hours=3, minutes=10),
        lgbtiq_affirming=True,
        assured_date=date(2026, 11, 7),
        interpretation_offered=True,
    )
    reasons, cautions = explain(candidate, languages=("mam",), lgbtiq=True, age=30)
    assert reasons == (
        "a 12 km",
        "habla mam",
        "ofrece interpretación",
        "abierto 24 h",
        "2 camas libres (actualizado hace 3 h)",
        "afirmativo LGBTIQ+",
        "verificado hace 20 días",
    )
    assert cautions == ()


def test_reasons_in_english() -> None:
    candidate = cand(
        languages=frozenset({"mam"}),
        open_now=True,
        capacity_available=1,
        capacity_updated=NOW - timedelta(hours=5),
        assured_date=date(2026, 11, 7),
    )
    reasons, _ = explain(candidate, languages=("mam",), locale="en", age=30)
    assert reasons == (
        "12 km away",
        "speaks Mam",
        "open now",
        "1 bed free (updated 5 h ago)",
        "verified 20 days ago",
    )


def test_interpretation_as_the_language_reason() -> None:
    reasons, cautions = explain(
        cand(interpretation_offered=True, open_now=True, assured_date=NOW.date()),
        languages=("quc",),
        age=30,
    )
    assert "ofrece interpretación" in reasons
    assert not any("k'iche'" in caution for caution in cautions)


def test_cautions_when_things_need_checking() -> None:
    candidate = cand(
        languages=frozenset({"spa"}),
        capacity_available=4,
        capacity_updated=NOW - timedelta(days=4),
        minimum_age=18,
    )
    reasons, cautions = explain(
        candidate, LEGAL, beyond=True, languages=("kek",), max_distance_km=10
    )
    assert reasons == ("a 12 km",)
    assert cautions == (
        "fuera del límite de 10 km",
        "no habla q'eqchi' ni ofrece interpretación",
        "cerrado ahora",
        "dato de cupo desactualizado: 4 cupos libres (actualizado hace 4 días)",
        "atiende desde los 18 años: confirme la edad",
        "sin verificación registrada",
    )


def test_full_and_short_capacity_are_cautions() -> None:
    updated = NOW - timedelta(hours=1)
    _, full = explain(cand(capacity_available=0, capacity_updated=updated), age=30)
    assert "sin camas libres (actualizado hace 1 h)" in full
    _, short = explain(
        cand(
            capacity_available=1,
            capacity_updated=updated,
            accepts_accompanying_children=True,
        ),
        age=30,
        accompanying_children=2,
    )
    assert "1 cama libre (actualizado hace 1 h); cupo insuficiente para 3 personas" in short


def test_children_and_accessibility_reasons() -> None:
    candidate = cand(accepts_accompanying_children=True, accessibility=frozenset({"wheelchair"}))
    reasons, cautions = explain(
        candidate, age=30, accompanying_children=1, mobility_needs=("wheelchair",)
    )
    assert "recibe a hijas e hijos acompañantes" in reasons
    assert "cumple las necesidades de accesibilidad" in reasons
    _, cautions = explain(cand(), age=30, sensory_needs=("sign_language",), locale="en")
    assert "not recorded: sign_language" in cautions


def test_old_verification_is_a_caution() -> None:
    _, cautions = explain(cand(assured_date=NOW.date() - timedelta(days=400)), locale="en", age=30)
    assert "verified 400 days ago" in cautions


@pytest.mark.parametrize("locale", ["es", "en"])
def test_messages_mention_the_limit_and_the_nearest(locale: Locale) -> None:
    message = ex.beyond_limit_message(20, 34_000, locale)
    assert "20 km" in message
    assert "34 km" in message
    assert "0" in ex.none_eligible_message(0, locale)


def test_plan_summary() -> None:
    assert ex.plan_summary(2, 5, 0, "es") == "2 organizaciones cubren 5 necesidades."
    assert ex.plan_summary(1, 1, 1, "es") == (
        "1 organización cubre 1 necesidad. 1 necesidad sin servicio elegible."
    )
    assert ex.plan_summary(0, 0, 2, "en") == (
        "No need has an eligible service. 2 needs without an eligible service."
    )


def test_profile_warnings() -> None:
    assert ex.profile_warnings(NeedProfile(needs=(SHELTER,), age=30, gender="woman")) == ()
    warnings = ex.profile_warnings(NeedProfile(needs=(SHELTER,), locale="en"))
    assert len(warnings) == 2
    assert warnings[0].startswith("Age unknown")
