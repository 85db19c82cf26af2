"""Out-of-range dates, instants and numbers in queries: a 422 naming the field, never a 5xx.

The named cases are the ones a review found answering 500 (issue 10, point 6). The hypothesis
tests then throw extreme values (the ends of the calendar, any time zone, huge and negative
numbers, NaN and infinity) at every GET parameter that takes them, on both backends, so this
class of error cannot come back unnoticed. schemathesis (tests/test_api_fuzz.py) only draws
values its schema allows and rarely reaches the ends of the calendar; these strategies aim there.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from tests.factories import QUETZALTENANGO, location_body, make_organization, service_body

pytestmark = pytest.mark.db

NEAR = f"{QUETZALTENANGO[0]},{QUETZALTENANGO[1]}"
HYPOTHESIS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def service_id(
    client: TestClient, session: Session, taxonomy_loaded: None, steward_headers: dict[str, str]
) -> str:
    """A service at a location near the search point, with weekly and monthly schedules.

    Opening hours are only evaluated for rows that exist, so the searches below must find one.
    """
    org = make_organization(session)
    schedules = [
        {"freq": "WEEKLY", "byday": "MO,TU,WE,TH,FR", "opens_at": "08:00", "closes_at": "16:00"},
        {"freq": "MONTHLY", "bymonthday": "-1", "opens_at": "22:00", "closes_at": "06:00"},
        {
            "freq": "WEEKLY",
            "interval": 2,
            "byday": "SA",
            "dtstart": "2026-01-03",
            "opens_at": "09:00",
            "closes_at": "12:00",
        },
    ]
    created = client.post(
        "/api/v1/services", json=service_body(org.id, schedules=schedules), headers=steward_headers
    )
    assert created.status_code == 201, created.text
    place = client.post("/api/v1/locations", json=location_body(org.id), headers=steward_headers)
    assert place.status_code == 201, place.text
    link = client.post(
        "/api/v1/service_at_locations",
        json={"service_id": created.json()["id"], "location_id": place.json()["id"]},
        headers=steward_headers,
    )
    assert link.status_code == 201, link.text
    return str(created.json()["id"])


def _assert_problem_names(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert [e["field"] for e in body["errors"]] == [f"query.{field}"], body


@pytest.mark.parametrize("instant", ["9999-12-31T23:59:59", "0001-01-01T00:00:00"])
def test_open_at_at_the_ends_of_the_calendar_is_a_422(
    client: TestClient, service_id: str, steward_headers: dict[str, str], instant: str
) -> None:
    for path in (
        f"/api/v1/search?near={NEAR}&open_at={instant}",
        f"/api/v1/services?open_at={instant}",
        f"/api/v1/services/{service_id}?open_at={instant}",
    ):
        response = client.get(path, headers=steward_headers)
        _assert_problem_names(response, "open_at")
        assert instant not in response.text  # the rejected value is never echoed


@pytest.mark.parametrize(
    "instant", ["0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00", "9999-12-31T23:59:59-12:00"]
)
def test_modified_after_at_the_ends_of_the_calendar_is_a_422(
    client: TestClient, service_id: str, steward_headers: dict[str, str], instant: str
) -> None:
    response = client.get(
        "/api/v1/services", params={"modified_after": instant}, headers=steward_headers
    )
    _assert_problem_names(response, "modified_after")


def test_instants_well_inside_the_calendar_still_work(
    client: TestClient, service_id: str, steward_headers: dict[str, str]
) -> None:
    # The margin is eight days at each end: just inside it, every route answers.
    for early, late in (("0001-01-10T00:00:00", "9999-12-20T00:00:00"),):
        for instant in (early, late):
            for path in (
                f"/api/v1/search?near={NEAR}&open_at={instant}",
                f"/api/v1/services?open_at={instant}",
                f"/api/v1/services/{service_id}?open_at={instant}",
                f"/api/v1/services?modified_after={instant}",
            ):
                assert client.get(path, headers=steward_headers).status_code == 200, path
    # A Monday 10:00 in Guatemala: the weekday schedule is open, so the filter still filters.
    found = client.get(
        f"/api/v1/search?near={NEAR}&open_at=2026-11-30T10:00:00", headers=steward_headers
    )
    assert found.json()["total_items"] == 1


def test_verification_period_reaching_before_year_one_is_a_422(
    client: TestClient, service_id: str, steward_headers: dict[str, str]
) -> None:
    response = client.get(
        "/api/v1/verification/due?today=0001-01-01&period_days=3650", headers=steward_headers
    )
    _assert_problem_names(response, "today")
    # Exactly as far back as the calendar goes is fine.
    ok = client.get(
        "/api/v1/verification/due?today=0001-01-11&period_days=10", headers=steward_headers
    )
    assert ok.status_code == 200, ok.text


# --- hypothesis: extreme values everywhere ----------------------------------------------------

_offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
extreme_datetimes = st.one_of(
    st.datetimes(min_value=datetime.min, max_value=datetime.max, timezones=st.none() | _offsets),
    st.datetimes(min_value=datetime.min, max_value=datetime.max, timezones=st.timezones()),
    st.sampled_from([datetime.min, datetime.max]),
    st.datetimes(
        min_value=datetime.min, max_value=datetime.min + timedelta(days=20), timezones=_offsets
    ),
    st.datetimes(
        min_value=datetime.max - timedelta(days=20), max_value=datetime.max, timezones=_offsets
    ),
).map(datetime.isoformat)
extreme_dates = st.one_of(
    st.dates(),
    st.dates(max_value=date.min + timedelta(days=4000)),
    st.dates(min_value=date.max - timedelta(days=30)),
).map(date.isoformat)
extreme_ints = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2**31, 2**63 - 1, 2**63, -(2**63), 10**30]),
).map(str)
extreme_floats = st.floats(allow_nan=True, allow_infinity=True).map(repr)


def _check(response: Any, path: str) -> None:
    assert response.status_code < 500, (path, response.status_code)
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json"), path


@HYPOTHESIS
@given(instant=extreme_datetimes, flag=st.sampled_from(["open_at", "modified_after"]))
def test_services_list_never_fails_on_extreme_instants(
    client: TestClient, service_id: str, steward_headers: dict[str, str], instant: str, flag: str
) -> None:
    response = client.get("/api/v1/services", params={flag: instant}, headers=steward_headers)
    _check(response, f"/api/v1/services {flag}")


@HYPOTHESIS
@given(instant=extreme_datetimes)
def test_service_read_and_search_never_fail_on_extreme_instants(
    client: TestClient, service_id: str, steward_headers: dict[str, str], instant: str
) -> None:
    response = client.get(
        f"/api/v1/services/{service_id}", params={"open_at": instant}, headers=steward_headers
    )
    _check(response, "/api/v1/services/{id}")
    response = client.get(
        "/api/v1/search", params={"near": NEAR, "open_at": instant}, headers=steward_headers
    )
    _check(response, "/api/v1/search")


@HYPOTHESIS
@given(today=extreme_dates, period=st.one_of(st.none(), extreme_ints), page=extreme_ints)
def test_verification_due_never_fails_on_extreme_dates(
    client: TestClient,
    service_id: str,
    steward_headers: dict[str, str],
    today: str,
    period: str | None,
    page: str,
) -> None:
    params = {"today": today, "page": page}
    if period is not None:
        params["period_days"] = period
    response = client.get("/api/v1/verification/due", params=params, headers=steward_headers)
    _check(response, "/api/v1/verification/due")


@HYPOTHESIS
@given(
    lat=extreme_floats,
    lon=extreme_floats,
    number=st.sampled_from(["radius_m", "limit", "page", "age", "verified_within_days"]),
    value=st.one_of(extreme_ints, extreme_floats),
)
def test_search_never_fails_on_extreme_numbers(
    client: TestClient,
    service_id: str,
    steward_headers: dict[str, str],
    lat: str,
    lon: str,
    number: str,
    value: str,
) -> None:
    for params in (
        {"near": NEAR, number: value},
        {"near": f"{lat},{lon}"},
        {"covers": f"{lat},{lon}"},
    ):
        response = client.get("/api/v1/search", params=params, headers=steward_headers)
        _check(response, f"/api/v1/search {sorted(params)}")


@HYPOTHESIS
@given(page=extreme_ints, per_page=extreme_ints)
def test_lists_never_fail_on_extreme_page_numbers(
    client: TestClient, service_id: str, steward_headers: dict[str, str], page: str, per_page: str
) -> None:
    for path in ("/api/v1/services", "/api/v1/locations", "/api/v1/organizations"):
        response = client.get(
            path, params={"page": page, "per_page": per_page}, headers=steward_headers
        )
        _check(response, path)
