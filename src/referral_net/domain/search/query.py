"""What a search asks for: ``SearchQuery``, checked by ``api/params.py`` or built by matching."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from referral_net.schemas.search import SearchMode
from referral_net.vocab import Locale


@dataclass(frozen=True)
class SearchQuery:
    """A validated search: one mode, a reference point where there is one, and filters."""

    mode: SearchMode
    latitude: float | None = None
    longitude: float | None = None
    radius_m: float | None = None
    box: tuple[float, float, float, float] | None = None
    area_code: str | None = None
    categories: tuple[str, ...] = ()
    language: str | None = None
    age: int | None = None
    gender: str | None = None
    lgbtiq_affirming: bool | None = None
    accepts_children: bool | None = None
    open_at: datetime | None = None
    has_capacity: bool | None = None
    text: str | None = None
    verified_within_days: int | None = None
    # Only these services at locations (an OGC feature by its id); empty: no such filter.
    link_ids: tuple[uuid.UUID, ...] = ()
    limit: int = 10
    page: int = 1
    # The first row of the page where it is not a page boundary (OGC ``offset``); else from page.
    first_row: int | None = None
    locale: Locale = "es"
    evaluated_at: datetime = field(default_factory=lambda: datetime.now().astimezone())
    today: date = field(default_factory=date.today)
    capacity_stale_after: timedelta = timedelta(hours=72)
    max_radius_m: float = 500_000.0

    @property
    def has_point(self) -> bool:
        """True when results can carry a distance."""
        return self.latitude is not None and self.longitude is not None

    @property
    def offset(self) -> int:
        """Rows before this page."""
        return (self.page - 1) * self.limit if self.first_row is None else self.first_row
