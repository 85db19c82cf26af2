"""The audit of exact reads is atomic with the read that caused it, on both backends.

A response that shows a hidden site's exact place and its audit entries both happen or neither
does: the entries are written once the response is fully shaped (``domain.places.audience``), so a
failure while shaping records nothing, and a failure while recording sends no data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from referral_net.db.models import AuditEntry
from referral_net.domain import audit
from referral_net.domain import match as match_domain
from referral_net.domain.search import shape as search_shape
from referral_net.security.roles import Role
from tests.factories import (
    QUETZALTENANGO,
    bearer,
    location_body,
    make_organization,
    make_user,
    service_body,
)

pytestmark = pytest.mark.db
NEAR = f"{QUETZALTENANGO[0]},{QUETZALTENANGO[1]}"
MATCH_BODY = {"location": {"municipality": "0901"}, "needs": [{"code": "protection.legal_aid"}]}


@dataclass
class HiddenSites:
    """A restricted and a confidential site, each with a legal-aid service, and a caseworker."""

    location_ids: tuple[str, str]
    caseworker: dict[str, str]


@pytest.fixture
def hidden(
    app: FastAPI, client: TestClient, session: Session, taxonomy_loaded: None
) -> HiddenSites:
    """Two hidden sites that a caseworker sees exactly (so every view of them is audited)."""
    steward = bearer(app, make_user(session, Role.STEWARD))
    org = make_organization(session)
    location_ids = []
    for visibility in ("restricted", "confidential"):
        location = client.post(
            "/api/v1/locations",
            json=location_body(org.id, visibility=visibility),
            headers=steward,
        )
        assert location.status_code == 201, location.text
        service = client.post("/api/v1/services", json=service_body(org.id), headers=steward)
        assert service.status_code == 201, service.text
        link = client.post(
            "/api/v1/service_at_locations",
            json={"service_id": service.json()["id"], "location_id": location.json()["id"]},
            headers=steward,
        )
        assert link.status_code == 201, link.text
        location_ids.append(str(location.json()["id"]))
    return HiddenSites(
        location_ids=(location_ids[0], location_ids[1]),
        caseworker=bearer(app, make_user(session, Role.CASEWORKER)),
    )


def _exact_reads(session: Session, sites: HiddenSites) -> list[AuditEntry]:
    statement = (
        select(AuditEntry)
        .where(
            col(AuditEntry.action) == audit.READ_EXACT,
            col(AuditEntry.resource_id).in_(sites.location_ids),
        )
        .order_by(col(AuditEntry.seq))
        .execution_options(populate_existing=True)
    )
    return list(session.exec(statement))


def _search(client: TestClient, sites: HiddenSites) -> Any:
    return client.get(
        "/api/v1/search", params={"near": NEAR, "limit": 50}, headers=sites.caseworker
    )


def _match(client: TestClient, sites: HiddenSites) -> Any:
    return client.post("/api/v1/match", json=MATCH_BODY, headers=sites.caseworker)


def _links_nested(client: TestClient, sites: HiddenSites) -> Any:
    # HSDS full=true nests each link's location: an exact view of a hidden site too.
    return client.get(
        "/api/v1/service_at_locations",
        params={"full": "true", "per_page": 100},
        headers=sites.caseworker,
    )


CALLS: dict[str, tuple[Callable[[TestClient, HiddenSites], Any], str]] = {
    "search": (_search, "GET /api/v1/search"),
    "match": (_match, "POST /api/v1/match"),
    "links nested": (_links_nested, "GET /api/v1/service_at_locations"),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_an_exact_read_is_recorded_with_its_endpoint(
    client: TestClient, session: Session, hidden: HiddenSites, call: str
) -> None:
    request, endpoint = CALLS[call]
    before = len(_exact_reads(session, hidden))  # the steward's reads while creating the sites
    response = request(client, hidden)
    assert response.status_code == 200, response.text
    assert hidden.location_ids[0] in response.text
    entries = _exact_reads(session, hidden)[before:]
    assert sorted(e.resource_id for e in entries) == sorted(hidden.location_ids)
    assert {e.endpoint for e in entries} == {endpoint}
    assert audit.verify(session=session).ok


def _fail(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError("shaping failed")


@pytest.mark.parametrize(
    ("call", "module", "name"),
    [
        # Built for each result after its site was placed: the old code had committed by then.
        ("search", search_shape, "result"),
        ("match", match_domain, "MatchResponse"),
    ],
)
def test_a_read_that_fails_after_placing_its_sites_records_nothing(
    client: TestClient,
    session: Session,
    hidden: HiddenSites,
    monkeypatch: pytest.MonkeyPatch,
    call: str,
    module: Any,
    name: str,
) -> None:
    before = _exact_reads(session, hidden)
    monkeypatch.setattr(module, name, _fail)
    request, _ = CALLS[call]
    response = request(client, hidden)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert _exact_reads(session, hidden) == before


@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_failed_audit_write_fails_the_read_and_leaves_no_entry(
    client: TestClient,
    session: Session,
    hidden: HiddenSites,
    monkeypatch: pytest.MonkeyPatch,
    call: str,
) -> None:
    appended: list[str] = []
    real_append = audit.append

    def append_once_then_fail(**kwargs: Any) -> AuditEntry:
        # The first entry is flushed into the transaction; the second fails. Neither may stay.
        if appended:
            raise RuntimeError("audit store failed")
        appended.append(str(kwargs["resource_id"]))
        return real_append(**kwargs)

    before = _exact_reads(session, hidden)
    monkeypatch.setattr(audit, "append", append_once_then_fail)
    request, _ = CALLS[call]
    response = request(client, hidden)
    assert appended, "the first entry was written before the failure"
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    for location_id in hidden.location_ids:
        assert location_id not in response.text  # nothing of the read reached the caller
    assert _exact_reads(session, hidden) == before
    assert audit.verify(session=session).ok
