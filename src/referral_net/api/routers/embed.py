"""``/embed``: the embeddable map for partner sites, ``/embed/snippet``: the code to paste, and
``/embed/assets``: the page's script, styles and MapLibre GL JS (docs/embed.md).

The pages are thin: options are checked here, the key and the filter choices come from
``domain/embed.py``, the HTML from ``api/embed_views.py``. The map's data comes from the public
API the page calls (search as GeoJSON, vector tiles), under the one visibility rule.
"""

from __future__ import annotations

import mimetypes
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

from referral_net.api.deps import SessionDep, SettingsDep
from referral_net.api.embed_views import (
    ASSETS_PATH,
    Basemap,
    EmbedOptions,
    frame_policy,
    map_page,
    snippet_page,
    vendor_installed,
    worker_policy,
)
from referral_net.api.params import KnownQueryOnly, invalid, parse_point
from referral_net.domain import embed
from referral_net.errors import ServiceUnavailable
from referral_net.settings import Settings

# Module scripts must be served as JavaScript (with nosniff a browser refuses anything else);
# Python's table knows .mjs only from 3.12 on some systems.
mimetypes.add_type("text/javascript", ".mjs")

PAGE_MAX_AGE_SECONDS = 300
router = APIRouter(tags=["embed"], include_in_schema=False)

LangParam = Annotated[Literal["es", "en"], Query(description="Page language.")]
CategoryParam = Annotated[str | None, Query(max_length=200, pattern=r"^[a-z0-9_.]+$")]
DepartmentParam = Annotated[str | None, Query(pattern=r"^\d{2}$")]
CentreParam = Annotated[str | None, Query(max_length=60, description="lat,lon")]
ZoomParam = Annotated[float | None, Query(ge=0, le=18)]
LanguageParam = Annotated[
    str | None, Query(pattern=r"^[a-z]{2,3}$", description="Filter: a language spoken (ISO 639).")
]
KeyParam = Annotated[str | None, Query(max_length=200, description="An embed-scoped key.")]


def _root(request: Request) -> str:
    # The ASGI root_path, set by the server (uvicorn --root-path), never by the client.
    return str(request.scope.get("root_path", "")).rstrip("/")


def _cache_control(options: EmbedOptions) -> str:
    # A page holding a key is the partner's: a shared cache must not keep it. The public pages
    # are the same for everyone (the audience's data comes later, from the API).
    return "private, no-cache" if options.key else f"public, max-age={PAGE_MAX_AGE_SECONDS}"


def _basemap(settings: Settings) -> Basemap | None:
    if settings.embed_basemap_url is None:
        return None
    return Basemap(url=settings.embed_basemap_url, attribution=settings.embed_basemap_attribution)


def _options(
    *,
    lang: Literal["es", "en"],
    category: str | None,
    department: str | None,
    language: str | None,
    open_now: bool,
    lgbtiq_affirming: bool,
    center: str | None,
    zoom: float | None,
    key: str | None,
) -> EmbedOptions:
    centre = parse_point("center", center) if center is not None else None
    if key is not None and not key.strip():
        raise invalid("key", "must not be empty")
    return EmbedOptions(
        lang=lang,
        category=category or None,
        department=department or None,
        language=language or None,
        open_now=open_now,
        lgbtiq_affirming=lgbtiq_affirming,
        centre=centre,
        zoom=zoom,
        key=key,
    )


@router.get("/embed", response_class=HTMLResponse, dependencies=[KnownQueryOnly])
def embed_map(  # noqa: PLR0913 - one parameter per URL option
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    lang: LangParam = "es",
    category: CategoryParam = None,
    department: DepartmentParam = None,
    language: LanguageParam = None,
    open_now: bool = False,
    lgbtiq_affirming: bool = False,
    center: CentreParam = None,
    zoom: ZoomParam = None,
    key: KeyParam = None,
) -> HTMLResponse:
    """The map for an ``<iframe>``: framed by the key's sites only (any site without a key)."""
    options = _options(
        lang=lang,
        category=category,
        department=department,
        language=language,
        open_now=open_now,
        lgbtiq_affirming=lgbtiq_affirming,
        center=center,
        zoom=zoom,
        key=key,
    )
    if not vendor_installed():
        raise ServiceUnavailable(
            "The map's front-end files are not installed: run scripts/run or scripts/test "
            "(they install web/package-lock.json with npm ci)."
        )
    origins = embed.frame_origins(session=session, raw_key=options.key)
    choices = embed.filter_choices(session=session, locale=options.lang)
    embed.check_choice("category", options.category, choices.categories)
    embed.check_choice("department", options.department, choices.departments)
    embed.check_choice("language", options.language, choices.languages)
    basemap = _basemap(settings)
    html = map_page(
        root=_root(request),
        options=options,
        choices=choices,
        basemap=basemap,
        exit_url=settings.embed_exit_url,
        page_size=settings.max_page_size,
        max_markers=min(settings.embed_max_markers, settings.max_result_window),
    )
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": frame_policy(frame_origins=origins, basemap=basemap),
            "Cache-Control": _cache_control(options),
            "Content-Language": options.lang,
        },
    )


@router.get("/embed/snippet", response_class=HTMLResponse, dependencies=[KnownQueryOnly])
def embed_snippet(
    request: Request,
    lang: LangParam = "es",
    category: CategoryParam = None,
    department: DepartmentParam = None,
    language: LanguageParam = None,
    open_now: bool = False,
    lgbtiq_affirming: bool = False,
    center: CentreParam = None,
    zoom: ZoomParam = None,
    key: KeyParam = None,
) -> HTMLResponse:
    """The ``<iframe>`` code a partner pastes into their page, for the given options."""
    options = _options(
        lang=lang,
        category=category,
        department=department,
        language=language,
        open_now=open_now,
        lgbtiq_affirming=lgbtiq_affirming,
        center=center,
        zoom=zoom,
        key=key,
    )
    base_url = str(request.base_url).rstrip("/")
    return HTMLResponse(
        snippet_page(root=_root(request), base_url=base_url, options=options),
        headers={"Cache-Control": _cache_control(options), "Content-Language": options.lang},
    )


class _EmbedAssets(StaticFiles):
    """The page's files, each with the policy a script needs when it runs as a worker.

    A worker takes its Content-Security-Policy from its own script's response, not from the page:
    MapLibre's tile worker must be allowed to fetch our tiles (and the base map, when one is
    configured), which the API's ``default-src 'none'`` would forbid.
    """

    def __init__(self, policy: str) -> None:
        super().__init__(packages=[("referral_net.api", "embed_static")], check_dir=False)
        self.policy = policy

    async def get_response(self, path: str, scope: Scope) -> Response:
        """The file, with the worker policy unless the answer is an error."""
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = self.policy
        return response


def install_assets(app: FastAPI, settings: Settings) -> None:
    """Serve the page's own files and the vendored MapLibre build under ``/embed/assets``."""
    app.mount(ASSETS_PATH, _EmbedAssets(worker_policy(_basemap(settings))), name="embed-assets")
