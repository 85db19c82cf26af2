"""Soft scores: how well an eligible candidate suits the person, between 0 and 1.

Each component lies in [0, 1]; the score is their weighted sum with the weights below, which add
up to 1. A component that does not apply to the person (no language given, not LGBTIQ+, no
accessibility needs) is neutral (1) so it neither helps nor hurts any candidate. The weights are
named constants so that docs/matching.md and reviewers can check them against the code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from referral_net.matching.model import Candidate, Need, NeedProfile, Urgency
from referral_net.vocab import GUATEMALA_TZ

# Distance matters most: a referral the person cannot reach is no referral.
WEIGHT_DISTANCE = 0.30
# Being understood in one's own language is the next most decisive factor for survivors.
WEIGHT_LANGUAGE = 0.20
WEIGHT_OPEN_NOW = 0.15
WEIGHT_CAPACITY = 0.10
WEIGHT_LGBTIQ = 0.10
WEIGHT_VERIFICATION = 0.10
WEIGHT_ACCESSIBILITY = 0.05

WEIGHTS: dict[str, float] = {
    "distance": WEIGHT_DISTANCE,
    "language": WEIGHT_LANGUAGE,
    "open_now": WEIGHT_OPEN_NOW,
    "capacity": WEIGHT_CAPACITY,
    "lgbtiq": WEIGHT_LGBTIQ,
    "verification": WEIGHT_VERIFICATION,
    "accessibility": WEIGHT_ACCESSIBILITY,
}

# Distance decay exp(-km / scale): in an emergency every kilometre counts more.
DISTANCE_SCALE_KM: dict[Urgency, float] = {"emergency": 5.0, "soon": 15.0, "routine": 30.0}

LANGUAGE_FIRST = 1.0
LANGUAGE_OTHER = 0.8
LANGUAGE_INTERPRETATION = 0.6
LANGUAGE_NONE = 0.0

# Trans-inclusive but not affirming: admits the person, without the affirming practice.
LGBTIQ_TRANS_INCLUSIVE_ONLY = 0.5

# Untracked capacity, or a report gone stale, is "unknown": halfway between full and free.
CAPACITY_UNKNOWN = 0.5
CAPACITY_PARTLY_ENOUGH = 0.5
CAPACITY_STALE_HOURS = 72.0

VERIFICATION_FRESH_DAYS = 180
# After the fresh window the verification component halves every this many days.
VERIFICATION_HALF_LIFE_DAYS = 180.0

# Scores are rounded so that float noise never decides a ranking; ties go to distance and ids.
SCORE_DECIMALS = 6

LanguageMatch = Literal["not_given", "first", "other", "interpretation", "none"]


@dataclass(frozen=True)
class Score:
    """A candidate's total score and its components (each in [0, 1], keyed as ``WEIGHTS``)."""

    total: float
    components: dict[str, float]


def language_match(profile: NeedProfile, candidate: Candidate) -> tuple[LanguageMatch, str | None]:
    """How the candidate covers the person's languages, and the language code it speaks if any."""
    if not profile.languages:
        return ("not_given", None)
    if profile.languages[0] in candidate.languages:
        return ("first", profile.languages[0])
    for code in profile.languages[1:]:
        if code in candidate.languages:
            return ("other", code)
    if candidate.interpretation_offered:
        return ("interpretation", None)
    return ("none", None)


_LANGUAGE_VALUES: dict[LanguageMatch, float] = {
    "not_given": 1.0,
    "first": LANGUAGE_FIRST,
    "other": LANGUAGE_OTHER,
    "interpretation": LANGUAGE_INTERPRETATION,
    "none": LANGUAGE_NONE,
}


def distance_component(need: Need, candidate: Candidate) -> float:
    """exp(-km / scale), the scale set by the need's urgency."""
    return math.exp(-(candidate.distance_m / 1000.0) / DISTANCE_SCALE_KM[need.urgency])


def language_component(profile: NeedProfile, candidate: Candidate) -> float:
    """1 first language, 0.8 another of theirs, 0.6 interpretation, 0 none; 1 if none given."""
    return _LANGUAGE_VALUES[language_match(profile, candidate)[0]]


def lgbtiq_component(profile: NeedProfile, candidate: Candidate) -> float:
    """1 if affirming (or the person did not ask), 0.5 trans-inclusive only, else 0."""
    if not profile.wants_affirming or candidate.lgbtiq_affirming:
        return 1.0
    if candidate.trans_inclusive:
        return LGBTIQ_TRANS_INCLUSIVE_ONLY
    return 0.0


def capacity_age_hours(candidate: Candidate, now: datetime) -> float | None:
    """Hours since the capacity report (never negative), or None if there is no report time."""
    if candidate.capacity_updated is None:
        return None
    return max(0.0, (now - candidate.capacity_updated).total_seconds() / 3600.0)


def capacity_component(profile: NeedProfile, candidate: Candidate, now: datetime) -> float:
    """Free capacity for the person and their children, faded to "unknown" as the report ages."""
    if candidate.capacity_available is None:
        return CAPACITY_UNKNOWN
    places_needed = 1 + profile.accompanying_children
    if candidate.capacity_available >= places_needed:
        raw = 1.0
    elif candidate.capacity_available > 0:
        raw = CAPACITY_PARTLY_ENOUGH
    else:
        raw = 0.0
    age = capacity_age_hours(candidate, now)
    # Fresh reports count fully; by CAPACITY_STALE_HOURS they say nothing more than "unknown".
    freshness = 0.0 if age is None else max(0.0, 1.0 - age / CAPACITY_STALE_HOURS)
    return CAPACITY_UNKNOWN + (raw - CAPACITY_UNKNOWN) * freshness


def open_now_component(candidate: Candidate) -> float:
    """1 if open now or 24 hours, else 0."""
    return 1.0 if candidate.open_now or candidate.open_24h else 0.0


def verification_age_days(candidate: Candidate, now: datetime) -> int | None:
    """Days since the record was last verified, in Guatemala dates (None if never verified)."""
    if candidate.assured_date is None:
        return None
    today = now.astimezone(GUATEMALA_TZ).date()
    return max(0, (today - candidate.assured_date).days)


def verification_component(candidate: Candidate, now: datetime) -> float:
    """1 if verified within 180 days, then halving every 180 days; 0 if never verified."""
    days = verification_age_days(candidate, now)
    if days is None:
        return 0.0
    if days <= VERIFICATION_FRESH_DAYS:
        return 1.0
    return float(0.5 ** ((days - VERIFICATION_FRESH_DAYS) / VERIFICATION_HALF_LIFE_DAYS))


def accessibility_component(profile: NeedProfile, candidate: Candidate) -> float:
    """The share of the person's mobility and sensory needs the location meets (1 if none)."""
    wanted = profile.accessibility_needs
    if not wanted:
        return 1.0
    return sum(1 for item in wanted if item in candidate.accessibility) / len(wanted)


def score(profile: NeedProfile, need: Need, candidate: Candidate, now: datetime) -> Score:
    """The weighted score of an eligible candidate for one need, with its components."""
    components = {
        "distance": distance_component(need, candidate),
        "language": language_component(profile, candidate),
        "open_now": open_now_component(candidate),
        "capacity": capacity_component(profile, candidate, now),
        "lgbtiq": lgbtiq_component(profile, candidate),
        "verification": verification_component(candidate, now),
        "accessibility": accessibility_component(profile, candidate),
    }
    total = sum(WEIGHTS[name] * value for name, value in components.items())
    return Score(
        total=round(total, SCORE_DECIMALS),
        components={name: round(value, SCORE_DECIMALS) for name, value in components.items()},
    )
