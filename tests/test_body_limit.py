"""The request body cap: 413 before parsing and before authentication (api/body_limit.py).

Before: an anonymous ``POST /api/v1/match`` with a huge JSON body was read and parsed in full,
and only then answered 401.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator

import anyio
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from referral_net.api.body_limit import BodyLimitMiddleware
from referral_net.main import create_app
from referral_net.settings import Settings

pytestmark = pytest.mark.db
PROBLEM = "application/problem+json"
MIB = 1024 * 1024


def _big_json(size: int) -> bytes:
    """A syntactically valid JSON match body of about ``size`` bytes."""
    filler = "x" * size
    return json.dumps({"location": {"latitude": 14.8, "longitude": -91.5}, "pad": filler}).encode()


def _assert_413(response_status: int, content_type: str, body: dict[str, object]) -> None:
    assert response_status == 413
    assert content_type.startswith(PROBLEM)
    assert body["status"] == 413
    assert body["type"] == "urn:referral-net:problem:content-too-large"
    assert "1048576 bytes" in str(body["detail"])


def test_two_mib_anonymous_match_is_413_not_401(client: TestClient) -> None:
    response = client.post(
        "/api/v1/match", content=_big_json(2 * MIB), headers={"Content-Type": "application/json"}
    )
    _assert_413(response.status_code, response.headers["content-type"], response.json())
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Request-ID"]


def test_streamed_body_without_content_length_is_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"pad": "'
        for _ in range(32):
            yield b"y" * 65_536
        yield b'"}'

    response = client.post(
        "/api/v1/match", content=chunks(), headers={"Content-Type": "application/json"}
    )
    _assert_413(response.status_code, response.headers["content-type"], response.json())


def test_a_body_under_the_cap_goes_on_to_authentication(client: TestClient) -> None:
    response = client.post(
        "/api/v1/match", content=_big_json(MIB // 2), headers={"Content-Type": "application/json"}
    )
    assert response.status_code in {401, 422}  # parsed, then refused as before


def test_the_cap_comes_from_settings(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"max_body_bytes": 200}))
    with TestClient(app, raise_server_exceptions=False) as client:
        refused = client.post("/api/v1/organizations", content=b"{" + b" " * 199 + b"}")
        allowed = client.post("/api/v1/organizations", content=b"{" + b" " * 198 + b"}")
    assert refused.status_code == 413
    assert "200 bytes" in refused.json()["detail"]
    assert allowed.status_code == 401  # within the cap: on to authentication


async def _drain(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


def _echo_app() -> BodyLimitMiddleware:
    async def echo(scope: Scope, receive: Receive, send: Send) -> None:
        body = await _drain(receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(body)).encode()})

    return BodyLimitMiddleware(
        echo, max_bytes=1000, overrides={"/api/v1/imports": 5000, "/api/v1/imports/big": 9000}
    )


def test_per_prefix_overrides_allow_larger_bodies_only_there() -> None:
    client = TestClient(_echo_app())
    assert client.post("/api/v1/match", content=b"a" * 1000).text == "1000"
    assert client.post("/api/v1/match", content=b"a" * 1001).status_code == 413
    assert client.post("/api/v1/imports", content=b"a" * 5000).text == "5000"
    assert client.post("/api/v1/imports/hsds", content=b"a" * 5001).status_code == 413
    assert client.post("/api/v1/imports/big/x", content=b"a" * 9000).text == "9000"
    assert client.post("/api/v1/importsx", content=b"a" * 1001).status_code == 413
    assert _echo_app().limit_for("/api/v1/imports/big") == 9000


def test_declared_length_over_the_cap_is_refused_without_reading() -> None:
    reads: list[Message] = []

    async def never(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("the application must not run")

    async def receive() -> Message:
        reads.append({})
        return {"type": "http.request", "body": b"", "more_body": False}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/match",
        "headers": [(b"content-length", str(50 * MIB).encode())],
        "query_string": b"",
    }
    anyio.run(BodyLimitMiddleware(never, max_bytes=MIB), scope, receive, send)
    assert reads == []
    assert sent[0]["status"] == 413


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[int]:
    """The test application behind a real uvicorn on a loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_chunked_upload_to_a_real_server_is_cut_short_with_413(live_server: int) -> None:
    """Chunked transfer, no Content-Length: the server answers 413 long before 8 MiB arrive."""
    total = 8 * MIB
    sent = 0
    chunk = b"z" * 65_536
    with socket.create_connection(("127.0.0.1", live_server), timeout=10) as conn:
        conn.sendall(
            b"POST /api/v1/match HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        answered = False
        try:
            while sent < total:
                readable, _, _ = select.select([conn], [], [], 0)
                if readable:
                    answered = True
                    break
                conn.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += len(chunk)
        except OSError:  # the server closed its side after answering
            answered = True
        assert answered or sent == total
        response = b""
        while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
            part = conn.recv(65_536)
            if not part:
                break
            response += part
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert b"content-too-large" in body
    assert sent < total, "the whole body was accepted before the answer"
