"""The one visibility rule: what each audience may see of a location, and who may edit what.

Every path that can reveal a location (item reads, lists, search, match, GeoJSON, OGC, tiles,
exports, the embed map) asks this module; nothing else decides it.

    visibility     public, partner           caseworker, justice, steward   provider
    public         exact                     exact                          exact
    restricted     municipality point only   exact                          exact if own org
    confidential   absent (404, not counted) exact                          exact if own org

Admins manage users and keys; for locations they are treated like the public.

A service is known to exactly the audiences that may know one of its locations, or to everyone
when it has no location at all (a hotline, a remote service), or when a steward listed it on
purpose (``listed_despite_hidden_sites``). Provider staff also know their own organization's
services; trusted roles know every service. Whether a site is defunct plays no part here: a
service seen only at a (now closed) safe house stays hidden rather than turning public.

Who may choose a record's id: stewards (and trusted imports); everyone else gets a server id,
so a collision can never tell a caller that a record it may not see exists.
"""

from __future__ import annotations

import uuid
from enum import Enum

from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.orm import aliased
from sqlmodel import col

from referral_net.db.models import Location, Service, ServiceAtLocation
from referral_net.security.roles import Principal, Role
from referral_net.vocab import Visibility

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


def visible_locations_clause(
    principal: Principal, location: type[Location] = Location
) -> ColumnElement[bool]:
    """SQL condition for the locations a caller may know exist (exactly or coarsely).

    ``location`` may be an alias of the location table, for use inside a subquery.
    """
    if principal.role in TRUSTED_ROLES:
        return true()
    not_confidential = col(location.visibility) != Visibility.CONFIDENTIAL.value
    if principal.role is Role.PROVIDER and principal.organization_id is not None:
        return or_(not_confidential, col(location.organization_id) == principal.organization_id)
    return not_confidential


def knows_every_service(principal: Principal) -> bool:
    """Trusted roles know every service exists: :func:`visible_services_clause` holds for all
    (every location is visible to them), so a caller may skip the query it would filter."""
    return principal.role in TRUSTED_ROLES


def visible_services_clause(principal: Principal) -> ColumnElement[bool]:
    """SQL condition for the services a caller may know exist (see the module docstring).

    The location test is :func:`visible_locations_clause` itself, over aliases correlated to
    the outer ``service`` only, so the clause also holds in queries that join locations. For
    trusted roles every location is visible, so every service is (no special case needed).
    """
    link = aliased(ServiceAtLocation)
    site = aliased(Location)
    links = select(col(link.id)).where(col(link.service_id) == col(Service.id)).correlate(Service)
    at_visible_site = links.join_from(link, site, col(site.id) == col(link.location_id)).where(
        visible_locations_clause(principal, site)
    )
    known = or_(
        col(Service.listed_despite_hidden_sites).is_(True),
        at_visible_site.exists(),
        ~links.exists(),
    )
    if principal.role is Role.PROVIDER and principal.organization_id is not None:
        return or_(col(Service.organization_id) == principal.organization_id, known)
    return known


def sees_listing_flag(principal: Principal, organization_id: uuid.UUID | None) -> bool:
    """Trusted roles and the service's editors see ``listed_despite_hidden_sites``; to anyone
    else, ``true`` on a service they can see would say it has sites hidden from them."""
    return principal.role in TRUSTED_ROLES or can_edit(principal, organization_id)


def may_choose_ids(principal: Principal) -> bool:
    """Only stewards keep a record id of their choosing; every other caller gets a server id."""
    return principal.role is Role.STEWARD


def may_link_organizations(principal: Principal) -> bool:
    """Only stewards set or change an organization's parent."""
    return principal.role is Role.STEWARD


def may_list_despite_hidden_sites(principal: Principal) -> bool:
    """Only stewards set or change a service's ``listed_despite_hidden_sites``."""
    return principal.role is Role.STEWARD


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
