"""`referral-net serve` with JSON logs: every line of every process is one JSON object naming its
request, and none holds a query string, a coordinate, a confidential location or a password.

The server runs for real (two workers, tests/served.py) on both backends: a worker is a fresh
process, so a log format set up only in the parent would not reach the lines that matter.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from sqlmodel import Session

from referral_net.db import migrate
from referral_net.db.engine import make_engine
from referral_net.domain import users
from referral_net.security.roles import Role
from referral_net.vocab import Visibility
from tests.conftest import make_backend_settings, unavailable
from tests.factories import location_body, organization_body
from tests.served import served

pytestmark = pytest.mark.db

PASSWORD = "json logs test password 42"
# A caseworker's search point and a confidential shelter's place: neither may reach a log.
SEARCH_POINT = ("14.834712", "-91.518109")
SHELTER_POINT = (14.612345, -90.512345)
CLIENT_REQUEST_ID = "client-chosen-id-0001"
FIELDS = {"timestamp", "level", "logger", "message", "request_id"}


@pytest.fixture(params=["spatialite", "postgis"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database of each backend with a steward account."""
    backend = str(request.param)
    try:
        settings = make_backend_settings(backend, tmp_path, suffix="_logs_json")
        migrate.upgrade(settings)
    except Exception as exc:
        unavailable(request, backend, exc)
        raise
    engine = make_engine(settings)
    with Session(engine) as session:
        users.create_user(
            session=session, username="steward-logs", password=PASSWORD, role=Role.STEWARD
        )
    engine.dispose()
    return settings.database_url


def _records(log: Path) -> list[dict[str, Any]]:
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines, "the server wrote no log lines"
    records = []
    for line in lines:
        record = json.loads(line)  # fails the test on any line that is not one JSON object
        assert isinstance(record, dict), line
        records.append(record)
    return records


def test_every_line_is_json_with_the_request_id_and_no_location(
    database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    answers: list[httpx.Response] = []
    env = {"REFERRAL_NET_LOG_FORMAT": "json"}
    with (
        served(database_url, workers=2, env=env, log=log) as base,
        httpx.Client(base_url=base, timeout=60) as client,
    ):
        login = client.post(
            "/api/v1/auth/token", data={"username": "steward-logs", "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        org = client.post("/api/v1/organizations", json=organization_body(), headers=auth)
        assert org.status_code == 201, org.text
        shelter = client.post(
            "/api/v1/locations",
            json=location_body(
                uuid.UUID(org.json()["id"]),
                latitude=SHELTER_POINT[0],
                longitude=SHELTER_POINT[1],
                visibility=Visibility.CONFIDENTIAL.value,
            ),
            headers=auth,
        )
        assert shelter.status_code == 201, shelter.text
        shelter_id = shelter.json()["id"]
        search = client.get(
            f"/api/v1/search?near={SEARCH_POINT[0]},{SEARCH_POINT[1]}&limit=3",
            headers={"X-Request-ID": CLIENT_REQUEST_ID},
        )
        assert search.status_code == 200, search.text
        hidden = client.get(f"/api/v1/locations/{shelter_id}")  # anonymous: confidential
        assert hidden.status_code == 404, hidden.text
        nowhere = client.get(f"/no/such/page?near={SEARCH_POINT[0]},{SEARCH_POINT[1]}")
        assert nowhere.status_code == 404
        answers = [login, org, shelter, search, hidden, nowhere]
    # The block ended: the server stopped, so every line has been written.

    records = _records(log)
    for record in records:
        assert record.keys() >= FIELDS, record
        assert datetime.fromisoformat(record["timestamp"]).tzinfo is not None
    # Lines from uvicorn itself and from both workers, all in the same format.
    assert any(r["logger"].startswith("uvicorn") for r in records)
    started = [r for r in records if r["message"].startswith("Application startup complete")]
    assert len({r["process"] for r in started}) == 2, started

    access = {r["request_id"]: r for r in records if r["logger"] == "referral_net.requests"}
    for answer in answers:
        request_id = answer.headers["X-Request-ID"]
        line = access[request_id]
        assert line["status"] == answer.status_code
        assert line["method"] == answer.request.method
        assert isinstance(line["duration_ms"], int | float)
    assert search.headers["X-Request-ID"] == CLIENT_REQUEST_ID
    assert access[CLIENT_REQUEST_ID]["route"] == "/api/v1/search"
    assert access[hidden.headers["X-Request-ID"]]["route"] == "/api/v1/locations/{location_id}"
    assert access[nowhere.headers["X-Request-ID"]]["route"] == "(no route)"

    printed = log.read_text()
    for secret in (
        *SEARCH_POINT,
        "near=",
        "?",
        shelter_id,
        str(SHELTER_POINT[0]),
        str(SHELTER_POINT[1]),
        PASSWORD,
        token,
    ):
        assert secret not in printed, secret
