"""Explanations in the caseworker's language (Spanish by default, English).

Every proposal carries short *reasons* (why it suits the person) and *cautions* (what to check
before referring). Exclusions are counted and labelled per hard rule. Spanish is written the way
it is used in Guatemala (decimal point, "hijas e hijos"). No text ever names the person.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

from referral_net.matching.eligibility import age_bounds
from referral_net.matching.model import Candidate, ExclusionReason, Need, NeedProfile
from referral_net.matching.scoring import (
    CAPACITY_STALE_HOURS,
    VERIFICATION_FRESH_DAYS,
    capacity_age_hours,
    language_match,
    verification_age_days,
)
from referral_net.vocab import Locale

# Display names of the languages most used in the Western Highlands network (ISO 639-3).
# Spanish writes language names in lower case; English capitalises them.
LANGUAGE_NAMES: dict[str, dict[Locale, str]] = {
    "spa": {"es": "español", "en": "Spanish"},
    "eng": {"es": "inglés", "en": "English"},
    "quc": {"es": "k'iche'", "en": "K'iche'"},
    "mam": {"es": "mam", "en": "Mam"},
    "kek": {"es": "q'eqchi'", "en": "Q'eqchi'"},
    "cak": {"es": "kaqchikel", "en": "Kaqchikel"},
    "tzj": {"es": "tz'utujil", "en": "Tz'utujil"},
    "poc": {"es": "poqomam", "en": "Poqomam"},
    "ixl": {"es": "ixil", "en": "Ixil"},
    "kjb": {"es": "q'anjob'al", "en": "Q'anjob'al"},
    "knj": {"es": "akateko", "en": "Akateko"},
    "jac": {"es": "popti'", "en": "Popti'"},
    "cac": {"es": "chuj", "en": "Chuj"},
    "acr": {"es": "achi", "en": "Achi"},
    "cab": {"es": "garífuna", "en": "Garifuna"},
}

EXCLUSION_LABELS: dict[ExclusionReason, dict[Locale, str]] = {
    ExclusionReason.NEED_NOT_SERVED: {
        "es": "no ofrece este servicio",
        "en": "does not offer this service",
    },
    ExclusionReason.INACTIVE: {"es": "servicio no activo", "en": "service not active"},
    ExclusionReason.BELOW_MINIMUM_AGE: {
        "es": "no atiende a personas de esta edad (edad mínima)",
        "en": "does not serve this age (minimum age)",
    },
    ExclusionReason.ABOVE_MAXIMUM_AGE: {
        "es": "no atiende a personas de esta edad (edad máxima)",
        "en": "does not serve this age (maximum age)",
    },
    ExclusionReason.MINORS_ONLY: {
        "es": "atiende solo a menores de edad",
        "en": "serves minors only",
    },
    ExclusionReason.GENDER_NOT_SERVED: {
        "es": "no atiende a personas de este género",
        "en": "does not serve this gender",
    },
    ExclusionReason.CHILDREN_NOT_ACCEPTED: {
        "es": "no recibe a hijas e hijos acompañantes",
        "en": "does not accept accompanying children",
    },
    ExclusionReason.NOT_OPEN_NOW: {"es": "cerrado ahora", "en": "closed now"},
    ExclusionReason.NO_CAPACITY: {"es": "sin cupo disponible", "en": "no free capacity"},
}

_SHELTER_PREFIX = "protection.shelter"

# The reason shown with a service whose service area contains the person's place.
COVERS_AREA: dict[Locale, str] = {"es": "cubre su zona", "en": "covers your area"}
OUTSIDE_COUNTRY_WARNING: dict[Locale, str] = {
    "es": "El lugar indicado está fuera de Guatemala (indicado a propósito): las distancias "
    "pueden ser muy grandes y los servicios propuestos están en Guatemala.",
    "en": "The place given is outside Guatemala (marked as deliberate): distances may be very "
    "large, and the services proposed are in Guatemala.",
}


def language_name(code: str, locale: Locale) -> str:
    """The display name of an ISO 639-3 language code (the code itself if unknown)."""
    names = LANGUAGE_NAMES.get(code)
    return names[locale] if names else code


def exclusion_label(reason: ExclusionReason, locale: Locale) -> str:
    """The plain-language label of an exclusion reason."""
    return EXCLUSION_LABELS[reason][locale]


def excluded_labels(counts: Mapping[ExclusionReason, int], locale: Locale) -> tuple[str, ...]:
    """One line per reason, e.g. "4 excluidos: atiende solo a menores de edad", largest first."""
    order = list(ExclusionReason)
    lines = []
    for reason, count in sorted(counts.items(), key=lambda item: (-item[1], order.index(item[0]))):
        if count <= 0:
            continue
        word = ("excluido" if count == 1 else "excluidos") if locale == "es" else "excluded"
        lines.append(f"{count} {word}: {exclusion_label(reason, locale)}")
    return tuple(lines)


def format_km(km: float) -> str:
    """A kilometre figure without needless decimals: 20, 12.5."""
    return str(int(km)) if float(km).is_integer() else f"{km:.1f}"


def format_distance(distance_m: float, locale: Locale) -> str:
    """ "a 12 km" / "12 km away" (metres under 1 km, one decimal under 10 km)."""
    if distance_m < 995:  # 995 m and more would round to "1000 m"
        amount = f"{round(distance_m / 10) * 10} m"
    elif distance_m < 10_000:
        amount = f"{distance_m / 1000:.1f}".removesuffix(".0") + " km"
    else:
        amount = f"{round(distance_m / 1000)} km"
    return f"a {amount}" if locale == "es" else f"{amount} away"


def format_hours_ago(hours: float, locale: Locale) -> str:
    """ "hace 3 h" / "3 h ago"; minutes under an hour, days from 48 hours."""
    if hours < 1:
        amount = f"{max(1, math.floor(hours * 60))} min"
    elif hours < 48:
        amount = f"{math.floor(hours)} h"
    else:
        return format_days_ago(math.floor(hours / 24), locale)
    return f"hace {amount}" if locale == "es" else f"{amount} ago"


def format_days_ago(days: int, locale: Locale) -> str:
    """ "hace 20 días" / "20 days ago" ("hoy" / "today" for 0)."""
    if days == 0:
        return "hoy" if locale == "es" else "today"
    if locale == "es":
        return f"hace {days} día" if days == 1 else f"hace {days} días"
    return f"{days} day ago" if days == 1 else f"{days} days ago"


def _places(count: int, need: Need, locale: Locale) -> str:
    """ "2 camas libres" for shelters, "2 cupos libres" otherwise (and English)."""
    shelter = need.code.startswith(_SHELTER_PREFIX)
    if locale == "es":
        noun = ("cama", "camas") if shelter else ("cupo", "cupos")
        adjective = ("libre", "libres")
        plural = int(count != 1)
        return f"{count} {noun[plural]} {adjective[plural]}"
    noun = ("bed", "beds") if shelter else ("place", "places")
    return f"{count} {noun[int(count != 1)]} free"


def age_range_text(candidate: Candidate, locale: Locale) -> str | None:
    """The service's age range in words, or None if it has none."""
    low, high = candidate.minimum_age, candidate.maximum_age
    if low is None and high is None:
        return None
    es = locale == "es"
    if low is not None and high is not None:
        return f"atiende de {low} a {high} años" if es else f"serves ages {low}-{high}"
    if low is not None:
        return f"atiende desde los {low} años" if es else f"serves ages {low} and over"
    return f"atiende hasta los {high} años" if es else f"serves ages up to {high}"


_Remark = tuple[str | None, str | None]
"""What one aspect of a proposal adds to its explanation: (reason, caution), either may be None."""


def _language_reason(profile: NeedProfile, candidate: Candidate) -> _Remark:
    """(reason, caution) about language."""
    locale = profile.locale
    kind, code = language_match(profile, candidate)
    if code is not None:
        name = language_name(code, locale)
        return (f"habla {name}" if locale == "es" else f"speaks {name}", None)
    if kind == "interpretation":
        return ("ofrece interpretación" if locale == "es" else "offers interpretation", None)
    if kind == "none":
        name = language_name(profile.languages[0], locale)
        caution = (
            f"no habla {name} ni ofrece interpretación"
            if locale == "es"
            else f"does not speak {name} or offer interpretation"
        )
        return (None, caution)
    return (None, None)


def _capacity_reason(
    profile: NeedProfile, need: Need, candidate: Candidate, now: datetime
) -> _Remark:
    """(reason, caution) about free capacity and how fresh the report is."""
    if candidate.capacity_available is None:
        return (None, None)
    locale = profile.locale
    available = max(0, candidate.capacity_available)
    if available == 0:
        text = "sin camas libres" if locale == "es" else "no beds free"
        if not need.code.startswith(_SHELTER_PREFIX):
            text = "sin cupos libres" if locale == "es" else "no places free"
    else:
        text = _places(available, need, locale)
    age = capacity_age_hours(candidate, now)
    if age is None:
        stamp = "sin fecha" if locale == "es" else "undated"
    else:
        ago = format_hours_ago(age, locale)
        stamp = f"actualizado {ago}" if locale == "es" else f"updated {ago}"
    full = f"{text} ({stamp})"
    if age is None or age >= CAPACITY_STALE_HOURS:
        prefix = "dato de cupo desactualizado" if locale == "es" else "capacity data out of date"
        return (None, f"{prefix}: {full}")
    if available == 0:
        return (None, full)
    people = 1 + profile.accompanying_children
    if available < people:
        short = (
            f"cupo insuficiente para {people} personas"
            if locale == "es"
            else f"not enough room for {people} people"
        )
        return (None, f"{full}; {short}")
    return (full, None)


def _verification_remark(candidate: Candidate, now: datetime, locale: Locale) -> _Remark:
    """When the record was last verified: a reason if recently, a caution if long ago or never."""
    days = verification_age_days(candidate, now)
    if days is None:
        return (None, "sin verificación registrada" if locale == "es" else "never verified")
    ago = format_days_ago(days, locale)
    text = f"verificado {ago}" if locale == "es" else f"verified {ago}"
    return (None, text) if days > VERIFICATION_FRESH_DAYS else (text, None)


def _limit_caution(profile: NeedProfile, *, beyond_limit: bool) -> str | None:
    """A caution that the service lies beyond the distance limit the person set."""
    if not beyond_limit or profile.max_distance_km is None:
        return None
    limit = format_km(profile.max_distance_km)
    return (
        f"fuera del límite de {limit} km"
        if profile.locale == "es"
        else f"beyond the {limit} km limit"
    )


def _interpretation_reason(
    candidate: Candidate, language_reason: str | None, locale: Locale
) -> str | None:
    """Interpretation on offer, as a reason of its own when the language reason is another."""
    if not candidate.interpretation_offered or language_reason in {
        None,
        "ofrece interpretación",
        "offers interpretation",
    }:
        return None
    return "ofrece interpretación" if locale == "es" else "offers interpretation"


def _opening_remark(candidate: Candidate, locale: Locale) -> _Remark:
    """Open around the clock or now (a reason), or closed now (a caution)."""
    es = locale == "es"
    if candidate.open_24h:
        return ("abierto 24 h" if es else "open 24 h", None)
    if candidate.open_now:
        return ("abierto ahora" if es else "open now", None)
    return (None, "cerrado ahora" if es else "closed now")


def _affirming_reason(profile: NeedProfile, candidate: Candidate) -> str | None:
    """If the person asked for it, whether the service is LGBTIQ+ affirming or trans-inclusive."""
    if not profile.wants_affirming:
        return None
    es = profile.locale == "es"
    if candidate.lgbtiq_affirming:
        return "afirmativo LGBTIQ+" if es else "LGBTIQ+ affirming"
    if candidate.trans_inclusive:
        return "incluye a personas trans" if es else "trans-inclusive"
    return None


def _children_reason(profile: NeedProfile) -> str | None:
    """That the service takes the person's children too (eligibility has checked it does)."""
    if profile.accompanying_children <= 0:
        return None
    return (
        "recibe a hijas e hijos acompañantes"
        if profile.locale == "es"
        else "accepts accompanying children"
    )


def _accessibility_remark(profile: NeedProfile, candidate: Candidate) -> _Remark:
    """Every accessibility need met (a reason), or the ones not recorded (a caution)."""
    wanted = profile.accessibility_needs
    if not wanted:
        return (None, None)
    es = profile.locale == "es"
    missing = [item for item in wanted if item not in candidate.accessibility]
    if not missing:
        return (
            "cumple las necesidades de accesibilidad" if es else "meets accessibility needs",
            None,
        )
    listed = ", ".join(missing)
    return (None, f"no consta: {listed}" if es else f"not recorded: {listed}")


def _age_caution(profile: NeedProfile, candidate: Candidate) -> str | None:
    """The service's age range to confirm, when the person's exact age was not given."""
    age_text = age_range_text(candidate, profile.locale)
    if age_text is None or profile.age is not None:
        return None
    # Without the exact age the range could not be fully checked: show it.
    return (
        f"{age_text}: confirme la edad"
        if profile.locale == "es"
        else f"{age_text}: confirm the age"
    )


def candidate_explanation(
    profile: NeedProfile,
    need: Need,
    candidate: Candidate,
    now: datetime,
    *,
    beyond_limit: bool,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The reasons and cautions shown with one proposal, in the profile's locale."""
    locale = profile.locale
    language_reason, language_caution = _language_reason(profile, candidate)
    # In the order they are shown: each aspect gives a reason, a caution, or neither.
    remarks: list[_Remark] = [
        (format_distance(candidate.distance_m, locale), None),
        (COVERS_AREA[locale] if candidate.covers_area else None, None),
        (None, _limit_caution(profile, beyond_limit=beyond_limit)),
        (language_reason, language_caution),
        (_interpretation_reason(candidate, language_reason, locale), None),
        _opening_remark(candidate, locale),
        _capacity_reason(profile, need, candidate, now),
        (_affirming_reason(profile, candidate), None),
        (_children_reason(profile), None),
        _accessibility_remark(profile, candidate),
        (None, _age_caution(profile, candidate)),
        _verification_remark(candidate, now, locale),
    ]
    reasons = tuple(reason for reason, _ in remarks if reason)
    cautions = tuple(caution for _, caution in remarks if caution)
    return (reasons, cautions)


def beyond_limit_message(max_distance_km: float, nearest_m: float, locale: Locale) -> str:
    """The message shown when no eligible service lies within the distance limit."""
    limit = format_km(max_distance_km)
    nearest = format_distance(nearest_m, locale)
    if locale == "es":
        return (
            f"Ningún servicio elegible a menos de {limit} km. Se muestran los más cercanos "
            f"fuera del límite (el más cercano está {nearest})."
        )
    return (
        f"No eligible service within {limit} km. Showing the nearest beyond the limit "
        f"(the nearest is {nearest})."
    )


def none_eligible_message(excluded_total: int, locale: Locale) -> str:
    """The message shown when no candidate at all is eligible for a need."""
    if locale == "es":
        return (
            f"Ningún servicio elegible para esta necesidad ({excluded_total} revisados y "
            "excluidos). Consulte con la red de protección."
        )
    return (
        f"No eligible service for this need ({excluded_total} checked and excluded). "
        "Consult the protection network."
    )


def profile_warnings(profile: NeedProfile) -> tuple[str, ...]:
    """Notes about facts left unknown that change what could be checked."""
    es = profile.locale == "es"
    warnings: list[str] = []
    if age_bounds(profile) is None:
        warnings.append(
            "Edad desconocida: no se verificaron los rangos de edad y se omitieron los "
            "servicios solo para menores."
            if es
            else "Age unknown: age ranges were not checked and minors-only services were left out."
        )
    if profile.gender is None or profile.gender == "undisclosed":
        warnings.append(
            "Género no indicado: solo se proponen servicios abiertos a todos los géneros."
            if es
            else "Gender not given: only services open to all genders are proposed."
        )
    return tuple(warnings)


def outside_country_warning(locale: Locale) -> str:
    """The warning shown when the person's place lies outside Guatemala on purpose."""
    return OUTSIDE_COUNTRY_WARNING[locale]


def plan_summary(provider_count: int, covered: int, uncovered: int, locale: Locale) -> str:
    """One sentence describing the referral plan."""
    if locale == "es":
        orgs = (
            "1 organización cubre"
            if provider_count == 1
            else (f"{provider_count} organizaciones cubren")
        )
        needs = "1 necesidad" if covered == 1 else f"{covered} necesidades"
        text = f"{orgs} {needs}."
        if covered == 0:
            text = "Ninguna necesidad tiene un servicio elegible."
        if uncovered:
            missing = "1 necesidad" if uncovered == 1 else f"{uncovered} necesidades"
            text += f" {missing} sin servicio elegible."
        return text
    orgs = (
        "1 organization covers"
        if provider_count == 1
        else (f"{provider_count} organizations cover")
    )
    needs = "1 need" if covered == 1 else f"{covered} needs"
    text = f"{orgs} {needs}."
    if covered == 0:
        text = "No need has an eligible service."
    if uncovered:
        missing = "1 need" if uncovered == 1 else f"{uncovered} needs"
        text += f" {missing} without an eligible service."
    return text
