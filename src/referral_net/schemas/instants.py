"""Validated instants for query parameters: a bad one is a 422 naming the parameter, never a 500.

``GuatemalaInstant`` reads a naive value as America/Guatemala wall-clock time (``open_at``);
``UtcInstant`` reads it as UTC (``modified_after``). Both refuse instants so near the ends of the
calendar that converting them, or moving them by a week, would overflow.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator

from referral_net.validation import check_instant
from referral_net.vocab import GUATEMALA_TZ


def _guatemala(value: datetime) -> datetime:
    return check_instant(value, naive_zone=GUATEMALA_TZ)


def _utc(value: datetime) -> datetime:
    return check_instant(value, naive_zone=UTC)


GuatemalaInstant = Annotated[datetime, AfterValidator(_guatemala)]
UtcInstant = Annotated[datetime, AfterValidator(_utc)]
