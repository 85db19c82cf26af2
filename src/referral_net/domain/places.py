"""Where a response places a site for its audience: the exact point, the municipality's
representative point, or nowhere; and the audit of exact views of hidden sites.

``access.location_view`` decides how much of a site a caller may see; this module turns that into
the point a search result or a match proposal shows:

    exact          the site's own latitude and longitude
    municipality   its municipality's (else its department's) representative point
    hidden         never placed: callers pass only sites the caller may know exist

An exact view of a non-public site is a sensitive read and is audited. The entries are written
once the response is fully shaped (:func:`audience` is a context manager), in one commit:
if shaping fails, nothing is recorded and nothing is shown; if recording fails, the error
propagates and the response is never sent. Either the read and its audit entries both happen or
neither does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlmodel import Session, col

from referral_net.db.models import AdminArea
from referral_net.domain import access, audit
from referral_net.schemas.search import SearchLocation
from referral_net.security.roles import Principal
from referral_net.vocab import Visibility


@dataclass(frozen=True)
class Site:
    """A location's fields that a result shows, before the audience rule decides how."""

    id: uuid.UUID
    name: str | None
    latitude: float | None
    longitude: float | None
    visibility: str
    organization_id: uuid.UUID | None
    department_code: str | None
    municipality_code: str | None
    intake_phone: str | None
    intake_description: str | None
    # How an import placed the exact point (given, town, municipality); None: the writer's own.
    geocoding_precision: str | None = None
    # The representative point of its municipality (else department): where an audience that
    # may not see the site exactly is shown it (the read model holds it with the entry).
    coarse_latitude: float | None = None
    coarse_longitude: float | None = None

    @property
    def area_code(self) -> str | None:
        """The code of the area whose representative point stands in for the site."""
        return self.municipality_code or self.department_code


class Audience:
    """One caller's view of sites, remembering the exact views of hidden sites it gave."""

    def __init__(self, principal: Principal) -> None:
        """Place sites for ``principal``."""
        self._principal = principal
        self._shown_exact: list[uuid.UUID] = []

    @property
    def shown_exact(self) -> tuple[uuid.UUID, ...]:
        """Non-public sites placed exactly so far, in order (repeats included)."""
        return tuple(self._shown_exact)

    def locations(self, sites: Sequence[Site]) -> dict[uuid.UUID, dict[str, Any]]:
        """Each site as precisely as the caller may see it, by location id, as a JSON-ready
        document: ``SearchLocation``'s fields in its order (what search answers are written
        from, ``domain.search.shape``; :meth:`place` gives the models).

        Sites the caller may not see exactly sit at their municipality's representative point
        (``Site.coarse_latitude``/``coarse_longitude``: no query).
        """
        placed: dict[uuid.UUID, dict[str, Any]] = {}
        for site in sites:
            view = access.location_view(
                self._principal, visibility=site.visibility, organization_id=site.organization_id
            )
            exact = view is access.LocationView.EXACT
            if exact and site.visibility != Visibility.PUBLIC:
                self._shown_exact.append(site.id)
            placed[site.id] = {
                "id": site.id,
                "name": site.name,
                "latitude": site.latitude if exact else site.coarse_latitude,
                "longitude": site.longitude if exact else site.coarse_longitude,
                "precision": "exact" if exact else "municipality",
                # Only with the exact point: a coarse view's point is the municipality's anyway.
                "geocoding_precision": site.geocoding_precision if exact else None,
                "department_code": site.department_code,
                "municipality_code": site.municipality_code,
                "intake_phone": site.intake_phone,
                "intake_description": site.intake_description,
            }
        return placed

    def place(self, sites: Sequence[Site]) -> dict[uuid.UUID, SearchLocation]:
        """Each site as precisely as the caller may see it, by location id (:meth:`locations`
        as models)."""
        return {
            location_id: SearchLocation(**document)
            for location_id, document in self.locations(sites).items()
        }


@contextmanager
def audience(session: Session, principal: Principal) -> Iterator[Audience]:
    """Place sites for one response; audit its exact views of hidden sites once it is shaped.

    Shape the whole response inside the ``with`` block and return it after the block: the audit
    entries are written (one commit, see ``audit.record_exact_reads``) only when the block ends
    without an error, after every read of the response.
    """
    placing = Audience(principal)
    yield placing
    audit.record_exact_reads(session=session, principal=principal, location_ids=placing.shown_exact)


def representative_points(
    session: Session, codes: Sequence[str | None]
) -> dict[str, tuple[float, float]]:
    """The representative (lat, lon) of administrative areas, by code (no polygons loaded)."""
    wanted = {code for code in codes if code}
    if not wanted:
        return {}
    statement: Select[Any] = select(
        col(AdminArea.code).label("code"),
        col(AdminArea.representative_latitude).label("latitude"),
        col(AdminArea.representative_longitude).label("longitude"),
    ).where(col(AdminArea.code).in_(wanted))
    rows = session.connection().execute(statement)
    return {row.code: (row.latitude, row.longitude) for row in rows}
