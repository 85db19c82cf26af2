"""One read-model row as search and matching read it (``plan``'s shown columns, by name)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from referral_net.db.dialect import ResultRow
from referral_net.domain.places import Site


# Not frozen: a frozen dataclass sets each field through object.__setattr__, about 2 µs more
# a row on the search's hot path; nothing changes an entry once read.
@dataclass(slots=True)
class Entry:
    """A service at a location found by a search: its distance, the audience-independent
    ``doc`` (``domain/search_model.py``) and what the audience rule needs to place the site.

    ``category_codes``, ``minors_only`` and ``covers_area`` are read for matching only.
    """

    link_id: uuid.UUID
    service_id: uuid.UUID
    location_id: uuid.UUID
    distance_m: float | None
    visibility: str
    location_organization_id: uuid.UUID | None
    public_latitude: float | None
    public_longitude: float | None
    doc: Mapping[str, Any]
    category_codes: frozenset[str] = frozenset()
    minors_only: bool = False
    covers_area: bool = False

    def site(self) -> Site:
        """The site, before the audience rule decides how precisely it is shown."""
        location = self.doc["location"]
        return Site(
            id=self.location_id,
            name=location["name"],
            latitude=location["latitude"],
            longitude=location["longitude"],
            visibility=self.visibility,
            organization_id=self.location_organization_id,
            department_code=location["department_code"],
            municipality_code=location["municipality_code"],
            intake_phone=location["intake_phone"],
            intake_description=location["intake_description"],
            # Entries rendered before issue 15 have no such key: read as unknown (None).
            geocoding_precision=location.get("geocoding_precision"),
            coarse_latitude=self.public_latitude,
            coarse_longitude=self.public_longitude,
        )


# The shown columns every reader gets (``plan._shown``), then those of matching's shapes.
_SHOWN = (
    "link_id",
    "service_id",
    "location_id",
    "visibility",
    "location_organization_id",
    "public_latitude",
    "public_longitude",
    "doc",
)
_MATCHING = ("category_codes", "minors_only", "covers_area")
_NO_CODES: frozenset[str] = frozenset()


def read_entries(
    rows: Sequence[ResultRow], *, distances: Sequence[float | None] | None = None
) -> list[Entry]:
    """The entries rows of shown columns stand for, in their order (``distances``, one a row,
    for rows without a ``distance_m`` column; none without either).

    The columns are found by name once for the rows, then read by position: a ``Row``'s
    attribute and mapping access cost about 11 µs a row, a tenth of a search's Python
    (docs/performance.md).
    """
    if not rows:
        return []
    position = {name: index for index, name in enumerate(rows[0]._fields)}
    link, service, location, visibility, organization, latitude, longitude, doc = (
        position[name] for name in _SHOWN
    )
    distance = position.get("distance_m")
    codes, minors, covers = (position.get(name) for name in _MATCHING)
    found = []
    given = distances if distances is not None else [None] * len(rows)
    for row, known in zip(rows, given, strict=True):
        value = known if distance is None else row[distance]
        found.append(
            Entry(
                link_id=row[link],
                service_id=row[service],
                location_id=row[location],
                distance_m=None if value is None else float(value),
                visibility=row[visibility],
                location_organization_id=row[organization],
                public_latitude=row[latitude],
                public_longitude=row[longitude],
                doc=row[doc],
                category_codes=_NO_CODES if codes is None else frozenset(row[codes]),
                minors_only=False if minors is None else bool(row[minors]),
                covers_area=False if covers is None else bool(row[covers]),
            )
        )
    return found
