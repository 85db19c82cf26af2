"""Security headers on every response, and a Content-Security-Policy fitted to each kind of page.

Every response gets::

    X-Content-Type-Options: nosniff
    Referrer-Policy: no-referrer
    Cross-Origin-Opener-Policy: same-origin
    X-Frame-Options: DENY                       (not under EMBED_PATH_PREFIX, see below)

plus a Content-Security-Policy:

- JSON and other non-HTML responses: ``default-src 'none'; frame-ancestors 'none'`` (OWASP's
  advice for APIs: a response rendered by mistake as a page can do nothing);
- HTML pages: scripts only from the exact CDN paths FastAPI's documentation pages load
  (``swagger-ui-dist@5`` and ``redoc@2`` on cdn.jsdelivr.net), inline scripts only by their
  SHA-256 hash. The hashes are computed from the body of the documentation pages FastAPI renders,
  which hold no caller-supplied text; any other HTML page gets no inline script at all;
- paths under ``EMBED_PATH_PREFIX`` (a future embeddable widget for partner sites) may be framed
  by any site: no ``X-Frame-Options``, and ``frame-ancestors *`` in their policy.

``Strict-Transport-Security`` is sent only when the request arrived over https, because a
browser ignores it over plain http and a developer on http://localhost should not pin their
browser to https. Behind a TLS-terminating proxy the scheme is https only when uvicorn trusts the
proxy's ``X-Forwarded-Proto`` (``--proxy-headers --forwarded-allow-ips``).

``Cache-Control: no-store`` goes on everything under ``/api/v1/auth/``: tokens must not be kept in
any cache. Headers a route sets itself are left alone.

This is a plain ASGI middleware, not ``BaseHTTPMiddleware``, so it does not buffer responses
(apart from the small documentation pages whose inline scripts it hashes).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

EMBED_PATH_PREFIX = "/embed"
"""Pages under this prefix are meant to be framed by partner sites (none exist yet)."""

AUTH_PATH_PREFIX = "/api/v1/auth/"
HSTS_VALUE = "max-age=31536000; includeSubDomains"

BASE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def api_csp(frame_ancestors: str = "'none'") -> str:
    """The policy of JSON and other non-HTML responses: nothing may load, nothing may frame."""
    return f"default-src 'none'; frame-ancestors {frame_ancestors}"


# What FastAPI's /docs (Swagger UI) and /redoc pages load; kept to exact paths, since a whole-CDN
# allowance would admit any script published to npm.
_DOCS_SCRIPTS = (
    "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/",
    "https://cdn.jsdelivr.net/npm/redoc@2/",
)
_DOCS_DIRECTIVES = (
    # Swagger UI and ReDoc set inline styles from script (React, styled-components).
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/ "
    "https://fonts.googleapis.com",
    "font-src https://fonts.gstatic.com",
    "img-src 'self' data: https://fastapi.tiangolo.com",
    "connect-src 'self'",  # openapi.json and "Try it out"
    "worker-src blob:",  # ReDoc's search worker
    "form-action 'self'",
    "base-uri 'none'",
)

_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def _script_hashes(body: bytes) -> list[str]:
    """CSP hash sources for the inline ``<script>`` blocks of a page."""
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(block).digest()).decode() + "'"
        for block in _INLINE_SCRIPT.findall(body)
    ]


def docs_csp(body: bytes, frame_ancestors: str = "'none'") -> str:
    """The policy of a documentation page, admitting its own inline scripts by hash."""
    scripts = " ".join(["'self'", *_DOCS_SCRIPTS, *_script_hashes(body)])
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {scripts}",
            *_DOCS_DIRECTIVES,
            f"frame-ancestors {frame_ancestors}",
        ]
    )


def html_csp(frame_ancestors: str = "'none'") -> str:
    """The policy of any other HTML page: own resources only, no inline script."""
    return (
        "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
        f"form-action 'self'; frame-ancestors {frame_ancestors}"
    )


class SecurityHeadersMiddleware:
    """ASGI middleware adding the headers described in the module docstring."""

    def __init__(self, app: ASGIApp, docs_paths: Iterable[str] = ()) -> None:
        """Wrap ``app``; ``docs_paths`` are the documentation pages whose scripts are hashed."""
        self.app = app
        self.docs_paths = frozenset(docs_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers to the response of an HTTP request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path.removeprefix(root_path) or "/"
        https = scope.get("scheme") == "https"
        embed = path == EMBED_PATH_PREFIX or path.startswith(EMBED_PATH_PREFIX + "/")
        frame_ancestors = "*" if embed else "'none'"
        hold_docs = path in self.docs_paths
        start: Message | None = None
        chunks: list[bytes] = []

        def decorate(message: Message, body: bytes | None) -> None:
            headers = MutableHeaders(scope=message)
            for name, value in BASE_HEADERS.items():
                headers.setdefault(name, value)
            if not embed:
                headers.setdefault("X-Frame-Options", "DENY")
            if https:
                headers.setdefault("Strict-Transport-Security", HSTS_VALUE)
            if path.startswith(AUTH_PATH_PREFIX):
                headers.setdefault("Cache-Control", "no-store")
            if headers.get("content-type", "").startswith("text/html"):
                csp = docs_csp(body, frame_ancestors) if body is not None else None
                headers.setdefault("Content-Security-Policy", csp or html_csp(frame_ancestors))
            else:
                headers.setdefault("Content-Security-Policy", api_csp(frame_ancestors))

        async def send_with_headers(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if hold_docs:
                    start = message  # wait for the body: the policy depends on its scripts
                    return
                decorate(message, None)
                await send(message)
                return
            if start is not None and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                decorate(start, b"".join(chunks))
                await send(start)
                await send({"type": "http.response.body", "body": b"".join(chunks)})
                start = None
                return
            await send(message)

        await self.app(scope, receive, send_with_headers)
