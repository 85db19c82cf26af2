"""Liveness and readiness on both backends, and 503 when the database is down."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from referral_net.main import create_app
from referral_net.settings import Settings

pytestmark = pytest.mark.db


def test_health_is_ok(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_reports_backend_and_spatial_version(client: TestClient, backend: str) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "reachable"
    assert body["backend"] == backend
    expected_label = "SpatiaLite" if backend == "spatialite" else "PostGIS"
    assert body["spatial_extension"].startswith(expected_label + " ")
    assert any(ch.isdigit() for ch in body["spatial_extension"])


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2",
        "sqlite:////nonexistent-dir/for/referral-net.db",
    ],
)
def test_ready_is_503_problem_when_database_is_down(url: str, tmp_path: Path) -> None:
    app = create_app(Settings(database_url=url))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/ready")
        assert client.get("/health").status_code == 200
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 503
    assert "nowhere" not in response.text
    assert "nonexistent" not in response.text
