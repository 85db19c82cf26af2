"""Serve referral-net for real (``referral-net serve`` in a subprocess) for tests that need
several worker processes and real connections, such as the concurrent-writer tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx

REPO = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).with_name("referral-net")
# A fixed test key (tokens must be shared between workers); 48 bytes, above the 32-byte floor.
TEST_SECRET_KEY = "concurrency-test-key-0123456789abcdef0123456789ab"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(
    database_url: str,
    *,
    workers: int,
    env: Mapping[str, str] | None = None,
    log: Path,
    cli: Path = CLI,
    cwd: Path = REPO,
) -> Iterator[str]:
    """Run ``referral-net serve`` on a free loopback port until the block ends; yield its URL.

    ``cli`` and ``cwd`` default to the checkout's command run from the checkout; the wheel test
    passes an installed copy and a directory outside the checkout.
    """
    port = free_port()
    environment = {
        **os.environ,
        "REFERRAL_NET_DATABASE_URL": database_url,
        "REFERRAL_NET_SECRET_KEY": TEST_SECRET_KEY,
        "REFERRAL_NET_RATE_LIMITS_ENABLED": "false",
        **(env or {}),
    }
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [str(cli), "serve", "--port", str(port), "--workers", str(workers)],
            env=environment,
            cwd=cwd,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_ready(base, process, log)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _wait_until_ready(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180  # a loaded 2-core CI host starts workers slowly
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not ready in 180 s:\n{log.read_text(errors='replace')[-3000:]}")
