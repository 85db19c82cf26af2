"""The access log and the NUL refusal: every request, before any route runs."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

PROBLEM = "application/problem+json"


@pytest.mark.parametrize("query", ["q=a%00b", "near=14.8%00,-91.5", "q=%00"])
def test_nul_in_query_is_a_400_problem_with_security_headers(
    client: TestClient, query: str
) -> None:
    response = client.get(f"/api/v1/search?{query}")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == 400
    assert "NUL" in body["detail"]
    assert body["instance"] == "/api/v1/search"
    # The refusal sits inside the security headers middleware, so it carries them too.
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_request_log_has_the_route_template_status_and_never_the_query(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="referral_net.requests"):
        response = client.get("/api/v1/search?near=14.834712,-91.518109&limit=3")
        missing = client.get("/api/v1/services/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 200
    assert missing.status_code == 404
    lines = [r.getMessage() for r in caplog.records if r.name == "referral_net.requests"]
    assert any(line.startswith("GET /api/v1/search 200 ") for line in lines), lines
    # The route's template, not the path: ids in a path may name a hidden record.
    assert any(line.startswith("GET /api/v1/services/{service_id} 404 ") for line in lines), lines
    joined = "\n".join(r.getMessage() for r in caplog.records)
    assert "14.834712" not in joined
    assert "-91.518109" not in joined
    assert "00000000-0000-0000-0000-000000000000" not in joined
