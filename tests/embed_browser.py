"""The embeddable map in a real browser: Debian's Chromium driven by Playwright, against the real
server (``referral-net serve``) on each backend with the sample network loaded.

Defined once here and collected from tests/test_embed_browser_spatialite.py and
tests/test_embed_browser_postgis.py, one file per backend, so that pytest-xdist (whole files per
worker) runs the two backends' halves side by side.

Playwright's own browser download does not work on these machines, so the tests launch
``/usr/bin/chromium`` (installed by scripts/test). Every test checks, besides its own subject, that
the page logged no console error and that every request it made went to 127.0.0.1. Two hosts
are answered by the test itself (``page.route``), so nothing leaves the machine: the neutral
page the quick exit goes to, and partner sites that frame the map.

Screenshots at 360 px and 1280 px are written to ``$REFERRAL_NET_TEST_ARTIFACTS`` (default
``var/test-artifacts/``).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2 as httpx
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    Response,
    sync_playwright,
)
from shapely.geometry import Point, shape
from sqlalchemy import text
from sqlmodel import Session

from referral_net.db import migrate
from referral_net.db.engine import make_engine
from referral_net.domain import areas, keys, seed
from tests.conftest import make_backend_settings, unavailable
from tests.served import served

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-background-networking",  # else Chromium calls Google's hosts at start-up
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # The partner pages of the framing tests are answered by page.route, so they have no address
    # and Chromium counts them as public sites framing a loopback one (Local Network Access). A
    # deployed service and its partners are both public; the check does not apply there.
    "--disable-features=LocalNetworkAccessChecks",
]
AXE = REPO / "web" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("REFERRAL_NET_TEST_ARTIFACTS", REPO / "var" / "test-artifacts"))
EXIT_URL = "https://neutral.example/"
# Partner sites (another port is another origin; an embed key admits plain http for localhost).
PARTNER = "http://localhost:8931"
ELSEWHERE = "http://localhost:8932"
ANSWERED_BY_THE_TEST = ("neutral.example", "localhost")
COUNTRY = "-92.35,13.6,-88.15,17.9"


@dataclass(frozen=True)
class Directory:
    """A served sample network: its URL, a partner's embed key, and what must never show."""

    backend: str
    base: str
    key: str
    confidential: tuple[str, ...]  # location names and ids, and their services at location ids


@contextmanager
def served_directory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, backend: str
) -> Iterator[Directory]:
    """The sample network served by ``referral-net serve`` on one backend."""
    tmp = tmp_path_factory.mktemp(f"embed-{backend}")
    try:
        settings = make_backend_settings(backend, tmp, suffix="_embed")
        migrate.upgrade(settings)
    except Exception as exc:
        unavailable(request, backend, exc)
        raise
    engine = make_engine(settings)
    with Session(engine) as session:
        areas.load_areas(session=session)
        seed.load_sample(session=session)
        _, key = keys.create_key(
            session=session,
            name="partner-map",
            scopes=["embed"],
            allowed_origins=[PARTNER],
            requests_per_minute=None,
        )
        session.commit()
        hidden = session.execute(
            text(
                "SELECT l.id, l.name, sal.id FROM location l "
                "JOIN service_at_location sal ON sal.location_id = l.id "
                "WHERE l.visibility = 'confidential'"
            )
        ).all()
    engine.dispose()
    assert hidden, "the sample network has confidential sites"
    confidential = {str(value) for row in hidden for value in row}
    env = {"REFERRAL_NET_EMBED_EXIT_URL": EXIT_URL, "REFERRAL_NET_IMPORT_WORKER": "false"}
    with served(settings.database_url, workers=1, env=env, log=tmp / "server.log") as base:
        yield Directory(backend=backend, base=base, key=key, confidential=tuple(confidential))


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Playwright's driver, once per module."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@dataclass
class Recorder:
    """What a page did: console errors, uncaught errors, requests and text bodies received."""

    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    bodies: list[tuple[str, str]] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def request(self, request: Request) -> None:
        self.requests.append(request.url)

    def response(self, response: Response) -> None:
        kind = response.headers.get("content-type", "")
        if any(t in kind for t in ("json", "html", "text/plain")) and response.status != 204:
            try:
                self.bodies.append((response.url, response.text()))
            except Exception:  # noqa: BLE001 - a body gone with a navigation (quick exit)
                return

    def assert_clean(self) -> None:
        """No console error, and no request that left 127.0.0.1."""
        assert self.errors == []
        for url in self.requests:
            parts = urlsplit(url)
            if parts.scheme in {"data", "blob"}:
                continue
            assert parts.hostname == "127.0.0.1" or parts.hostname in ANSWERED_BY_THE_TEST, url


@pytest.fixture
def recorder() -> Recorder:
    """A fresh record per test."""
    return Recorder()


def _answer_locally(page: Page) -> None:
    # The neutral page of the quick exit and partner sites are answered here, never fetched.
    page.route(
        "https://neutral.example/**",
        lambda route: route.fulfill(
            status=200, content_type="text/html", body="<title>neutral</title><p>neutral</p>"
        ),
    )


@pytest.fixture
def page(browser: Browser, recorder: Recorder) -> Iterator[Page]:
    """A new browser context and page at 1280x900, recorded, with the local-only routes."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.on("console", recorder.console)
    tab.on("pageerror", lambda error: recorder.errors.append(f"page error: {error}"))
    tab.on("request", recorder.request)
    tab.on("response", recorder.response)
    _answer_locally(tab)
    yield tab
    context.close()


def _open(page: Page, base: str, **params: str) -> None:
    query = "&".join(f"{name}={value}" for name, value in params.items())
    page.goto(f"{base}/embed{'?' + query if query else ''}")
    _wait_loaded(page)


def _wait_loaded(page: Page, generation: int = 1) -> None:
    page.wait_for_function(
        "n => Number(document.body.dataset.loaded) >= n", arg=generation, timeout=60_000
    )
    _settle(page)


def _settle(page: Page) -> None:
    """Wait until the map has drawn everything it has (tiles, clusters, labels)."""
    page.evaluate(
        """() => new Promise(resolve => {
            const map = window.referralNetMap;
            if (map.loaded() && map.areTilesLoaded() && !map.isMoving()) resolve();
            else map.once('idle', resolve);
        })"""
    )


def _fit_all(page: Page) -> None:
    """Frame every service on the map, as clusters and markers."""
    page.evaluate(
        """async () => {
            const map = window.referralNetMap;
            const data = await map.getSource('services').getData();
            const LngLatBounds = map.getBounds().constructor;
            const bounds = new LngLatBounds();
            for (const f of data.features) bounds.extend(f.geometry.coordinates);
            if (data.features.length) map.fitBounds(bounds, {padding: 30, duration: 0});
        }"""
    )
    page.wait_for_timeout(200)
    _settle(page)


MARKER_COUNT = """() => {
    const map = window.referralNetMap;
    const seen = new Set();
    let total = 0;
    for (const f of map.queryRenderedFeatures({layers: ['clusters', 'services']})) {
        const id = f.properties.cluster
            ? 'cluster ' + f.properties.cluster_id
            : 'point ' + f.properties.service_id + ' ' + f.properties.location_id;
        if (seen.has(id)) continue;
        seen.add(id);
        total += f.properties.point_count || 1;
    }
    return total;
}"""


def _api_features(base: str, locale: str = "es", **params: str) -> list[dict[str, Any]]:
    """Every feature the public search returns for the map's query (the page's ground truth)."""
    features: list[dict[str, Any]] = []
    page_number = 1
    while True:
        query = {"bbox": COUNTRY, "limit": "100", "page": str(page_number), "f": "geojson"}
        response = httpx.get(
            f"{base}/api/v1/search",
            params={**query, **params},
            headers={"Accept-Language": locale},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        batch = response.json()["features"]
        features.extend(batch)
        if len(batch) < 100:
            return features
        page_number += 1


def _list_names(page: Page) -> list[str]:
    return page.locator("#results li h3").all_inner_texts()


# --- the tests ------------------------------------------------------------------------------------


def test_the_map_loads_with_a_marker_and_a_list_entry_per_service(
    directory: Directory, page: Page, recorder: Recorder
) -> None:
    expected = _api_features(directory.base)
    assert len(expected) > 20
    _open(page, directory.base)
    assert sorted(_list_names(page)) == sorted(f["properties"]["name"] for f in expected)
    assert page.inner_text("#status") == f"{len(expected)} servicios"
    _fit_all(page)
    assert page.evaluate(MARKER_COUNT) == len(expected)
    # The base map is drawn from our own tiles.
    tiles = [u for u in recorder.requests if "/tiles/" in u]
    assert any("/tiles/departments/" in u for u in tiles)
    recorder.assert_clean()


DATA = Path(__file__).resolve().parents[1] / "src/referral_net/data/guatemala"
LAKES_AT = """([lon, lat]) => {
    const map = window.referralNetMap;
    return map.queryRenderedFeatures(map.project([lon, lat]), {layers: ['lakes']})
        .map(f => f.properties.name);
}"""


def test_the_base_map_draws_the_lakes_from_our_tiles(
    directory: Directory, page: Page, recorder: Recorder
) -> None:
    """Lago de Atitlán is water on the offline base map: the lakes layer, from this service's
    own tiles, is drawn in the lake and not on the land beside it (ground truth: the lake's
    polygon in the OCHA boundaries)."""
    municipalities = json.loads((DATA / "municipalities.geojson").read_text(encoding="utf-8"))
    (atitlan,) = [
        shape(f["geometry"])
        for f in municipalities["features"]
        if f["properties"]["ine_code"] == "0700"
    ]
    in_the_lake, solola_town = (-91.2, 14.69), (-91.1817, 14.7728)
    assert atitlan.contains(Point(in_the_lake))
    assert not atitlan.contains(Point(solola_town))
    _open(page, directory.base, center="14.72,-91.19", zoom="11")
    assert page.evaluate(LAKES_AT, list(in_the_lake)) == ["Lago de Atitlán"]
    assert page.evaluate(LAKES_AT, list(solola_town)) == []
    assert any("/tiles/lakes/11/" in u for u in recorder.requests)
    recorder.assert_clean()


def test_a_category_filter_changes_the_markers_and_the_list(
    directory: Directory, page: Page, recorder: Recorder
) -> None:
    everything = _api_features(directory.base)
    prosecution = _api_features(directory.base, category="prosecution")
    assert 0 < len(prosecution) < len(everything)
    _open(page, directory.base)
    history_length = page.evaluate("history.length")
    page.select_option("#f-category", "prosecution")
    _wait_loaded(page, generation=2)
    assert sorted(_list_names(page)) == sorted(f["properties"]["name"] for f in prosecution)
    _fit_all(page)
    assert page.evaluate(MARKER_COUNT) == len(prosecution)
    colours = page.evaluate(
        """() => [...new Set(window.referralNetMap
            .queryRenderedFeatures({layers: ['services']})
            .map(f => f.properties.top_category))]"""
    )
    assert set(colours) <= {"prosecution"}
    # The URL follows the filter without a new history entry.
    assert parse_qs(urlsplit(page.url).query)["category"] == ["prosecution"]
    assert page.evaluate("history.length") == history_length
    recorder.assert_clean()


def _single_feature(features: list[dict[str, Any]], precision: str) -> dict[str, Any]:
    """A feature alone at its point (a click there can only mean it)."""
    points: dict[tuple[float, float], list[dict[str, Any]]] = {}
    for feature in features:
        points.setdefault(tuple(feature["geometry"]["coordinates"]), []).append(feature)
    alone = [
        group[0]
        for group in points.values()
        if len(group) == 1 and group[0]["properties"]["precision"] == precision
    ]
    assert alone, f"a {precision} feature alone at its point"
    return min(alone, key=lambda f: f["properties"]["name"])


@pytest.mark.parametrize("precision", ["exact", "municipality"])
def test_a_click_on_a_marker_opens_a_popup_with_its_data(
    directory: Directory, page: Page, recorder: Recorder, precision: str
) -> None:
    feature = _single_feature(_api_features(directory.base), precision)
    props = feature["properties"]
    _open(page, directory.base)
    lon, lat = feature["geometry"]["coordinates"]
    page.evaluate(
        "([lon, lat]) => window.referralNetMap.jumpTo({center: [lon, lat], zoom: 15})", [lon, lat]
    )
    _settle(page)
    point = page.evaluate("([lon, lat]) => window.referralNetMap.project([lon, lat])", [lon, lat])
    box = page.locator("#map canvas").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
    popup = page.locator(".maplibregl-popup-content")
    popup.wait_for(timeout=10_000)
    text = popup.inner_text()
    assert props["name"] in text
    assert props["organization_name"] in text
    for phone in props["phones"]:
        assert phone in text
    for language in props["languages"]:
        assert language in text
    for hours in props["hours"]:
        assert hours in text
    if props["hours"]:
        assert ("Abierto ahora" if props["open_now"] else "Cerrado ahora") in text
    else:
        assert "Horario no indicado" in text
    assert (props["last_verified"] or "Sin verificar") in text
    if precision == "exact":
        assert "Dirección exacta" in text
    else:
        assert "Ubicación aproximada" in text
    recorder.assert_clean()


def test_switching_to_english_relabels_the_page_and_the_data(
    directory: Directory, page: Page, recorder: Recorder
) -> None:
    english = _api_features(directory.base, locale="en")
    _open(page, directory.base)
    page.click("a.lang")
    page.wait_for_url("**/embed?lang=en*")
    _wait_loaded(page)
    assert page.get_attribute("html", "lang") == "en"
    assert page.inner_text("h1") == "Protection services"
    assert page.inner_text("#status") == f"{len(english)} services"
    listed = page.locator("#results li").first.inner_text()
    first = min(english, key=lambda f: f["properties"]["name"])  # the list follows search order
    shown = page.locator("#results li h3").first.inner_text()
    shown_feature = next(f for f in english if f["properties"]["name"] == shown)
    assert ", ".join(shown_feature["properties"]["categories"]) in listed
    assert first["properties"]["name"] in _list_names(page)
    assert page.inner_text("a.exit") == "Quick exit"
    recorder.assert_clean()


def _hidden_in(directory: Directory, texts: list[str]) -> list[str]:
    return [secret for secret in directory.confidential for body in texts if secret in body]


@pytest.mark.parametrize("with_key", [False, True], ids=["public", "partner-key"])
def test_confidential_sites_never_reach_the_browser(
    directory: Directory, page: Page, recorder: Recorder, with_key: bool
) -> None:
    params = {"key": directory.key} if with_key else {}
    _open(page, directory.base, **params)
    # Where the safe houses would be: the shelters, then the protection branch as a whole.
    page.select_option("#f-category", "protection.shelter")
    _wait_loaded(page, generation=2)
    shelters = page.locator("#results li").count()
    page.select_option("#f-category", "protection")
    _wait_loaded(page, generation=3)
    _fit_all(page)
    rendered = page.evaluate("() => JSON.stringify(window.referralNetMap.queryRenderedFeatures())")
    texts = [body for _, body in recorder.bodies] + [page.content(), rendered]
    assert _hidden_in(directory, texts) == []
    assert shelters > 0  # the filter was exercised on real data
    searched = [url for url, _ in recorder.bodies if "/api/v1/search" in url]
    assert len(searched) >= 3
    recorder.assert_clean()


def _axe(page: Page) -> list[dict[str, Any]]:
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result: dict[str, Any] = page.evaluate(
        """() => axe.run(document, {
            runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}
        })"""
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
        if v["impact"] in {"serious", "critical"}
    ]


@pytest.mark.parametrize("width", [1280, 360])
def test_axe_finds_no_serious_or_critical_violation(
    directory: Directory, page: Page, recorder: Recorder, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    _open(page, directory.base)
    assert _axe(page) == []
    page.locator("button.locate").first.click()  # a popup open too
    page.locator(".maplibregl-popup-content").wait_for()
    assert _axe(page) == []
    recorder.assert_clean()


def test_the_list_is_usable_with_the_keyboard_alone(
    directory: Directory, page: Page, recorder: Recorder
) -> None:
    _open(page, directory.base)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#list"
    # Tab from the list's start reaches the first entry's controls: phone links, then its button.
    focused = []
    for _ in range(8):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.textContent"))
    assert "Ver en el mapa" in focused
    while page.evaluate("document.activeElement.textContent") != "Ver en el mapa":
        page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")  # the button shows the service on the map, in a popup
    page.locator(".maplibregl-popup-content").wait_for(timeout=10_000)
    recorder.assert_clean()


@pytest.mark.parametrize("how", ["button", "escape"])
def test_quick_exit_leaves_no_way_back(
    directory: Directory, page: Page, recorder: Recorder, how: str
) -> None:
    page.goto("about:blank")
    _open(page, directory.base)
    history_length = page.evaluate("history.length")
    if how == "button":
        page.click("#quick-exit")
    else:
        page.locator("body").click(position={"x": 5, "y": 5})
        for _ in range(3):
            page.keyboard.press("Escape")
    page.wait_for_url(EXIT_URL)
    assert page.inner_text("p") == "neutral"
    assert page.evaluate("history.length") == history_length  # replaced, not added
    page.go_back()
    assert "/embed" not in page.url  # Back does not return to the map
    recorder.assert_clean()


def test_escape_pressed_less_than_three_times_stays(
    directory: Directory, page: Page, recorder: Recorder
) -> None:
    _open(page, directory.base)
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    page.wait_for_timeout(2_500)  # the three presses must come within two seconds
    page.keyboard.press("Escape")
    page.wait_for_timeout(300)
    assert "/embed" in page.url
    recorder.assert_clean()


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


@pytest.mark.parametrize("width", [360, 1280])
def test_screenshots_at_phone_and_desktop_widths(
    directory: Directory, page: Page, recorder: Recorder, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 800})
    _open(page, directory.base)
    _settle(page)
    # Nothing is wider than the screen, and the quick exit is on it without scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    exit_box = page.locator("#quick-exit").bounding_box()
    assert exit_box is not None
    assert exit_box["x"] + exit_box["width"] <= width
    assert exit_box["y"] < 120
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"embed-{directory.backend}-{width}.png"
    page.screenshot(path=str(shot))
    assert _png_size(shot) == (width, 800)
    recorder.assert_clean()


def _partner_page(page: Page, origin: str, src: str) -> None:
    body = f'<title>partner</title><iframe id="map" src="{src}" width="1000" height="700"></iframe>'
    page.route(
        f"{origin}/**", lambda route: route.fulfill(status=200, content_type="text/html", body=body)
    )


def test_a_partner_key_frames_only_on_the_partners_site(
    directory: Directory, page: Page, recorder: Recorder
) -> None:
    src = f"{directory.base}/embed?key={directory.key}"
    _partner_page(page, PARTNER, src)
    page.goto(f"{PARTNER}/services")
    frame = page.frame_locator("#map")
    frame.locator("body[data-loaded='1']").wait_for(timeout=60_000)
    assert frame.locator("#results li").count() > 0
    # The quick exit inside the frame takes the whole tab away (a click is a user activation).
    frame.locator("#quick-exit").click()
    page.wait_for_url(EXIT_URL)
    recorder.assert_clean()


def test_another_site_cannot_frame_a_partners_map(
    directory: Directory, page: Page, recorder: Recorder
) -> None:
    src = f"{directory.base}/embed?key={directory.key}"
    _partner_page(page, ELSEWHERE, src)
    page.goto(f"{ELSEWHERE}/copied")
    page.wait_for_timeout(1_500)
    child = next(f for f in page.frames if f != page.main_frame)
    assert child.evaluate("() => document.querySelector('#map') === null") is True
    # Chromium reports the refusal (frame-ancestors) on the console: the only error expected.
    assert recorder.errors
    assert all("frame-ancestors" in e for e in recorder.errors)
