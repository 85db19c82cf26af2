"""Organizations: CRUD, soft delete, ETag/If-Match, pagination, history, and who may write."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from referral_net.db.models import Metadata, Organization
from referral_net.security.roles import Role
from tests.factories import bearer, make_organization, make_user, organization_body

pytestmark = pytest.mark.db
BASE = "/api/v1/organizations"


def _count(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Organization)).one())


def test_create_read_update_delete(
    client: TestClient, steward_headers: dict[str, str], session: Session
) -> None:
    created = client.post(BASE, json=organization_body(), headers=steward_headers)
    assert created.status_code == 201, created.text
    org = created.json()
    assert org["phones"][0]["number"] == "+50255550101"  # normalised to E.164
    assert created.headers["ETag"]
    assert created.headers["Location"] == f"{BASE}/{org['id']}"

    read = client.get(f"{BASE}/{org['id']}")
    assert read.status_code == 200
    assert read.json()["name"] == "Asociación de prueba (ejemplo)"
    etag = read.headers["ETag"]

    patched = client.patch(
        f"{BASE}/{org['id']}",
        json={"name": "Nombre nuevo (ejemplo)"},
        headers={**steward_headers, "If-Match": etag},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "Nombre nuevo (ejemplo)"
    assert patched.json()["email"] == "info@example.org"  # untouched by the partial update
    assert patched.headers["ETag"] != etag

    deleted = client.delete(f"{BASE}/{org['id']}", headers=steward_headers)
    assert deleted.status_code == 204
    assert client.get(f"{BASE}/{org['id']}").status_code == 404  # gone for the public
    as_steward = client.get(f"{BASE}/{org['id']}", headers=steward_headers)
    assert as_steward.status_code == 200
    assert as_steward.json()["status"] == "defunct"
    listed = client.get(BASE, params={"search": "nombre nuevo"}).json()
    assert listed["total_items"] == 0


def test_stale_if_match_is_412_and_changes_nothing(
    client: TestClient, steward_headers: dict[str, str], session: Session
) -> None:
    org = client.post(BASE, json=organization_body(), headers=steward_headers)
    stale = org.headers["ETag"]
    first = client.patch(
        f"{BASE}/{org.json()['id']}",
        json={"description": "primera"},
        headers={**steward_headers, "If-Match": stale},
    )
    assert first.status_code == 200
    second = client.patch(
        f"{BASE}/{org.json()['id']}",
        json={"description": "segunda"},
        headers={**steward_headers, "If-Match": stale},
    )
    assert second.status_code == 412
    assert second.headers["content-type"] == "application/problem+json"
    assert second.headers["ETag"] == first.headers["ETag"]
    assert client.get(f"{BASE}/{org.json()['id']}").json()["description"] == "primera"
    stale_delete = client.delete(
        f"{BASE}/{org.json()['id']}", headers={**steward_headers, "If-Match": stale}
    )
    assert stale_delete.status_code == 412
    assert client.get(f"{BASE}/{org.json()['id']}").status_code == 200


def test_every_write_records_metadata(
    client: TestClient, steward_headers: dict[str, str], session: Session
) -> None:
    org_id = client.post(BASE, json=organization_body(), headers=steward_headers).json()["id"]
    client.patch(f"{BASE}/{org_id}", json={"name": "Otro (ejemplo)"}, headers=steward_headers)
    rows = session.exec(
        select(Metadata)
        .where(col(Metadata.resource_id) == uuid.UUID(org_id))
        .order_by(col(Metadata.last_action_date))
    ).all()
    creates = [r for r in rows if r.last_action_type == "create"]
    updates = [r for r in rows if r.last_action_type == "update"]
    assert {r.field_name for r in creates} >= {"name", "description", "email", "phones"}
    assert len(updates) == 1
    (change,) = updates
    assert change.field_name == "name"
    assert change.previous_value == "Asociación de prueba (ejemplo)"
    assert change.replacement_value == "Otro (ejemplo)"
    assert change.updated_by.startswith("user:steward-")
    history = client.get(
        "/api/v1/metadata", params={"resource_id": org_id}, headers=steward_headers
    )
    assert history.status_code == 200
    assert len(history.json()) == len(rows)
    assert client.get("/api/v1/metadata", params={"resource_id": org_id}).status_code == 401


def test_list_is_paginated_in_a_stable_order(
    client: TestClient, session: Session, unique: str
) -> None:
    for name in ["c", "a", "b", "a", "d"]:
        make_organization(session, name=f"{unique}-{name} (ejemplo)")
    first = client.get(BASE, params={"search": unique, "per_page": 2, "page": 1}).json()
    second = client.get(BASE, params={"search": unique, "per_page": 2, "page": 2}).json()
    third = client.get(BASE, params={"search": unique, "per_page": 2, "page": 3}).json()
    assert first["total_items"] == 5
    assert first["total_pages"] == 3
    assert first["first_page"] is True
    assert third["last_page"] is True
    assert third["size"] == 1
    names = [o["name"] for page in (first, second, third) for o in page["contents"]]
    assert names == sorted(names)
    ids = [o["id"] for page in (first, second, third) for o in page["contents"]]
    assert len(set(ids)) == 5
    again = client.get(BASE, params={"search": unique, "per_page": 2, "page": 1}).json()
    assert [o["id"] for o in again["contents"]] == [o["id"] for o in first["contents"]]


def test_page_size_is_capped(client: TestClient) -> None:
    response = client.get(BASE, params={"per_page": 10_000})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


def test_who_may_write(app: FastAPI, client: TestClient, session: Session) -> None:
    org_a = make_organization(session, "A (ejemplo)")
    org_b = make_organization(session, "B (ejemplo)")
    provider_a = bearer(app, make_user(session, Role.PROVIDER, org_a.id))
    caseworker = bearer(app, make_user(session, Role.CASEWORKER))
    before = _count(session)

    assert client.post(BASE, json=organization_body()).status_code == 401
    assert client.post(BASE, json=organization_body(), headers=caseworker).status_code == 403
    assert client.post(BASE, json=organization_body(), headers=provider_a).status_code == 403
    assert _count(session) == before

    own = client.patch(f"{BASE}/{org_a.id}", json={"description": "x"}, headers=provider_a)
    assert own.status_code == 200
    other = client.patch(f"{BASE}/{org_b.id}", json={"description": "x"}, headers=provider_a)
    assert other.status_code == 403
    assert client.get(f"{BASE}/{org_b.id}").json()["description"] == "test organization"


def test_unknown_and_malformed_ids(client: TestClient) -> None:
    missing = client.get(f"{BASE}/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    malformed = client.get(f"{BASE}/not-a-uuid")
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["field"] == "path.organization_id"
