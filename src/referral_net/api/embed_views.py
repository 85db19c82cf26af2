"""The embeddable map's pages: the map (``/embed``) and the partner's copy-and-paste snippet.

Both are Jinja2 templates (``api/templates/``, autoescape on). The map page holds no inline
script: its settings travel in a ``<script type="application/json">`` block, which a browser
never executes, and ``embed_static/embed.js`` reads them. Every asset, MapLibre GL JS included,
is served by this application (``/embed/assets``, filled from the npm lockfile at set-up), so the
page contacts no one else unless a deployment turns on a third-party base map, which the page
then names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from importlib import resources
from typing import Any
from urllib.parse import urlencode, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape

from referral_net.domain.embed import FilterChoices
from referral_net.vocab import Locale

EMBED_PATH = "/embed"
SNIPPET_PATH = "/embed/snippet"
ASSETS_PATH = "/embed/assets"
NO_FRAMING = "'none'"
VENDOR_FILES = ("maplibre-gl.mjs", "maplibre-gl-worker.mjs", "maplibre-gl.css")

# Marker colours by top-level category. Each has a contrast of at least 4.5:1 on the map's land
# colour and on white (WCAG 2.1 1.4.11 asks 3:1 for graphics); colour is never the only cue:
# the legend, popups and list name the category.
CATEGORY_COLOURS = {
    "protection": "#b3261e",
    "prosecution": "#1f5fad",
    "prevention": "#1b6e45",
    "partnerships": "#7b3fa0",
}
OTHER_COLOUR = "#4d4d4d"
# Guatemala with a margin: the map opens here, and the search covers it when no department is set.
COUNTRY_BBOX = (-92.35, 13.6, -88.15, 17.9)
DEFAULT_CENTRE = (15.05, -91.35)  # lat, lon: over the Western Highlands
DEFAULT_ZOOM = 7.2

STRINGS: dict[Locale, dict[str, str]] = {
    "es": {
        "title": "Servicios de protección",
        "skip_to_list": "Ir a la lista de servicios",
        "other_language": "English",
        "other_language_label": "Ver en inglés",
        "quick_exit": "Salida rápida",
        "quick_exit_hint": "Salida rápida: pulse el botón o la tecla Esc tres veces.",
        "filters": "Filtros",
        "category": "Tipo de servicio",
        "department": "Departamento",
        "language": "Idioma de atención",
        "any": "Todos",
        "open_now": "Abierto ahora",
        "lgbtiq": "Acoge a personas LGBTIQ+",
        "apply": "Aplicar filtros",
        "map": "Mapa de servicios",
        "legend": "Leyenda",
        "other": "Otros",
        "list": "Lista de servicios",
        "loading": "Cargando servicios…",
        "count_one": "1 servicio",
        "count_many": "{n} servicios",
        "count_capped": "Se muestran los primeros {n} servicios; use los filtros para acotar.",
        "none": "Ningún servicio coincide con estos filtros.",
        "error": "No se pudieron cargar los servicios. Inténtelo de nuevo más tarde.",
        "show_on_map": "Ver en el mapa",
        "organization": "Organización",
        "categories": "Servicios",
        "languages": "Idiomas",
        "phones": "Teléfonos",
        "hours": "Horario",
        "open": "Abierto ahora",
        "closed": "Cerrado ahora",
        "no_hours": "Horario no indicado",
        "last_verified": "Verificado por última vez",
        "never_verified": "Sin verificar",
        "precision": "Ubicación",
        "exact": "Dirección exacta",
        "municipality": "Ubicación aproximada (cabecera municipal): contacte por teléfono",
        "intake": "Cómo contactar",
        "zoom_in": "Acercar para ver los servicios",
        "basemap_notice": "El mapa de fondo se carga desde {host}, que puede ver su dirección IP.",
        "offline_notice": "Este mapa no contacta a terceros.",
        "noscript": "Este mapa necesita JavaScript. La lista de servicios está en la API pública.",
    },
    "en": {
        "title": "Protection services",
        "skip_to_list": "Skip to the list of services",
        "other_language": "Español",
        "other_language_label": "Ver en español",
        "quick_exit": "Quick exit",
        "quick_exit_hint": "Quick exit: press the button, or the Esc key three times.",
        "filters": "Filters",
        "category": "Type of service",
        "department": "Department",
        "language": "Language spoken",
        "any": "All",
        "open_now": "Open now",
        "lgbtiq": "Welcomes LGBTIQ+ people",
        "apply": "Apply filters",
        "map": "Map of services",
        "legend": "Legend",
        "other": "Other",
        "list": "List of services",
        "loading": "Loading services…",
        "count_one": "1 service",
        "count_many": "{n} services",
        "count_capped": "Showing the first {n} services; use the filters to narrow down.",
        "none": "No service matches these filters.",
        "error": "The services could not be loaded. Please try again later.",
        "show_on_map": "Show on map",
        "organization": "Organization",
        "categories": "Services",
        "languages": "Languages",
        "phones": "Phones",
        "hours": "Hours",
        "open": "Open now",
        "closed": "Closed now",
        "no_hours": "Hours not given",
        "last_verified": "Last verified",
        "never_verified": "Not verified",
        "precision": "Location",
        "exact": "Exact address",
        "municipality": "Approximate location (municipal seat): contact by phone",
        "intake": "How to get in touch",
        "zoom_in": "Zoom in to see the services",
        "basemap_notice": "The background map comes from {host}, which can see your IP address.",
        "offline_notice": "This map contacts no third party.",
        "noscript": "This map needs JavaScript. The list of services is in the public API.",
    },
}

_ENVIRONMENT = Environment(
    loader=PackageLoader("referral_net.api", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class EmbedOptions:
    """The map's URL options, checked (``api/routers/embed.py``)."""

    lang: Locale
    category: str | None
    department: str | None
    language: str | None
    open_now: bool
    lgbtiq_affirming: bool
    centre: tuple[float, float] | None  # lat, lon
    zoom: float | None
    key: str | None

    def query(self, **changes: Any) -> str:
        """The options as a query string (``changes`` override them; None drops one)."""
        values: dict[str, Any] = {
            "lang": self.lang,
            "category": self.category,
            "department": self.department,
            "language": self.language,
            "open_now": "true" if self.open_now else None,
            "lgbtiq_affirming": "true" if self.lgbtiq_affirming else None,
            "center": f"{self.centre[0]},{self.centre[1]}" if self.centre else None,
            "zoom": self.zoom,
            "key": self.key,
        }
        values.update(changes)
        return urlencode({name: value for name, value in values.items() if value is not None})


@dataclass(frozen=True)
class Basemap:
    """A deployment's optional third-party base map: tile URL template and attribution."""

    url: str
    attribution: str | None

    @property
    def origin(self) -> str:
        """``https://host[:port]``: what the page's policy must admit, and what it names."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def host(self) -> str:
        """The host the reader's browser contacts."""
        return urlsplit(self.url).hostname or self.url


def vendor_installed() -> bool:
    """True when set-up has copied MapLibre GL JS into ``embed_static/vendor``."""
    vendor = resources.files("referral_net.api") / "embed_static" / "vendor"
    return all((vendor / name).is_file() for name in VENDOR_FILES)


def _script_json(value: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">``: no ``</script>`` can end it
    early, and no ``<!--`` can change how the parser reads the rest."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def map_page(
    *,
    root: str,
    options: EmbedOptions,
    choices: FilterChoices,
    basemap: Basemap | None,
    exit_url: str,
    page_size: int,
    max_markers: int,
) -> str:
    """The map page's HTML for these options, labelled in ``options.lang``."""
    strings = STRINGS[options.lang]
    other: Locale = "en" if options.lang == "es" else "es"
    centre = options.centre or DEFAULT_CENTRE
    config = {
        "lang": options.lang,
        "key": options.key,
        "root": root,
        "category": options.category,
        "department": options.department,
        "centreGiven": options.centre is not None,
        "centre": [centre[1], centre[0]],  # MapLibre takes [lon, lat]
        "zoom": options.zoom if options.zoom is not None else DEFAULT_ZOOM,
        "bbox": COUNTRY_BBOX,
        "pageSize": page_size,
        "maxMarkers": max_markers,
        "exitUrl": exit_url,
        "colours": CATEGORY_COLOURS,
        "otherColour": OTHER_COLOUR,
        "topCategories": [choice.code for choice in choices.top_categories],
        "basemap": {"url": basemap.url, "attribution": basemap.attribution} if basemap else None,
        "strings": strings,
    }
    return _ENVIRONMENT.get_template("embed.html").render(
        t=strings,
        lang=options.lang,
        other_lang=other,
        other_lang_url=f"{root}{EMBED_PATH}?{options.query(lang=other)}",
        assets=f"{root}{ASSETS_PATH}",
        action=f"{root}{EMBED_PATH}",
        options=options,
        choices=choices,
        colours=CATEGORY_COLOURS,
        other_colour=OTHER_COLOUR,
        basemap_notice=strings["basemap_notice"].format(host=basemap.host) if basemap else None,
        exit_url=exit_url,
        config_json=_script_json(config),
    )


def snippet_page(*, root: str, base_url: str, options: EmbedOptions) -> str:
    """The page that shows a partner the ``<iframe>`` to paste, for these options."""
    strings = STRINGS[options.lang]
    src = f"{base_url}{EMBED_PATH}?{options.query()}"
    iframe = (
        f'<iframe src="{escape(src)}" title="{escape(strings["map"])}" width="100%" height="640" '
        'style="border:0" loading="lazy" referrerpolicy="no-referrer" '
        'sandbox="allow-scripts allow-same-origin allow-popups '
        'allow-top-navigation-by-user-activation"></iframe>'
    )
    return _ENVIRONMENT.get_template("embed_snippet.html").render(
        lang=options.lang,
        t=strings,
        snippet=iframe,
        src=src,
        options=options,
        preview=options.key is None,
        assets=f"{root}{ASSETS_PATH}",
    )


def frame_policy(*, frame_origins: tuple[str, ...] | None, basemap: Basemap | None) -> str:
    """The map page's Content-Security-Policy: own resources only (plus the base map's host when
    one is configured), and framing by the key's sites (any site for the public map)."""
    third_party = f" {basemap.origin}" if basemap else ""
    ancestors = " ".join(frame_origins) if frame_origins is not None else "*"
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src 'self' data: blob:{third_party}",
            f"connect-src 'self'{third_party}",
            "worker-src 'self' blob:",
            "child-src 'self' blob:",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            f"frame-ancestors {ancestors or NO_FRAMING}",
        )
    )


def worker_policy(basemap: Basemap | None) -> str:
    """The policy of the page's scripts, which a worker runs under: fetch only from this service
    (and the base map's host when one is configured), nothing else."""
    third_party = f" {basemap.origin}" if basemap else ""
    return (
        f"default-src 'none'; connect-src 'self'{third_party}; "
        f"img-src 'self' data: blob:{third_party}; frame-ancestors 'none'"
    )
