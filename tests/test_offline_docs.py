"""/docs and /redoc work offline: every asset from the application, no outside host anywhere.

Issue 10 #19: FastAPI's pages loaded Swagger UI, ReDoc, fonts and a favicon from outside sites.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.db

_URL = re.compile(r"(?:https?:)?//[A-Za-z0-9.-]+")


class _Assets(HTMLParser):
    """Collects what a page loads: script src, link href, and the spec URLs the UIs fetch."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href", "spec-url", "data-openapi-url"):
            if values.get(name):
                self.urls.append(str(values[name]))
        self._in_script = tag == "script" and not values.get("src")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts.append(data)


def _content_type(url: str) -> str:
    if url.endswith(".js"):
        return "text/javascript"
    if url.endswith(".css"):
        return "text/css"
    if url.endswith(".png"):
        return "image/png"
    assert url.endswith("openapi.json"), url
    return "application/json"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_everything_from_the_app(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assets = _Assets()
    assets.feed(response.text)

    assert assets.inline_scripts == []  # so that script-src 'self' suffices
    assert _URL.findall(response.text) == []  # no outside host, not even a font or a favicon
    assert "googleapis" not in response.text
    scripts = [u for u in assets.urls if u.endswith(".js")]
    assert scripts, assets.urls
    assert any(u.endswith(".png") for u in assets.urls)  # a local favicon
    assert any(u.endswith("openapi.json") for u in assets.urls)
    for url in assets.urls:
        assert url.startswith("/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].startswith(_content_type(url)), url
        assert len(asset.content) > 200, url
        if url.endswith("init.js"):  # our own initialiser: the URLs it uses are local too
            assert _URL.findall(asset.text) == []
            assert "data-openapi-url" in asset.text
    if page == "/docs":
        assert any(u.endswith("swagger-ui-bundle.js") for u in scripts)
        assert any(u.endswith("swagger-ui.css") for u in assets.urls)
        assert "SwaggerUIBundle" in client.get(scripts[0]).text
    else:
        assert any(u.endswith("redoc.standalone.js") for u in scripts)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_policy_names_no_outside_host(client: TestClient, page: str) -> None:
    csp = client.get(page).headers["Content-Security-Policy"]
    directives = dict(d.split(" ", 1) for d in csp.split("; "))
    assert "http" not in csp
    assert "//" not in csp
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert all("*" not in value for value in directives.values())


def test_fastapi_cdn_pages_are_gone(client: TestClient) -> None:
    assert client.get("/docs/oauth2-redirect").status_code == 404
    assert client.get("/static-docs/../pyproject.toml").status_code == 404
