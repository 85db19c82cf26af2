"""The one visibility rule: what each audience may see of a location, and who may edit what.

Every path that can reveal a location (item reads, lists, search, match, GeoJSON, OGC, tiles,
exports, the embed map) asks this module; nothing else decides it.

    visibility     public, partner           caseworker, justice, steward   provider
    public         exact                     exact                          exact
    restricted     municipality point only   exact                          exact if own org
    confidential   absent (404, not counted) exact                          exact if own org

Admins manage users and keys; for locations they are treated like the public.
"""

from __future__ import annotations

import uuid
from enum import Enum

from sqlalchemy import ColumnElement, and_, false, or_, true
from sqlmodel import col

from referral_net.db.models import Location, Visibility
from referral_net.security.roles import Principal, Role

TRUSTED_ROLES = frozenset({Role.CASEWORKER, Role.JUSTICE, Role.STEWARD})
EDITOR_ROLES = frozenset({Role.STEWARD, Role.PROVIDER})


class LocationView(Enum):
    """How much of one location a caller may see."""

    EXACT = "exact"
    MUNICIPALITY = "municipality"
    HIDDEN = "hidden"


def owns(principal: Principal, organization_id: uuid.UUID | None) -> bool:
    """True when the caller is provider staff of this organization."""
    return (
        principal.role is Role.PROVIDER
        and principal.organization_id is not None
        and principal.organization_id == organization_id
    )


def location_view(
    principal: Principal, *, visibility: str, organization_id: uuid.UUID | None
) -> LocationView:
    """Decide how a caller sees one location."""
    if visibility == Visibility.PUBLIC:
        return LocationView.EXACT
    if principal.role in TRUSTED_ROLES or owns(principal, organization_id):
        return LocationView.EXACT
    if visibility == Visibility.RESTRICTED:
        return LocationView.MUNICIPALITY
    return LocationView.HIDDEN


def sees_exact_points_everywhere(principal: Principal) -> bool:
    """Trusted roles search the exact point column; everyone else the public one.

    Provider staff search the public column too (their own organization's sites are exact in
    item reads); search results for a coarsened site are placed and ranked by the coarse point,
    so distance and order cannot be used to triangulate the real site.
    """
    return principal.role in TRUSTED_ROLES


def visible_locations_clause(principal: Principal) -> ColumnElement[bool]:
    """SQL condition for the locations a caller may know exist (exactly or coarsely)."""
    if principal.role in TRUSTED_ROLES:
        return true()
    not_confidential = col(Location.visibility) != Visibility.CONFIDENTIAL.value
    if principal.role is Role.PROVIDER and principal.organization_id is not None:
        return or_(not_confidential, col(Location.organization_id) == principal.organization_id)
    return not_confidential


def exact_locations_clause(principal: Principal) -> ColumnElement[bool]:
    """SQL condition for the locations a caller may see exactly."""
    if principal.role in TRUSTED_ROLES:
        return true()
    public = col(Location.visibility) == Visibility.PUBLIC.value
    if principal.role is Role.PROVIDER and principal.organization_id is not None:
        return or_(public, col(Location.organization_id) == principal.organization_id)
    return public


def can_see_defunct(principal: Principal) -> bool:
    """Only stewards read records that were deleted (status defunct)."""
    return principal.role is Role.STEWARD


def can_edit(principal: Principal, organization_id: uuid.UUID | None) -> bool:
    """Stewards edit the whole directory; providers edit their own organization's records."""
    return principal.role is Role.STEWARD or owns(principal, organization_id)


def may_change_visibility(principal: Principal, *, current: str, requested: str) -> bool:
    """Less visible is open to the owner and stewards; more visible needs a steward."""
    order = [Visibility.PUBLIC.value, Visibility.RESTRICTED.value, Visibility.CONFIDENTIAL.value]
    if requested == current:
        return True
    if order.index(requested) > order.index(current):
        return True  # caller is already an editor when this is asked
    return principal.role is Role.STEWARD


def nothing() -> ColumnElement[bool]:
    """A condition no row meets."""
    return and_(false())
