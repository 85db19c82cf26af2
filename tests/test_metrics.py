"""Prometheus metrics (api/metrics.py): off without a token, a 401 without the right one, and
counts per route template, latencies and pool usage, in one process and summed over two workers.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from pydantic import SecretStr
from sqlalchemy import Connection, Engine

from referral_net.db import migrate
from referral_net.main import create_app
from referral_net.server import MULTIPROC_ENV, metrics_directory
from referral_net.settings import Settings
from tests.conftest import join_transaction, make_backend_settings, unavailable
from tests.served import served

pytestmark = pytest.mark.db

TOKEN = "metrics-test-token-0123456789abcdef0123456789"
SCRAPE = {"Authorization": f"Bearer {TOKEN}"}
SEARCH = "/api/v1/search?near=14.834712,-91.518109&limit=3"
PROBLEM = "application/problem+json"


def _samples(exposition: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(exposition) for s in family.samples]


def _value(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels`` (0 if none)."""
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


@pytest.fixture
def metered(settings: Settings, engine: Engine, connection: Connection) -> Iterator[TestClient]:
    """conftest's app with a metrics token, served with its lifespan (the pool is watched)."""
    application = create_app(
        settings.model_copy(
            update={
                "rate_limits_enabled": False,
                "import_worker": False,
                "referral_webhook_worker": False,
                "metrics_token": SecretStr(TOKEN),  # model_copy does not validate
            }
        )
    )
    application.state.engine = engine

    join_transaction(application, connection)
    with TestClient(application, raise_server_exceptions=False) as client:
        yield client


def test_no_token_setting_means_no_metrics(client: TestClient, app: FastAPI) -> None:
    answer = client.get("/metrics", headers=SCRAPE)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == PROBLEM
    assert not hasattr(app.state, "metrics")


def test_metrics_need_the_token(metered: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        answer = metered.get("/metrics", headers=headers)
        assert answer.status_code == 401, headers
        assert answer.headers["content-type"] == PROBLEM
        assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert "referral_net_http" not in answer.text
    answer = metered.get("/metrics", headers=SCRAPE)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert "no-store" in answer.headers["Cache-Control"]  # credentialed (api/caching.py)
    assert "/metrics" not in metered.get("/openapi.json").text  # not part of the API


def test_counts_latencies_and_pool_by_route_template(
    metered: TestClient, settings: Settings
) -> None:
    for _ in range(3):
        assert metered.get(SEARCH).status_code == 200
    hidden_id = str(uuid.uuid4())
    assert metered.get(f"/api/v1/locations/{hidden_id}").status_code == 404
    assert metered.get("/no/such/page").status_code == 404

    exposition = metered.get("/metrics", headers=SCRAPE).text
    samples = _samples(exposition)
    search = {"method": "GET", "route": "/api/v1/search", "status": "200"}
    assert _value(samples, "referral_net_http_requests_total", **search) == 3
    assert _value(samples, "referral_net_http_request_duration_seconds_count", **search) == 3
    assert _value(samples, "referral_net_http_request_duration_seconds_bucket", le="+Inf", **search)
    location = {"route": "/api/v1/locations/{location_id}", "status": "404"}
    assert _value(samples, "referral_net_http_requests_total", **location) == 1
    assert _value(samples, "referral_net_http_requests_total", route="(no route)") == 1
    # Templates only: no id, no coordinate, no path of a page that does not exist.
    for text in (hidden_id, "14.834712", "near=", "/no/such/page"):
        assert text not in exposition, text

    primary = {"engine": "primary"}
    assert _value(samples, "referral_net_db_pool_size", **primary) == settings.database_pool_size
    # The test's own connection (the transaction rolled back after it) is checked out.
    assert _value(samples, "referral_net_db_pool_checked_out", **primary) >= 1
    assert _value(samples, "referral_net_db_pool_overflow", **primary) >= 0


@pytest.fixture(params=["spatialite", "postgis"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database of each backend."""
    backend = str(request.param)
    try:
        settings = make_backend_settings(backend, tmp_path, suffix="_metrics")
        migrate.upgrade(settings)
    except Exception as exc:
        unavailable(request, backend, exc)
        raise
    return settings.database_url


def test_two_workers_report_as_one(database_url: str, tmp_path: Path) -> None:
    requests = 12
    pool_size = 4
    env = {"REFERRAL_NET_METRICS_TOKEN": TOKEN, "REFERRAL_NET_DATABASE_POOL_SIZE": str(pool_size)}
    with served(database_url, workers=2, env=env, log=tmp_path / "server.log") as base:
        assert httpx.get(f"{base}/metrics", timeout=30).status_code == 401
        for _ in range(requests):  # a connection each, so that either worker may answer
            assert httpx.get(f"{base}{SEARCH}", timeout=30).status_code == 200

        search = {"route": "/api/v1/search", "status": "200"}
        samples: list[Sample] = []
        deadline = time.monotonic() + 120  # a wait for the second worker, not a timing
        while time.monotonic() < deadline:
            answer = httpx.get(f"{base}/metrics", headers=SCRAPE, timeout=30)
            assert answer.status_code == 200, answer.text
            samples = _samples(answer.text)
            both_live = _value(samples, "referral_net_db_pool_size") == 2 * pool_size
            counted = _value(samples, "referral_net_http_requests_total", **search)
            if both_live and counted == requests:
                break
            time.sleep(0.5)
        # Each worker's pool counts once (livesum), and the requests add up over both.
        assert _value(samples, "referral_net_db_pool_size", engine="primary") == 2 * pool_size
        assert _value(samples, "referral_net_http_requests_total", **search) == requests
        assert (
            _value(samples, "referral_net_http_request_duration_seconds_count", **search)
            == requests
        )


def test_serve_prepares_the_multiprocess_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    on = Settings(metrics_token=TOKEN)
    # One worker, or metrics off: single-process mode, nothing set.
    with metrics_directory(on, workers=1) as directory:
        assert directory is None
        assert MULTIPROC_ENV not in os.environ
    with metrics_directory(Settings(), workers=2) as directory:
        assert directory is None
    # Several workers: a fresh directory for them, removed afterwards.
    with metrics_directory(on, workers=2) as directory:
        assert directory is not None
        assert directory.is_dir()
        assert os.environ[MULTIPROC_ENV] == str(directory)
    assert not directory.exists()
    assert MULTIPROC_ENV not in os.environ
    # An operator's own directory: kept, but emptied of a previous run's values.
    own = tmp_path / "prometheus"
    own.mkdir()
    (own / "counter_4242.db").write_bytes(b"stale")
    (own / "notes.txt").write_text("not ours")
    monkeypatch.setenv(MULTIPROC_ENV, str(own))
    with metrics_directory(on, workers=2) as directory:
        assert directory == own
        assert not (own / "counter_4242.db").exists()
    assert (own / "notes.txt").exists()
