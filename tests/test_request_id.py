"""Request ids, and unexpected errors as one log line with no traceback (api/request_middleware.py).

Before: every unhandled error was re-raised by Starlette's ServerErrorMiddleware after its 500,
and uvicorn printed the whole traceback, SQL included. Now the outermost middleware logs the
class, the route template and the request id, and the exception stops there.
"""

from __future__ import annotations

import logging
import re
import uuid

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection
from sqlmodel import Session

from referral_net.domain import locations as locations_domain
from referral_net.errors import ServiceUnavailable
from referral_net.main import create_app
from referral_net.settings import Settings
from tests.conftest import join_transaction

pytestmark = pytest.mark.db
PROBLEM = "application/problem+json"
GENERATED = re.compile(r"[0-9a-f]{32}")
SQL = "SELECT name, latitude FROM location WHERE id = 'secret-id' -- File \"/srv/x.py\""
ROUTE = "/api/v1/locations/{location_id}"


def _raise_sql_error(**_: object) -> None:
    raise RuntimeError(SQL)


def _everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured record as a handler would print it, tracebacks included."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(record) for record in caplog.records)


def test_every_response_carries_a_request_id(client: TestClient) -> None:
    answers = [
        client.get("/health"),
        client.get("/api/v1/taxonomies"),
        client.get(f"/api/v1/locations/{uuid.uuid4()}"),  # 404
        client.get("/api/v1/search?q=%00"),  # refused by a middleware: 400
        client.post("/api/v1/match", json={}),  # 401/422
    ]
    ids = [answer.headers.get("X-Request-ID", "") for answer in answers]
    assert all(GENERATED.fullmatch(i) for i in ids), ids
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    ("offered", "kept"),
    [
        ("req-2026.12.02_abc", True),
        ("0123456789abcdef0123456789abcdef", True),
        ("short", False),  # under 8 characters
        ("x" * 65, False),
        ("bad id with spaces", False),
        ("forged\\nERROR line", False),
        ("-leading-dash-123", False),
    ],
)
def test_incoming_request_id_is_kept_only_if_strict(
    client: TestClient, offered: str, kept: bool
) -> None:
    response = client.get("/health", headers={"X-Request-ID": offered})
    returned = response.headers["X-Request-ID"]
    if kept:
        assert returned == offered
    else:
        assert returned != offered
        assert GENERATED.fullmatch(returned)


def test_unexpected_error_is_one_log_line_without_traceback_or_sql(
    client: TestClient,
    session: Session,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(locations_domain, "get", _raise_sql_error)
    with caplog.at_level(logging.DEBUG):
        response = client.get(f"/api/v1/locations/{uuid.uuid4()}")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    request_id = response.headers["X-Request-ID"]
    assert response.json()["request_id"] == request_id
    assert "SELECT" not in response.text
    assert "RuntimeError" not in response.text

    errors = [r for r in caplog.records if "RuntimeError" in r.getMessage()]
    assert len(errors) == 1, [r.getMessage() for r in caplog.records]
    line = errors[0].getMessage()
    assert ROUTE in line
    assert request_id in line
    assert errors[0].levelno == logging.ERROR
    assert all(r.exc_info is None and r.exc_text is None for r in caplog.records)
    printed = _everything_logged(caplog)
    assert "Traceback" not in printed
    assert "SELECT" not in printed
    assert "secret-id" not in printed
    # The access log line carries the same id, so the two can be joined.
    access = [r.getMessage() for r in caplog.records if r.name == "referral_net.requests"]
    assert any(" 500 " in a and request_id in a for a in access), access


def test_the_exception_never_reaches_starlette_or_the_server(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A TestClient that re-raises server exceptions sees none: ServerErrorMiddleware (which
    re-raises for uvicorn to print) is never reached."""
    monkeypatch.setattr(locations_domain, "get", _raise_sql_error)
    with TestClient(app, raise_server_exceptions=True) as strict:
        response = strict.get(f"/api/v1/locations/{uuid.uuid4()}")
    assert response.status_code == 500
    assert response.json()["request_id"] == response.headers["X-Request-ID"]


def test_a_503_problem_carries_the_request_id(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(**_: object) -> None:
        raise ServiceUnavailable("The database is not reachable.")

    monkeypatch.setattr(locations_domain, "get", unavailable)
    response = client.get(
        f"/api/v1/locations/{uuid.uuid4()}", headers={"X-Request-ID": "op-1234567"}
    )
    assert response.status_code == 503
    assert response.headers["X-Request-ID"] == "op-1234567"
    assert response.json()["request_id"] == "op-1234567"


def test_client_errors_do_not_grow_a_request_id_member(client: TestClient) -> None:
    response = client.get(f"/api/v1/locations/{uuid.uuid4()}")
    assert response.status_code == 404
    assert "request_id" not in response.json()
    assert GENERATED.fullmatch(response.headers["X-Request-ID"])


@pytest.fixture
def debug_app(settings: Settings, connection: Connection) -> FastAPI:
    """The application with ``debug_tracebacks`` on, wired to the test's transaction."""
    application = create_app(
        settings.model_copy(update={"rate_limits_enabled": False, "debug_tracebacks": True})
    )

    join_transaction(application, connection)
    return application


def test_debug_setting_logs_the_traceback(
    debug_app: FastAPI,
    engine: object,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    debug_app.state.engine = engine
    monkeypatch.setattr(locations_domain, "get", _raise_sql_error)
    with (
        caplog.at_level(logging.DEBUG),
        TestClient(debug_app, raise_server_exceptions=True) as debug_client,
    ):
        response = debug_client.get(f"/api/v1/locations/{uuid.uuid4()}")
    assert response.status_code == 500
    errors = [r for r in caplog.records if "RuntimeError" in r.getMessage()]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert "Traceback" in _everything_logged(caplog)
