"""Serving for real: `referral-net serve` finishes an in-flight request after SIGTERM and exits 0,
and its workers share one rate limit through Redis.

In flight, without a slow endpoint or a timing: the request is a POST whose body the client
holds back. It sends the headers with ``Expect: 100-continue``; uvicorn answers ``100 Continue``
only when the app starts reading the body, so from then on the request is inside the app. Then
SIGTERM, then the log line in which uvicorn waits for open connections, then the body.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections import defaultdict
from pathlib import Path

import httpx2 as httpx
import pytest
import redis
from sqlmodel import Session, col, select

from referral_net.db import migrate
from referral_net.db.engine import make_engine
from referral_net.db.models import Organization
from referral_net.domain import users
from referral_net.security.roles import Role
from referral_net.settings import Settings
from tests.conftest import make_backend_settings, unavailable
from tests.served import CLI, REPO, TEST_SECRET_KEY, free_port, served

pytestmark = pytest.mark.db

PASSWORD = "graceful shutdown test password 42"
WAITING = "Waiting for connections to close"
DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/14"


@pytest.fixture(params=["spatialite", "postgis"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A migrated database of each backend with a steward account."""
    backend = str(request.param)
    try:
        settings = make_backend_settings(backend, tmp_path, suffix="_graceful")
        migrate.upgrade(settings)
    except Exception as exc:
        unavailable(request, backend, exc)
        raise
    engine = make_engine(settings)
    with Session(engine) as session:
        users.create_user(
            session=session, username="steward-graceful", password=PASSWORD, role=Role.STEWARD
        )
    engine.dispose()
    return settings


def _wait_ready(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180  # a loaded 2-core host starts workers slowly
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"server not ready:\n{log.read_text(errors='replace')[-3000:]}")


def _wait_for_line(log: Path, text: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        time.sleep(0.1)
    raise AssertionError(f"no {text!r} in the log:\n{log.read_text(errors='replace')[-3000:]}")


def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    received = b""
    while marker not in received:
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_lets_the_request_in_flight_finish(
    database: Settings, workers: int, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    env = {
        **os.environ,
        "REFERRAL_NET_DATABASE_URL": database.database_url,
        "REFERRAL_NET_SECRET_KEY": TEST_SECRET_KEY,
        "REFERRAL_NET_RATE_LIMITS_ENABLED": "false",
        "REFERRAL_NET_GRACEFUL_SHUTDOWN_SECONDS": "120",
    }
    name = f"In flight at shutdown {uuid.uuid4().hex[:8]} (ejemplo)"
    body = json.dumps({"name": name}).encode()
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [str(CLI), "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            cwd=REPO,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base, process, log)
        token = httpx.post(
            f"{base}/api/v1/auth/token",
            data={"username": "steward-graceful", "password": PASSWORD},
            timeout=30,
        ).json()["access_token"]
        with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
            head = (
                "POST /api/v1/organizations HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {token}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Expect: 100-continue\r\n\r\n"
            )
            sock.sendall(head.encode())
            assert _read_until(sock, b"\r\n\r\n").startswith(b"HTTP/1.1 100 ")  # in the app

            process.send_signal(signal.SIGTERM)
            _wait_for_line(log, WAITING, process)  # shutting down, our request still open
            assert process.poll() is None

            sock.sendall(body)
            answer = _read_until(sock, b"}")
        assert answer.startswith(b"HTTP/1.1 201 "), answer[:300]
        assert process.wait(timeout=180) == 0, log.read_text(errors="replace")[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)

    engine = make_engine(database)
    try:
        with Session(engine) as session:
            written = session.exec(select(Organization).where(col(Organization.name) == name))
            assert len(written.all()) == 1  # the answered write is there
    finally:
        engine.dispose()


def test_workers_share_the_rate_limit_through_redis(database: Settings, tmp_path: Path) -> None:
    redis_url = os.environ.get("REFERRAL_NET_TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL)
    store = redis.Redis.from_url(redis_url, socket_connect_timeout=2)
    store.flushdb()
    store.close()
    limit = 3
    env = {
        "REFERRAL_NET_RATE_LIMITS_ENABLED": "true",
        "REFERRAL_NET_REDIS_URL": redis_url,
        "REFERRAL_NET_RATE_LIMIT_PUBLIC_PER_MINUTE": str(limit),
        # Each test client an address of its own, named by the trusted loopback "proxy".
        "REFERRAL_NET_FORWARDED_ALLOW_IPS": "127.0.0.1",
        "REFERRAL_NET_LOG_FORMAT": "json",
    }
    log = tmp_path / "server.log"
    answered: dict[str, list[tuple[int, str]]] = {}
    with served(database.database_url, workers=2, env=env, log=log) as base:
        for number in range(1, 21):
            ip = f"198.51.100.{number}"
            answered[ip] = []
            for _ in range(limit + 1):  # a connection each, so that either worker may answer
                answer = httpx.get(
                    f"{base}/api/v1/taxonomies", headers={"X-Forwarded-For": ip}, timeout=30
                )
                answered[ip].append((answer.status_code, answer.headers["X-Request-ID"]))

    worker_of: dict[str, int] = {}
    for line in log.read_text().splitlines():
        record = json.loads(line)
        if record["logger"] == "referral_net.requests":
            worker_of[record["request_id"]] = record["process"]
    spread: dict[str, set[int]] = defaultdict(set)
    for ip, answers in answered.items():
        assert [status for status, _ in answers] == [200] * limit + [429], (ip, answers)
        for _, request_id in answers:
            spread[ip].add(worker_of[request_id])
    # Some client's requests were answered by both workers, and still it got its 429 on time:
    # the count is one, in Redis, not one per worker.
    assert any(len(pids) == 2 for pids in spread.values()), spread
