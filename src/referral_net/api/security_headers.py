"""Security headers on every response, and a Content-Security-Policy fitted to each kind of page.

Every response gets::

    X-Content-Type-Options: nosniff
    Referrer-Policy: no-referrer
    Cross-Origin-Opener-Policy: same-origin
    X-Frame-Options: DENY                       (not under EMBED_PATH_PREFIX, see below)

plus a Content-Security-Policy:

- JSON and other non-HTML responses: ``default-src 'none'; frame-ancestors 'none'`` (OWASP's
  advice for APIs: a response rendered by mistake as a page can do nothing);
- the documentation pages (/docs, /redoc; api/docs_ui.py): everything from the application
  itself (``'self'``), no outside host, no inline script (Swagger UI starts from a local file);
  inline styles are allowed, because Swagger UI and ReDoc (styled-components) write them;
- other HTML pages: own resources only, no inline script;
- paths under ``EMBED_PATH_PREFIX`` (a future embeddable widget for partner sites) may be framed
  by any site: no ``X-Frame-Options``, and ``frame-ancestors *`` in their policy.

``Strict-Transport-Security`` is sent only when the request arrived over https, because a
browser ignores it over plain http and a developer on http://localhost should not pin their
browser to https. Behind a TLS-terminating proxy the scheme is https only when uvicorn trusts the
proxy's ``X-Forwarded-Proto`` (``--proxy-headers --forwarded-allow-ips``).

``Cache-Control: no-store`` goes on everything under ``/api/v1/auth/``: tokens must not be kept in
any cache. Headers a route sets itself are left alone.

This is a plain ASGI middleware, not ``BaseHTTPMiddleware``, so it does not buffer responses.
"""

from __future__ import annotations

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


# What /docs (Swagger UI) and /redoc load, all served by the application (api/docs_ui.py).
_DOCS_DIRECTIVES = (
    "default-src 'none'",
    "script-src 'self'",
    # Swagger UI and ReDoc write inline styles (React style attributes, styled-components).
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",  # the favicon; the UIs' icons are data: URIs
    "font-src 'self' data:",
    "connect-src 'self'",  # openapi.json and "Try it out"
    "worker-src 'self' blob:",  # ReDoc's search worker
    "form-action 'self'",
    "base-uri 'none'",
)


def docs_csp(frame_ancestors: str = "'none'") -> str:
    """The policy of a documentation page: only the application's own scripts and styles."""
    return "; ".join([*_DOCS_DIRECTIVES, f"frame-ancestors {frame_ancestors}"])


def html_csp(frame_ancestors: str = "'none'") -> str:
    """The policy of any other HTML page: own resources only, no inline script."""
    return (
        "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
        f"form-action 'self'; frame-ancestors {frame_ancestors}"
    )


def app_path(scope: Scope) -> str:
    """The request's path as the routes see it: without the ``root_path`` it is mounted under."""
    path: str = scope.get("path", "")
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        path = path.removeprefix(root_path) or "/"
    return path


def _add_security_headers(
    headers: MutableHeaders, *, path: str, https: bool, docs_page: bool
) -> None:
    """Add to a response's headers those of the module docstring the route has not set itself."""
    embed = path == EMBED_PATH_PREFIX or path.startswith(EMBED_PATH_PREFIX + "/")
    frame_ancestors = "*" if embed else "'none'"
    for name, value in BASE_HEADERS.items():
        headers.setdefault(name, value)
    if not embed:
        headers.setdefault("X-Frame-Options", "DENY")
    if https:
        headers.setdefault("Strict-Transport-Security", HSTS_VALUE)
    if path.startswith(AUTH_PATH_PREFIX):
        headers.setdefault("Cache-Control", "no-store")
    if not headers.get("content-type", "").startswith("text/html"):
        csp = api_csp(frame_ancestors)
    elif docs_page:
        csp = docs_csp(frame_ancestors)
    else:
        csp = html_csp(frame_ancestors)
    headers.setdefault("Content-Security-Policy", csp)


class SecurityHeadersMiddleware:
    """ASGI middleware adding the headers described in the module docstring."""

    def __init__(self, app: ASGIApp, docs_paths: Iterable[str] = ()) -> None:
        """Wrap ``app``; ``docs_paths`` are the documentation pages (they get ``docs_csp``)."""
        self.app = app
        self.docs_paths = frozenset(docs_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers to the response of an HTTP request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = app_path(scope)
        https = scope.get("scheme") == "https"
        docs_page = path in self.docs_paths

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                _add_security_headers(
                    MutableHeaders(scope=message), path=path, https=https, docs_page=docs_page
                )
            await send(message)

        await self.app(scope, receive, send_with_headers)
