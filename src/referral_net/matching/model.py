"""The plain data the matching core takes and returns.

A ``NeedProfile`` describes what a person needs without identifying them: no name, no document
number, no exact address (the endpoint turns the place into distances before calling the core).
A ``Candidate`` is one service at one location, already flattened from HSDS records by the caller.
Everything is a frozen dataclass so that results can be compared and cached safely.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Literal, get_args

from referral_net.vocab import GENDERS, LOCALES, SERVED_GENDERS, Gender, Locale

Urgency = Literal["emergency", "soon", "routine"]
NeedStatus = Literal["in_range", "beyond_limit", "none_eligible"]

URGENCIES: tuple[Urgency, ...] = get_args(Urgency)

ADULT_AGE = 18
MAX_AGE = 130


class ExclusionReason(StrEnum):
    """Why a candidate was not proposed: the first hard rule it failed (stable API codes).

    The declaration order is the order the rules are checked in.
    """

    NEED_NOT_SERVED = "need_not_served"
    INACTIVE = "inactive"
    BELOW_MINIMUM_AGE = "below_minimum_age"
    ABOVE_MAXIMUM_AGE = "above_maximum_age"
    MINORS_ONLY = "minors_only"
    GENDER_NOT_SERVED = "gender_not_served"
    CHILDREN_NOT_ACCEPTED = "children_not_accepted"
    NOT_OPEN_NOW = "not_open_now"
    NO_CAPACITY = "no_capacity"


@dataclass(frozen=True)
class Need:
    """One need: a taxonomy code (e.g. ``protection.shelter``) and how urgent it is."""

    code: str
    urgency: Urgency = "routine"

    def __post_init__(self) -> None:
        """Reject an empty code or an unknown urgency."""
        if not self.code.strip():
            raise ValueError("need code must not be empty")
        if self.urgency not in URGENCIES:
            raise ValueError(f"unknown urgency {self.urgency!r}")


@dataclass(frozen=True)
class NeedProfile:
    """What the person needs and the facts that decide which services they can use.

    Unknown facts are ``None``. ``is_minor`` is derived from ``age`` when the age is given (and a
    contradicting ``is_minor`` is an error). ``languages`` are ISO 639-3 codes, the preferred one
    first. ``migrant`` is carried for the caller (e.g. to suggest migration services) but never
    excludes anyone: protection does not depend on migration status.
    """

    needs: tuple[Need, ...]
    age: int | None = None
    is_minor: bool | None = None
    gender: Gender | None = None
    lgbtiq: bool = False
    languages: tuple[str, ...] = ()
    accompanying_children: int = 0
    mobility_needs: tuple[str, ...] = ()
    sensory_needs: tuple[str, ...] = ()
    migrant: bool | None = None
    max_distance_km: float | None = None
    open_now_only: bool = False
    locale: Locale = "es"

    def __post_init__(self) -> None:
        """Check the profile and derive ``is_minor`` from ``age``."""
        if not self.needs:
            raise ValueError("a profile needs at least one need")
        codes = [need.code for need in self.needs]
        if len(set(codes)) != len(codes):
            raise ValueError("each need code may appear only once")
        if self.age is not None:
            if not 0 <= self.age <= MAX_AGE:
                raise ValueError(f"age out of range: {self.age}")
            minor = self.age < ADULT_AGE
            if self.is_minor is not None and self.is_minor != minor:
                raise ValueError("is_minor contradicts age")
            object.__setattr__(self, "is_minor", minor)
        if self.gender is not None and self.gender not in GENDERS:
            raise ValueError(f"unknown gender code {self.gender!r}")
        if self.locale not in LOCALES:
            raise ValueError(f"unsupported locale {self.locale!r}")
        if self.accompanying_children < 0:
            raise ValueError("accompanying_children must not be negative")
        if self.max_distance_km is not None and not (
            math.isfinite(self.max_distance_km) and self.max_distance_km > 0
        ):
            raise ValueError("max_distance_km must be a positive number")
        # Language codes compare case-insensitively; keep order (the first is preferred).
        languages = tuple(dict.fromkeys(code.strip().lower() for code in self.languages))
        object.__setattr__(self, "languages", languages)

    @property
    def accessibility_needs(self) -> tuple[str, ...]:
        """Mobility and sensory needs together, each once, in the order given."""
        return tuple(dict.fromkeys((*self.mobility_needs, *self.sensory_needs)))

    @property
    def wants_affirming(self) -> bool:
        """True if an LGBTIQ+-affirming service matters: LGBTIQ+, trans or non-binary people."""
        return self.lgbtiq or self.gender in {"trans_woman", "trans_man", "non_binary"}


@dataclass(frozen=True)
class Candidate:
    """One service at one location near the person, flattened from HSDS for matching.

    ``categories`` holds the service's taxonomy codes *and their ancestors*, so a need for
    ``protection.shelter`` is served by a ``protection.shelter.women`` service.
    ``genders_served`` None means all genders. Capacity None means "not tracked".
    ``open_now`` and ``open_24h`` are evaluated by the caller (see ``opening_hours``) at ``now``.
    ``covers_area`` is True when one of the service's areas contains the person's place.
    """

    service_id: str
    location_id: str
    organization_id: str
    service_name: str
    organization_name: str
    categories: frozenset[str]
    distance_m: float
    languages: frozenset[str] = frozenset()
    interpretation_offered: bool = False
    minimum_age: int | None = None
    maximum_age: int | None = None
    genders_served: frozenset[str] | None = None
    trans_inclusive: bool = False
    lgbtiq_affirming: bool = False
    minors_only: bool = False
    accepts_accompanying_children: bool = False
    status: str = "active"
    open_now: bool = False
    open_24h: bool = False
    capacity_available: int | None = None
    capacity_maximum: int | None = None
    capacity_updated: datetime | None = None
    assured_date: date | None = None
    accessibility: frozenset[str] = frozenset()
    # The service's declared service area contains the person's place: it serves them there
    # wherever its office is, so no distance limit leaves it out (docs/matching.md).
    covers_area: bool = False

    def __post_init__(self) -> None:
        """Reject data the core cannot reason about safely."""
        if not (math.isfinite(self.distance_m) and self.distance_m >= 0):
            raise ValueError(f"distance_m must be a non-negative number: {self.distance_m}")
        if self.genders_served is not None and not self.genders_served <= SERVED_GENDERS:
            unknown = sorted(self.genders_served - SERVED_GENDERS)
            raise ValueError(f"unknown gender codes in genders_served: {unknown}")
        if self.capacity_updated is not None and self.capacity_updated.utcoffset() is None:
            raise ValueError("capacity_updated must be timezone-aware")
        object.__setattr__(
            self, "languages", frozenset(code.strip().lower() for code in self.languages)
        )

    @property
    def key(self) -> tuple[str, str]:
        """The (service_id, location_id) pair that identifies this candidate."""
        return (self.service_id, self.location_id)

    @property
    def capacity_tracked(self) -> bool:
        """True if the service reports free capacity."""
        return self.capacity_available is not None


@dataclass(frozen=True)
class RankedCandidate:
    """An eligible candidate with its score, the score's parts and the reasons to show."""

    candidate: Candidate
    rank: int
    score: float
    components: Mapping[str, float]
    reasons: tuple[str, ...]
    cautions: tuple[str, ...]
    beyond_limit: bool = False


@dataclass(frozen=True)
class NeedResult:
    """The outcome for one need: ranked proposals, exclusion counts and an optional message.

    ``status`` is ``in_range`` (proposals within ``max_distance_km`` or no limit given),
    ``beyond_limit`` (nothing eligible in range; the nearest beyond it are shown) or
    ``none_eligible`` (no eligible service at all; ``ranked`` is empty and ``message`` says so).
    ``out_of_range_count`` counts eligible services dropped for lying beyond the limit. A service
    whose area covers the place is always in range.
    """

    need: Need
    status: NeedStatus
    ranked: tuple[RankedCandidate, ...]
    eligible_count: int
    out_of_range_count: int
    excluded_counts: Mapping[ExclusionReason, int]
    excluded_labels: tuple[str, ...]
    message: str | None = None

    @property
    def excluded_total(self) -> int:
        """How many candidates the hard rules excluded."""
        return sum(self.excluded_counts.values())


@dataclass(frozen=True)
class PlanAssignment:
    """In the referral plan: the candidate chosen for one need."""

    need: Need
    candidate: Candidate
    rank: int
    score: float
    beyond_limit: bool


@dataclass(frozen=True)
class PlanVisit:
    """In the referral plan: one place to go (a provider at a location) and the needs it covers."""

    organization_id: str
    organization_name: str
    location_id: str
    distance_m: float
    need_codes: tuple[str, ...]
    service_ids: tuple[str, ...]


@dataclass(frozen=True)
class ReferralPlan:
    """The smallest set of providers covering every need that has an eligible candidate."""

    assignments: tuple[PlanAssignment, ...]
    visits: tuple[PlanVisit, ...]
    uncovered: tuple[Need, ...]
    provider_ids: tuple[str, ...]
    location_count: int
    total_distance_m: float
    total_score: float
    summary: str

    @property
    def provider_count(self) -> int:
        """How many providers (organizations) the plan uses."""
        return len(self.provider_ids)


@dataclass(frozen=True)
class MatchResult:
    """Everything the matching core returns: one result per need (profile order) and the plan."""

    needs: tuple[NeedResult, ...]
    plan: ReferralPlan
    now: datetime
    warnings: tuple[str, ...] = field(default=())
