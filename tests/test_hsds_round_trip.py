"""What a client reads it can write back (HSDS round trip), on both backends.

GET a record, PATCH the very body GET returned, GET again: the same body. Compared whole, but
for what legitimately changes on every write or read: the record's own ``last_modified`` (a
write stamps it) and, for services, ``open_now``, ``open_24h`` and ``capacity[].stale``, which
are evaluated at the instant of each read (docs/hsds-profile.md, "Writing HSDS records").

Also: nested records keep their ids, a new one gets an id, an id of another record's nested
record is refused, a read-only field that differs is a 422 naming it, and the HSDS shapes
(``attributes``, top-level ages, extension as a number, ``extent`` as GeoJSON text) are written.
Term ids and labels come from the seed taxonomy file, not from the code under test.
"""

from __future__ import annotations

import copy
import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from referral_net.db.models import Location, Service, ServiceAtLocation
from referral_net.domain import seed
from referral_net.security.roles import Role
from referral_net.vocab import Visibility
from tests.factories import bearer, make_organization, make_user, service_body

pytestmark = pytest.mark.db
SEED_TAXONOMY = Path(__file__).resolve().parents[1] / "seed/taxonomy.json"
OPEN_ELIGIBILITY = uuid.uuid5(uuid.NAMESPACE_URL, "https://openeligibility.org")
AREA = {
    "type": "MultiPolygon",
    "coordinates": [[[[-91.6, 14.7], [-91.4, 14.7], [-91.4, 14.9], [-91.6, 14.9], [-91.6, 14.7]]]],
}


def _terms() -> dict[str, dict[str, Any]]:
    """The seed taxonomy's terms by code (the independent truth for ids and labels)."""
    data = json.loads(SEED_TAXONOMY.read_text(encoding="utf-8"))
    return {term["code"]: term for term in data["terms"]}


def _as_written(record: dict[str, Any], *, evaluated: bool = False) -> dict[str, Any]:
    """A served record without what changes on every write (its ``last_modified``) and, with
    ``evaluated``, what a service evaluates at each read (open now, capacity freshness)."""
    kept = {key: value for key, value in record.items() if key != "last_modified"}
    if evaluated:
        _drop_evaluated(kept)
    return kept


def _drop_evaluated(service: dict[str, Any]) -> None:
    service.pop("open_now", None)
    service.pop("open_24h", None)
    for figure in service.get("capacity", []):
        figure.pop("stale", None)


def _round_trip(
    client: TestClient, path: str, headers: dict[str, str], *, evaluated: bool = False
) -> dict[str, Any]:
    """GET, PATCH the same body, GET: the second GET equals the first; returns it."""
    before = client.get(path, headers=headers)
    assert before.status_code == 200, before.text
    patched = client.patch(path, json=before.json(), headers=headers)
    assert patched.status_code == 200, patched.text
    after = client.get(path, headers=headers)
    assert after.status_code == 200, after.text
    assert _as_written(after.json(), evaluated=evaluated) == _as_written(
        before.json(), evaluated=evaluated
    )
    return dict(after.json())


def _assert_unchanged(
    client: TestClient, path: str, headers: dict[str, str], before: dict[str, Any]
) -> None:
    """Nothing was written: the record reads as before (its last_modified included)."""
    now = client.get(path, headers=headers).json()
    assert now.get("last_modified") == before.get("last_modified")
    assert _as_written(now, evaluated=True) == _as_written(before, evaluated=True)


def _full_service_body(organization_id: uuid.UUID) -> dict[str, Any]:
    """A service with every nested kind the write API takes, in the HSDS shapes."""
    return service_body(
        organization_id,
        url="https://example.org/albergue",
        email="albergue@example.org",
        interpretation_services="Intérprete de mam",
        application_process="Referencia de la PGN",
        fees_description="Sin costo",
        wait_time="Inmediato",
        accreditations="Acreditado por la SBS",
        licenses="Licencia 42",
        alert="Cerrado el 15 de septiembre",
        categories=["protection.shelter.emergency", "protection.legal_aid"],
        languages=[{"code": "spa", "note": "Todo el personal"}, "mam"],
        eligibility={
            "minimum_age": 12,
            "maximum_age": 17,
            "genders_served": ["woman", "trans_woman"],
            "trans_inclusive": True,
            "minors_only": True,
            "description": "Adolescentes referidas por la PGN",
        },
        phones=[
            {
                "number": "+502 5555 0199",
                "extension": 101,
                "type": "voice",
                "description": "Recepción",
                "languages": [{"code": "quc", "note": "Por la mañana"}, "spa"],
            },
            {"number": "5555-0198", "extension": "7", "type": "text"},
        ],
        schedules=[
            {
                "freq": "WEEKLY",
                "byday": "MO,TU,WE,TH,FR",
                "wkst": "MO",
                "opens_at": "08:00",
                "closes_at": "16:30",
                "timezone": -6,
                "valid_from": "2026-01-01",
                "valid_to": "2026-12-31",
                "description": "Lunes a viernes",
                "notes": "Cerrado en feriados",
                "schedule_link": "https://example.org/horario",
                "attending_type": "En persona o por teléfono",
            },
            {
                "freq": "MONTHLY",
                "byday": "1SA",
                "dtstart": "2026-01-03",
                "count": 12,
                "opens_at": "09:00",
                "closes_at": "12:00",
            },
            {
                "freq": "YEARLY",
                "byweekno": "1,2",
                "byday": "MO",
                "opens_at": "10:00",
                "closes_at": "11:00",
            },
            {"freq": "YEARLY", "byyearday": "1,-1", "opens_at": "00:00", "closes_at": "00:00"},
        ],
        cost_options=[
            {
                "option": "Gratuito",
                "amount": 0,
                "currency": "GTQ",
                "amount_description": "Sin costo",
                "valid_from": "2026-01-01",
            }
        ],
        required_documents=[{"document": "Ninguno", "uri": "https://example.org/documentos"}],
        service_areas=[
            {
                "name": "Quetzaltenango",
                "description": "Cabecera departamental",
                "extent": json.dumps(AREA),
                "extent_type": "geojson",
                "uri": "https://example.org/area",
            }
        ],
        capacity=[{"unit": "bed", "available": 3, "maximum": 12}],
    )


@pytest.fixture
def full_service(
    client: TestClient, session: Session, steward_headers: dict[str, str], taxonomy_loaded: None
) -> dict[str, Any]:
    """A service created through the API with every nested kind filled, as GET serves it."""
    org = make_organization(session)
    created = client.post(
        "/api/v1/services", json=_full_service_body(org.id), headers=steward_headers
    )
    assert created.status_code == 201, created.text
    read = client.get(f"/api/v1/services/{created.json()['id']}", headers=steward_headers)
    return dict(read.json())


def _nested_ids(service: dict[str, Any]) -> dict[str, list[str]]:
    kinds = ("languages", "phones", "schedules", "cost_options", "required_documents")
    ids = {kind: [item["id"] for item in service[kind]] for kind in kinds}
    ids["service_areas"] = [area["id"] for area in service["service_areas"]]
    ids["phone_languages"] = [lang["id"] for p in service["phones"] for lang in p["languages"]]
    ids["attributes"] = [attribute["id"] for attribute in service["attributes"]]
    return ids


def test_a_full_service_round_trips_with_its_nested_ids(
    client: TestClient, steward_headers: dict[str, str], full_service: dict[str, Any]
) -> None:
    path = f"/api/v1/services/{full_service['id']}"
    # Every nested kind is there, in its HSDS shape, before the round trip.
    assert {p["extension"] for p in full_service["phones"]} == {101, 7}
    reception = next(p for p in full_service["phones"] if p["extension"] == 101)
    spoken = {lang["code"]: lang.get("note") for lang in reception["languages"]}
    assert spoken == {"quc": "Por la mañana", "spa": None}
    assert {s.get("wkst") for s in full_service["schedules"]} >= {"MO"}
    assert {s.get("count") for s in full_service["schedules"]} >= {12}
    area = full_service["service_areas"][0]
    assert area["extent_type"] == "geojson"
    assert json.loads(area["extent"]) == AREA
    assert full_service["capacity"][0]["available"] == 3
    ids = _nested_ids(full_service)
    assert all(ids.values()), ids
    after = _round_trip(client, path, steward_headers, evaluated=True)
    assert _nested_ids(after) == ids


def test_a_new_nested_item_gets_an_id_and_the_others_keep_theirs(
    client: TestClient, steward_headers: dict[str, str], full_service: dict[str, Any]
) -> None:
    path = f"/api/v1/services/{full_service['id']}"
    phones = [*full_service["phones"], {"number": "5555-0197", "extension": "0042"}]
    response = client.patch(path, json={"phones": phones}, headers=steward_headers)
    assert response.status_code == 200, response.text
    stored = client.get(path, headers=steward_headers).json()["phones"]
    kept = [phone["id"] for phone in full_service["phones"]]
    by_number = {phone["number"]: phone for phone in stored}
    new = by_number["+50255550197"]
    assert uuid.UUID(new["id"])
    assert new["id"] not in kept
    assert new["extension"] == 42  # digits stored, a number served
    assert {phone["id"] for phone in stored} == {*kept, new["id"]}


def test_sample_records_round_trip(
    app: FastAPI, client: TestClient, session: Session, steward_headers: dict[str, str]
) -> None:
    if not seed.is_loaded(session=session):
        seed.load_sample(session=session)
    # A service with capacity and a verification, a restricted site (exact for a steward), the
    # organization of that site, and a link to that site.
    restricted = session.exec(
        select(Location).where(col(Location.visibility) == Visibility.RESTRICTED.value)
    ).first()
    assert restricted is not None
    link = session.exec(
        select(ServiceAtLocation).where(col(ServiceAtLocation.location_id) == restricted.id)
    ).first()
    assert link is not None
    services = list(session.exec(select(Service)))
    provider = bearer(app, make_user(session, Role.PROVIDER, restricted.organization_id))
    for service in services:
        body = client.get(f"/api/v1/services/{service.id}", headers=steward_headers).json()
        if body["capacity"] and body.get("assured_date"):
            break
    else:
        pytest.fail("the sample has no verified service with capacity")
    _round_trip(client, f"/api/v1/services/{body['id']}", steward_headers, evaluated=True)
    location = _round_trip(client, f"/api/v1/locations/{restricted.id}", steward_headers)
    assert location["precision"] == "exact"
    _round_trip(client, f"/api/v1/organizations/{restricted.organization_id}", steward_headers)
    _round_trip(client, f"/api/v1/service_at_locations/{link.id}", steward_headers)
    # The organization's own editor writes back what it reads, too.
    _round_trip(client, f"/api/v1/locations/{restricted.id}", provider)


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("id", lambda body: str(uuid.uuid4())),
        ("last_modified", lambda body: "2001-01-01T00:00:00Z"),
        ("organization_id", lambda body: str(uuid.uuid4())),
        ("organization", lambda body: {**body["organization"], "name": "Otra (ejemplo)"}),
        ("capacity", lambda body: [{**body["capacity"][0], "available": 99}]),
        ("capacities", lambda body: []),
        ("assured_by", lambda body: "alguien"),
        ("contacts", lambda body: [{"id": str(uuid.uuid4()), "name": "Ana"}]),
    ],
)
def test_a_changed_read_only_field_of_a_service_is_refused(
    client: TestClient,
    steward_headers: dict[str, str],
    full_service: dict[str, Any],
    field: str,
    change: Any,
) -> None:
    path = f"/api/v1/services/{full_service['id']}"
    body = copy.deepcopy(full_service)
    body[field] = change(body)
    response = client.patch(path, json=body, headers=steward_headers)
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == [f"body.{field}"]
    _assert_unchanged(client, path, steward_headers, full_service)


def test_evaluated_fields_are_accepted_with_any_value(
    client: TestClient, steward_headers: dict[str, str], full_service: dict[str, Any]
) -> None:
    path = f"/api/v1/services/{full_service['id']}"
    body = {**full_service, "open_now": not full_service["open_now"], "open_24h": True}
    body["capacity"] = [{**full_service["capacity"][0], "stale": True}]
    assert client.patch(path, json=body, headers=steward_headers).status_code == 200


def test_a_read_only_value_in_another_spelling_is_the_same_value(
    client: TestClient, steward_headers: dict[str, str], full_service: dict[str, Any]
) -> None:
    path = f"/api/v1/services/{full_service['id']}"
    stamp = datetime.fromisoformat(full_service["last_modified"])
    body = {
        "id": full_service["id"].upper(),
        "last_modified": stamp.astimezone(timezone(timedelta(hours=2))).isoformat(),
        "name": "Albergue renombrado (ejemplo)",
    }
    response = client.patch(path, json=body, headers=steward_headers)
    assert response.status_code == 200, response.text
    assert response.json()["name"] == body["name"]


def test_changed_read_only_fields_of_the_other_records_are_refused(
    client: TestClient, session: Session, steward_headers: dict[str, str]
) -> None:
    if not seed.is_loaded(session=session):
        seed.load_sample(session=session)
    link = session.exec(select(ServiceAtLocation)).first()
    assert link is not None
    location = session.get(Location, link.location_id)
    assert location is not None
    assert location.organization_id is not None
    cases = [
        (f"/api/v1/locations/{location.id}", "department_code", "99"),
        (f"/api/v1/locations/{location.id}", "precision", "municipality"),
        (f"/api/v1/organizations/{location.organization_id}", "services", []),
        (f"/api/v1/organizations/{location.organization_id}", "status", "inactive"),
        (f"/api/v1/service_at_locations/{link.id}", "service_name", "Otro (ejemplo)"),
        (f"/api/v1/service_at_locations/{link.id}", "location_id", str(uuid.uuid4())),
    ]
    for path, field, value in cases:
        before = client.get(path, headers=steward_headers).json()
        response = client.patch(path, json={**before, field: value}, headers=steward_headers)
        assert response.status_code == 422, (path, field, response.text)
        assert [e["field"] for e in response.json()["errors"]] == [f"body.{field}"], path
        assert client.get(path, headers=steward_headers).json() == before


def test_a_nested_id_of_another_record_is_never_moved(
    app: FastAPI,
    client: TestClient,
    session: Session,
    steward_headers: dict[str, str],
    full_service: dict[str, Any],
) -> None:
    other = client.post(
        "/api/v1/services",
        json=service_body(uuid.UUID(full_service["organization_id"])),
        headers=steward_headers,
    ).json()
    taken = full_service["phones"][0]
    response = client.patch(
        f"/api/v1/services/{other['id']}",
        json={"phones": [{"id": taken["id"], "number": "5555-0196"}]},
        headers=steward_headers,
    )
    assert response.status_code == 409, response.text
    assert response.json()["errors"][0]["field"] == "body.phones.0.id"
    stored = client.get(f"/api/v1/services/{full_service['id']}", headers=steward_headers).json()
    assert stored["phones"][0] == taken
    # Anyone but a steward names only ids of the record's own nested records.
    provider = bearer(
        app, make_user(session, Role.PROVIDER, uuid.UUID(full_service["organization_id"]))
    )
    chosen = client.patch(
        f"/api/v1/services/{other['id']}",
        json={"phones": [{"id": str(uuid.uuid4()), "number": "5555-0196"}]},
        headers=provider,
    )
    assert chosen.status_code == 422, chosen.text
    assert chosen.json()["errors"][0]["field"] == "body.phones.0.id"
    own = client.patch(
        f"/api/v1/services/{full_service['id']}",
        json={"phones": full_service["phones"][:1]},
        headers=provider,
    )
    assert own.status_code == 200, own.text
    assert [p["id"] for p in own.json()["phones"]] == [taken["id"]]


def test_hsds_attributes_and_top_level_ages_set_categories_and_eligibility(
    client: TestClient, steward_headers: dict[str, str], full_service: dict[str, Any]
) -> None:
    terms = _terms()
    path = f"/api/v1/services/{full_service['id']}"
    body = {
        "attributes": [{"taxonomy_term_id": terms["protection.migration"]["id"]}],
        "minimum_age": 0,
        "maximum_age": 25,
        "eligibility_description": "Personas migrantes",
    }
    response = client.patch(path, json=body, headers=steward_headers)
    assert response.status_code == 200, response.text
    stored = client.get(path, headers=steward_headers).json()
    assert stored["categories"] == [
        {"code": "protection.migration", "name": terms["protection.migration"]["name"]["es"]}
    ]
    assert (stored["minimum_age"], stored["maximum_age"]) == (0, 25)
    eligibility = stored["eligibility"]
    assert (eligibility["minimum_age"], eligibility["maximum_age"]) == (0, 25)
    assert (
        eligibility["description"]
        == stored["eligibility_description"]
        == body["eligibility_description"]
    )
    assert eligibility["trans_inclusive"] is True  # the rest of the eligibility is unchanged
    # The attributes: our term and, derived, the Open Eligibility term it maps onto.
    by_taxonomy = {a["taxonomy_term"]["taxonomy_id"]: a for a in stored["attributes"]}
    assert (
        by_taxonomy[str(OPEN_ELIGIBILITY)]["taxonomy_term"]["code"]
        == (terms["protection.migration"]["open_eligibility"]["code"])
    )
    # Written back whole, the derived attribute is accepted as it is derived.
    _round_trip(client, path, steward_headers, evaluated=True)


def test_hsds_forms_that_disagree_are_refused(
    client: TestClient, steward_headers: dict[str, str], full_service: dict[str, Any]
) -> None:
    terms = _terms()
    path = f"/api/v1/services/{full_service['id']}"
    derived = next(
        a
        for a in full_service["attributes"]
        if a["taxonomy_term"]["taxonomy_id"] == str(OPEN_ELIGIBILITY)
    )
    cases = [
        (
            {
                "categories": ["protection.legal_aid"],
                "attributes": [{"taxonomy_term_id": terms["protection.migration"]["id"]}],
            },
            "body.attributes",
        ),
        ({"eligibility": {"minimum_age": 3}, "minimum_age": 4}, "body.minimum_age"),
        ({"attributes": [derived]}, "body.attributes.0.taxonomy_term_id"),
        (
            {"categories": [{"code": "protection.legal_aid", "name": "Otra cosa"}]},
            "body.categories.0.name",
        ),
        ({"languages": [{"code": "spa", "name": "francés"}]}, "body.languages.0.name"),
        (
            {
                "service_areas": [
                    {"extent": json.dumps(AREA), "geometry": {**AREA, "coordinates": []}}
                ]
            },
            "body.service_areas.0",
        ),
        ({"phones": [{"number": "5555-0101", "extension": -1}]}, "body.phones.0.extension"),
    ]
    for body, field in cases:
        response = client.patch(path, json=body, headers=steward_headers)
        assert response.status_code == 422, (body, response.text)
        fields = [error["field"] for error in response.json()["errors"]]
        assert any(f.startswith(field) for f in fields), (field, fields)
    _assert_unchanged(client, path, steward_headers, full_service)


def test_short_forms_are_still_written(
    client: TestClient, steward_headers: dict[str, str], full_service: dict[str, Any]
) -> None:
    """Codes for languages and categories, and the GeoJSON object as ``extent``."""
    path = f"/api/v1/services/{full_service['id']}"
    body = {
        "languages": ["es", "mam"],
        "categories": ["protection.legal_aid"],
        "service_areas": [{"name": "Objeto", "extent": AREA}],
    }
    response = client.patch(path, json=body, headers=steward_headers)
    assert response.status_code == 200, response.text
    stored = response.json()
    assert [lang["code"] for lang in stored["languages"]] == ["mam", "spa"]
    kept = {lang["code"]: lang["id"] for lang in full_service["languages"]}
    assert {lang["code"]: lang["id"] for lang in stored["languages"]} == kept
    assert [c["code"] for c in stored["categories"]] == ["protection.legal_aid"]
    assert json.loads(stored["service_areas"][0]["extent"]) == AREA


def test_location_and_organization_lists_keep_their_ids(
    client: TestClient, session: Session, steward_headers: dict[str, str]
) -> None:
    """Location schedules (writable since the HSDS shapes) and an organization's phone with its
    languages: written, then written back with their ids, then one item changed in place."""
    org = client.post(
        "/api/v1/organizations",
        json={
            "name": "Red de prueba (ejemplo)",
            "phones": [{"number": "5555-0101", "languages": [{"code": "mam", "note": "Lunes"}]}],
        },
        headers=steward_headers,
    ).json()
    org_path = f"/api/v1/organizations/{org['id']}"
    phone = org["phones"][0]
    assert phone["languages"][0]["note"] == "Lunes"
    _round_trip(client, org_path, steward_headers)
    phone = {**phone, "description": "Línea nueva", "languages": [*phone["languages"], "spa"]}
    changed = client.patch(org_path, json={"phones": [phone]}, headers=steward_headers).json()
    assert changed["phones"][0]["id"] == phone["id"]
    assert changed["phones"][0]["description"] == "Línea nueva"
    spoken = {lang["code"]: lang["id"] for lang in changed["phones"][0]["languages"]}
    assert spoken["mam"] == org["phones"][0]["languages"][0]["id"]

    location = client.post(
        "/api/v1/locations",
        json={
            "organization_id": org["id"],
            "name": "Sede (ejemplo)",
            "location_type": "virtual",
            "schedules": [{"byday": "MO", "opens_at": "08:00", "closes_at": "12:00"}],
        },
        headers=steward_headers,
    )
    assert location.status_code == 201, location.text
    path = f"/api/v1/locations/{location.json()['id']}"
    schedule = location.json()["schedules"][0]
    after = _round_trip(client, path, steward_headers)
    assert after["schedules"] == [schedule]
    moved = {**schedule, "byday": "TU"}
    response = client.patch(path, json={"schedules": [moved]}, headers=steward_headers)
    assert response.status_code == 200, response.text
    assert response.json()["schedules"] == [moved]
    history = client.get(
        "/api/v1/metadata", params={"resource_id": location.json()["id"]}, headers=steward_headers
    )
    assert history.status_code == 200, history.text
    changes = [row for row in history.json() if row["field_name"] == "schedules"]
    assert [json.loads(row["replacement_value"])[0]["byday"] for row in changes] == ["MO", "TU"]
