"""OGC API - Features documents for the web: links, media types, negotiation and the HTML view.

The domain (``domain/ogc.py``) gives collections and pages of features; this module wraps them
in the standard's documents (landing page, conformance, collections, items with ``self``,
``alternate``, ``next`` and ``prev`` links) and answers in JSON / GeoJSON or HTML: ``f=json``,
``f=geojson`` or ``f=html`` wins, else the ``Accept`` header (``text/html`` preferred over JSON
only when it ranks higher), else JSON. The HTML is Jinja2 with autoescape on, and loads nothing
from anywhere (no CSS, script or font).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import DictLoader, Environment, select_autoescape

from referral_net.api import negotiation
from referral_net.domain.ogc import Collection, ItemsPage
from referral_net.errors import BadRequest
from referral_net.schemas.features import GEOJSON_MEDIA_TYPE

Format = Literal["json", "html"]
JSON_MEDIA_TYPE = "application/json"
HTML_MEDIA_TYPE = "text/html"
OPENAPI_MEDIA_TYPE = "application/vnd.oai.openapi+json;version=3.0"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    # OGC API - Tiles (vector tiles of every collection: docs/tiles.md)
    *(
        f"http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/{name}"
        for name in ("core", "tileset", "tilesets-list", "geodata-tilesets", "mvt")
    ),
]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
_VARY = "Accept, Accept-Language, Authorization, X-API-Key"
_OFFERED = {"json": JSON_MEDIA_TYPE, "geojson": GEOJSON_MEDIA_TYPE, "html": HTML_MEDIA_TYPE}


def response_format(request: Request, f: str | None) -> Format:
    """The format asked for: ``f`` (json, geojson or html; else 400), else by ``Accept``
    (``api/negotiation.py``; JSON when nothing is preferred)."""
    if f is not None and f not in _OFFERED:
        raise BadRequest("f takes json, geojson or html.")
    chosen = negotiation.choose(_OFFERED, f=f, accept=request.headers.get("accept"), default="json")
    return "html" if chosen == "html" else "json"


def _url(request: Request, path: str, **query: Any) -> str:
    """An absolute URL under the app (its ``root_path`` kept), with a query string."""
    base = str(request.base_url).rstrip("/")
    pairs = [(k, str(v)) for k, v in query.items() if v is not None]
    return f"{base}{path}" + (f"?{urlencode(pairs)}" if pairs else "")


def _link(href: str, rel: str, media_type: str, title: str) -> dict[str, str]:
    return {"href": href, "rel": rel, "type": media_type, "title": title}


def _self_and_alternate(
    request: Request, path: str, fmt: Format, json_type: str = JSON_MEDIA_TYPE, **query: Any
) -> list[dict[str, str]]:
    json_link = _url(request, path, **query, f="json")
    html_link = _url(request, path, **query, f="html")
    as_json = _link(json_link, "self" if fmt == "json" else "alternate", json_type, "This as JSON")
    as_html = _link(html_link, "self" if fmt == "html" else "alternate", HTML_MEDIA_TYPE, "HTML")
    return [as_json, as_html] if fmt == "json" else [as_html, as_json]


def landing(request: Request, fmt: Format) -> dict[str, Any]:
    """The landing page document."""
    return {
        "title": "referral-net: OGC API - Features",
        "description": "Protection services at their locations, and Guatemala's departments and"
        " municipalities, as GeoJSON features.",
        "links": [
            *_self_and_alternate(request, "/ogc", fmt),
            _link(_url(request, "/ogc/api"), "service-desc", OPENAPI_MEDIA_TYPE, "The API"),
            _link(_url(request, "/docs"), "service-doc", HTML_MEDIA_TYPE, "API documentation"),
            _link(_url(request, "/ogc/conformance"), "conformance", JSON_MEDIA_TYPE, "Conformance"),
            _link(_url(request, "/ogc/collections"), "data", JSON_MEDIA_TYPE, "Collections"),
            _link(
                _url(request, "/ogc/tileMatrixSets"),
                "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes",
                JSON_MEDIA_TYPE,
                "Tile matrix sets",
            ),
        ],
    }


def conformance(request: Request, fmt: Format) -> dict[str, Any]:
    """The conformance declaration."""
    return {
        "conformsTo": CONFORMANCE,
        "links": _self_and_alternate(request, "/ogc/conformance", fmt),
    }


def collection_document(request: Request, target: Collection, fmt: Format) -> dict[str, Any]:
    """One collection's description (extent in CRS84, item type feature, links)."""
    path = f"/ogc/collections/{target.id}"
    links = [
        *_self_and_alternate(request, path, fmt),
        _link(_url(request, f"{path}/items"), "items", GEOJSON_MEDIA_TYPE, "Items (GeoJSON)"),
        _link(_url(request, f"{path}/items", f="html"), "items", HTML_MEDIA_TYPE, "Items (HTML)"),
        _link(
            _url(request, f"{path}/tiles"),
            "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
            JSON_MEDIA_TYPE,
            "Vector tiles (docs/tiles.md)",
        ),
    ]
    if target.id == "services":
        links.append(
            _link(
                _url(request, f"{path}/queryables"),
                "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                "application/schema+json",
                "Queryables",
            )
        )
    return {
        "id": target.id,
        "title": target.title,
        "description": target.description,
        "itemType": "feature",
        "crs": [CRS84],
        "extent": {"spatial": {"bbox": [list(target.extent)], "crs": CRS84}},
        "links": links,
    }


def collections_document(
    request: Request, targets: Sequence[Collection], fmt: Format
) -> dict[str, Any]:
    """The list of collections."""
    return {
        "links": _self_and_alternate(request, "/ogc/collections", fmt),
        "collections": [collection_document(request, target, "json") for target in targets],
    }


def queryables_document(request: Request, properties: Mapping[str, Any]) -> dict[str, Any]:
    """The queryables of ``services`` as a JSON Schema."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": _url(request, "/ogc/collections/services/queryables"),
        "type": "object",
        "title": "Services at locations",
        "properties": dict(properties),
        "additionalProperties": False,
    }


def _timestamp(at: datetime) -> str:
    return at.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def items_document(
    request: Request, collection_id: str, page: ItemsPage, fmt: Format, *, limit: int, offset: int
) -> dict[str, Any]:
    """A page of features as a GeoJSON FeatureCollection with the standard's members."""
    path = f"/ogc/collections/{collection_id}/items"
    kept = {k: v for k, v in request.query_params.items() if k not in ("f", "limit", "offset")}
    paging = {"limit": limit, "offset": offset or None}
    links = _self_and_alternate(request, path, fmt, GEOJSON_MEDIA_TYPE, **kept, **paging)
    page_type = GEOJSON_MEDIA_TYPE if fmt == "json" else HTML_MEDIA_TYPE
    if page.has_more:
        after = {**kept, "limit": limit, "offset": offset + len(page.features), "f": fmt}
        links.append(_link(_url(request, path, **after), "next", page_type, "Next page"))
    if offset > 0:
        before = {**kept, "limit": limit, "offset": max(offset - limit, 0) or None, "f": fmt}
        links.append(_link(_url(request, path, **before), "prev", page_type, "Previous page"))
    links.append(
        _link(
            _url(request, f"/ogc/collections/{collection_id}"),
            "collection",
            JSON_MEDIA_TYPE,
            "The collection",
        )
    )
    document: dict[str, Any] = {"type": "FeatureCollection", "features": page.features}
    if page.number_matched is not None:
        document["numberMatched"] = page.number_matched
    document["numberReturned"] = len(page.features)
    document["timeStamp"] = _timestamp(page.time_stamp)
    document["links"] = links
    return document


def item_document(
    request: Request, collection_id: str, feature: Mapping[str, Any], fmt: Format
) -> dict[str, Any]:
    """One feature with its links."""
    path = f"/ogc/collections/{collection_id}/items/{feature['id']}"
    links = [
        *_self_and_alternate(request, path, fmt, GEOJSON_MEDIA_TYPE),
        _link(
            _url(request, f"/ogc/collections/{collection_id}"),
            "collection",
            JSON_MEDIA_TYPE,
            "The collection",
        ),
    ]
    return {**feature, "links": links}


# --- answers -----------------------------------------------------------------------------------

_TEMPLATES = {
    "base.html": """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title></head>
<body>
<nav><a href="{{ home }}">OGC API home</a> | <a href="{{ home }}/collections?f=html">Collections</a>
{%- for link in links if link.rel == "alternate" %} | <a href="{{ link.href }}">{{ link.title }}</a>
{%- endfor %}</nav>
<h1>{{ title }}</h1>
{% block body %}{% endblock %}
</body>
</html>
""",
    "landing.html": """{% extends "base.html" %}{% block body %}
<p>{{ doc.description }}</p>
<ul>{% for link in doc.links if link.rel not in ("self", "alternate") %}
<li><a href="{{ link.href }}">{{ link.title }}</a> ({{ link.rel }})</li>{% endfor %}</ul>
{% endblock %}""",
    "conformance.html": """{% extends "base.html" %}{% block body %}
<ul>{% for uri in doc.conformsTo %}<li>{{ uri }}</li>{% endfor %}</ul>
{% endblock %}""",
    "collections.html": """{% extends "base.html" %}{% block body %}
<table><thead><tr><th>Collection</th><th>Description</th><th>Items</th></tr></thead><tbody>
{% for c in doc.collections %}<tr><td><a href="{{ home }}/collections/{{ c.id }}?f=html">
{{ c.title }}</a></td><td>{{ c.description }}</td>
<td><a href="{{ home }}/collections/{{ c.id }}/items?f=html">items</a></td></tr>{% endfor %}
</tbody></table>
{% endblock %}""",
    "collection.html": """{% extends "base.html" %}{% block body %}
<p>{{ doc.description }}</p>
<p>Extent (CRS84): {{ doc.extent.spatial.bbox[0] | join(", ") }}</p>
<p><a href="{{ home }}/collections/{{ doc.id }}/items?f=html">Browse the items</a></p>
{% endblock %}""",
    "items.html": """{% extends "base.html" %}{% block body %}
<p>{% if doc.numberMatched is defined %}{{ doc.numberMatched }} matched, {% endif -%}
{{ doc.numberReturned }} shown.
{%- for link in doc.links if link.rel in ("prev", "next") %}
<a href="{{ link.href }}" rel="{{ link.rel }}">{{ link.title }}</a>{% endfor %}</p>
<table><thead><tr><th>Feature</th><th>Name</th><th>Where</th><th>Details</th></tr></thead><tbody>
{% for feature in doc.features %}<tr>
<td><a href="{{ home }}/collections/{{ collection }}/items/{{ feature.id }}?f=html">
{{ feature.id }}</a></td>
<td>{{ feature.properties.name }}</td>
<td>{% if feature.geometry and feature.geometry.type == "Point" %}
{{ feature.geometry.coordinates[1] }}, {{ feature.geometry.coordinates[0] }}
{% if feature.properties.precision %}({{ feature.properties.precision }}){% endif %}
{% elif feature.geometry %}{{ feature.geometry.type }}{% endif %}</td>
<td>{% for key, value in feature.properties.items() if key != "name" and value | shown %}
{{ key }}: {{ value | shown }}{% if not loop.last %}; {% endif %}
{% endfor %}</td></tr>{% endfor %}
</tbody></table>
{% endblock %}""",
    "item.html": """{% extends "base.html" %}{% block body %}
<dl>{% if doc.geometry and doc.geometry.type == "Point" %}
<dt>Point (longitude, latitude)</dt><dd>{{ doc.geometry.coordinates | join(", ") }}</dd>
{% endif %}{% for key, value in doc.properties.items() %}<dt>{{ key }}</dt>
<dd>{{ value | shown }}</dd>
{% endfor %}</dl>
{% endblock %}""",
    "queryables.html": """{% extends "base.html" %}{% block body %}
<dl>{% for name, schema in doc.properties.items() %}<dt>{{ name }} ({{ schema.type }})</dt>
<dd>{{ schema.description }}</dd>{% endfor %}</dl>
{% endblock %}""",
}


def _shown(value: Any) -> str:
    """A property value as text: lists joined by commas, None as nothing."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(_shown(item) for item in value)
    return str(value)


_ENVIRONMENT = Environment(
    loader=DictLoader(_TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    auto_reload=False,
)
_ENVIRONMENT.filters["shown"] = _shown


def _headers(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    return {"Vary": _VARY, **(extra or {})}


def answer(
    request: Request,
    document: Mapping[str, Any],
    fmt: Format,
    *,
    template: str,
    title: str,
    json_type: str = JSON_MEDIA_TYPE,
    collection_id: str | None = None,
) -> Response:
    """The document as JSON (``json_type``) or as the HTML page ``template``."""
    if fmt == "html":
        page = _ENVIRONMENT.get_template(template).render(
            doc=document,
            title=title,
            home=_url(request, "/ogc"),
            links=document.get("links", []),
            collection=collection_id,
        )
        return HTMLResponse(page, headers=_headers())
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(body, media_type=json_type, headers=_headers())


def openapi_answer(document: Mapping[str, Any]) -> JSONResponse:
    """The OpenAPI document of the /ogc routes."""
    return JSONResponse(dict(document), media_type=OPENAPI_MEDIA_TYPE, headers=_headers())
