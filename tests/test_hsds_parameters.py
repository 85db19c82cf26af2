"""Every parameter of the official HSDS 3.0 ``openapi.json`` is implemented or refused (400).

A parameter the API does not read used to be ignored silently: ``/services?taxonomy_id=...``
answered every service. Here each HSDS parameter of each HSDS path is sent to the API: it must be
declared in the API's own OpenAPI document (and filter as the spec says, checked against the
database directly) or be refused with a 400 problem. Runs on both backends over the sample
network, as a steward (so visibility does not thin the expected sets) and as the public where the
answer depends on the audience.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection
from sqlmodel import Session, col, select

from referral_net.db.models import (
    Attribute,
    Location,
    Service,
    ServiceAtLocation,
    TaxonomyTerm,
)
from referral_net.domain import seed
from referral_net.vocab import RecordStatus, Visibility
from tests.conftest import savepoint_per_test
from tests.specs import HSDS_SCHEMA

pytestmark = pytest.mark.db
OPENAPI = json.loads((HSDS_SCHEMA / "openapi.json").read_text(encoding="utf-8"))
# The two HSDS parameters this profile refuses, with the path that offers them.
REFUSED = {("/service_at_locations", "postcode"), ("/service_at_locations", "proximity")}


def _hsds_parameters() -> list[tuple[str, str]]:
    """(path, parameter name) for every query parameter of every HSDS GET path."""
    named = OPENAPI["components"]["parameters"]
    found = []
    for path, item in OPENAPI["paths"].items():
        for parameter in item.get("get", {}).get("parameters", []):
            if "$ref" in parameter:
                parameter = named[parameter["$ref"].rsplit("/", 1)[1]]  # noqa: PLW2901
            if parameter.get("in") == "query":
                found.append((path, parameter["name"]))
    return found


HSDS_PARAMETERS = _hsds_parameters()


@pytest.fixture
def connection(sample_network_connection: Connection) -> Iterator[Connection]:
    """Every test here reads the sample network: loaded once for the module (tests/conftest.py),
    each test in a SAVEPOINT over it."""
    yield from savepoint_per_test(sample_network_connection)


@pytest.fixture
def sample(session: Session) -> Session:
    """The sample network, loaded through the domain (once, for the module)."""
    assert seed.is_loaded(session=session)
    return session


def _all(client: TestClient, path: str, headers: dict[str, str], **params: Any) -> list[Any]:
    response = client.get(path, params={**params, "format": "ndjson"}, headers=headers)
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]


def test_the_official_list_is_read() -> None:
    """Sanity: the spec names the parameters the issue lists."""
    assert ("/services", "taxonomy_id") in HSDS_PARAMETERS
    assert ("/services", "minimal") in HSDS_PARAMETERS
    assert ("/service_at_locations", "proximity") in HSDS_PARAMETERS
    assert ("/taxonomy_terms", "top_only") in HSDS_PARAMETERS
    assert ("/organizations", "full_service") in HSDS_PARAMETERS


def _our_operation(app: FastAPI, path: str) -> dict[str, Any]:
    """Our GET operation for an HSDS path (path parameters may be named differently)."""
    shape = re.sub(r"\{[^}]+\}", "{}", f"/api/v1{path}")
    for ours, item in app.openapi()["paths"].items():
        if re.sub(r"\{[^}]+\}", "{}", ours) == shape and "get" in item:
            operation: dict[str, Any] = item["get"]
            return operation
    raise AssertionError(f"no GET {path}")


@pytest.mark.parametrize(("path", "name"), HSDS_PARAMETERS)
def test_every_hsds_parameter_is_declared_or_refused(
    path: str, name: str, app: FastAPI, client: TestClient
) -> None:
    """Declared in our OpenAPI for that path, or a 400 problem when sent."""
    ours = _our_operation(app, path)
    declared = {p["name"] for p in ours.get("parameters", []) if p["in"] == "query"}
    if (path, name) in REFUSED:
        assert name in declared  # documented as refused, so a client reads why
        response = client.get(f"/api/v1{path}", params={name: "1"})
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/problem+json"
        return
    assert name in declared, f"{path}?{name} is neither implemented nor refused"


def _our_category_service_ids(session: Session, taxonomy_id: uuid.UUID) -> set[uuid.UUID]:
    rows = session.exec(
        select(col(Attribute.link_id))
        .join(TaxonomyTerm, col(TaxonomyTerm.id) == col(Attribute.taxonomy_term_id))
        .where(
            col(TaxonomyTerm.taxonomy_id) == taxonomy_id, col(Attribute.link_entity) == "service"
        )
    )
    return set(rows)


def _active_service_ids(session: Session) -> set[uuid.UUID]:
    return set(
        session.exec(
            select(col(Service.id)).where(col(Service.status) != RecordStatus.DEFUNCT.value)
        )
    )


def test_services_taxonomy_filters(
    client: TestClient, sample: Session, steward_headers: dict[str, str]
) -> None:
    """taxonomy_id and taxonomy_term_id select what the attribute table says."""
    taxonomies = client.get("/api/v1/taxonomies", headers=steward_headers).json()["contents"]
    ours = next(t for t in taxonomies if "openeligibility" not in (t.get("uri") or ""))
    expected = _our_category_service_ids(sample, uuid.UUID(ours["id"])) & _active_service_ids(
        sample
    )
    got = _all(client, "/api/v1/services", steward_headers, taxonomy_id=ours["id"])
    assert {uuid.UUID(s["id"]) for s in got} == expected
    # Open Eligibility: a service is in it when one of its categories maps onto it, which its
    # attributes show as a derived Open Eligibility attribute.
    oe = next(t for t in taxonomies if "openeligibility" in (t.get("uri") or ""))
    everything = _all(client, "/api/v1/services", steward_headers)
    with_oe = {
        s["id"]
        for s in everything
        if any(a["taxonomy_term"]["taxonomy_id"] == oe["id"] for a in s.get("attributes", []))
    }
    got_oe = _all(client, "/api/v1/services", steward_headers, taxonomy_id=oe["id"])
    assert {s["id"] for s in got_oe} == with_oe
    assert with_oe
    assert with_oe != {s["id"] for s in everything}
    term = sample.exec(select(TaxonomyTerm).where(col(TaxonomyTerm.code) == "protection")).one()
    below = _all(client, "/api/v1/services", steward_headers, taxonomy_term_id=str(term.id))
    assert below
    assert all(any(c["code"].startswith("protection") for c in s["categories"]) for s in below)
    unknown = client.get("/api/v1/services", params={"taxonomy_id": str(uuid.uuid4())})
    assert unknown.status_code == 422


def test_services_minimal_full_and_ndjson(
    client: TestClient, sample: Session, steward_headers: dict[str, str]
) -> None:
    """minimal: id and last_modified only; full: the organization nested; ndjson: every record."""
    minimal = client.get("/api/v1/services", params={"minimal": "true", "per_page": 5}).json()
    assert minimal["contents"]
    assert all(set(item) == {"id", "last_modified"} for item in minimal["contents"])
    full = client.get("/api/v1/services", params={"full": "true", "per_page": 5}).json()
    assert all(item["organization"]["id"] == item["organization_id"] for item in full["contents"])
    both = client.get("/api/v1/services", params={"full": "true", "minimal": "true"})
    assert both.status_code == 400
    page = client.get("/api/v1/services", params={"per_page": 1}).json()
    streamed = client.get("/api/v1/services", params={"format": "ndjson"})
    assert streamed.headers["content-type"].startswith("application/x-ndjson")
    lines = streamed.text.splitlines()
    assert len(lines) == page["total_items"]
    assert len({json.loads(line)["id"] for line in lines}) == len(lines)
    paged = client.get("/api/v1/services", params={"format": "ndjson", "page": 2})
    assert paged.status_code == 400


def test_modified_after_on_every_list(
    client: TestClient, sample: Session, steward_headers: dict[str, str]
) -> None:
    """On or after: a past instant keeps everything, a future one nothing, on every list."""
    past = (datetime.now(UTC) - timedelta(days=3650)).isoformat()
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    for path in ("services", "organizations", "locations", "service_at_locations"):
        everything = client.get(f"/api/v1/{path}", headers=steward_headers).json()["total_items"]
        since = client.get(
            f"/api/v1/{path}", params={"modified_after": past}, headers=steward_headers
        ).json()
        none = client.get(
            f"/api/v1/{path}", params={"modified_after": future}, headers=steward_headers
        ).json()
        assert (since["total_items"], none["total_items"]) == (everything, 0), path
    # On or after, to the microsecond: the newest service itself is included.
    newest = max(
        (s for s in _all(client, "/api/v1/services", steward_headers)),
        key=lambda s: s["last_modified"],
    )
    at_newest = _all(
        client, "/api/v1/services", steward_headers, modified_after=newest["last_modified"]
    )
    assert newest["id"] in {s["id"] for s in at_newest}


def test_service_at_locations_filters_and_full(
    client: TestClient, sample: Session, steward_headers: dict[str, str]
) -> None:
    """search, organization_id and full; full places a restricted site at its municipality for
    the public."""
    links = _all(client, "/api/v1/service_at_locations", steward_headers)
    word = "albergue"
    found = _all(client, "/api/v1/service_at_locations", steward_headers, search=word)
    expected = {
        link.id
        for link, service, location in sample.exec(
            select(ServiceAtLocation, Service, Location)
            .join(Service, col(Service.id) == col(ServiceAtLocation.service_id))
            .join(Location, col(Location.id) == col(ServiceAtLocation.location_id))
        )
        if word in f"{service.name} {service.description or ''} {location.name or ''}".lower()
    }
    assert found
    assert {uuid.UUID(link["id"]) for link in found} <= expected
    organization = links[0]["service_id"]
    owner = sample.get(Service, uuid.UUID(organization))
    assert owner is not None
    of_owner = _all(
        client,
        "/api/v1/service_at_locations",
        steward_headers,
        organization_id=str(owner.organization_id),
    )
    owned = set(
        sample.exec(
            select(col(Service.id)).where(col(Service.organization_id) == owner.organization_id)
        )
    )
    assert of_owner
    assert all(uuid.UUID(link["service_id"]) in owned for link in of_owner)
    restricted = sample.exec(
        select(ServiceAtLocation)
        .join(Location, col(Location.id) == col(ServiceAtLocation.location_id))
        .where(col(Location.visibility) == Visibility.RESTRICTED.value)
    ).first()
    assert restricted is not None
    public = _all(client, "/api/v1/service_at_locations", {}, full="true")
    [nested] = [link for link in public if link["id"] == str(restricted.id)]
    assert nested["location"]["precision"] == "municipality"
    assert "addresses" not in nested["location"] or nested["location"]["addresses"] == []
    assert nested["service"]["id"] == str(restricted.service_id)


def test_organizations_full_and_full_service(
    client: TestClient, sample: Session, steward_headers: dict[str, str]
) -> None:
    """full: the services' ids, names and statuses; full_service: whole service records."""
    listed = client.get("/api/v1/organizations", params={"full": "true", "per_page": 50}).json()
    with_services = [o for o in listed["contents"] if o.get("services")]
    assert with_services
    assert set(with_services[0]["services"][0]) == {"id", "name", "status"}
    organization_id = with_services[0]["id"]
    whole = client.get(
        f"/api/v1/organizations/{organization_id}", params={"full_service": "true"}
    ).json()
    assert all("eligibility" in s and "categories" in s for s in whole["services"])
    simple = client.get(f"/api/v1/organizations/{organization_id}").json()
    assert [s["id"] for s in simple["services"]] == [s["id"] for s in whole["services"]]


def test_api_root_names_version_profile_and_openapi(client: TestClient) -> None:
    """GET /api/v1/ gives version 3.0 and URLs that answer."""
    root = client.get("/api/v1/")
    assert root.status_code == 200
    body = root.json()
    assert body["version"] == "3.0"
    for url in (body["profile"], body["openapi_url"]):
        response = client.get(url)
        assert response.status_code == 200, url
    assert client.get(body["openapi_url"]).json()["paths"]
