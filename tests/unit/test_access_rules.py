"""The visibility rule of ``domain.access`` as a decision table, role by role (no database).

The table in the module docstring is restated here independently, so a slip in either shows up.
The SQL clauses are exercised against both backends in tests/test_access_matrix.py and
tests/test_leaks.py.
"""

from __future__ import annotations

import uuid

import pytest

from referral_net.domain import access
from referral_net.domain.access import LocationView
from referral_net.security.roles import Principal, Role

ORG_A = uuid.UUID("00000000-0000-4000-8000-00000000000a")
ORG_B = uuid.UUID("00000000-0000-4000-8000-00000000000b")
EXACT, COARSE, HIDDEN = LocationView.EXACT, LocationView.MUNICIPALITY, LocationView.HIDDEN


def who(role: Role, organization_id: uuid.UUID | None = None) -> Principal:
    """A caller of this role, optionally a member of an organization."""
    return Principal(role=role, subject=f"test:{role.value}", organization_id=organization_id)


# (caller, what it sees of organization A's public, restricted and confidential sites)
TABLE: list[tuple[str, Principal, tuple[LocationView, LocationView, LocationView]]] = [
    ("public", Principal.anonymous(), (EXACT, COARSE, HIDDEN)),
    ("partner", who(Role.PARTNER), (EXACT, COARSE, HIDDEN)),
    ("partner of A", who(Role.PARTNER, ORG_A), (EXACT, COARSE, HIDDEN)),
    ("admin", who(Role.ADMIN), (EXACT, COARSE, HIDDEN)),
    ("admin of A", who(Role.ADMIN, ORG_A), (EXACT, COARSE, HIDDEN)),
    ("provider of A", who(Role.PROVIDER, ORG_A), (EXACT, EXACT, EXACT)),
    ("provider of B", who(Role.PROVIDER, ORG_B), (EXACT, COARSE, HIDDEN)),
    ("provider of none", who(Role.PROVIDER), (EXACT, COARSE, HIDDEN)),
    ("caseworker", who(Role.CASEWORKER), (EXACT, EXACT, EXACT)),
    ("justice", who(Role.JUSTICE), (EXACT, EXACT, EXACT)),
    ("steward", who(Role.STEWARD), (EXACT, EXACT, EXACT)),
    ("caseworker of B", who(Role.CASEWORKER, ORG_B), (EXACT, EXACT, EXACT)),
]


@pytest.mark.parametrize(("name", "principal", "expected"), TABLE, ids=[t[0] for t in TABLE])
def test_location_view_follows_the_table(
    name: str, principal: Principal, expected: tuple[LocationView, ...]
) -> None:
    seen = tuple(
        access.location_view(principal, visibility=visibility, organization_id=ORG_A)
        for visibility in ("public", "restricted", "confidential")
    )
    assert seen == expected, name


def test_a_site_without_an_organization_is_owned_by_no_provider() -> None:
    # A provider with no organization must not "own" an organization-less site (None == None).
    orphan = who(Role.PROVIDER)
    assert access.owns(orphan, None) is False
    assert access.location_view(orphan, visibility="confidential", organization_id=None) is HIDDEN
    assert access.owns(who(Role.PROVIDER, ORG_A), ORG_A) is True
    assert access.owns(who(Role.PROVIDER, ORG_A), ORG_B) is False
    assert access.owns(who(Role.STEWARD, ORG_A), ORG_A) is False
    assert access.owns(who(Role.ADMIN, ORG_A), ORG_A) is False


@pytest.mark.parametrize("role", list(Role))
def test_only_trusted_roles_search_exact_points(role: Role) -> None:
    expected = role in {Role.CASEWORKER, Role.JUSTICE, Role.STEWARD}
    assert access.sees_exact_points_everywhere(who(role, ORG_A)) is expected


@pytest.mark.parametrize("role", list(Role))
def test_only_stewards_see_deleted_records(role: Role) -> None:
    assert access.can_see_defunct(who(role, ORG_A)) is (role is Role.STEWARD)


@pytest.mark.parametrize("role", list(Role))
def test_editing_is_for_stewards_and_the_owning_provider(role: Role) -> None:
    expected_own = role in {Role.STEWARD, Role.PROVIDER}
    assert access.can_edit(who(role, ORG_A), ORG_A) is expected_own
    assert access.can_edit(who(role, ORG_A), ORG_B) is (role is Role.STEWARD)


ORDER = ("public", "restricted", "confidential")


@pytest.mark.parametrize("current", ORDER)
@pytest.mark.parametrize("requested", ORDER)
def test_visibility_may_fall_for_owners_but_rise_only_for_stewards(
    current: str, requested: str
) -> None:
    provider = who(Role.PROVIDER, ORG_A)
    steward = who(Role.STEWARD)
    lower_or_same = ORDER.index(requested) >= ORDER.index(current)
    assert access.may_change_visibility(provider, current=current, requested=requested) is (
        lower_or_same
    )
    assert access.may_change_visibility(steward, current=current, requested=requested) is True


@pytest.mark.parametrize("role", list(Role))
def test_only_stewards_choose_ids_link_organizations_or_list_despite_hidden_sites(
    role: Role,
) -> None:
    principal = who(role, ORG_A)
    steward = role is Role.STEWARD
    assert access.may_choose_ids(principal) is steward
    assert access.may_link_organizations(principal) is steward
    assert access.may_list_despite_hidden_sites(principal) is steward
