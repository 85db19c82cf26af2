"""How ``referral-net serve`` runs uvicorn: the options, in one testable place.

Proxy headers: uvicorn's defaults trust ``X-Forwarded-For`` and ``X-Forwarded-Proto`` from
127.0.0.1 (or from ``$FORWARDED_ALLOW_IPS``). On a host where other programs run, anything that can
connect over loopback could then choose its own client address, and so its own rate-limit and
log-in-throttle identity. Here no forwarding header is trusted unless a proxy address is named
(``--forwarded-allow-ips`` or ``REFERRAL_NET_FORWARDED_ALLOW_IPS``).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from referral_net.logging_config import logging_config
from referral_net.settings import Settings

APP_FACTORY = "referral_net.main:create_served_app"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def uvicorn_options(
    *,
    host: str,
    port: int,
    workers: int,
    forwarded_allow_ips: str | None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` (and ``uvicorn.Config``) of the API server.

    ``forwarded_allow_ips`` is uvicorn's comma-separated list of proxy addresses or networks
    (``"10.0.0.5"``, ``"10.0.0.0/24"``); empty or None trusts no forwarding header at all.
    ``settings`` adds the log format (uvicorn applies it in every worker) and the graceful
    shutdown timeout; without them, uvicorn's defaults.
    """
    trusted = (forwarded_allow_ips or "").strip()
    options: dict[str, Any] = {
        "app": APP_FACTORY,
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        # Access logs carry query strings, which can hold a person's location: ours log paths.
        "access_log": False,
        "proxy_headers": bool(trusted),
        # uvicorn kills a worker that has not answered its supervisor's ping within this many
        # seconds; its default of 5 s killed every worker in a loop on a loaded 2-core host,
        # where importing the app alone took longer (tests/test_concurrent_writers.py).
        "timeout_worker_healthcheck": 60,
    }
    if trusted:
        options["forwarded_allow_ips"] = trusted
    if settings is not None:
        options["log_config"] = logging_config(
            log_format=settings.log_format, level=settings.log_level
        )
        options["log_level"] = settings.log_level.lower()
        # After SIGTERM: stop accepting, let in-flight requests finish for up to this long.
        options["timeout_graceful_shutdown"] = settings.graceful_shutdown_seconds
    return options


@contextmanager
def metrics_directory(settings: Settings, *, workers: int) -> Iterator[Path | None]:
    """Set up prometheus_client's multiprocess mode for ``workers`` > 1 (api/metrics.py).

    The worker processes inherit ``PROMETHEUS_MULTIPROC_DIR`` and write their values there.
    An operator's own directory is used and emptied of stale values first, as prometheus_client
    asks; otherwise a fresh temporary one, removed at the end. With metrics off, or one worker
    (whose own registry is the whole truth), nothing is set.
    """
    if settings.metrics_token is None or workers <= 1:
        yield None
        return
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        yield directory
        return
    directory = Path(tempfile.mkdtemp(prefix="referral-net-metrics-"))
    os.environ[MULTIPROC_ENV] = str(directory)
    try:
        yield directory
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def exit_cleanly_on_sigterm() -> Iterator[None]:
    """Within the block, a SIGTERM that uvicorn has handled ends the process with status 0.

    uvicorn shuts down gracefully on SIGTERM, then raises the signal again under the handler
    that was there before it started; with the default handler a single-process server would
    die by the signal (status 143) after a clean shutdown. This handler exits 0 instead. Before
    uvicorn takes over (while the app is imported), SIGTERM likewise stops the command at once.
    """

    def _exit(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(0)

    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
