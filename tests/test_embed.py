"""The embeddable map's pages over HTTP, on both backends: options, keys and framing, policies,
labels, the snippet, the assets and the optional third-party base map.

What the map does in a browser is tests/embed_browser.py's (real Chromium).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from referral_net.api import embed_views
from referral_net.domain import keys
from referral_net.main import create_app
from referral_net.settings import Settings
from tests.conftest import join_transaction

pytestmark = pytest.mark.db

PROBLEM = "application/problem+json"
TAXONOMY = json.loads(
    (Path(__file__).resolve().parents[1] / "seed" / "taxonomy.json").read_text(encoding="utf-8")
)
PARTNER_ORIGINS = ["https://partner.example.org", "https://www.partner.example.org"]


def _labels(locale: str) -> dict[str, str]:
    """Category labels straight from the taxonomy file (independent of the code under test)."""
    return {term["code"]: term["name"][locale] for term in TAXONOMY["terms"]}


def _csp(response: Any) -> dict[str, str]:
    directives = [d.strip() for d in response.headers["content-security-policy"].split(";")]
    return {d.split(" ", 1)[0]: d.split(" ", 1)[1] if " " in d else "" for d in directives if d}


def _config(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="embed-config">(.*?)</script>', html)
    assert found is not None
    parsed: dict[str, Any] = json.loads(found.group(1))
    return parsed


def _embed_key(session: Session, *, scopes: list[str], origins: list[str] | None) -> str:
    _, raw = keys.create_key(
        session=session,
        name=f"partner-{len(scopes)}-{bool(origins)}",
        scopes=scopes,
        allowed_origins=origins,
        requests_per_minute=None,
    )
    return raw


@pytest.fixture
def loaded(session: Session, taxonomy_loaded: None) -> Session:
    """The taxonomy is in (the areas are loaded with the test database)."""
    return session


def test_public_map_page_may_be_framed_by_any_site_and_loads_only_its_own_files(
    client: TestClient, loaded: Session
) -> None:
    response = client.get("/embed")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-language"] == "es"
    assert "x-frame-options" not in response.headers
    csp = _csp(response)
    assert csp["frame-ancestors"] == "*"
    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self'"  # no inline script, no eval
    assert csp["connect-src"] == "'self'"  # nobody else is contacted
    assert csp["img-src"] == "'self' data: blob:"
    assert response.headers["cache-control"] == "public, max-age=300"
    html = response.text
    # Every script, stylesheet and icon comes from this service (links are not loaded).
    loaded = re.findall(r'<(?:script|img|iframe)\b[^>]*\bsrc="([^"]+)"', html)
    loaded += re.findall(r'<link\b[^>]*\bhref="([^"]+)"', html)
    assert len(loaded) == 4  # the module script, two stylesheets and the empty icon
    for src in loaded:
        assert src.startswith(("/embed/assets/", "data:")), src
    config = _config(html)
    assert config["key"] is None
    assert config["lang"] == "es"
    assert config["basemap"] is None
    assert '<p class="notice">Este mapa no contacta a terceros.</p>' in html


def test_spanish_and_english_pages_label_categories_from_the_taxonomy(
    client: TestClient, loaded: Session
) -> None:
    for lang in ("es", "en"):
        html = client.get("/embed", params={"lang": lang}).text
        assert f'<html lang="{lang}">' in html
        labels = _labels(lang)
        options = dict(re.findall(r'<option value="([a-z_.]+)"[^>]*>(?:&emsp;)?([^<]+)<', html))
        for code in ("protection", "protection.shelter", "prosecution", "prevention"):
            assert unescape(options[code]) == labels[code]
        strings = embed_views.STRINGS[lang]  # type: ignore[index]
        assert strings["quick_exit"] in html
        other = "en" if lang == "es" else "es"
        assert f'href="/embed?lang={other}"' in html


def test_departments_are_offered_by_name_with_their_ine_codes(
    client: TestClient, loaded: Session
) -> None:
    html = client.get("/embed").text
    departments = dict(re.findall(r'<option value="(\d{2})"[^>]*>([^<]+)<', html))
    assert len(departments) == 22
    assert departments["09"] == "Quetzaltenango"
    assert departments["13"] == "Huehuetenango"


def test_options_are_kept_and_preselected(client: TestClient, loaded: Session) -> None:
    params = {
        "lang": "en",
        "category": "protection.shelter",
        "department": "09",
        "language": "mam",
        "open_now": "true",
        "lgbtiq_affirming": "true",
        "center": "14.8347,-91.5181",
        "zoom": "11",
    }
    response = client.get("/embed", params=params)
    assert response.status_code == 200
    html = response.text
    assert re.search(r'<option value="protection.shelter"\s+selected>', html)
    assert re.search(r'<option value="09"\s+selected>', html)
    assert re.search(r'<option value="mam"\s+selected>', html)
    assert re.search(r'name="open_now" value="true"\s+checked>', html)
    assert re.search(r'name="lgbtiq_affirming" value="true"\s+checked>', html)
    config = _config(html)
    assert config["centre"] == [-91.5181, 14.8347]  # MapLibre's order: lon, lat
    assert config["zoom"] == 11
    assert config["department"] == "09"
    assert config["centreGiven"] is True


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"unknown": "1"}, 400),
        ({"lang": "fr"}, 422),
        ({"zoom": "40"}, 422),
        ({"center": "91.5,14.8"}, 422),
        ({"center": "north"}, 422),
        ({"department": "9"}, 422),
        ({"department": "99"}, 422),
        ({"category": "no.such.code"}, 422),
        ({"category": "<script>"}, 422),
        ({"language": "zzz"}, 422),
        ({"key": ""}, 422),
        ({"key": "rn_notakey"}, 401),
    ],
)
def test_bad_options_get_a_problem_not_a_page(
    client: TestClient, loaded: Session, params: dict[str, str], status: int
) -> None:
    response = client.get("/embed", params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    if params.get("key"):
        assert params["key"] not in response.text  # a key is never echoed back


def test_an_embed_key_binds_framing_to_the_partners_sites(
    client: TestClient, loaded: Session
) -> None:
    raw = _embed_key(loaded, scopes=["embed"], origins=PARTNER_ORIGINS)
    response = client.get("/embed", params={"key": raw})
    assert response.status_code == 200
    assert _csp(response)["frame-ancestors"] == " ".join(PARTNER_ORIGINS)
    # The partner's page is theirs: never kept by a shared cache, never mixed with the public one.
    assert response.headers["cache-control"] == "private, no-cache"
    assert _config(response.text)["key"] == raw


def test_a_key_without_the_embed_scope_is_refused(client: TestClient, loaded: Session) -> None:
    raw = _embed_key(loaded, scopes=["read"], origins=None)
    response = client.get("/embed", params={"key": raw})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "embed scope" in response.json()["detail"]
    assert raw not in response.text


def test_a_revoked_embed_key_is_refused(client: TestClient, loaded: Session) -> None:
    raw = _embed_key(loaded, scopes=["embed"], origins=PARTNER_ORIGINS)
    keys.revoke_key(session=loaded, name_or_id=raw[3:11])
    response = client.get("/embed", params={"key": raw})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM)


def test_the_snippet_shows_the_iframe_to_paste(client: TestClient, loaded: Session) -> None:
    raw = _embed_key(loaded, scopes=["embed"], origins=PARTNER_ORIGINS)
    response = client.get(
        "/embed/snippet", params={"key": raw, "category": "protection", "lang": "en"}
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "private, no-cache"  # it holds the key
    code = re.search(r'<code id="snippet">(.*?)</code>', response.text, re.S)
    assert code is not None
    snippet = unescape(code.group(1))  # what the partner copies
    src = re.search(r'<iframe src="([^"]+)"', snippet)
    assert src is not None
    url = unescape(src.group(1))
    assert url.startswith("http://testserver/embed?")
    assert f"key={raw}" in url
    assert "category=protection" in url
    assert 'title="Map of services"' in snippet
    assert 'referrerpolicy="no-referrer"' in snippet
    # The URL in the snippet opens the map.
    assert client.get(url.removeprefix("http://testserver")).status_code == 200


def test_assets_are_served_as_scripts_with_a_worker_policy(client: TestClient) -> None:
    for path in ("embed.js", "vendor/maplibre-gl.mjs", "vendor/maplibre-gl-worker.mjs"):
        response = client.get(f"/embed/assets/{path}")
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/javascript"), path
        assert _csp(response)["connect-src"] == "'self'"
        assert _csp(response)["default-src"] == "'none'"
    css = client.get("/embed/assets/vendor/maplibre-gl.css")
    assert css.headers["content-type"].startswith("text/css")
    assert client.get("/embed/assets/nothing.js").status_code == 404


def test_the_page_script_reaches_no_other_host() -> None:
    static = Path(embed_views.__file__).with_name("embed_static")
    for name in ("embed.js", "embed.css"):
        text = (static / name).read_text(encoding="utf-8")
        assert not re.search(r"https?://(?!github\.com/maplibre)", text), name


@pytest.fixture
def app_with_basemap(settings: Settings, engine: Any, connection: Any) -> Iterator[TestClient]:
    """The app with a deployment's third-party raster base map turned on."""
    application: FastAPI = create_app(
        settings.model_copy(
            update={
                "rate_limits_enabled": False,
                "import_worker": False,
                "referral_webhook_worker": False,
                "embed_basemap_url": "https://tiles.example.net/{z}/{x}/{y}.png",
                "embed_basemap_attribution": "© Example contributors",
            }
        )
    )
    application.state.engine = engine

    join_transaction(application, connection)
    with TestClient(application, raise_server_exceptions=False) as test_client:
        yield test_client


def test_a_configured_base_map_is_admitted_and_named(
    app_with_basemap: TestClient, loaded: Session
) -> None:
    response = app_with_basemap.get("/embed")
    assert response.status_code == 200
    csp = _csp(response)
    assert csp["img-src"] == "'self' data: blob: https://tiles.example.net"
    assert csp["connect-src"] == "'self' https://tiles.example.net"
    notice = re.search(r'<p class="notice">([^<]+)</p>', response.text)
    assert notice is not None  # the reader is told who else is contacted
    assert notice.group(1) == (
        "El mapa de fondo se carga desde tiles.example.net, que puede ver su dirección IP."
    )
    assert _config(response.text)["basemap"] == {
        "url": "https://tiles.example.net/{z}/{x}/{y}.png",
        "attribution": "© Example contributors",
    }
    worker = app_with_basemap.get("/embed/assets/vendor/maplibre-gl-worker.mjs")
    assert _csp(worker)["connect-src"] == "'self' https://tiles.example.net"


def test_a_base_map_must_be_https_with_a_tile_template() -> None:
    for url in ("http://tiles.example.net/{z}/{x}/{y}.png", "https://tiles.example.net/x.png"):
        with pytest.raises(ValueError, match="embed_basemap_url"):
            Settings(embed_basemap_url=url)


def test_without_the_front_end_files_the_page_says_how_to_install_them(
    client: TestClient, loaded: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("referral_net.api.routers.embed.vendor_installed", lambda: False)
    response = client.get("/embed")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "npm ci" in response.json()["detail"]


def test_settings_json_cannot_end_its_script_element() -> None:
    text = embed_views._script_json({"x": "</script><script>alert(1)</script><!--&"})
    assert "<" not in text
    assert ">" not in text
    assert "&" not in text
    assert json.loads(text) == {"x": "</script><script>alert(1)</script><!--&"}
