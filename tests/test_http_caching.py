"""HTTP caching never hands one audience's view to another (api/caching.py, api/etag.py).

Before: ``GET /api/v1/locations/{id}`` of a restricted site sent the caseworker's exact copy and
the public's coarse copy with the same strong ETag, and neither ``Cache-Control`` nor ``Vary``,
so a URL-keyed cache in front of the service could serve one to the other.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from referral_net.domain import keys, locations, service_at_locations, services
from referral_net.main import create_app
from referral_net.schemas.directory import (
    LocationCreate,
    ServiceAtLocationCreate,
    ServiceCreate,
)
from referral_net.security.roles import Principal, Role
from tests.factories import bearer, location_body, make_organization, make_user

pytestmark = pytest.mark.db
STEWARD = Principal(role=Role.STEWARD, subject="user:test")
SITE = (14.8710, -91.4920)
SEARCH = f"/api/v1/search?near={SITE[0]},{SITE[1]}&radius_m=5000"
VARY = {"authorization", "x-api-key", "accept-language"}


@dataclass(frozen=True)
class Restricted:
    """A restricted shelter with one service delivered there."""

    location_id: uuid.UUID
    organization_id: uuid.UUID


@pytest.fixture
def restricted(session: Session, taxonomy_loaded: None) -> Restricted:
    """A restricted shelter in Quetzaltenango, linked to a shelter service."""
    org = make_organization(session, "Red de albergues (ejemplo)")
    location = locations.create(
        session=session,
        principal=STEWARD,
        data=LocationCreate.model_validate(
            location_body(
                org.id,
                name="Casa de acogida (ejemplo)",
                latitude=SITE[0],
                longitude=SITE[1],
                visibility="restricted",
            )
        ),
    )
    service = services.create(
        session=session,
        principal=STEWARD,
        data=ServiceCreate(
            organization_id=org.id,
            name="Albergue temporal (ejemplo)",
            categories=["protection.shelter.emergency"],
            languages=["spa"],
        ),
    )
    service_at_locations.create(
        session=session,
        principal=STEWARD,
        data=ServiceAtLocationCreate(service_id=service.id, location_id=location.id),
    )
    return Restricted(location.id, org.id)


@pytest.fixture
def caseworker(app: FastAPI, session: Session) -> dict[str, str]:
    """Bearer headers of a caseworker (sees restricted sites exactly)."""
    return bearer(app, make_user(session, Role.CASEWORKER))


@pytest.fixture
def partner(session: Session) -> dict[str, str]:
    """Headers of a partner key (sees what the public sees, but is credentialed)."""
    _, raw = keys.create_key(session=session, name=f"partner-{uuid.uuid4().hex[:6]}")
    session.commit()
    return {"X-API-Key": raw}


def _vary(response: Any) -> set[str]:
    raw: list[str] = response.headers.get_list("vary")
    return {part.strip().lower() for value in raw for part in value.split(",")}


def _assert_public(response: Any, max_age: int = 60) -> None:
    assert response.headers["Cache-Control"] == f"public, max-age={max_age}"
    assert _vary(response) >= VARY


def _assert_private(response: Any) -> None:
    assert response.headers["Cache-Control"] == "private, no-store"
    assert _vary(response) >= VARY


@pytest.mark.parametrize("path", ["location", "search"])
def test_public_and_caseworker_views_never_share_a_tag_or_a_cache_entry(
    client: TestClient, restricted: Restricted, caseworker: dict[str, str], path: str
) -> None:
    url = f"/api/v1/locations/{restricted.location_id}" if path == "location" else SEARCH
    public = client.get(url)
    exact = client.get(url, headers=caseworker)
    assert public.status_code == exact.status_code == 200
    assert public.content != exact.content  # the two views really differ
    assert public.headers["ETag"] != exact.headers["ETag"]
    _assert_public(public)
    _assert_private(exact)
    # A cache revalidating with the caseworker's tag must not be told the public copy matches,
    # and the public's own tag revalidates to a 304 that keeps the caching headers.
    assert client.get(url, headers={"If-None-Match": exact.headers["ETag"]}).status_code == 200
    again = client.get(url, headers={"If-None-Match": public.headers["ETag"]})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == public.headers["ETag"]
    _assert_public(again)


def test_the_location_tag_is_the_record_version_plus_the_body_hash(
    client: TestClient, restricted: Restricted, caseworker: dict[str, str]
) -> None:
    public = client.get(f"/api/v1/locations/{restricted.location_id}").headers["ETag"]
    exact = client.get(f"/api/v1/locations/{restricted.location_id}", headers=caseworker).headers[
        "ETag"
    ]
    prefix = f'"{restricted.location_id.hex}-1.'
    assert public.startswith(prefix)
    assert exact.startswith(prefix)


def test_a_partner_key_is_credentialed_and_never_stored(
    client: TestClient, restricted: Restricted, partner: dict[str, str]
) -> None:
    response = client.get(SEARCH, headers=partner)
    assert response.status_code == 200
    _assert_private(response)


def test_labels_in_another_language_get_another_tag(
    client: TestClient, taxonomy_loaded: None
) -> None:
    es = client.get("/api/v1/taxonomy_terms", headers={"Accept-Language": "es"})
    en = client.get("/api/v1/taxonomy_terms", headers={"Accept-Language": "en"})
    assert es.status_code == en.status_code == 200
    assert es.content != en.content
    assert es.headers["ETag"] != en.headers["ETag"]
    _assert_public(es)
    _assert_public(en)


def test_errors_and_writes_are_never_stored(
    client: TestClient, steward_headers: dict[str, str]
) -> None:
    missing = client.get(f"/api/v1/locations/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.headers["Cache-Control"] == "no-store"
    assert "ETag" not in missing.headers
    anonymous_write = client.post("/api/v1/organizations", json={})
    assert anonymous_write.status_code == 401
    assert anonymous_write.headers["Cache-Control"] == "no-store"
    created = client.post(
        "/api/v1/organizations", json={"name": "Org (ejemplo)"}, headers=steward_headers
    )
    assert created.status_code == 201
    assert created.headers["Cache-Control"] == "private, no-store"


def test_max_age_comes_from_settings(app: FastAPI) -> None:
    settings = app.state.settings.model_copy(update={"public_cache_max_age_seconds": 5})
    other = create_app(settings)
    other.state.engine = app.state.engine
    other.state.session_source = app.state.session_source
    with TestClient(other) as client:
        _assert_public(client.get("/api/v1/taxonomies"), max_age=5)


def test_if_match_still_guards_writes_with_the_tags_writers_get(
    client: TestClient, restricted: Restricted, session: Session
) -> None:
    provider = bearer(
        client.app,  # type: ignore[arg-type]
        make_user(session, Role.PROVIDER, organization_id=restricted.organization_id),
    )
    url = f"/api/v1/locations/{restricted.location_id}"
    read = client.get(url, headers=provider)
    assert read.status_code == 200
    from_get = read.headers["ETag"]
    first = client.patch(
        url, json={"description": "uno"}, headers={**provider, "If-Match": from_get}
    )
    assert first.status_code == 200, first.text
    stale = client.patch(
        url, json={"description": "dos"}, headers={**provider, "If-Match": from_get}
    )
    assert stale.status_code == 412
    assert stale.headers["Cache-Control"] == "private, no-store"
    # The write's own tag, and the tag of a fresh GET, both name the current version.
    second = client.patch(
        url, json={"description": "dos"}, headers={**provider, "If-Match": first.headers["ETag"]}
    )
    assert second.status_code == 200, second.text
    fresh = client.get(url, headers=provider).headers["ETag"]
    assert fresh.startswith(f'"{restricted.location_id.hex}-3.')
    third = client.patch(url, json={"description": "tres"}, headers={**provider, "If-Match": fresh})
    assert third.status_code == 200, third.text
    assert (
        client.delete(url, headers={**provider, "If-Match": fresh}).status_code == 412
    )  # version 4 now
