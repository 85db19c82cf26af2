"""Rate limits: per client IP for the public, per API key for partners, and on staff log-in.

Built on the `limits` library. The store is in-process (``MemoryStorage``) by default and Redis
when ``REFERRAL_NET_REDIS_URL`` is set, so that several workers (or hosts) share one set of
counters; with the in-process store every worker counts on its own, so N workers admit up to N
times the limit.

Strategy: **moving window**. A fixed window lets a caller spend the whole limit at the end of one
window and again at the start of the next (twice the limit within seconds), which is exactly the
burst a password guesser wants; the moving window counts the requests of the last ``window``
seconds, always. It keeps one timestamp per admitted request, which at these limits (hundreds a
minute per key) is cheap in memory and in Redis (a list per key, updated by a Lua script).

Who is counted against what:

- the anonymous public: per client IP (``request.client.host``), ``rate_limit_public_per_minute``.
  Behind a reverse proxy that address is the proxy's unless uvicorn runs with
  ``--proxy-headers --forwarded-allow-ips=<proxy address>``; without that, all clients share one
  bucket;
- partners (API keys): per key id, ``rate_limit_partner_per_minute`` or the key's own
  ``requests_per_minute``;
- staff with a bearer token: not limited here. They are few, named and accountable, a
  caseworker mid-crisis must not be throttled, and their reads of hidden sites are audited;
- log-in: failed attempts, per client IP and per submitted username (see ``LoginThrottle``).

The limits are created in ``create_app`` (``install``) and kept on ``app.state``; nothing is built
at import time.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from referral_net.api.deps import get_principal
from referral_net.errors import RateLimited, ServiceUnavailable
from referral_net.security.roles import Principal, Role
from referral_net.settings import Settings

logger = logging.getLogger("referral_net.ratelimit")

REDIS_KEY_PREFIX = "referral-net"
# A Redis that hangs must not hang every request with it: fail fast, then decide (see below).
REDIS_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True)
class Decision:
    """The outcome of counting one request against one limit."""

    allowed: bool
    limit: int
    remaining: int
    reset_after: int  # whole seconds until one more request is admitted (at least 1 when denied)

    def headers(self) -> dict[str, str]:
        """IETF draft ``RateLimit-*`` headers, plus ``Retry-After`` when denied."""
        out = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_after),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.reset_after)
        return out


class RateLimits:
    """The limiter of one application: its store, strategy and configured limits."""

    def __init__(self, settings: Settings) -> None:
        """Open the store named by the settings (Redis when ``redis_url`` is set)."""
        self.settings = settings
        self.window = settings.rate_limit_window_seconds
        self.storage: Storage
        if settings.redis_url:
            # wrap_exceptions: every store failure arrives as limits.errors.StorageError.
            self.storage = RedisStorage(
                settings.redis_url,
                key_prefix=REDIS_KEY_PREFIX,
                wrap_exceptions=True,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
        else:
            self.storage = MemoryStorage(wrap_exceptions=True)
        self.strategy = MovingWindowRateLimiter(self.storage)

    def item(self, namespace: str, amount: int) -> RateLimitItem:
        """``amount`` requests per window in the given namespace."""
        return RateLimitItemPerSecond(amount, self.window, namespace=namespace)

    def _reset_after(self, item: RateLimitItem, identifier: str) -> int:
        stats = self.strategy.get_window_stats(item, identifier)
        return max(1, math.ceil(stats.reset_time - time.time()))

    def hit(self, item: RateLimitItem, identifier: str) -> Decision:
        """Count one request; refused (and not counted) when the window is full."""
        allowed = self.strategy.hit(item, identifier)
        stats = self.strategy.get_window_stats(item, identifier)
        reset_after = max(0 if allowed else 1, math.ceil(stats.reset_time - time.time()))
        return Decision(allowed, item.amount, max(0, stats.remaining), reset_after)

    def test(self, item: RateLimitItem, identifier: str) -> Decision:
        """Whether one more request would be admitted, without counting it."""
        if self.strategy.test(item, identifier):
            stats = self.strategy.get_window_stats(item, identifier)
            return Decision(True, item.amount, max(0, stats.remaining), 0)
        return Decision(False, item.amount, 0, self._reset_after(item, identifier))

    def clear(self, item: RateLimitItem, identifier: str) -> None:
        """Forget the counter (not used by the API; for operators and tests)."""
        self.strategy.clear(item, identifier)


def install(app: FastAPI, settings: Settings) -> None:
    """Create the application's limiter (or none when disabled) on ``app.state``."""
    app.state.rate_limits = RateLimits(settings) if settings.rate_limits_enabled else None


def _limits(request: Request) -> RateLimits | None:
    limiter: RateLimits | None = getattr(request.app.state, "rate_limits", None)
    return limiter


def client_ip(request: Request) -> str:
    """The client address as the server sees it (the real one only with proxy headers set up)."""
    return request.client.host if request.client else "unknown"


def _partner_bucket(principal: Principal, settings: Settings) -> tuple[str, int]:
    # api_key_id and requests_per_minute belong to partner keys; read them defensively so this
    # module works with principals that do not carry them.
    key_id = getattr(principal, "api_key_id", None)
    own_limit = getattr(principal, "requests_per_minute", None)
    bucket = f"key:{key_id}" if key_id is not None else principal.subject
    limit = own_limit if isinstance(own_limit, int) and own_limit > 0 else None
    return bucket, limit or settings.rate_limit_partner_per_minute


async def enforce_rate_limit(
    request: Request,
    principal: Annotated[Principal, Depends(get_principal)],
) -> None:
    """Count the request against the caller's limit; 429 with ``Retry-After`` when it is spent.

    Attached to every ``/api/v1`` router in ``create_app``. Health probes and the documentation
    are not behind it, so monitoring is never throttled. ``async``: only a count kept in Redis
    goes to the thread pool (see :func:`_count_off_the_loop`).
    """
    limiter = _limits(request)
    if limiter is None or principal.is_staff:
        return
    settings = limiter.settings
    if principal.role is Role.PARTNER:
        bucket, amount = _partner_bucket(principal, settings)
        item = limiter.item("partner", amount)
    else:
        bucket = f"ip:{client_ip(request)}"
        item = limiter.item("public", settings.rate_limit_public_per_minute)
    await _count_off_the_loop(limiter, item, bucket, request)


async def enforce_tile_rate_limit(
    request: Request,
    principal: Annotated[Principal, Depends(get_principal)],
) -> None:
    """Count a vector tile against the caller's tile budget (``rate_limit_tiles_per_minute``).

    Tiles have their own budget, per key or per IP: a map loads dozens per view, and must not
    spend the budget of the API calls it also makes (or be throttled by it).
    """
    limiter = _limits(request)
    if limiter is None or principal.is_staff:
        return
    key_id = getattr(principal, "api_key_id", None)
    bucket = f"key:{key_id}" if key_id is not None else f"ip:{client_ip(request)}"
    item = limiter.item("tiles", limiter.settings.rate_limit_tiles_per_minute)
    await _count_off_the_loop(limiter, item, bucket, request)


async def _count_off_the_loop(
    limiter: RateLimits, item: RateLimitItem, bucket: str, request: Request
) -> None:
    """Count in the event loop when the store is in-process (a dictionary under a lock), and in
    the thread pool when it is Redis (a network round trip, up to ``REDIS_TIMEOUT_SECONDS``)."""
    if isinstance(limiter.storage, MemoryStorage):
        _count(limiter, item, bucket, request)
    else:
        await run_in_threadpool(_count, limiter, item, bucket, request)


def _count(limiter: RateLimits, item: RateLimitItem, bucket: str, request: Request) -> None:
    try:
        decision = limiter.hit(item, bucket)
    except StorageError as exc:
        # Fail open: the directory is how people at risk find help, and an unreachable Redis
        # must not take it down. Loud in the logs so that it is fixed.
        logger.error("rate-limit store unavailable (%s); request admitted", type(exc).__name__)
        return
    if not decision.allowed:
        raise RateLimited(
            f"Too many requests; retry in {decision.reset_after} seconds.",
            headers=decision.headers(),
        )
    # Sent by RateLimitHeadersMiddleware on whatever answers this request: a Response an
    # endpoint returns, or a problem, would not carry headers set on the injected response.
    setattr(request.state, _HEADERS_STATE, decision.headers())


# Key in the request's state (``scope["state"]``): the RateLimit-* headers of its count.
_HEADERS_STATE = "referral_net_rate_limit_headers"


class RateLimitHeadersMiddleware:
    """Put the ``RateLimit-*`` headers of the request's count on its answer, whatever the
    answer is: a model serialised by FastAPI, a ``Response`` an endpoint built itself (OGC,
    tiles, the embed page, the hot paths of ``api.deps.in_one_hop``), or a problem. FastAPI
    copies headers set on the injected response only onto the answers it builds itself.

    A 429 already carries them (and ``Retry-After``) from its exception; they are not doubled.
    """

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers as the response starts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                counted = scope.get("state", {}).get(_HEADERS_STATE)
                if counted:
                    headers = MutableHeaders(scope=message)
                    for name, value in counted.items():
                        if name not in headers:
                            headers.append(name, value)
            await send(message)

        await self.app(scope, receive, send_with_limits)


class LoginThrottle:
    """Throttles password guessing on ``POST /api/v1/auth/token``.

    Only **failed** attempts count, per client IP and per submitted username, so a user who logs
    in correctly several times is never locked out by their own successes. Once either counter
    reaches ``rate_limit_login_per_minute`` within the window, every attempt from that IP or for
    that username is refused with 429 *before* the password is checked, even a correct one, until
    the window has moved on. The per-username counter stops a guesser who rotates addresses; the
    price is that a third party can keep a username locked for as long as they keep failing. That
    lock lasts one window after they stop, and is preferable to an unthrottled guess rate.

    Usernames are hashed before they become store keys: people type passwords into the username
    field, and Redis keys should not hold them.

    Unlike the request limits this fails **closed**: when the store is unreachable log-in answers
    503 rather than letting password guessing run unthrottled.
    """

    def __init__(self, limiter: RateLimits) -> None:
        """Throttle with the application's limiter and its log-in limit."""
        self.limiter = limiter
        amount = limiter.settings.rate_limit_login_per_minute
        self.by_ip = limiter.item("login-ip", amount)
        self.by_user = limiter.item("login-user", amount)

    @staticmethod
    def _user_key(username: str) -> str:
        normalised = username.strip().casefold().encode()
        return "user:" + hashlib.sha256(normalised).hexdigest()[:32]

    def check(self, ip: str, username: str) -> None:
        """Raise 429 when the IP or the username has used up its failed attempts."""
        try:
            decisions = [
                self.limiter.test(self.by_ip, f"ip:{ip}"),
                self.limiter.test(self.by_user, self._user_key(username)),
            ]
        except StorageError as exc:
            raise ServiceUnavailable("Log-in is temporarily unavailable; try again.") from exc
        refused = [d for d in decisions if not d.allowed]
        if refused:
            wait = max(d.reset_after for d in refused)
            raise RateLimited(
                f"Too many failed log-in attempts; retry in {wait} seconds.",
                headers={"Retry-After": str(wait)},
            )

    def failed(self, ip: str, username: str) -> None:
        """Count one failed attempt against the IP and the username."""
        try:
            self.limiter.hit(self.by_ip, f"ip:{ip}")
            self.limiter.hit(self.by_user, self._user_key(username))
        except StorageError:
            # The attempt was refused anyway; the next check() fails closed if the store is down.
            logger.error("rate-limit store unavailable while counting a failed log-in")


def login_throttle(request: Request) -> LoginThrottle | None:
    """The log-in throttle of the application, or None when rate limits are disabled."""
    limiter = _limits(request)
    return LoginThrottle(limiter) if limiter is not None else None
