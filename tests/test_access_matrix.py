"""Every endpoint x every role: allowed or denied, on both backends.

Roles: anonymous, partner (API key), caseworker, justice, provider of org A, provider of org B,
steward and admin. Each call gets fresh records of organization A, so one call's write never
changes what the next one sees. Denials are 401 for anonymous callers and 403 for known ones.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from referral_net.api.schemas.directory import (
    LocationCreate,
    ServiceAtLocationCreate,
    ServiceCreate,
)
from referral_net.db.models import Organization
from referral_net.domain import keys, locations, service_at_locations, services
from referral_net.security.roles import Principal, Role
from tests.factories import bearer, location_body, make_user, organization_body, service_body

pytestmark = pytest.mark.db
STEWARD = Principal(role=Role.STEWARD, subject="user:test")
_TAXONOMY = json.loads((Path(__file__).resolve().parents[1] / "seed/taxonomy.json").read_text())
TAXONOMY_ID = _TAXONOMY["taxonomy"]["id"]
TERM_ID = _TAXONOMY["terms"][0]["id"]
ROLES = (
    "anonymous",
    "partner",
    "caseworker",
    "justice",
    "provider_a",
    "provider_b",
    "steward",
    "admin",
)
READ = set(ROLES)
STEWARD_ONLY = {"steward"}
EDITORS_OF_A = {"steward", "provider_a"}
MATCHERS = {"caseworker", "justice", "steward"}


@dataclass
class World:
    """Organization A's records, fresh for one call."""

    org: Organization
    service_id: uuid.UUID
    location_id: uuid.UUID
    link_id: uuid.UUID


def _world(session: Session, org_a: Organization) -> World:
    location = locations.create(
        session=session,
        principal=STEWARD,
        data=LocationCreate.model_validate(location_body(org_a.id)),
    )
    service = services.create(
        session=session,
        principal=STEWARD,
        data=ServiceCreate.model_validate(service_body(org_a.id)),
    )
    link = service_at_locations.create(
        session=session,
        principal=STEWARD,
        data=ServiceAtLocationCreate(service_id=service.id, location_id=location.id),
    )
    return World(org_a, service.id, location.id, link.id)


Call = Callable[[World], tuple[str, str, dict[str, Any] | None]]
ENDPOINTS: list[tuple[str, Call, set[str]]] = [
    ("list organizations", lambda w: ("GET", "/api/v1/organizations", None), READ),
    ("read organization", lambda w: ("GET", f"/api/v1/organizations/{w.org.id}", None), READ),
    (
        "create organization",
        lambda w: ("POST", "/api/v1/organizations", organization_body()),
        STEWARD_ONLY,
    ),
    (
        "update organization",
        lambda w: ("PATCH", f"/api/v1/organizations/{w.org.id}", {"description": "x"}),
        EDITORS_OF_A,
    ),
    (
        "delete organization",
        lambda w: ("DELETE", f"/api/v1/organizations/{w.org.id}", None),
        STEWARD_ONLY,
    ),
    ("list services", lambda w: ("GET", "/api/v1/services", None), READ),
    ("read service", lambda w: ("GET", f"/api/v1/services/{w.service_id}", None), READ),
    (
        "create service",
        lambda w: ("POST", "/api/v1/services", service_body(w.org.id)),
        EDITORS_OF_A,
    ),
    (
        "update service",
        lambda w: ("PATCH", f"/api/v1/services/{w.service_id}", {"name": "x"}),
        EDITORS_OF_A,
    ),
    (
        "delete service",
        lambda w: ("DELETE", f"/api/v1/services/{w.service_id}", None),
        EDITORS_OF_A,
    ),
    (
        "update capacity",
        lambda w: (
            "PUT",
            f"/api/v1/services/{w.service_id}/capacity",
            {"capacity": [{"unit": "bed", "available": 1}]},
        ),
        EDITORS_OF_A,
    ),
    (
        "verify service",
        lambda w: ("POST", f"/api/v1/services/{w.service_id}/verify", {}),
        STEWARD_ONLY,
    ),
    ("verification due", lambda w: ("GET", "/api/v1/verification/due", None), STEWARD_ONLY),
    ("list locations", lambda w: ("GET", "/api/v1/locations", None), READ),
    ("read location", lambda w: ("GET", f"/api/v1/locations/{w.location_id}", None), READ),
    (
        "create location",
        lambda w: ("POST", "/api/v1/locations", location_body(w.org.id)),
        EDITORS_OF_A,
    ),
    (
        "update location",
        lambda w: ("PATCH", f"/api/v1/locations/{w.location_id}", {"name": "x"}),
        EDITORS_OF_A,
    ),
    (
        "delete location",
        lambda w: ("DELETE", f"/api/v1/locations/{w.location_id}", None),
        EDITORS_OF_A,
    ),
    ("list links", lambda w: ("GET", "/api/v1/service_at_locations", None), READ),
    ("read link", lambda w: ("GET", f"/api/v1/service_at_locations/{w.link_id}", None), READ),
    (
        "create link",
        lambda w: (
            "POST",
            "/api/v1/service_at_locations",
            {
                "service_id": str(w.service_id),
                "location_id": str(w.location_id),
                "description": "otra",
            },
        ),
        set(),
    ),  # duplicate: 409 for editors
    (
        "update link",
        lambda w: ("PATCH", f"/api/v1/service_at_locations/{w.link_id}", {"description": "x"}),
        EDITORS_OF_A,
    ),
    (
        "delete link",
        lambda w: ("DELETE", f"/api/v1/service_at_locations/{w.link_id}", None),
        EDITORS_OF_A,
    ),
    ("taxonomies", lambda w: ("GET", "/api/v1/taxonomies", None), READ),
    ("taxonomy terms", lambda w: ("GET", "/api/v1/taxonomy_terms", None), READ),
    ("taxonomy", lambda w: ("GET", f"/api/v1/taxonomies/{TAXONOMY_ID}", None), READ),
    ("taxonomy term", lambda w: ("GET", f"/api/v1/taxonomy_terms/{TERM_ID}", None), READ),
    ("search", lambda w: ("GET", "/api/v1/search?near=14.8347,-91.5181", None), READ),
    (
        "match",
        lambda w: (
            "POST",
            "/api/v1/match",
            {"location": {"municipality": "0901"}, "needs": [{"code": "protection.legal_aid"}]},
        ),
        MATCHERS,
    ),
    ("history", lambda w: ("GET", f"/api/v1/metadata?resource_id={w.org.id}", None), STEWARD_ONLY),
    ("audit", lambda w: ("GET", f"/api/v1/audit?resource_id={w.org.id}", None), STEWARD_ONLY),
    ("audit verify", lambda w: ("GET", "/api/v1/audit/verify", None), STEWARD_ONLY),
]


@pytest.fixture
def org_a(session: Session, taxonomy_loaded: None) -> Organization:
    """Organization A."""
    organization = Organization(name="A (ejemplo)", description="a")
    session.add(organization)
    session.commit()
    return organization


@pytest.fixture
def headers_for(app: FastAPI, session: Session, org_a: Organization) -> dict[str, dict[str, str]]:
    """Request headers for every role."""
    org_b = Organization(name="B (ejemplo)", description="b")
    session.add(org_b)
    session.commit()
    _, raw = keys.create_key(session=session, name=f"partner-{uuid.uuid4().hex[:6]}")
    session.commit()
    return {
        "anonymous": {},
        "partner": {"X-API-Key": raw},
        "caseworker": bearer(app, make_user(session, Role.CASEWORKER)),
        "justice": bearer(app, make_user(session, Role.JUSTICE)),
        "provider_a": bearer(app, make_user(session, Role.PROVIDER, org_a.id)),
        "provider_b": bearer(app, make_user(session, Role.PROVIDER, org_b.id)),
        "steward": bearer(app, make_user(session, Role.STEWARD)),
        "admin": bearer(app, make_user(session, Role.ADMIN)),
    }


@pytest.mark.parametrize("role", ROLES)
def test_every_endpoint_allows_or_denies(
    client: TestClient,
    session: Session,
    org_a: Organization,
    headers_for: dict[str, dict[str, str]],
    role: str,
) -> None:
    outcomes = {}
    for name, make_call, allowed in ENDPOINTS:
        method, path, body = make_call(_world(session, org_a))
        response = client.request(method, path, json=body, headers=headers_for[role])
        outcomes[name] = response.status_code
        if name == "create link":
            expected = {409} if role in EDITORS_OF_A else ({401} if role == "anonymous" else {403})
        elif role in allowed:
            expected = {200, 201, 204}
        else:
            expected = {401} if role == "anonymous" else {403}
        assert response.status_code in expected, (role, name, response.status_code, response.text)
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json"
    assert len(outcomes) == len(ENDPOINTS)


def test_matrix_covers_every_route(app: FastAPI) -> None:
    """A new endpoint must be added to the matrix (health, docs and log-in excepted)."""
    covered = {
        make_call(
            World(
                Organization(id=uuid.uuid4(), name="x", description=""),
                uuid.uuid4(),
                uuid.uuid4(),
                uuid.uuid4(),
            )
        )[:2]
        for _, make_call, _ in ENDPOINTS
    }
    templates = set()
    for method, path in covered:
        normalised = path.split("?")[0]
        parts = ["{id}" if _is_uuid(p) else p for p in normalised.split("/")]
        templates.add((method, "/".join(parts)))
    missing = []
    routes = 0
    for path, item in app.openapi()["paths"].items():
        if not path.startswith("/api/v1/") or path.startswith("/api/v1/auth/"):
            continue
        for method in item:
            routes += 1
            template = "/".join("{id}" if p.startswith("{") else p for p in path.split("/"))
            if (method.upper(), template) not in templates:
                missing.append(f"{method.upper()} {path}")
    assert routes >= len(ENDPOINTS) - 1
    assert missing == []


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
