"""How ``referral-net serve`` runs uvicorn: the options, in one testable place.

Proxy headers: uvicorn's defaults trust ``X-Forwarded-For`` and ``X-Forwarded-Proto`` from
127.0.0.1 (or from ``$FORWARDED_ALLOW_IPS``). On a host where other programs run, anything that can
connect over loopback could then choose its own client address, and so its own rate-limit and
log-in-throttle identity. Here no forwarding header is trusted unless a proxy address is named
(``--forwarded-allow-ips`` or ``REFERRAL_NET_FORWARDED_ALLOW_IPS``).
"""

from __future__ import annotations

from typing import Any

APP_FACTORY = "referral_net.main:create_app"


def uvicorn_options(
    *, host: str, port: int, workers: int, forwarded_allow_ips: str | None
) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` (and ``uvicorn.Config``) of the API server.

    ``forwarded_allow_ips`` is uvicorn's comma-separated list of proxy addresses or networks
    (``"10.0.0.5"``, ``"10.0.0.0/24"``); empty or None trusts no forwarding header at all.
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
    return options
