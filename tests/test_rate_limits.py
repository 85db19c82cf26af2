"""Rate limits (public per IP, partner per key, log-in brute force) and security headers.

Every limit test runs on both limit stores (in-process and Redis) and both databases. The Redis
store uses database 15 of ``REFERRAL_NET_TEST_REDIS_URL`` (flushed first); an unreachable Redis
is skipped on a laptop and fails the run under CI, like a missing database backend.

Resets are tested with a short window (``rate_limit_window_seconds``) and a sleep just past it.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine
from sqlmodel import Session

from referral_net.api import hot_reads, ratelimit
from referral_net.api.security_headers import EMBED_PATH_PREFIX
from referral_net.main import create_app
from referral_net.security.roles import Principal, Role
from referral_net.settings import Settings
from tests.conftest import join_transaction, unavailable
from tests.factories import bearer, make_user

DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/15"
PASSWORD = "correct horse battery staple"  # the throwaway password of tests/factories.py
PUBLIC_PATH = "/api/v1/taxonomies"
PROBLEM = "application/problem+json"

AppFactory = Callable[..., FastAPI]


def redis_test_url() -> str:
    """The Redis database the limit tests may flush."""
    return os.environ.get("REFERRAL_NET_TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL)


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> str | None:
    """The limit store under test: None for in-process, else a flushed Redis database."""
    if request.param == "memory":
        return None
    url = redis_test_url()
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        client.flushdb()
        client.close()
    except Exception as exc:
        unavailable(request, "redis", exc)
        raise
    return url


@pytest.fixture
def make_app(
    settings: Settings, engine: Engine, connection: Connection, store: str | None
) -> AppFactory:
    """Build apps like conftest's ``app``, with limits on and small, and the store under test."""

    def _make(**overrides: Any) -> FastAPI:
        values: dict[str, Any] = {
            "rate_limits_enabled": True,
            "rate_limit_public_per_minute": 3,
            "rate_limit_login_per_minute": 5,
            "rate_limit_window_seconds": 60,
            "redis_url": store,
        }
        values.update(overrides)
        application = create_app(settings.model_copy(update=values))
        application.state.engine = engine

        join_transaction(application, connection)
        return application

    return _make


def _client(app: FastAPI, ip: str = "198.51.100.7", **kwargs: Any) -> TestClient:
    return TestClient(app, raise_server_exceptions=False, client=(ip, 40000), **kwargs)


def _assert_429(response: Any) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["type"].endswith(":rate-limited")
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1
    return retry_after


def test_public_requests_beyond_the_limit_get_429_then_reset(make_app: AppFactory) -> None:
    client = _client(make_app(rate_limit_window_seconds=1))
    remaining = []
    for _ in range(3):
        response = client.get(PUBLIC_PATH)
        assert response.status_code == 200, response.text
        assert response.headers["RateLimit-Limit"] == "3"
        remaining.append(int(response.headers["RateLimit-Remaining"]))
    assert remaining == [2, 1, 0]
    assert _assert_429(client.get(PUBLIC_PATH)) <= 1
    time.sleep(1.1)
    assert client.get(PUBLIC_PATH).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/search?near=14.84,-91.52&f=json",
        "/api/v1/search?near=14.84,-91.52&f=geojson",
        "/ogc/collections/services/items?bbox=-91.6,14.7,-91.4,14.9",
    ],
)
def test_hot_read_answers_carry_the_limit_headers(make_app: AppFactory, path: str) -> None:
    # These endpoints build their own Response (api/deps.in_one_hop): the headers the limit
    # dependency set must still reach the caller, and the limit still bite.
    client = _client(make_app())
    for expected_remaining in (2, 1, 0):
        response = client.get(path)
        assert response.status_code == 200, response.text
        assert response.headers["RateLimit-Limit"] == "3"
        assert int(response.headers["RateLimit-Remaining"]) == expected_remaining
    _assert_429(client.get(path))


def test_search_refuses_in_the_order_its_dependencies_did(make_app: AppFactory) -> None:
    # The search opens its caller, limit and known parameters itself (api/hot_reads.py), in the
    # order FastAPI resolved them as dependencies: a bad key (401, not counted), then the limit
    # (429), then an unknown parameter (400), then the values (422).
    client = _client(make_app(rate_limit_public_per_minute=2))
    unknown = "/api/v1/search?near=14.84,-91.52&nearr=1"
    wrong_key = client.get(unknown, headers={"X-API-Key": "rn_not-a-key"})
    assert wrong_key.status_code == 401, wrong_key.text
    assert "RateLimit-Remaining" not in wrong_key.headers
    first = client.get(unknown)
    assert first.status_code == 400, first.text
    assert "nearr" in first.json()["detail"]
    assert first.headers["RateLimit-Remaining"] == "1"
    second = client.get("/api/v1/search?near=91,-91.52")
    assert second.status_code == 422, second.text
    assert second.headers["RateLimit-Remaining"] == "0"
    _assert_429(client.get(unknown))


def test_every_limited_answer_carries_the_limit_headers(make_app: AppFactory) -> None:
    # Whatever answers a counted request carries its count: answers FastAPI builds, documents
    # and pages the routes build themselves, and problems (api/ratelimit.py's middleware). All
    # of these share the public budget of one IP, so Remaining counts down across them.
    client = _client(make_app(rate_limit_public_per_minute=10))
    answers = [
        client.get("/ogc"),
        client.get("/ogc/conformance"),
        client.get("/ogc/collections"),
        client.get("/embed"),
        client.get("/api/v1/search"),  # no mode: a 400 problem, counted all the same
        client.get("/api/v1/audit"),  # staff only: a 401 problem
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 400, 401]
    assert [a.headers["RateLimit-Limit"] for a in answers] == ["10"] * 6
    assert [int(a.headers["RateLimit-Remaining"]) for a in answers] == [9, 8, 7, 6, 5, 4]
    for _ in range(4):
        client.get("/ogc")
    refused = client.get("/ogc")
    _assert_429(refused)
    assert refused.headers.get_list("RateLimit-Limit") == ["10"]  # not doubled on a 429
    assert client.get("/health").headers.get("RateLimit-Limit") is None  # never limited


def test_each_ip_has_its_own_limit(make_app: AppFactory) -> None:
    app = make_app()
    first, second = _client(app, "203.0.113.1"), _client(app, "203.0.113.2")
    for _ in range(3):
        assert first.get(PUBLIC_PATH).status_code == 200
    _assert_429(first.get(PUBLIC_PATH))
    assert second.get(PUBLIC_PATH).status_code == 200


def test_health_and_docs_are_not_limited(make_app: AppFactory) -> None:
    client = _client(make_app())
    for _ in range(5):
        assert client.get("/health").status_code == 200
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/docs").status_code == 200


def test_staff_are_not_held_to_the_public_limit(make_app: AppFactory, session: Session) -> None:
    app = make_app()
    headers = bearer(app, make_user(session, Role.CASEWORKER))
    client = _client(app)
    for _ in range(6):
        response = client.get(PUBLIC_PATH, headers=headers)
        assert response.status_code == 200
        assert "RateLimit-Limit" not in response.headers


def test_limits_can_be_disabled(make_app: AppFactory) -> None:
    client = _client(make_app(rate_limits_enabled=False))
    for _ in range(6):
        assert client.get(PUBLIC_PATH).status_code == 200


def test_store_is_shared_between_apps_only_with_redis(
    make_app: AppFactory, store: str | None
) -> None:
    # Two app instances stand for two workers: with Redis they share one counter.
    worker_a, worker_b = _client(make_app()), _client(make_app())
    assert worker_a.get(PUBLIC_PATH).status_code == 200
    assert worker_a.get(PUBLIC_PATH).status_code == 200
    assert worker_b.get(PUBLIC_PATH).status_code == 200
    fourth = worker_b.get(PUBLIC_PATH)
    if store is None:
        assert fourth.status_code == 200  # in-process: each worker counts on its own
    else:
        _assert_429(fourth)
        _assert_429(worker_a.get(PUBLIC_PATH))


def _login(client: TestClient, username: str, password: str) -> Any:
    return client.post("/api/v1/auth/token", data={"username": username, "password": password})


def test_login_brute_force_is_throttled_then_resets(make_app: AppFactory, session: Session) -> None:
    # The window must hold the failed argon2 checks with room to spare even on a loaded CI
    # machine (one check took up to ~0.8 s there): two failures allowed, a 5 s window.
    window = 5
    app = make_app(
        rate_limit_window_seconds=window,
        rate_limit_public_per_minute=1000,
        rate_limit_login_per_minute=2,
    )
    user = make_user(session, Role.CASEWORKER)
    client = _client(app)
    assert _login(client, user.username, PASSWORD).status_code == 200
    for _ in range(2):
        assert _login(client, user.username, "wrong password here").status_code == 401
    _assert_429(_login(client, user.username, "wrong password here"))
    retry_after = _assert_429(_login(client, user.username, PASSWORD))  # even the right one
    assert retry_after <= window
    assert client.post("/api/v1/auth/token").status_code in {422, 429}
    time.sleep(window + 0.2)
    response = _login(client, user.username, PASSWORD)
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"


def test_successful_logins_do_not_count(make_app: AppFactory, session: Session) -> None:
    app = make_app(rate_limit_login_per_minute=2, rate_limit_public_per_minute=1000)
    user = make_user(session, Role.CASEWORKER)
    client = _client(app)
    for _ in range(4):
        assert _login(client, user.username, PASSWORD).status_code == 200


def test_login_is_throttled_per_username_across_ips(make_app: AppFactory, session: Session) -> None:
    app = make_app(rate_limit_login_per_minute=2, rate_limit_public_per_minute=1000)
    user = make_user(session, Role.CASEWORKER)
    _login(_client(app, "203.0.113.10"), user.username, "wrong password here")
    _login(_client(app, "203.0.113.11"), user.username, "wrong password here")
    _assert_429(_login(_client(app, "203.0.113.12"), user.username, PASSWORD))
    # Another username from a fresh address is unaffected.
    other = make_user(session, Role.CASEWORKER)
    assert _login(_client(app, "203.0.113.13"), other.username, PASSWORD).status_code == 200


def test_login_is_throttled_per_ip_across_usernames(make_app: AppFactory, session: Session) -> None:
    app = make_app(rate_limit_login_per_minute=2, rate_limit_public_per_minute=1000)
    client = _client(app, "203.0.113.20")
    for _ in range(2):
        assert _login(client, f"nobody-{uuid.uuid4().hex[:6]}", "guess guess guess").status_code
    user = make_user(session, Role.CASEWORKER)
    _assert_429(_login(client, user.username, PASSWORD))
    assert _login(_client(app, "203.0.113.21"), user.username, PASSWORD).status_code == 200


@pytest.mark.parametrize("store", ["redis"], indirect=True)  # only Redis can be unreachable
def test_unreachable_redis_fails_open_for_reads_and_closed_for_login(
    make_app: AppFactory, session: Session
) -> None:
    app = make_app(redis_url="redis://127.0.0.1:1/0")
    client = _client(app)
    for _ in range(5):
        assert client.get(PUBLIC_PATH).status_code == 200
    user = make_user(session, Role.CASEWORKER)
    response = _login(client, user.username, PASSWORD)
    assert response.status_code == 503
    assert response.headers["content-type"].startswith(PROBLEM)


def test_every_api_route_is_rate_limited(make_app: AppFactory) -> None:
    # FastAPI 0.16x keeps included routers lazily; iter_route_contexts yields their routes.
    app = make_app()
    api_routes = [r for r in iter_route_contexts(app.routes) if (r.path or "").startswith("/api/")]
    assert len(api_routes) > 10
    # A hot read route counts its limit in its own context (api/hot_reads.py), by its mark;
    # test_hot_read_answers_carry_the_limit_headers shows that search still counts.
    missing = [
        r.path
        for r in api_routes
        if not any(d.call is ratelimit.enforce_rate_limit for d in r.dependant.dependencies)
        and not hot_reads.has_explicit_context(r.endpoint)
    ]
    assert missing == []


@dataclass(frozen=True)
class _PartnerPrincipal(Principal):
    """A principal with the fields partner keys carry."""

    api_key_id: uuid.UUID | None = None
    requests_per_minute: int | None = None


def test_partner_buckets_are_per_key_with_their_own_limit() -> None:
    settings = Settings(database_url="sqlite:///unused.db")
    key_id = uuid.uuid4()
    own = _PartnerPrincipal(Role.PARTNER, "key:x", api_key_id=key_id, requests_per_minute=50)
    default = _PartnerPrincipal(Role.PARTNER, "key:y", api_key_id=key_id)
    assert ratelimit._partner_bucket(own, settings) == (f"key:{key_id}", 50)
    assert ratelimit._partner_bucket(default, settings) == (f"key:{key_id}", 600)
    # A principal without the partner fields falls back to its subject and the default limit.
    plain = Principal(role=Role.PARTNER, subject="partner:legacy")
    assert ratelimit._partner_bucket(plain, settings) == ("partner:legacy", 600)


# --- security headers -------------------------------------------------------------------------

BASE = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def test_security_headers_on_json(client: TestClient) -> None:
    response = client.get(PUBLIC_PATH)
    assert response.status_code == 200
    for name, value in BASE.items():
        assert response.headers[name] == value
    assert response.headers["Content-Security-Policy"] == (
        "default-src 'none'; frame-ancestors 'none'"
    )
    assert "Strict-Transport-Security" not in response.headers  # plain http
    assert response.headers["Cache-Control"] == "public, max-age=60"  # api/caching.py


def test_security_headers_on_docs_allow_exactly_what_swagger_loads(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    for name, value in BASE.items():
        assert response.headers[name] == value
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    script_src = next(d for d in csp.split("; ") if d.startswith("script-src "))
    assert script_src == "script-src 'self'"  # served offline (tests/test_offline_docs.py)
    # Everything the page loads is allowed by its policy: the application's own files.
    for url in ("/static-docs/swagger-ui-bundle.js", "/static-docs/swagger-ui.css"):
        assert f'"{url}"' in response.text
    body = client.get("/openapi.json")
    assert body.status_code == 200


def test_security_headers_on_errors_auth_embed_and_https(app: FastAPI) -> None:
    with TestClient(app, raise_server_exceptions=False, base_url="https://testserver") as client:
        not_found = client.get("/api/v1/organizations/" + str(uuid.uuid4()))
        assert not_found.status_code == 404
        assert not_found.headers["X-Content-Type-Options"] == "nosniff"
        assert not_found.headers["Strict-Transport-Security"].startswith("max-age=")
        auth = client.post("/api/v1/auth/token", data={"username": "x", "password": "y"})
        assert auth.headers["Cache-Control"] == "no-store"
        embed = client.get(EMBED_PATH_PREFIX + "/widget")
        assert "X-Frame-Options" not in embed.headers
        assert "frame-ancestors *" in embed.headers["Content-Security-Policy"]


def test_tiles_have_their_own_budget(make_app: AppFactory) -> None:
    # A map loads dozens of tiles per view: they must neither spend the API's budget nor be
    # throttled by it, and still be limited on their own (docs/tiles.md).
    client = _client(make_app(rate_limit_public_per_minute=2, rate_limit_tiles_per_minute=4))
    tile = "/tiles/departments/6/15/29.mvt"
    for _ in range(4):
        assert client.get(tile).status_code in (200, 204)
    _assert_429(client.get(tile))
    for _ in range(2):  # the API's budget is untouched by the tiles
        assert client.get(PUBLIC_PATH).status_code == 200
    _assert_429(client.get(PUBLIC_PATH))
    other = _client(
        make_app(rate_limit_public_per_minute=2, rate_limit_tiles_per_minute=4), ip="198.51.100.99"
    )
    assert other.get(tile).status_code in (200, 204)  # per client IP
