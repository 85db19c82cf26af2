"""A service seen only at hidden sites is itself hidden (issue 10, point 2).

Organization A runs four services: one delivered only at a confidential safe house, one at a
public office, one at a restricted site, and a hotline with no location. Every audience that may
not know the safe house (the public, a partner key, provider staff of another organization, an
admin, an admin who belongs to organization A) must find the first service nowhere: not by id,
not in lists, not in list totals, not under any filter, and not through search, the links or
the organization (match answers trusted roles only). Trusted roles and A's own provider staff
see it. A steward may list it on purpose; a provider may not.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from referral_net.domain import keys
from referral_net.security.roles import Role
from tests.factories import bearer, location_body, make_organization, make_user, service_body

pytestmark = pytest.mark.db
SAFE_HOUSE = (14.7750, -91.5150)  # Quetzaltenango, away from the municipality's central point
MONDAY_10 = "2026-12-07T10:00:00"  # Guatemala time; the services open weekdays 08:00-16:00
UNTRUSTED = ("public", "partner", "provider_of_b", "admin", "admin_in_a")
TRUSTED = ("caseworker", "justice", "steward", "provider_of_a")


@dataclass(frozen=True)
class World:
    """Organization A's services and what tells the hidden one apart."""

    org_a: str
    hidden_id: str
    hidden_name: str
    hidden_link: str
    safe_house_id: str
    public_id: str
    restricted_id: str
    hotline_id: str
    headers: Callable[[str], dict[str, str]]


def _post(client: TestClient, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def _service(
    client: TestClient, steward: dict[str, str], org_id: uuid.UUID, name: str, **extra: Any
) -> str:
    created = _post(client, "/api/v1/services", service_body(org_id, name=name, **extra), steward)
    return str(created["id"])


def _site(
    client: TestClient,
    steward: dict[str, str],
    org_id: uuid.UUID,
    service_id: str,
    visibility: str,
    point: tuple[float, float] | None = None,
) -> tuple[str, str]:
    overrides: dict[str, Any] = {"visibility": visibility, "name": f"Sede {visibility}"}
    if point is not None:
        overrides |= {"latitude": point[0], "longitude": point[1]}
    location = _post(client, "/api/v1/locations", location_body(org_id, **overrides), steward)
    link = _post(
        client,
        "/api/v1/service_at_locations",
        {"service_id": service_id, "location_id": location["id"]},
        steward,
    )
    return str(location["id"]), str(link["id"])


@pytest.fixture
def world(
    app: FastAPI, client: TestClient, session: Session, taxonomy_loaded: None, unique: str
) -> World:
    """Organization A's four services, and headers for every audience."""
    org_a = make_organization(session, f"A {unique} (ejemplo)")
    org_b = make_organization(session, f"B {unique} (ejemplo)")
    steward = bearer(app, make_user(session, Role.STEWARD))
    hidden_name = f"Casa segura {unique} (ejemplo)"
    hidden_id = _service(client, steward, org_a.id, hidden_name)
    safe_house_id, hidden_link = _site(
        client, steward, org_a.id, hidden_id, "confidential", SAFE_HOUSE
    )
    public_id = _service(client, steward, org_a.id, f"Oficina {unique} (ejemplo)")
    _site(client, steward, org_a.id, public_id, "public")
    restricted_id = _service(client, steward, org_a.id, f"Reservado {unique} (ejemplo)")
    _site(client, steward, org_a.id, restricted_id, "restricted")
    hotline_id = _service(client, steward, org_a.id, f"Línea {unique} (ejemplo)")
    _, partner_key = keys.create_key(session=session, name=f"partner-{unique}")
    session.commit()
    audiences = {
        "public": {},
        "partner": {"X-API-Key": partner_key},
        "steward": steward,
        "provider_of_a": bearer(app, make_user(session, Role.PROVIDER, org_a.id)),
        "provider_of_b": bearer(app, make_user(session, Role.PROVIDER, org_b.id)),
        "caseworker": bearer(app, make_user(session, Role.CASEWORKER)),
        "justice": bearer(app, make_user(session, Role.JUSTICE)),
        "admin": bearer(app, make_user(session, Role.ADMIN)),
        "admin_in_a": bearer(app, make_user(session, Role.ADMIN, org_a.id)),
    }
    return World(
        org_a=str(org_a.id),
        hidden_id=hidden_id,
        hidden_name=hidden_name,
        hidden_link=hidden_link,
        safe_house_id=safe_house_id,
        public_id=public_id,
        restricted_id=restricted_id,
        hotline_id=hotline_id,
        headers=audiences.__getitem__,
    )


def _listed(
    client: TestClient, world: World, headers: dict[str, str], **params: Any
) -> tuple[set[str], int]:
    page = client.get(
        "/api/v1/services",
        params={"organization_id": world.org_a, "per_page": 100, **params},
        headers=headers,
    )
    assert page.status_code == 200, page.text
    body = page.json()
    return {item["id"] for item in body["contents"]}, body["total_items"]


@pytest.mark.parametrize("audience", UNTRUSTED)
def test_service_at_only_a_confidential_site_is_unknown(
    client: TestClient, world: World, audience: str
) -> None:
    headers = world.headers(audience)
    read = client.get(f"/api/v1/services/{world.hidden_id}", headers=headers)
    assert read.status_code == 404
    assert world.hidden_name not in read.text
    assert read.json()["detail"] == "No such service."
    visible = {world.public_id, world.restricted_id, world.hotline_id}
    for params in (
        {},
        {"open_at": MONDAY_10},
        {"category": "protection.legal_aid"},
        {"search": "ejemplo"},
        {"modified_after": "2000-01-01T00:00:00Z"},
    ):
        ids, total = _listed(client, world, headers, **params)
        assert ids == visible, params
        assert total == len(visible), params
    # Every other read path that could name the service keeps silent about it too.
    lat, lon = SAFE_HOUSE
    for path, params in (
        ("/api/v1/services", {"per_page": 100}),
        (f"/api/v1/organizations/{world.org_a}", {}),
        ("/api/v1/organizations", {"per_page": 100}),
        ("/api/v1/service_at_locations", {"per_page": 100}),
        ("/api/v1/service_at_locations", {"service_id": world.hidden_id}),
        ("/api/v1/search", {"near": f"{lat},{lon}", "limit": 100}),
        ("/api/v1/search", {"municipality": "0901", "limit": 100}),
        ("/api/v1/search", {"near": f"{lat},{lon}", "q": "casa segura"}),
    ):
        response = client.get(path, params=params, headers=headers)
        assert response.status_code == 200, (path, response.text)
        for secret in (world.hidden_id, world.hidden_name, world.safe_house_id):
            assert secret not in response.text, (path, params)
    # /api/v1/match answers trusted roles only (caseworker, justice, steward): not tested here.


@pytest.mark.parametrize("audience", TRUSTED)
def test_trusted_roles_and_the_owner_see_it(
    client: TestClient, world: World, audience: str
) -> None:
    headers = world.headers(audience)
    read = client.get(f"/api/v1/services/{world.hidden_id}", headers=headers)
    assert read.status_code == 200, read.text
    assert read.json()["listed_despite_hidden_sites"] is False
    ids, total = _listed(client, world, headers, open_at=MONDAY_10)
    assert ids == {world.hidden_id, world.public_id, world.restricted_id, world.hotline_id}
    assert total == 4


def test_a_steward_lists_it_on_purpose_and_history_records_it(
    client: TestClient, world: World
) -> None:
    steward, public = world.headers("steward"), world.headers("public")
    flagged = client.patch(
        f"/api/v1/services/{world.hidden_id}",
        json={"listed_despite_hidden_sites": True},
        headers=steward,
    )
    assert flagged.status_code == 200, flagged.text
    assert flagged.json()["listed_despite_hidden_sites"] is True
    for audience in UNTRUSTED:
        headers = world.headers(audience)
        read = client.get(f"/api/v1/services/{world.hidden_id}", headers=headers)
        assert read.status_code == 200, (audience, read.text)
        # The flag itself would say "this service has sites you cannot see": not shown.
        assert "listed_despite_hidden_sites" not in read.json()
        ids, total = _listed(client, world, headers)
        assert world.hidden_id in ids
        assert total == 4
    # The site itself stays hidden: listing the service reveals no place.
    assert client.get(f"/api/v1/locations/{world.safe_house_id}").status_code == 404
    assert client.get(f"/api/v1/service_at_locations/{world.hidden_link}").status_code == 404
    found = client.get(
        "/api/v1/search", params={"near": f"{SAFE_HOUSE[0]},{SAFE_HOUSE[1]}", "limit": 100}
    )
    assert world.hidden_link not in found.text
    history = client.get(
        "/api/v1/metadata", params={"resource_id": world.hidden_id}, headers=steward
    ).json()
    changes = [
        row
        for row in history
        if row["field_name"] == "listed_despite_hidden_sites"
        and row["last_action_type"] == "update"
    ]
    assert [(c["previous_value"], c["replacement_value"]) for c in changes] == [("False", "True")]
    assert changes[0]["updated_by"].startswith("user:")
    unflagged = client.patch(
        f"/api/v1/services/{world.hidden_id}",
        json={"listed_despite_hidden_sites": False},
        headers=steward,
    )
    assert unflagged.status_code == 200
    assert client.get(f"/api/v1/services/{world.hidden_id}", headers=public).status_code == 404


def test_a_provider_cannot_set_the_flag(client: TestClient, world: World) -> None:
    provider, steward = world.headers("provider_of_a"), world.headers("steward")
    refused = client.patch(
        f"/api/v1/services/{world.hidden_id}",
        json={"listed_despite_hidden_sites": True, "name": "Otro nombre (ejemplo)"},
        headers=provider,
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    stored = client.get(f"/api/v1/services/{world.hidden_id}", headers=steward).json()
    assert stored["listed_despite_hidden_sites"] is False
    assert stored["name"] == world.hidden_name  # nothing of the refused write landed
    history = client.get(
        "/api/v1/metadata", params={"resource_id": world.hidden_id}, headers=steward
    ).json()
    assert all(row["last_action_type"] == "create" for row in history)
    created = client.post(
        "/api/v1/services",
        json=service_body(uuid.UUID(world.org_a), listed_despite_hidden_sites=True),
        headers=provider,
    )
    assert created.status_code == 403
    # Restating the current value is no change, and a provider may send it back.
    restated = client.patch(
        f"/api/v1/services/{world.hidden_id}",
        json={"listed_despite_hidden_sites": False},
        headers=provider,
    )
    assert restated.status_code == 200, restated.text
    # Once a steward has set it, a provider cannot clear it either.
    client.patch(
        f"/api/v1/services/{world.hidden_id}",
        json={"listed_despite_hidden_sites": True},
        headers=steward,
    )
    cleared = client.patch(
        f"/api/v1/services/{world.hidden_id}",
        json={"listed_despite_hidden_sites": False},
        headers=provider,
    )
    assert cleared.status_code == 403


def test_a_provider_of_another_org_cannot_reach_it_to_edit(
    client: TestClient, world: World
) -> None:
    other = world.headers("provider_of_b")
    for method, path, body in (
        ("PATCH", f"/api/v1/services/{world.hidden_id}", {"name": "x"}),
        ("DELETE", f"/api/v1/services/{world.hidden_id}", None),
        (
            "PUT",
            f"/api/v1/services/{world.hidden_id}/capacity",
            {"capacity": [{"unit": "bed", "available": 1}]},
        ),
    ):
        response = client.request(method, path, json=body, headers=other)
        assert response.status_code == 404, (method, response.text)
        assert world.hidden_name not in response.text
    # The visible service of A answers 403 instead: known, but not theirs.
    assert (
        client.patch(
            f"/api/v1/services/{world.public_id}", json={"name": "x"}, headers=other
        ).status_code
        == 403
    )
    assert (
        client.patch(
            f"/api/v1/services/{world.hidden_id}", json={"name": "x"}, headers=other
        ).status_code
        == 404
    )


def test_a_service_with_no_location_is_public(client: TestClient, world: World) -> None:
    read = client.get(f"/api/v1/services/{world.hotline_id}")
    assert read.status_code == 200
    assert "listed_despite_hidden_sites" not in read.json()


def test_one_visible_site_is_enough(client: TestClient, world: World) -> None:
    steward = world.headers("steward")
    _site(client, steward, uuid.UUID(world.org_a), world.hidden_id, "public")
    assert client.get(f"/api/v1/services/{world.hidden_id}").status_code == 200
    ids, total = _listed(client, world, {})
    assert world.hidden_id in ids
    assert total == 4


def test_closing_the_safe_house_does_not_make_its_service_public(
    client: TestClient, world: World
) -> None:
    """Decision: whether a site is defunct plays no part; its visibility still counts."""
    steward = world.headers("steward")
    closed = client.delete(f"/api/v1/locations/{world.safe_house_id}", headers=steward)
    assert closed.status_code == 204
    assert client.get(f"/api/v1/services/{world.hidden_id}").status_code == 404
    # A public site that closes leaves its service listed as before.
    public_site = client.get(
        "/api/v1/service_at_locations", params={"service_id": world.public_id}
    ).json()["contents"][0]["location_id"]
    assert client.delete(f"/api/v1/locations/{public_site}", headers=steward).status_code == 204
    assert client.get(f"/api/v1/services/{world.public_id}").status_code == 200
    # Removing the link leaves a service with no location at all, listed like a hotline.
    assert (
        client.delete(
            f"/api/v1/service_at_locations/{world.hidden_link}", headers=steward
        ).status_code
        == 204
    )
    assert client.get(f"/api/v1/services/{world.hidden_id}").status_code == 200


def test_providers_see_their_own_service_even_at_another_orgs_hidden_site(
    app: FastAPI, client: TestClient, session: Session, world: World, unique: str
) -> None:
    """A steward may deliver A's service at B's safe house: A's staff still know their service,
    B's staff know it through their site, and nobody else knows it."""
    steward = world.headers("steward")
    org_b = make_organization(session, f"B2 {unique} (ejemplo)")
    shared = _service(client, steward, uuid.UUID(world.org_a), f"Compartido {unique} (ejemplo)")
    _site(client, steward, org_b.id, shared, "confidential", SAFE_HOUSE)
    provider_of_site = bearer(app, make_user(session, Role.PROVIDER, org_b.id))
    for headers in (world.headers("provider_of_a"), provider_of_site):
        assert client.get(f"/api/v1/services/{shared}", headers=headers).status_code == 200
    for audience in UNTRUSTED:
        read = client.get(f"/api/v1/services/{shared}", headers=world.headers(audience))
        assert read.status_code == 404, audience
    ids, total = _listed(client, world, world.headers("provider_of_a"))
    assert shared in ids
    assert total == 5
