"""Needs matching end to end on both backends, over hand-built networks with known answers."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pyproj import Geod
from sqlmodel import Session

from referral_net.domain import locations, service_at_locations, services
from referral_net.schemas.directory import (
    CapacityIn,
    LocationCreate,
    ServiceAreaIn,
    ServiceAtLocationCreate,
    ServiceCreate,
)
from referral_net.security.roles import Principal, Role
from tests.factories import bearer, make_organization, make_user

pytestmark = pytest.mark.db
STEWARD = Principal(role=Role.STEWARD, subject="user:test")
GEOD = Geod(ellps="WGS84")
ALL_DAYS = "MO,TU,WE,TH,FR,SA,SU"
HOURS_24 = [{"byday": ALL_DAYS, "opens_at": "00:00", "closes_at": "00:00"}]
# The person is in Huehuetenango city; services are placed at known geodesic offsets east.
PERSON = (15.3197, -91.4710)


def _east(km: float) -> tuple[float, float]:
    lon, lat, _ = GEOD.fwd(PERSON[1], PERSON[0], 90, km * 1000)
    return lat, lon


def _add(
    session: Session,
    org_name: str,
    name: str,
    km: float,
    categories: list[str],
    *,
    org: Any = None,
    languages: list[str] | None = None,
    eligibility: dict[str, Any] | None = None,
    beds: int | None = None,
    schedules: list[dict[str, Any]] | None = None,
    at: Any = None,
    areas: list[dict[str, Any]] | None = None,
) -> tuple[Any, Any]:
    organization = org or make_organization(session, org_name)
    if at is None:
        lat, lon = _east(km)
        at = locations.create(
            session=session,
            principal=STEWARD,
            data=LocationCreate(
                organization_id=organization.id, name=f"Sede {name}", latitude=lat, longitude=lon
            ),
        )
    service = services.create(
        session=session,
        principal=STEWARD,
        data=ServiceCreate(
            organization_id=organization.id,
            name=name,
            categories=categories,
            languages=languages or ["spa"],
            eligibility=eligibility or {},
            schedules=schedules if schedules is not None else HOURS_24,
            service_areas=[ServiceAreaIn(name="Zona", extent=area) for area in areas or []],
        ),
    )
    if beds is not None:
        services.set_capacity(
            session=session,
            principal=STEWARD,
            service=service,
            rows=[CapacityIn(unit="bed", available=beds, maximum=10)],
        )
    service_at_locations.create(
        session=session,
        principal=STEWARD,
        data=ServiceAtLocationCreate(service_id=service.id, location_id=at.id),
    )
    return organization, at


@pytest.fixture
def caseworker(app: FastAPI, session: Session, taxonomy_loaded: None) -> dict[str, str]:
    """Bearer headers of a caseworker."""
    return bearer(app, make_user(session, Role.CASEWORKER))


def _match(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    payload = {"location": {"latitude": PERSON[0], "longitude": PERSON[1]}, **body}
    response = client.post("/api/v1/match", json=payload, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _names(need: dict[str, Any]) -> list[str]:
    return [p["service_name"] for p in need["proposals"]]


def test_trans_woman_is_not_sent_to_a_non_affirming_womens_shelter(
    client: TestClient, session: Session, caseworker: dict[str, str]
) -> None:
    _add(
        session,
        "A",
        "Refugio mujeres no afirmativo",
        2,
        ["protection.shelter.women"],
        eligibility={"genders_served": ["woman"], "minimum_age": 18},
        beds=3,
    )
    _add(
        session,
        "B",
        "Casa afirmativa",
        9,
        ["protection.shelter.women"],
        eligibility={
            "genders_served": ["woman"],
            "trans_inclusive": True,
            "lgbtiq_affirming": True,
            "minimum_age": 18,
        },
        beds=2,
    )
    result = _match(
        client,
        caseworker,
        needs=[{"code": "protection.shelter", "urgency": "soon"}],
        age=30,
        gender="trans_woman",
    )
    (need,) = result["needs"]
    assert _names(need) == ["Casa afirmativa"]
    assert {e["reason"]: e["count"] for e in need["excluded"]} == {"gender_not_served": 1}
    assert any("LGBTIQ" in reason for reason in need["proposals"][0]["reasons"])


def test_sixteen_year_old_tonight_gets_the_adolescent_shelter_not_the_closer_adult_one(
    client: TestClient, session: Session, caseworker: dict[str, str]
) -> None:
    _add(
        session,
        "A",
        "Albergue adultos",
        1,
        ["protection.shelter.emergency"],
        eligibility={"minimum_age": 18},
        beds=5,
    )
    _add(
        session,
        "B",
        "Albergue adolescentes",
        15,
        ["protection.shelter.children_adolescents"],
        eligibility={"minimum_age": 12, "maximum_age": 17, "minors_only": True},
        beds=2,
    )
    _add(
        session,
        "C",
        "Albergue adolescentes cerrado",
        5,
        ["protection.shelter.children_adolescents"],
        eligibility={"minimum_age": 12, "maximum_age": 17, "minors_only": True},
        beds=2,
        schedules=[{"byday": "MO", "opens_at": "09:00", "closes_at": "09:01"}],
    )
    result = _match(
        client,
        caseworker,
        needs=[{"code": "protection.shelter", "urgency": "emergency"}],
        age=16,
        gender="woman",
    )
    (need,) = result["needs"]
    assert _names(need) == ["Albergue adolescentes"]
    excluded = {e["reason"]: e["count"] for e in need["excluded"]}
    assert excluded["below_minimum_age"] == 1
    assert excluded["not_open_now"] == 1


def test_mam_speaker_prefers_a_mam_service_10_km_further(
    client: TestClient, session: Session, caseworker: dict[str, str]
) -> None:
    _add(
        session,
        "A",
        "Psicologia solo castellano",
        3,
        ["protection.health.mental_psychosocial"],
        languages=["spa"],
    )
    _add(
        session,
        "B",
        "Psicologia en mam",
        13,
        ["protection.health.mental_psychosocial"],
        languages=["spa", "mam"],
    )
    result = _match(
        client,
        caseworker,
        needs=[{"code": "protection.health.mental_psychosocial", "urgency": "routine"}],
        languages=["mam"],
    )
    (need,) = result["needs"]
    assert _names(need) == ["Psicologia en mam", "Psicologia solo castellano"]
    first = need["proposals"][0]
    assert "habla mam" in first["reasons"]
    assert first["distance_m"] == pytest.approx(13_000, abs=1.0)
    assert first["components"]["language"] > need["proposals"][1]["components"]["language"]


def test_emergency_skips_the_full_shelter(
    client: TestClient, session: Session, caseworker: dict[str, str]
) -> None:
    _add(session, "A", "Albergue lleno", 1, ["protection.shelter.emergency"], beds=0)
    _add(session, "B", "Albergue con camas", 6, ["protection.shelter.emergency"], beds=2)
    result = _match(
        client,
        caseworker,
        needs=[{"code": "protection.shelter.emergency", "urgency": "emergency"}],
        age=25,
    )
    (need,) = result["needs"]
    assert _names(need) == ["Albergue con camas"]
    assert {e["reason"]: e["count"] for e in need["excluded"]} == {"no_capacity": 1}
    assert any("camas libres" in r for r in need["proposals"][0]["reasons"])


def test_nothing_in_range_returns_the_nearest_beyond_and_says_so(
    client: TestClient, session: Session, caseworker: dict[str, str]
) -> None:
    _add(session, "A", "Asesoria legal lejana", 60, ["protection.legal_aid"], schedules=[])
    _add(session, "B", "Asesoria legal muy lejana", 90, ["protection.legal_aid"], schedules=[])
    result = _match(
        client, caseworker, needs=[{"code": "protection.legal_aid"}], max_distance_km=20
    )
    (need,) = result["needs"]
    assert need["status"] == "beyond_limit"
    assert need["message"]
    assert need["proposals"][0]["service_name"] == "Asesoria legal lejana"
    assert all(p["beyond_limit"] for p in need["proposals"])
    assert need["proposals"][0]["distance_m"] == pytest.approx(60_000, abs=1.0)


def test_a_need_with_no_service_at_all_is_said_plainly(
    client: TestClient, session: Session, caseworker: dict[str, str]
) -> None:
    _add(session, "A", "Solo salud", 3, ["protection.health.medical"])
    result = _match(client, caseworker, needs=[{"code": "protection.repatriation"}])
    (need,) = result["needs"]
    assert need["status"] == "none_eligible"
    assert need["message"]
    assert need["proposals"] == []
    assert result["plan"]["uncovered"] == ["protection.repatriation"]


def test_five_needs_covered_by_two_providers(
    client: TestClient, session: Session, caseworker: dict[str, str]
) -> None:
    hub, place = _add(
        session, "Centro integral", "Albergue", 4, ["protection.shelter.emergency"], beds=3
    )
    for name, code in [
        ("Medico", "protection.health.medical"),
        ("Psicologia", "protection.health.mental_psychosocial"),
        ("Legal", "protection.legal_aid"),
    ]:
        _add(session, "", name, 4, [code], org=hub, at=place)
    _add(session, "Consulado", "Repatriacion", 8, ["protection.repatriation"])
    # Single-need providers nearer than the hub: the plan must still prefer fewer providers.
    for name, code in [
        ("Medico cercano", "protection.health.medical"),
        ("Legal cercano", "protection.legal_aid"),
    ]:
        _add(session, f"Org {name}", name, 1, [code])
    needs = [
        {"code": "protection.shelter.emergency", "urgency": "soon"},
        {"code": "protection.health.medical"},
        {"code": "protection.health.mental_psychosocial"},
        {"code": "protection.legal_aid"},
        {"code": "protection.repatriation"},
    ]
    result = _match(client, caseworker, needs=needs, age=30)
    plan = result["plan"]
    assert plan["provider_count"] == 2
    assert plan["uncovered"] == []
    covered = sorted(code for step in plan["steps"] for code in step["need_codes"])
    assert covered == sorted(n["code"] for n in needs)
    hub_step = next(s for s in plan["steps"] if len(s["need_codes"]) == 4)
    assert hub_step["organization_id"] == str(hub.id)
    again = _match(client, caseworker, needs=needs, age=30)
    assert again["plan"] == plan  # deterministic


def test_profile_identifies_nobody_and_roles_are_checked(
    app: FastAPI, client: TestClient, session: Session, caseworker: dict[str, str]
) -> None:
    body = {"location": {"municipality": "1301"}, "needs": [{"code": "protection.legal_aid"}]}
    for extra in (
        {"name": "Ana"},
        {"phone": "5555-0000"},
        {"story": "..."},
        {"document_number": "123"},
    ):
        response = client.post("/api/v1/match", json={**body, **extra}, headers=caseworker)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
    assert client.post("/api/v1/match", json=body).status_code == 401
    provider = bearer(app, make_user(session, Role.PROVIDER, make_organization(session).id))
    assert client.post("/api/v1/match", json=body, headers=provider).status_code == 403
    justice = bearer(app, make_user(session, Role.JUSTICE))
    assert client.post("/api/v1/match", json=body, headers=justice).status_code == 200
    unknown = client.post(
        "/api/v1/match",
        json={**body, "location": {"municipality": "9999"}},
        headers=caseworker,
    )
    assert unknown.status_code == 422
    bad_need = client.post(
        "/api/v1/match", json={**body, "needs": [{"code": "nope"}]}, headers=caseworker
    )
    assert bad_need.status_code == 422
    assert [e["field"] for e in bad_need.json()["errors"]] == ["needs"]
    assert "nope" not in bad_need.text  # rejected values are not echoed
    too_many = client.post(
        "/api/v1/match",
        json={**body, "needs": [{"code": f"protection.x{i}"} for i in range(9)]},
        headers=caseworker,
    )
    assert too_many.status_code == 422


def _box(min_lon: float, min_lat: float, max_lon: float, max_lat: float) -> dict[str, Any]:
    ring = [[min_lon, min_lat], [max_lon, min_lat], [max_lon, max_lat], [min_lon, max_lat]]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


# Around Huehuetenango city (the person), and around Guatemala City (not the person).
HUEHUETENANGO_BOX = _box(-92.0, 15.0, -91.0, 15.6)
CAPITAL_BOX = _box(-90.8, 14.4, -90.3, 14.8)
CAPITAL = (14.6349, -90.5069)


def test_a_service_whose_area_covers_the_place_is_in_range_whatever_its_distance(
    client: TestClient, session: Session, caseworker: dict[str, str]
) -> None:
    # A national repatriation service with its office in the capital (~130 km away) and an
    # area that covers Huehuetenango; a capital-only service as far away; one 60 km east.
    for name, area in (("Repatriacion nacional", HUEHUETENANGO_BOX), ("Solo capital", CAPITAL_BOX)):
        org = make_organization(session, f"Org {name}")
        office = locations.create(
            session=session,
            principal=STEWARD,
            data=LocationCreate(
                organization_id=org.id,
                name=f"Sede {name}",
                latitude=CAPITAL[0],
                longitude=CAPITAL[1],
            ),
        )
        _add(session, "", name, 0, ["protection.repatriation"], org=org, at=office, areas=[area])
    _add(session, "C", "Repatriacion a 60 km", 60, ["protection.repatriation"])
    capital_km = GEOD.inv(PERSON[1], PERSON[0], CAPITAL[1], CAPITAL[0])[2] / 1000
    assert capital_km > 100  # independent truth: the office is far beyond the 50 km limit

    # The search by coverage finds exactly the covering service: the ground truth for matching.
    covers = client.get(
        f"/api/v1/search?covers={PERSON[0]},{PERSON[1]}&category=protection.repatriation",
        headers=caseworker,
    )
    assert [r["service"]["name"] for r in covers.json()["contents"]] == ["Repatriacion nacional"]

    result = _match(
        client, caseworker, needs=[{"code": "protection.repatriation"}], max_distance_km=50
    )
    (need,) = result["needs"]
    assert need["status"] == "in_range"
    assert _names(need) == ["Repatriacion nacional"]
    assert need["out_of_range_count"] == 2  # the capital-only one and the one 60 km away
    (proposal,) = need["proposals"]
    assert proposal["covers_area"] is True
    assert proposal["beyond_limit"] is False
    assert proposal["distance_m"] == pytest.approx(capital_km * 1000, rel=1e-3)
    assert "cubre su zona" in proposal["reasons"]
    english = client.post(
        "/api/v1/match",
        json={
            "location": {"latitude": PERSON[0], "longitude": PERSON[1]},
            "needs": [{"code": "protection.repatriation"}],
            "max_distance_km": 50,
        },
        headers={**caseworker, "Accept-Language": "en"},
    )
    assert "covers your area" in english.json()["needs"][0]["proposals"][0]["reasons"]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ((40.4168, -3.7038), "outside Guatemala"),  # Madrid
        ((90.0, 0.0), "outside Guatemala"),  # the North Pole
        ((-90.0, 180.0), "outside Guatemala"),  # the South Pole, on the antimeridian
        ((0.0, 180.0), "outside Guatemala"),  # the antimeridian
        ((-16.5, -179.9), "outside Guatemala"),  # Fiji, just across the antimeridian
        ((-89.5, 14.6), "swapped"),  # a point in eastern Guatemala given lon,lat
    ],
)
def test_a_place_outside_guatemala_is_refused_unless_deliberate(
    client: TestClient,
    session: Session,
    caseworker: dict[str, str],
    where: tuple[float, float],
    message: str,
) -> None:
    _add(session, "A", "Asesoria legal", 5, ["protection.legal_aid"])
    place = {"latitude": where[0], "longitude": where[1]}
    body = {"location": place, "needs": [{"code": "protection.legal_aid"}]}
    refused = client.post("/api/v1/match", json=body, headers=caseworker)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    (error,) = refused.json()["errors"]
    assert error["field"] == "body.location"
    assert message in error["message"]
    for value in where:  # a person's place is personal data: the error never repeats it
        if not value.is_integer():
            assert str(value) not in refused.text

    deliberate = client.post(
        "/api/v1/match",
        json={**body, "location": {**place, "outside_country": True}},
        headers=caseworker,
    )
    assert deliberate.status_code == 200, deliberate.text
    answer = deliberate.json()
    assert answer["outside_country"] is True
    assert any("fuera de Guatemala" in w for w in answer["warnings"])
    (proposal,) = answer["needs"][0]["proposals"]
    assert proposal["service_name"] == "Asesoria legal"
    lon, lat = _east(5)[1], _east(5)[0]
    truth = GEOD.inv(where[1], where[0], lon, lat)[2]
    assert proposal["distance_m"] == pytest.approx(truth, rel=2e-3)


def test_a_place_in_guatemala_is_not_flagged(
    client: TestClient, session: Session, caseworker: dict[str, str]
) -> None:
    _add(session, "A", "Asesoria legal", 5, ["protection.legal_aid"])
    for location in (
        {"latitude": PERSON[0], "longitude": PERSON[1]},
        {"latitude": PERSON[0], "longitude": PERSON[1], "outside_country": True},
        {"municipality": "1301"},
    ):
        result = _match(
            client, caseworker, needs=[{"code": "protection.legal_aid"}], location=location
        )
        assert result["outside_country"] is False
        assert not any("Guatemala" in w for w in result["warnings"])
