"""The one ending of every directory write (``domain/recorded_write``) and what history follows.

The history snapshot of each resource is owned by its domain module, not by the API's output
schema; these tests pin the fields it records, so a change of either shows up here.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from referral_net.db.models import Metadata, Organization
from referral_net.domain import history
from referral_net.domain.recorded_write import recorded_write
from referral_net.security.roles import Principal, Role
from tests.factories import location_body, make_organization, organization_body, service_body

pytestmark = pytest.mark.db


def _rows(session: Session, resource_id: str | uuid.UUID, action: str) -> dict[str, Metadata]:
    found = session.exec(
        select(Metadata).where(
            col(Metadata.resource_id) == uuid.UUID(str(resource_id)),
            col(Metadata.last_action_type) == action,
        )
    ).all()
    return {row.field_name: row for row in found}


def _steward() -> Principal:
    return Principal(role=Role.STEWARD, subject="user:steward-test")


def test_creates_record_the_fields_each_domain_module_follows(
    client: TestClient, steward_headers: dict[str, str], session: Session, taxonomy_loaded: None
) -> None:
    headers = steward_headers
    org = client.post(
        "/api/v1/organizations", json=organization_body(year_incorporated=1999), headers=headers
    ).json()
    service = client.post(
        "/api/v1/services",
        json=service_body(
            org["id"],
            eligibility={"minimum_age": 12, "maximum_age": 17, "genders_served": ["woman"]},
        ),
        headers=headers,
    ).json()
    location = client.post(
        "/api/v1/locations", json=location_body(org["id"]), headers=headers
    ).json()
    link = client.post(
        "/api/v1/service_at_locations",
        json={"service_id": service["id"], "location_id": location["id"], "description": "d"},
        headers=headers,
    ).json()

    # Only fields with a value appear in a create: a field created empty has nothing to record.
    assert set(_rows(session, org["id"], "create")) == {
        *("id", "name", "description", "email", "website", "year_incorporated", "status"),
        "phones",
    }
    assert set(_rows(session, service["id"], "create")) == {
        *("id", "organization_id", "name", "description", "status"),
        *("eligibility", "categories", "languages", "phones", "schedules"),
        *("cost_options", "required_documents", "listed_despite_hidden_sites", "open_24h"),
        "service_areas",  # an empty list is recorded as "[]": nested lists are always present
    }
    assert set(_rows(session, location["id"], "create")) == {
        *("id", "organization_id", "name", "location_type", "latitude", "longitude"),
        *("visibility", "department_code", "municipality_code", "outside_country", "status"),
        *("addresses", "phones", "languages", "accessibility"),
    }
    assert set(_rows(session, link["id"], "create")) == {"service_id", "location_id", "description"}

    # Values are text; nested rows and the eligibility are canonical JSON (sorted keys).
    service_rows = _rows(session, service["id"], "create")
    assert json.loads(service_rows["eligibility"].replacement_value) == {
        "minimum_age": 12,
        "maximum_age": 17,
        "genders_served": ["woman"],
        "trans_inclusive": False,
        "lgbtiq_affirming": False,
        "accepts_accompanying_children": False,
        "minors_only": False,
        "description": None,
    }
    assert json.loads(service_rows["schedules"].replacement_value) == [
        {
            "freq": "WEEKLY",
            "interval": None,
            "byday": "MO,TU,WE,TH,FR",
            "bymonthday": None,
            "opens_at": "08:00:00",
            "closes_at": "16:00:00",
            "valid_from": None,
            "valid_to": None,
            "dtstart": None,
            "until": None,
            "description": None,
            "notes": None,
        }
    ]
    assert json.loads(service_rows["cost_options"].replacement_value) == [
        {
            "option": "Gratuito",
            "amount": 0.0,
            "currency": "GTQ",
            "amount_description": None,
            "valid_from": None,
            "valid_to": None,
        }
    ]
    assert service_rows["categories"].replacement_value == '["protection.legal_aid"]'
    location_rows = _rows(session, location["id"], "create")
    assert location_rows["visibility"].replacement_value == "public"
    # Sorted by code, named in Spanish (the history's one language); "es" is stored as "spa".
    assert json.loads(location_rows["languages"].replacement_value) == [
        {"code": "mam", "name": "mam"},
        {"code": "spa", "name": "español"},
    ]
    assert _rows(session, link["id"], "create")["service_id"].replacement_value == service["id"]


def test_an_update_records_only_what_changed_and_moves_the_version_on(
    session: Session,
) -> None:
    organization = make_organization(session)
    version = organization.version
    with recorded_write(
        session,
        _steward(),
        organization,
        resource_type="organization",
        action=history.UPDATE,
        snapshot=lambda _session, org: {"name": org.name, "description": org.description},
    ):
        organization.name = "Renombrada (ejemplo)"
    rows = _rows(session, organization.id, history.UPDATE)
    assert set(rows) == {"name"}
    assert rows["name"].previous_value == "Org (ejemplo)"
    assert rows["name"].replacement_value == "Renombrada (ejemplo)"
    assert rows["name"].updated_by == "user:steward-test"
    assert organization.version == version + 1
    assert organization.last_modified is not None


def test_a_create_starts_at_version_one(session: Session) -> None:
    organization = Organization(name="Nueva (ejemplo)", description="x", version=7)
    with recorded_write(
        session,
        _steward(),
        organization,
        resource_type="organization",
        action=history.CREATE,
        snapshot=lambda _session, org: {"name": org.name},
    ):
        pass
    assert organization.version == 1
    assert set(_rows(session, organization.id, history.CREATE)) == {"name"}


def test_a_block_that_fails_records_and_commits_nothing(session: Session) -> None:
    organization = make_organization(session)
    version = organization.version

    def snapshot(_session: Session, org: Organization) -> dict[str, Any]:
        return {"name": org.name}

    def half_done() -> None:
        with recorded_write(
            session,
            _steward(),
            organization,
            resource_type="organization",
            action=history.UPDATE,
            snapshot=snapshot,
        ):
            organization.name = "A medias (ejemplo)"
            raise RuntimeError("the write fails half-way")

    with pytest.raises(RuntimeError):
        half_done()
    session.rollback()
    assert _rows(session, organization.id, history.UPDATE) == {}
    stored = session.get(Organization, organization.id)
    assert stored is not None
    assert stored.name == "Org (ejemplo)"
    assert stored.version == version


def test_a_hard_delete_records_every_field_as_cleared(
    client: TestClient, steward_headers: dict[str, str], session: Session, taxonomy_loaded: None
) -> None:
    org = client.post(
        "/api/v1/organizations", json=organization_body(), headers=steward_headers
    ).json()
    service = client.post(
        "/api/v1/services", json=service_body(org["id"]), headers=steward_headers
    ).json()
    location = client.post(
        "/api/v1/locations", json=location_body(org["id"]), headers=steward_headers
    ).json()
    link = client.post(
        "/api/v1/service_at_locations",
        json={"service_id": service["id"], "location_id": location["id"]},
        headers=steward_headers,
    ).json()
    assert (
        client.delete(
            f"/api/v1/service_at_locations/{link['id']}", headers=steward_headers
        ).status_code
        == 204
    )
    rows = _rows(session, link["id"], history.DELETE)
    assert set(rows) == {"service_id", "location_id"}  # the description was empty already
    assert rows["service_id"].previous_value == service["id"]
    assert rows["service_id"].replacement_value == ""
