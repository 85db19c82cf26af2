"""`referral-net serve` trusts no forwarding header unless a proxy is named, and refuses to start
with a weak signing key. A real uvicorn on loopback shows what the rate limiter sees."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from pydantic import ValidationError
from typer.testing import CliRunner

from referral_net.api.ratelimit import client_ip
from referral_net.cli import app as cli_app
from referral_net.server import uvicorn_options
from referral_net.settings import Settings

SPOOFED = "203.0.113.9"
WEAK = "only-twenty-five-bytes!!!"
STRONG = "x" * 32


def _client_ip_app() -> FastAPI:
    app = FastAPI()

    @app.get("/ip")
    def ip(request: Request) -> dict[str, str]:
        return {"client": client_ip(request)}

    return app


def _seen_ip(base: str, forwarded_for: str) -> str:
    request = urllib.request.Request(f"{base}/ip", headers={"X-Forwarded-For": forwarded_for})
    with urllib.request.urlopen(request, timeout=10) as response:
        body: dict[str, str] = json.loads(response.read())
    return body["client"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def serve_with() -> Iterator[Any]:
    """Start a real uvicorn on loopback with serve's options; stop it after the test."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(forwarded_allow_ips: str | None) -> str:
        port = _free_port()
        options = uvicorn_options(
            host="127.0.0.1", port=port, workers=1, forwarded_allow_ips=forwarded_allow_ips
        )
        options.update(app=_client_ip_app(), factory=False, log_level="warning")
        server = uvicorn.Server(uvicorn.Config(**options))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


def test_options_trust_no_proxy_by_default() -> None:
    options = uvicorn_options(host="127.0.0.1", port=8000, workers=1, forwarded_allow_ips=None)
    assert options["proxy_headers"] is False
    assert "forwarded_allow_ips" not in options
    config = uvicorn.Config(**options)
    assert config.proxy_headers is False
    named = uvicorn_options(host="0.0.0.0", port=8000, workers=2, forwarded_allow_ips="10.0.0.5")
    assert (named["proxy_headers"], named["forwarded_allow_ips"]) == (True, "10.0.0.5")


def test_a_loopback_client_cannot_choose_its_address(serve_with: Any) -> None:
    base = serve_with(None)
    assert _seen_ip(base, SPOOFED) == "127.0.0.1"


def test_a_named_proxy_is_trusted(serve_with: Any) -> None:
    base = serve_with("127.0.0.1")
    assert _seen_ip(base, SPOOFED) == SPOOFED


def test_serve_passes_the_flag_or_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda **kwargs: calls.append(kwargs))
    monkeypatch.delenv("REFERRAL_NET_FORWARDED_ALLOW_IPS", raising=False)
    monkeypatch.delenv("REFERRAL_NET_SECRET_KEY", raising=False)
    runner = CliRunner()

    # A mistyped SpatiaLite path is refused before uvicorn starts, and no file is created.
    missing = tmp_path / "mistyped.db"
    monkeypatch.setenv("REFERRAL_NET_DATABASE_URL", f"sqlite:///{missing}")
    refused = runner.invoke(cli_app, ["serve"])
    assert refused.exit_code == 2
    assert refused.output.strip().startswith("error:")
    assert not missing.exists()
    assert calls == []

    existing = tmp_path / "referral-net.db"
    existing.touch()
    monkeypatch.setenv("REFERRAL_NET_DATABASE_URL", f"sqlite:///{existing}")

    assert runner.invoke(cli_app, ["serve"]).exit_code == 0
    assert calls[-1]["proxy_headers"] is False

    result = runner.invoke(cli_app, ["serve", "--forwarded-allow-ips", "10.0.0.5"])
    assert result.exit_code == 0, result.output
    assert (calls[-1]["proxy_headers"], calls[-1]["forwarded_allow_ips"]) == (True, "10.0.0.5")

    monkeypatch.setenv("REFERRAL_NET_FORWARDED_ALLOW_IPS", "10.0.0.6")
    assert runner.invoke(cli_app, ["serve"]).exit_code == 0
    assert calls[-1]["forwarded_allow_ips"] == "10.0.0.6"


@pytest.mark.parametrize("name", ["secret_key", "audit_key"])
def test_short_keys_are_refused_at_settings_time(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(**{name: WEAK})
    message = str(caught.value)
    assert name in message
    assert "at least 32 bytes" in message
    assert WEAK not in message  # the rejected key is never echoed
    assert Settings(**{name: STRONG}).model_dump()[name] is not None
    # Bytes, not characters: 16 two-byte characters are 32 bytes.
    assert Settings(**{name: "é" * 16}).model_dump()[name] is not None


def test_serve_refuses_a_weak_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setenv("REFERRAL_NET_SECRET_KEY", WEAK)
    result = CliRunner().invoke(cli_app, ["serve"])
    assert calls == []  # uvicorn never started
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:")
    assert "32 bytes" in lines[0]
    assert WEAK not in result.output


def test_serve_builds_each_worker_s_app_with_the_collector_tuned(tmp_path: Path) -> None:
    """uvicorn loads ``create_served_app`` in each worker: the app, with what it built frozen out
    of the collector's scans and young objects collected less often. In a child process: a frozen
    object is never collected, so this test process must not freeze anything."""
    assert uvicorn_options(host="h", port=1, workers=1, forwarded_allow_ips=None)["app"] == (
        "referral_net.main:create_served_app"
    )
    probe = (
        "import gc, json\n"
        "from fastapi import FastAPI\n"
        "from referral_net.main import SERVED_GC_THRESHOLD, create_served_app\n"
        "before = gc.get_threshold()\n"
        "app = create_served_app()\n"
        "print(json.dumps({'app': isinstance(app, FastAPI), 'frozen': gc.get_freeze_count(),\n"
        "    'before': before, 'after': gc.get_threshold(), 'wanted': SERVED_GC_THRESHOLD}))\n"
    )
    env = {
        **os.environ,
        "REFERRAL_NET_DATABASE_URL": f"sqlite:///{tmp_path / 'served.db'}",
        "REFERRAL_NET_SECRET_KEY": STRONG,
    }
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    ).stdout
    seen = json.loads(out.splitlines()[-1])
    assert seen["app"] is True
    # Every module and the app built so far: tens of thousands of objects.
    assert seen["frozen"] > 10_000
    assert seen["after"] == [seen["wanted"], *seen["before"][1:]]
    assert seen["wanted"] > seen["before"][0]
