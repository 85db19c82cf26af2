"""The interactive API documentation (/docs: Swagger UI, /redoc: ReDoc), served offline.

FastAPI's own pages load Swagger UI, ReDoc, fonts and a favicon from outside sites, so an
offline deployment shows blank pages, and the pages' policy has to admit a CDN. Here every asset
comes from the application itself, under ``DOCS_STATIC_PREFIX``:

- ``swagger-ui-bundle.js``, ``swagger-ui.css``, ``redoc.standalone.js`` and ``favicon.png`` are
  the builds shipped in the ``fastapi-offline`` wheel (locked in uv.lock, installed at set-up);
- ``swagger-init.js`` (``api/docs_static/``) starts Swagger UI, so that the page holds no inline
  script and its Content-Security-Policy is ``script-src 'self'`` (api/security_headers.py).

ReDoc is rendered without Google Fonts. There is no OAuth2 redirect page: the token endpoint is a
password flow, which Swagger UI calls directly.
"""

from __future__ import annotations

from html import escape

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
DOCS_PAGES = (DOCS_URL, REDOC_URL)
DOCS_STATIC_PREFIX = "/static-docs"

# Looked up in order: our own files first, then the vendored builds of the fastapi-offline wheel.
_STATIC_PACKAGES: list[str | tuple[str, str]] = [
    ("referral_net.api", "docs_static"),
    ("fastapi_offline", "static"),
]


def install_docs(app: FastAPI) -> None:
    """Serve /docs, /redoc and their assets; create the app with ``docs_url=None``."""
    app.mount(DOCS_STATIC_PREFIX, StaticFiles(packages=_STATIC_PACKAGES), name="static-docs")

    @app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        return HTMLResponse(
            swagger_ui_html(
                root=_root(request),
                title=f"{app.title} - Swagger UI",
                openapi_url=app.openapi_url or "/openapi.json",
            )
        )

    @app.get(REDOC_URL, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_STATIC_PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_STATIC_PREFIX}/favicon.png",
            with_google_fonts=False,
        )


def swagger_ui_html(*, root: str, title: str, openapi_url: str = "/openapi.json") -> str:
    """The Swagger UI page: local stylesheet, bundle and initialiser; no inline script."""
    static = escape(f"{root}{DOCS_STATIC_PREFIX}", quote=True)
    spec = escape(f"{root}{openapi_url}", quote=True)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link type="text/css" rel="stylesheet" href="{static}/swagger-ui.css">
<link rel="icon" type="image/png" href="{static}/favicon.png">
<title>{escape(title)}</title>
</head>
<body>
<div id="swagger-ui" data-openapi-url="{spec}"></div>
<script src="{static}/swagger-ui-bundle.js"></script>
<script src="{static}/swagger-init.js"></script>
</body>
</html>
"""


def _root(request: Request) -> str:
    # The ASGI root_path, set by the server (uvicorn --root-path), never by the client.
    return str(request.scope.get("root_path", "")).rstrip("/")
