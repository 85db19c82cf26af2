"""One read-model row as search and matching read it (``plan``'s shown columns, by name)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row

from referral_net.domain.places import Site


@dataclass(frozen=True)
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


def entry(row: Row[Any], *, distance_m: float | None = None) -> Entry:
    """The entry a row of shown columns stands for (``distance_m`` when the row has none)."""
    mapping = row._mapping
    distance = mapping.get("distance_m", distance_m)
    matching = "category_codes" in mapping
    return Entry(
        link_id=row.link_id,
        service_id=row.service_id,
        location_id=row.location_id,
        distance_m=None if distance is None else float(distance),
        visibility=row.visibility,
        location_organization_id=row.location_organization_id,
        public_latitude=row.public_latitude,
        public_longitude=row.public_longitude,
        doc=row.doc,
        category_codes=frozenset(row.category_codes) if matching else frozenset(),
        minors_only=bool(row.minors_only) if matching else False,
        covers_area=bool(row.covers_area) if matching else False,
    )
