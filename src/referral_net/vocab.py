"""The shared vocabulary, defined once: genders, locales, the time zone, record statuses.

Every layer (matching, db, schemas, domain, api) takes these from here, so a new gender code or
locale is one edit. This module imports nothing from referral-net.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args
from zoneinfo import ZoneInfo

# How a person describes their gender in a search or match profile. "undisclosed" describes a
# person, not a service's population, so services list only ``ServedGender`` values.
Gender = Literal["woman", "man", "trans_woman", "trans_man", "non_binary", "undisclosed"]
ServedGender = Literal["woman", "man", "trans_woman", "trans_man", "non_binary"]
GENDERS: tuple[Gender, ...] = get_args(Gender)
SERVED_GENDERS: frozenset[str] = frozenset(get_args(ServedGender))

# For each trans gender: the binary gender whose single-gender services they may use when the
# service says it is trans-inclusive or LGBTIQ+-affirming (matching and its SQL twin share it).
TRANS_TO_BINARY: dict[str, str] = {"trans_woman": "woman", "trans_man": "man"}

# The languages the API answers in; Spanish is the default of the network.
Locale = Literal["es", "en"]
LOCALES: tuple[Locale, ...] = get_args(Locale)
DEFAULT_LOCALE: Locale = "es"

# Opening hours, "open now" and naive instants are read in Guatemala's wall-clock time.
GUATEMALA_TZ = ZoneInfo("America/Guatemala")


class Visibility(StrEnum):
    """Who may see a location's exact place (profile extension)."""

    PUBLIC = "public"
    RESTRICTED = "restricted"
    CONFIDENTIAL = "confidential"


class RecordStatus(StrEnum):
    """HSDS service status; the profile applies it to organizations and locations too."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    DEFUNCT = "defunct"
    TEMPORARILY_CLOSED = "temporarily closed"
