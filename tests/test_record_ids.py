"""Record ids are no oracle (issue 10, point 3), and only stewards link organizations (point 4).

Before: a provider posting a location with another organization's confidential location id got
409 "A record with that id exists", and 201 with a fresh id. Now only stewards (who see every
record) and imports (domain calls with ``trusted_ids=True``) choose ids; anyone else who names
one gets the same 422 whether or not the id exists.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from referral_net.db.models import Location, Organization
from referral_net.domain import locations
from referral_net.schemas.directory import LocationCreate
from referral_net.security.roles import Principal, Role
from tests.factories import (
    bearer,
    location_body,
    make_organization,
    make_user,
    organization_body,
    service_body,
)

pytestmark = pytest.mark.db


def _refused_id(response: Any) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert [e["field"] for e in problem["errors"]] == ["body.id"]
    assert "body.id" in problem["detail"]


@pytest.fixture
def two_orgs(
    app: FastAPI, client: TestClient, session: Session, taxonomy_loaded: None
) -> dict[str, Any]:
    """Organization B's confidential site and service; a provider of A and a steward."""
    org_a = make_organization(session, "A (ejemplo)")
    org_b = make_organization(session, "B (ejemplo)")
    steward = bearer(app, make_user(session, Role.STEWARD))
    secret = client.post(
        "/api/v1/locations",
        json=location_body(org_b.id, visibility="confidential"),
        headers=steward,
    ).json()
    service_b = client.post("/api/v1/services", json=service_body(org_b.id), headers=steward)
    return {
        "org_a": org_a,
        "org_b": org_b,
        "steward": steward,
        "provider_a": bearer(app, make_user(session, Role.PROVIDER, org_a.id)),
        "secret_location": secret["id"],
        "service_b": service_b.json()["id"],
    }


def test_existing_and_fresh_ids_get_the_same_answer(
    client: TestClient, session: Session, two_orgs: dict[str, Any]
) -> None:
    provider, org_a = two_orgs["provider_a"], two_orgs["org_a"]
    taken = client.post(
        "/api/v1/locations",
        json=location_body(org_a.id, id=two_orgs["secret_location"]),
        headers=provider,
    )
    fresh = client.post(
        "/api/v1/locations", json=location_body(org_a.id, id=str(uuid.uuid4())), headers=provider
    )
    _refused_id(taken)
    _refused_id(fresh)
    assert taken.json() == {**fresh.json(), "instance": taken.json()["instance"]}
    assert two_orgs["secret_location"] not in taken.text
    # Nothing was written for either, and the hidden site is untouched.
    assert session.get(Location, uuid.UUID(two_orgs["secret_location"])) is not None
    listed = client.get(
        "/api/v1/locations", params={"organization_id": str(org_a.id)}, headers=provider
    ).json()
    assert listed["total_items"] == 0
    # Without an id the server assigns one.
    created = client.post("/api/v1/locations", json=location_body(org_a.id), headers=provider)
    assert created.status_code == 201, created.text
    assert created.json()["id"] != two_orgs["secret_location"]


def test_every_create_refuses_a_non_steward_id(
    app: FastAPI, client: TestClient, session: Session, two_orgs: dict[str, Any]
) -> None:
    provider, org_a = two_orgs["provider_a"], two_orgs["org_a"]
    _refused_id(
        client.post(
            "/api/v1/services",
            json=service_body(org_a.id, id=two_orgs["service_b"]),
            headers=provider,
        )
    )
    service = client.post("/api/v1/services", json=service_body(org_a.id), headers=provider)
    site = client.post("/api/v1/locations", json=location_body(org_a.id), headers=provider)
    assert service.status_code == site.status_code == 201
    link = {"service_id": service.json()["id"], "location_id": site.json()["id"]}
    _refused_id(
        client.post(
            "/api/v1/service_at_locations", json={**link, "id": str(uuid.uuid4())}, headers=provider
        )
    )
    assert (
        client.post("/api/v1/service_at_locations", json=link, headers=provider).status_code == 201
    )
    # Organizations are created by stewards only: any other role is refused before any id check.
    caseworker = bearer(app, make_user(session, Role.CASEWORKER))
    refused = client.post(
        "/api/v1/organizations",
        json=organization_body(id=str(two_orgs["org_b"].id)),
        headers=caseworker,
    )
    assert refused.status_code == 403


def test_stewards_keep_their_ids_and_see_collisions(
    client: TestClient, two_orgs: dict[str, Any]
) -> None:
    steward, org_a = two_orgs["steward"], two_orgs["org_a"]
    chosen = str(uuid.uuid4())
    kept = client.post(
        "/api/v1/locations", json=location_body(org_a.id, id=chosen), headers=steward
    )
    assert kept.status_code == 201, kept.text
    assert kept.json()["id"] == chosen
    for path, body in (
        ("/api/v1/locations", location_body(org_a.id, id=two_orgs["secret_location"])),
        ("/api/v1/services", service_body(org_a.id, id=two_orgs["service_b"])),
        ("/api/v1/organizations", organization_body(id=str(two_orgs["org_b"].id))),
    ):
        clash = client.post(path, json=body, headers=steward)
        assert clash.status_code == 409, (path, clash.text)
    named = str(uuid.uuid4())
    organization = client.post(
        "/api/v1/organizations", json=organization_body(id=named), headers=steward
    )
    assert organization.status_code == 201
    assert organization.json()["id"] == named


def test_imports_keep_their_ids_through_the_trusted_flag(
    session: Session, two_orgs: dict[str, Any]
) -> None:
    org_a = two_orgs["org_a"]
    provider = Principal(role=Role.PROVIDER, subject="user:importer", organization_id=org_a.id)
    chosen = uuid.uuid4()
    data = LocationCreate.model_validate(location_body(org_a.id, id=str(chosen)))
    imported = locations.create(session=session, principal=provider, data=data, trusted_ids=True)
    assert imported.id == chosen


# --- point 4: only stewards link organizations -------------------------------------------------


def test_a_provider_cannot_link_its_organization(
    client: TestClient, session: Session, two_orgs: dict[str, Any]
) -> None:
    provider, org_a, org_b = two_orgs["provider_a"], two_orgs["org_a"], two_orgs["org_b"]
    path = f"/api/v1/organizations/{org_a.id}"
    refused = client.patch(
        path,
        json={"parent_organization_id": str(org_b.id), "name": "Nuevo (ejemplo)"},
        headers=provider,
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    stored = client.get(path).json()
    assert stored.get("parent_organization_id") is None  # HSDS: absent, never null
    assert stored["name"] == "A (ejemplo)"
    history = client.get(
        "/api/v1/metadata", params={"resource_id": str(org_a.id)}, headers=two_orgs["steward"]
    ).json()
    assert history == []
    # Restating the unchanged value links nothing, and the rest of the PATCH goes through.
    restated = client.patch(
        path, json={"parent_organization_id": None, "name": "Nuevo (ejemplo)"}, headers=provider
    )
    assert restated.status_code == 200, restated.text
    # A steward links; then the provider can neither change nor clear the link.
    linked = client.patch(
        path, json={"parent_organization_id": str(org_b.id)}, headers=two_orgs["steward"]
    )
    assert linked.status_code == 200, linked.text
    assert linked.json()["parent_organization_id"] == str(org_b.id)
    cleared = client.patch(path, json={"parent_organization_id": None}, headers=provider)
    assert cleared.status_code == 403
    session.expire_all()
    stored_org = session.get(Organization, org_a.id)
    assert stored_org is not None
    assert stored_org.parent_organization_id == org_b.id


def test_stewards_link_only_to_existing_organizations_without_cycles(
    client: TestClient, two_orgs: dict[str, Any]
) -> None:
    steward, org_a, org_b = two_orgs["steward"], two_orgs["org_a"], two_orgs["org_b"]
    unknown = client.patch(
        f"/api/v1/organizations/{org_a.id}",
        json={"parent_organization_id": str(uuid.uuid4())},
        headers=steward,
    )
    assert unknown.status_code == 404
    assert (
        client.patch(
            f"/api/v1/organizations/{org_a.id}",
            json={"parent_organization_id": str(org_b.id)},
            headers=steward,
        ).status_code
        == 200
    )
    for target, parent in ((org_b, org_a), (org_a, org_a)):
        cycle = client.patch(
            f"/api/v1/organizations/{target.id}",
            json={"parent_organization_id": str(parent.id)},
            headers=steward,
        )
        assert cycle.status_code == 422, cycle.text
        assert [e["field"] for e in cycle.json()["errors"]] == ["body.parent_organization_id"]
    child = client.post(
        "/api/v1/organizations",
        json=organization_body(parent_organization_id=str(org_a.id)),
        headers=steward,
    )
    assert child.status_code == 201
    assert child.json()["parent_organization_id"] == str(org_a.id)
