"""Every directory record the API serves is valid HSDS 3.0, for every audience, on both backends.

The sample network is loaded through the domain, then read through the API as the public, a
partner key, a caseworker, a provider (of an organization with a restricted site) and a steward:
every list page (items against the official ``*_list`` schemas, the envelope against the ``Page``
schema of the official ``openapi.json``) and every single record (against the official compiled
schemas; locations against ``location.json`` with its references resolved from the same folder).
The validators are built from the official files in ``specs/hsds-3.0`` (vendored) with format
checks on and no network, independent of the code under test.

The profile's one relaxation (``address.postal_code`` optional, little used in Guatemala) is the
only error tolerated, and nowhere else.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlmodel import Session, col, select

from referral_net import hsds
from referral_net.db.models import Location
from referral_net.domain import keys, seed
from referral_net.security.roles import Role
from referral_net.vocab import Visibility
from tests.factories import bearer, make_user
from tests.specs import HSDS_SCHEMA

pytestmark = pytest.mark.db
SPEC = HSDS_SCHEMA
BASE = "https://hsds.invalid/schema/"
AUDIENCES = ("public", "partner", "caseworker", "provider", "steward")
# path -> (schema of a single record, schema of a list item)
RECORDS = {
    "services": ("compiled/service.json", "compiled/service_list.json"),
    "organizations": ("compiled/organization.json", "compiled/organization_list.json"),
    "service_at_locations": (
        "compiled/service_at_location.json",
        "compiled/service_at_location_list.json",
    ),
    "locations": ("location.json", "location.json"),
}


@cache
def _registry() -> Registry:
    resources = []
    for path in [*SPEC.glob("*.json"), *SPEC.glob("compiled/*.json")]:
        contents = json.loads(path.read_text(encoding="utf-8"))
        if path.name == "openapi.json":
            continue
        uri = BASE + str(path.relative_to(SPEC))
        resources.append((uri, Resource.from_contents(contents, DRAFT202012)))
    return Registry().with_resources(resources)


@cache
def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(
        {"$ref": BASE + name},
        registry=_registry(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


@cache
def _page_validator() -> Draft202012Validator:
    openapi = json.loads((SPEC / "openapi.json").read_text(encoding="utf-8"))
    return Draft202012Validator(
        openapi["components"]["schemas"]["Page"], format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def _relaxed(error: Any) -> bool:
    """The profile's one relaxation: an address without ``postal_code``."""
    path = list(error.absolute_path)
    return (
        error.validator == "required"
        and "'postal_code'" in error.message
        and len(path) >= 2
        and path[-2] == "addresses"
    )


def hsds_errors(name: str, record: dict[str, Any]) -> list[str]:
    """The errors of one record against an official schema, but the profile's relaxation, and
    against the profile's own compiled schema (which declares the extensions' types)."""
    official = [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(record)'}: {error.message[:160]}"
        for error in _validator(name).iter_errors(record)
        if not _relaxed(error)
    ]
    profile_name = name.removeprefix("compiled/").removesuffix(".json")
    return official + [f"profile: {e[:200]}" for e in hsds.errors(profile_name, record)]


def _headers(role: str, app: FastAPI, session: Session) -> dict[str, str]:
    if role == "public":
        return {}
    if role == "partner":
        _, raw = keys.create_key(session=session, name=f"partner-{uuid.uuid4().hex[:6]}")
        session.commit()
        return {"X-API-Key": raw}
    if role == "provider":
        restricted = session.exec(
            select(Location).where(col(Location.visibility) == Visibility.RESTRICTED.value)
        ).first()
        assert restricted is not None
        return bearer(app, make_user(session, Role.PROVIDER, restricted.organization_id))
    return bearer(app, make_user(session, Role(role)))


@pytest.fixture
def sample(session: Session) -> Session:
    """The sample network, loaded through the domain."""
    if not seed.is_loaded(session=session):
        seed.load_sample(session=session)
    return session


def _pages(client: TestClient, path: str, headers: dict[str, str]) -> Iterator[dict[str, Any]]:
    page = 1
    while True:
        response = client.get(
            f"/api/v1/{path}", params={"page": page, "per_page": 100}, headers=headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        yield body
        if body["last_page"]:
            return
        page += 1


# Single records read by every audience; services and organizations read the same for every
# audience but the listing flag, so the trusted and untrusted ends read them one by one.
_EVERY_RECORD_READ_BY = {"public", "steward"}
_AUDIENCE_SHAPED = {"locations", "service_at_locations"}


def _check_audience(
    client: TestClient, role: str, headers: dict[str, str]
) -> tuple[list[str], dict[str, int]]:
    invalid: list[str] = []
    counted: dict[str, int] = {}
    for path, (single_schema, list_schema) in RECORDS.items():
        items: list[dict[str, Any]] = []
        for body in _pages(client, path, headers):
            invalid += [f"{path} page: {e.message}" for e in _page_validator().iter_errors(body)]
            items += body["contents"]
        counted[path] = len(items)
        invalid += [
            f"{role} {path} item {item['id']}: {e}"
            for item in items
            for e in hsds_errors(list_schema, item)
        ]
        if role not in _EVERY_RECORD_READ_BY and path not in _AUDIENCE_SHAPED:
            continue
        for item in items:
            one = client.get(f"/api/v1/{path}/{item['id']}", headers=headers)
            assert one.status_code == 200, one.text
            invalid += [
                f"{role} {path}/{item['id']}: {e}" for e in hsds_errors(single_schema, one.json())
            ]
    return invalid, counted


def test_every_record_served_is_valid_hsds(
    app: FastAPI, client: TestClient, sample: Session
) -> None:
    """Lists, list items and single records of all four record types, as every audience."""
    invalid: list[str] = []
    for role in AUDIENCES:
        found, counted = _check_audience(client, role, _headers(role, app, sample))
        invalid += found
        # The audience saw records of every type (a vacuous pass proves nothing).
        assert all(counted.values()), (role, counted)
    assert not invalid, "\n".join(invalid[:40])


def test_the_profile_declares_the_extensions_it_serves() -> None:
    """An extension with a wrong type fails under the profile though HSDS ignores it."""
    service = {"id": str(uuid.uuid4()), "name": "S", "status": "active"}
    right = {**service, "eligibility": {"minimum_age": 3, "minors_only": True}}
    assert hsds_errors("compiled/service.json", right) == []
    wrong = {**service, "eligibility": {"minimum_age": 3, "minors_only": "yes"}}
    found = hsds_errors("compiled/service.json", wrong)
    assert found
    assert all(error.startswith("profile:") for error in found)


def test_the_checker_rejects_what_hsds_rejects() -> None:
    """The validators are strict: a null, a missing nested id and a string extension all fail,
    and the relaxation is only the postal code."""
    service = {"id": str(uuid.uuid4()), "name": "S", "status": "active"}
    assert hsds_errors("compiled/service.json", service) == []
    assert hsds_errors("compiled/service.json", {**service, "url": None})
    assert hsds_errors("compiled/service.json", {**service, "phones": [{"number": "1"}]})
    phone = {"id": str(uuid.uuid4()), "number": "1", "extension": "12"}
    assert hsds_errors("compiled/service.json", {**service, "phones": [phone]})
    address = {
        "id": str(uuid.uuid4()),
        "address_1": "4a calle",
        "city": "Xela",
        "state_province": "Quetzaltenango",
        "country": "GT",
        "address_type": "physical",
    }
    location = {"id": str(uuid.uuid4()), "location_type": "physical", "addresses": [address]}
    assert hsds_errors("location.json", location) == []
    assert hsds_errors("location.json", {**location, "addresses": [{**address, "city": None}]})
