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

from referral_net.db.models import Organization
from referral_net.domain import keys, locations, service_at_locations, services
from referral_net.schemas.directory import (
    LocationCreate,
    ServiceAtLocationCreate,
    ServiceCreate,
)
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
    ("api root", lambda w: ("GET", "/api/v1/", None), READ),
    ("taxonomies", lambda w: ("GET", "/api/v1/taxonomies", None), READ),
    ("taxonomy terms", lambda w: ("GET", "/api/v1/taxonomy_terms", None), READ),
    ("taxonomy", lambda w: ("GET", f"/api/v1/taxonomies/{TAXONOMY_ID}", None), READ),
    ("taxonomy term", lambda w: ("GET", f"/api/v1/taxonomy_terms/{TERM_ID}", None), READ),
    ("search", lambda w: ("GET", "/api/v1/search?near=14.8347,-91.5181", None), READ),
    # The public export, whoever asks (more only through the audited CLI export).
    ("export", lambda w: ("GET", "/api/v1/export?format=ndjson", None), READ),
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
    ("list imports", lambda w: ("GET", "/api/v1/imports", None), STEWARD_ONLY),
    # Stewards only; a steward's upload is queued (202) and an unknown job is a 404 (below).
    (
        "submit import",
        lambda w: ("POST", "/api/v1/imports?dry_run=true", {"id": str(w.org.id), "name": "x"}),
        set(),
    ),
    ("read import", lambda w: ("GET", f"/api/v1/imports/{w.org.id}", None), set()),
    # Referrals (issue 17): staff of the sending or receiving organization only; stewards see the
    # report (aggregates) and set webhooks. The matrix's caseworker and justice users belong to
    # no organization, so they may not send.
    ("list referrals", lambda w: ("GET", "/api/v1/referrals", None), {"provider_a", "provider_b"}),
    ("read referral", lambda w: ("GET", f"/api/v1/referrals/{w.org.id}", None), set()),
    (
        "send referral",
        lambda w: (
            "POST",
            "/api/v1/referrals",
            {
                "service_at_location_id": str(w.link_id),
                "needs": ["protection.legal_aid"],
                "consent": {"given": True, "given_on": "2026-01-01"},
            },
        ),
        set(),
    ),
    (
        "move referral",
        lambda w: ("POST", f"/api/v1/referrals/{w.org.id}/transitions", {"status": "received"}),
        set(),
    ),
    ("referral report", lambda w: ("GET", "/api/v1/reports/referrals", None), STEWARD_ONLY),
    (
        "set referral webhook",
        lambda w: (
            "PUT",
            f"/api/v1/referral-webhooks/{w.org.id}",
            {"url": "https://example.org/hook", "secret": "s" * 32},
        ),
        STEWARD_ONLY,
    ),
    (
        "delete referral webhook",
        lambda w: ("DELETE", f"/api/v1/referral-webhooks/{w.org.id}", None),
        STEWARD_ONLY,  # idempotent: 204 whether a webhook was set or not
    ),
]
# What a steward gets from the calls above that answer neither 200 nor 201 nor 204.
STEWARD_STATUS = {"submit import": 202, "read import": 404}
# An unknown referral is a 404 to those who may work referrals (nobody learns whether it exists).
REFERRAL_WORKERS = {"caseworker", "justice", "provider_a", "provider_b"}
WORKER_STATUS = {"read referral": 404, "move referral": 404}


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
        elif name in STEWARD_STATUS and role == "steward":
            expected = {STEWARD_STATUS[name]}
        elif name in WORKER_STATUS and role in REFERRAL_WORKERS:
            expected = {WORKER_STATUS[name]}
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


# --- hidden sites: restricted and confidential, role by role ------------------------------------

# Who sees organization A's restricted and confidential sites exactly; everyone else sees the
# restricted one at its municipality and does not know the confidential one exists.
SEES_A_EXACTLY = {"caseworker", "justice", "steward", "provider_a"}
SITE_ROLES = (
    "anonymous",
    "partner",
    "caseworker",
    "justice",
    "provider_a",
    "provider_b",
    "steward",
    "admin",
    "admin_of_a",
)
VISIBILITIES = ("public", "restricted", "confidential")
SAFE_HOUSE = (14.7750, -91.5150)  # Quetzaltenango, far from its municipality point
SHELTER = (14.8710, -91.4920)


@dataclass
class Sites:
    """Organization A's site of each visibility, each with its own service and link."""

    org_a: uuid.UUID
    org_b: uuid.UUID
    location: dict[str, uuid.UUID]
    service: dict[str, uuid.UUID]
    link: dict[str, uuid.UUID]
    name: dict[str, str]
    point: dict[str, tuple[float, float]]


@pytest.fixture
def sites(session: Session, taxonomy_loaded: None) -> Sites:
    """A public office, a restricted shelter and a confidential safe house of organization A."""
    org_a = Organization(name="A (ejemplo)", description="a")
    org_b = Organization(name="B (ejemplo)", description="b")
    session.add_all([org_a, org_b])
    session.commit()
    points = {"public": (14.8347, -91.5181), "restricted": SHELTER, "confidential": SAFE_HOUSE}
    made = Sites(org_a.id, org_b.id, {}, {}, {}, {}, points)
    for visibility in VISIBILITIES:
        name = f"Sede {visibility} {uuid.uuid4().hex[:6]} (ejemplo)"
        location = locations.create(
            session=session,
            principal=STEWARD,
            data=LocationCreate.model_validate(
                location_body(
                    org_a.id,
                    name=name,
                    visibility=visibility,
                    latitude=points[visibility][0],
                    longitude=points[visibility][1],
                )
            ),
        )
        service = services.create(
            session=session,
            principal=STEWARD,
            data=ServiceCreate.model_validate(
                service_body(org_a.id, name=f"Servicio {visibility} (ejemplo)")
            ),
        )
        link = service_at_locations.create(
            session=session,
            principal=STEWARD,
            data=ServiceAtLocationCreate(service_id=service.id, location_id=location.id),
        )
        made.location[visibility] = location.id
        made.service[visibility] = service.id
        made.link[visibility] = link.id
        made.name[visibility] = name
    return made


@pytest.fixture
def site_headers(app: FastAPI, session: Session, sites: Sites) -> dict[str, dict[str, str]]:
    """Request headers for every role, including non-trusted accounts of organization A."""
    _, raw = keys.create_key(session=session, name=f"partner-{uuid.uuid4().hex[:6]}")
    session.commit()
    return {
        "anonymous": {},
        "partner": {"X-API-Key": raw},
        "caseworker": bearer(app, make_user(session, Role.CASEWORKER)),
        "justice": bearer(app, make_user(session, Role.JUSTICE)),
        "provider_a": bearer(app, make_user(session, Role.PROVIDER, sites.org_a)),
        "provider_b": bearer(app, make_user(session, Role.PROVIDER, sites.org_b)),
        "steward": bearer(app, make_user(session, Role.STEWARD)),
        "admin": bearer(app, make_user(session, Role.ADMIN)),
        # An account of organization A whose role is not provider staff: belonging to the
        # organization alone grants nothing. (Partners are API keys, which belong to no
        # organization, and the schema refuses a partner account; a partner principal with an
        # organization is covered in tests/unit/test_access_rules.py.)
        "admin_of_a": bearer(app, make_user(session, Role.ADMIN, sites.org_a)),
    }


@pytest.mark.parametrize("role", SITE_ROLES)
def test_each_role_sees_each_visibility_as_the_rule_says(
    client: TestClient, sites: Sites, site_headers: dict[str, dict[str, str]], role: str
) -> None:
    headers = site_headers[role]
    exact = role in SEES_A_EXACTLY
    for visibility in VISIBILITIES:
        response = client.get(f"/api/v1/locations/{sites.location[visibility]}", headers=headers)
        if visibility == "confidential" and not exact:
            assert response.status_code == 404, (role, visibility)
            assert sites.name[visibility] not in response.text
            continue
        assert response.status_code == 200, (role, visibility, response.text)
        body = response.json()
        lat, lon = sites.point[visibility]
        if visibility == "public" or exact:
            assert body["precision"] == "exact", (role, visibility)
            assert (body["latitude"], body["longitude"]) == (lat, lon)
            assert body["addresses"], (role, visibility)
        else:
            assert body["precision"] == "municipality", (role, visibility)
            assert (body["latitude"], body["longitude"]) != (lat, lon)
            assert not body["addresses"]
            assert not body["phones"]
    # Lists of organization A's records: the confidential site, its link and its service (seen
    # only there) are listed and counted for exactly the roles that may see it.
    expected = set(VISIBILITIES) if exact else {"public", "restricted"}
    listed = client.get(
        "/api/v1/locations", params={"organization_id": str(sites.org_a)}, headers=headers
    ).json()
    assert {item["id"] for item in listed["contents"]} == {
        str(sites.location[v]) for v in expected
    }, role
    assert listed["total_items"] == len(expected)
    by_id = {item["id"]: item for item in listed["contents"]}
    for visibility in expected:
        shown = by_id[str(sites.location[visibility])]
        precise = visibility == "public" or exact
        assert shown["precision"] == ("exact" if precise else "municipality"), (role, visibility)
    links = client.get(
        "/api/v1/service_at_locations",
        params={"organization_id": str(sites.org_a)},
        headers=headers,
    ).json()
    assert {item["id"] for item in links["contents"]} == {str(sites.link[v]) for v in expected}
    assert links["total_items"] == len(expected)
    offered = client.get(
        "/api/v1/services", params={"organization_id": str(sites.org_a)}, headers=headers
    ).json()
    assert {item["id"] for item in offered["contents"]} == {
        str(sites.service[v]) for v in expected
    }, role
    assert offered["total_items"] == len(expected)


@pytest.mark.parametrize("role", ["provider_b", "admin", "admin_of_a", "partner", "anonymous"])
def test_no_confidential_link_reaches_a_provider_of_another_organization(
    client: TestClient, sites: Sites, site_headers: dict[str, dict[str, str]], role: str
) -> None:
    """access.visible_locations_clause: a provider of B must not get A's confidential links,
    by any filter of /service_at_locations, nor the safe house's name."""
    headers = site_headers[role]
    secret_link = str(sites.link["confidential"])
    queries: list[dict[str, str]] = [
        {},
        {"service_id": str(sites.service["confidential"])},
        {"location_id": str(sites.location["confidential"])},
        {"organization_id": str(sites.org_a)},
    ]
    for params in queries:
        response = client.get(
            "/api/v1/service_at_locations", params={**params, "per_page": "100"}, headers=headers
        )
        assert response.status_code == 200
        assert secret_link not in response.text, params
        assert sites.name["confidential"] not in response.text, params
    item = client.get(f"/api/v1/service_at_locations/{secret_link}", headers=headers)
    assert item.status_code == 404
    assert sites.name["confidential"] not in item.text


@pytest.mark.parametrize("role", SITE_ROLES)
def test_search_shows_the_safe_house_only_to_trusted_roles(
    client: TestClient, sites: Sites, site_headers: dict[str, dict[str, str]], role: str
) -> None:
    """Only trusted roles search exact points; a provider's search never returns another
    organization's confidential site (nor, since it searches the public points, its own)."""
    lat, lon = SAFE_HOUSE
    for params in (
        {"near": f"{lat},{lon}", "radius_m": "3000", "limit": "100"},
        {"municipality": "0901", "limit": "100"},
        {"bbox": f"{lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}", "limit": "100"},
    ):
        response = client.get("/api/v1/search", params=params, headers=site_headers[role])
        assert response.status_code == 200, response.text
        found = {r["service_at_location_id"]: r for r in response.json()["contents"]}
        secret = str(sites.link["confidential"])
        if role in {"caseworker", "justice", "steward"}:
            assert secret in found, (role, params)
            place = found[secret]["location"]
            assert place["precision"] == "exact"
            assert (place["latitude"], place["longitude"]) == SAFE_HOUSE
        else:
            assert secret not in found, (role, params)
            assert sites.name["confidential"] not in response.text
    # Near the restricted shelter: trusted roles find it at its door; the others only at its
    # municipality's point, so a tight radius around the real site finds nothing.
    near_shelter = {"near": f"{SHELTER[0]},{SHELTER[1]}", "radius_m": "300"}
    tight = client.get("/api/v1/search", params=near_shelter, headers=site_headers[role]).json()
    found_ids = {r["service_at_location_id"] for r in tight["contents"]}
    trusted = role in {"caseworker", "justice", "steward"}
    assert (str(sites.link["restricted"]) in found_ids) is trusted, role


def _patch_visibility(
    client: TestClient, location_id: uuid.UUID, visibility: str, headers: dict[str, str]
) -> int:
    response = client.patch(
        f"/api/v1/locations/{location_id}", json={"visibility": visibility}, headers=headers
    )
    return response.status_code


@pytest.mark.parametrize(
    ("current", "requested", "provider_may"),
    [
        ("confidential", "confidential", True),  # unchanged: allowed, not a raise
        ("restricted", "restricted", True),
        ("public", "public", True),
        ("public", "restricted", True),
        ("restricted", "confidential", True),
        ("public", "confidential", True),
        ("confidential", "restricted", False),  # raising needs a steward
        ("restricted", "public", False),
        ("confidential", "public", False),
    ],
)
def test_only_stewards_make_a_site_more_visible(
    client: TestClient,
    sites: Sites,
    site_headers: dict[str, dict[str, str]],
    current: str,
    requested: str,
    provider_may: bool,
) -> None:
    steward, provider = site_headers["steward"], site_headers["provider_a"]
    made = client.post(
        "/api/v1/locations",
        json=location_body(sites.org_a, visibility=current),
        headers=steward,
    )
    assert made.status_code == 201, made.text
    location_id = uuid.UUID(made.json()["id"])
    status = _patch_visibility(client, location_id, requested, provider)
    assert status == (200 if provider_may else 403), (current, requested, status)
    now = client.get(f"/api/v1/locations/{location_id}", headers=steward).json()["visibility"]
    assert now == (requested if provider_may else current)
    # A provider of another organization may not change it at all, a steward always may.
    other = _patch_visibility(client, location_id, requested, site_headers["provider_b"])
    assert other == (404 if now == "confidential" else 403)
    assert _patch_visibility(client, location_id, current, steward) == 200


@pytest.mark.parametrize("role", ["caseworker", "justice", "provider_a", "admin"])
def test_deleted_records_are_gone_for_everyone_but_stewards(
    client: TestClient, sites: Sites, site_headers: dict[str, dict[str, str]], role: str
) -> None:
    steward, headers = site_headers["steward"], site_headers[role]
    paths = {
        "locations": f"/api/v1/locations/{sites.location['public']}",
        "services": f"/api/v1/services/{sites.service['public']}",
        "organizations": f"/api/v1/organizations/{sites.org_b}",
    }
    for path in paths.values():
        assert client.get(path, headers=headers).status_code == 200, path
        assert client.delete(path, headers=steward).status_code == 204, path
    for resource, path in paths.items():
        assert client.get(path, headers=headers).status_code == 404, (role, path)
        gone = path.rsplit("/", 1)[1]
        listing = client.get(
            f"/api/v1/{resource}",
            params={"include_defunct": "true", "per_page": "100"},
            headers=headers,
        )
        assert listing.status_code == 200
        assert gone not in listing.text, (role, resource)
        # Stewards still read it, marked defunct, and list it on request.
        kept = client.get(path, headers=steward)
        assert kept.status_code == 200
        assert kept.json()["status"] == "defunct"
        listed = client.get(
            f"/api/v1/{resource}",
            params={"include_defunct": "true", "per_page": "100"},
            headers=steward,
        )
        assert gone in listed.text, resource
    # The public office's link disappears with its location and service.
    link = client.get(f"/api/v1/service_at_locations/{sites.link['public']}", headers=headers)
    assert link.status_code == 404
    assert (
        client.get(
            f"/api/v1/service_at_locations/{sites.link['public']}", headers=steward
        ).status_code
        == 200
    )


def test_justice_and_caseworkers_read_the_safe_house_exactly_and_are_audited(
    client: TestClient, sites: Sites, site_headers: dict[str, dict[str, str]]
) -> None:
    for role in ("justice", "caseworker"):
        response = client.get(
            f"/api/v1/locations/{sites.location['confidential']}", headers=site_headers[role]
        )
        assert response.status_code == 200, role
        body = response.json()
        assert (body["precision"], body["latitude"], body["longitude"]) == ("exact", *SAFE_HOUSE)
        assert body["addresses"][0]["address_1"] == "4a Calle 10-20, Zona 1"
    trail = client.get(
        "/api/v1/audit",
        params={"resource_id": str(sites.location["confidential"])},
        headers=site_headers["steward"],
    )
    assert trail.status_code == 200
    assert len([e for e in trail.json()["contents"] if e["action"] == "read_exact"]) >= 2


def test_a_provider_knows_its_own_service_even_at_another_organizations_hidden_site(
    client: TestClient,
    session: Session,
    sites: Sites,
    site_headers: dict[str, dict[str, str]],
) -> None:
    """A steward may deliver A's service at B's safe house (a shared shelter). Provider staff of A
    still know their own service; the public does not; B's staff know it through their site."""
    b_house = locations.create(
        session=session,
        principal=STEWARD,
        data=LocationCreate.model_validate(location_body(sites.org_b, visibility="confidential")),
    )
    service = services.create(
        session=session,
        principal=STEWARD,
        data=ServiceCreate.model_validate(service_body(sites.org_a, name="Compartido (ejemplo)")),
    )
    service_at_locations.create(
        session=session,
        principal=STEWARD,
        data=ServiceAtLocationCreate(service_id=service.id, location_id=b_house.id),
    )
    expected = {
        "provider_a": 200,
        "provider_b": 200,
        "caseworker": 200,
        "anonymous": 404,
        "partner": 404,
        "admin_of_a": 404,
    }
    for role, status in expected.items():
        response = client.get(f"/api/v1/services/{service.id}", headers=site_headers[role])
        assert response.status_code == status, role
        listed = client.get(
            "/api/v1/services",
            params={"organization_id": str(sites.org_a), "per_page": "100"},
            headers=site_headers[role],
        )
        assert (str(service.id) in listed.text) is (status == 200), role
