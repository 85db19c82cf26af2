"""Hard eligibility: a service the person cannot use is never proposed.

``first_exclusion`` checks the rules in a fixed order and returns the first one a candidate fails
(``None`` if it passes all), so exclusions can be counted per reason. The order is the declaration
order of ``ExclusionReason``.

Unknown facts are handled on purpose, not by accident:

* Age unknown but ``is_minor`` known: the person's age is taken as 0-17 or 18+, and a service is
  excluded only if its age range cannot include them (the explanation shows the range).
  Age and ``is_minor`` both unknown: age ranges are not checked (nearly every service has one),
  but ``minors_only`` services are excluded, because only a known minor may be sent there.
* Gender unknown (None) is treated like "undisclosed": only services open to all genders.
"""

from __future__ import annotations

from referral_net.matching.model import (
    ADULT_AGE,
    MAX_AGE,
    Candidate,
    ExclusionReason,
    Need,
    NeedProfile,
)
from referral_net.vocab import TRANS_TO_BINARY


def age_bounds(profile: NeedProfile) -> tuple[int, int] | None:
    """The youngest and oldest the person can be, from ``age`` or ``is_minor`` (None: unknown)."""
    if profile.age is not None:
        return (profile.age, profile.age)
    if profile.is_minor is True:
        return (0, ADULT_AGE - 1)
    if profile.is_minor is False:
        return (ADULT_AGE, MAX_AGE)
    return None


def gender_served(profile: NeedProfile, candidate: Candidate) -> bool:
    """True if the candidate's gender rule admits the person.

    * ``genders_served`` None: everyone.
    * The person's gender listed: yes.
    * trans_woman (trans_man) at a service listing "woman" ("man") but not the trans gender:
      only if the service is trans-inclusive or LGBTIQ+-affirming.
    * non_binary: only if listed (covered above) or the service is open to all.
    * undisclosed or unknown: only services open to all, since nothing shows they qualify.
    """
    served = candidate.genders_served
    if served is None:
        return True
    gender = profile.gender
    if gender is None or gender == "undisclosed":
        return False
    if gender in served:
        return True
    binary = TRANS_TO_BINARY.get(gender)
    return (
        binary is not None
        and binary in served
        and (candidate.trans_inclusive or candidate.lgbtiq_affirming)
    )


def _age_exclusion(profile: NeedProfile, candidate: Candidate) -> ExclusionReason | None:
    """The age rule the candidate fails, if no age the person may have is in its range."""
    bounds = age_bounds(profile)
    if bounds is None:
        return None
    youngest, oldest = bounds
    if candidate.minimum_age is not None and oldest < candidate.minimum_age:
        return ExclusionReason.BELOW_MINIMUM_AGE
    if candidate.maximum_age is not None and youngest > candidate.maximum_age:
        return ExclusionReason.ABOVE_MAXIMUM_AGE
    return None


def first_exclusion(  # noqa: PLR0911 - one return per hard rule, in the order they are checked
    profile: NeedProfile, need: Need, candidate: Candidate
) -> ExclusionReason | None:
    """The first hard rule the candidate fails for this person and need, or None if eligible."""
    if need.code not in candidate.categories:
        return ExclusionReason.NEED_NOT_SERVED
    if candidate.status != "active":
        return ExclusionReason.INACTIVE
    age_exclusion = _age_exclusion(profile, candidate)
    if age_exclusion is not None:
        return age_exclusion
    if candidate.minors_only and profile.is_minor is not True:
        return ExclusionReason.MINORS_ONLY
    if not gender_served(profile, candidate):
        return ExclusionReason.GENDER_NOT_SERVED
    if profile.accompanying_children > 0 and not candidate.accepts_accompanying_children:
        return ExclusionReason.CHILDREN_NOT_ACCEPTED
    must_be_open = need.urgency == "emergency" or profile.open_now_only
    if must_be_open and not (candidate.open_now or candidate.open_24h):
        return ExclusionReason.NOT_OPEN_NOW
    if (
        need.urgency == "emergency"
        and candidate.capacity_available is not None
        and candidate.capacity_available <= 0
    ):
        return ExclusionReason.NO_CAPACITY
    return None


def is_eligible(profile: NeedProfile, need: Need, candidate: Candidate) -> bool:
    """True if the candidate passes every hard rule for this person and need."""
    return first_exclusion(profile, need, candidate) is None
