"""Search results as GeoJSON (RFC 7946): one Feature per service at a location.

The one shaping of a service on a map, used by ``GET /api/v1/search`` with ``f=geojson`` (or
``Accept: application/geo+json``) and by the OGC API - Features ``services`` collection. It works
on results already placed for their audience (``domain.places``): a restricted site arrives at its
municipality's point with ``precision: municipality`` and its intake phone only; a confidential one
never arrives. Nothing here decides visibility.

Properties are flat scalars and lists of strings, so GDAL/OGR (QGIS) reads each as a typed field;
a nested object would reach OGR as JSON text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, Field

GEOJSON_MEDIA_TYPE = "application/geo+json"


class PointGeometry(BaseModel):
    """A GeoJSON Point: [longitude, latitude], WGS 84."""

    type: Literal["Point"] = "Point"
    coordinates: list[float] = Field(min_length=2, max_length=2, examples=[[-91.5181, 14.8347]])


class ServiceProperties(BaseModel):
    """What a map shows of a service at a location (labels in the request's language)."""

    name: str = Field(description="The service's name.", examples=["Albergue temporal (ejemplo)"])
    service_id: str
    organization_id: str
    organization_name: str
    location_id: str
    location_name: str | None = None
    categories: list[str] = Field(description="Category labels in the request's language.")
    category_codes: list[str] = Field(examples=[["protection.shelter"]])
    top_category: str | None = Field(
        default=None, description="The first category's top-level code (a map colours by it)."
    )
    languages: list[str] = Field(description="Language names in the request's language.")
    language_codes: list[str] = Field(description="ISO 639-3.", examples=[["spa", "mam"]])
    phones: list[str] = Field(
        description="Numbers to call: the intake phone alone where the site is shown at its"
        " municipality."
    )
    hours: list[str] = Field(description="Weekly opening hours as text, Guatemala time.")
    open_now: bool | None = Field(default=None, description="Open at the evaluated instant.")
    open_24h: bool = False
    last_verified: str | None = Field(default=None, description="HSDS assured_date, ISO 8601.")
    precision: Literal["exact", "municipality"] = Field(
        description="exact: the site's own point; municipality: the municipality's point stands"
        " in for a site the audience may not see."
    )
    department_code: str | None = None
    municipality_code: str | None = None
    distance_m: float | None = Field(default=None, description="Geodesic metres (WGS 84).")
    minimum_age: int | None = None
    maximum_age: int | None = None
    lgbtiq_affirming: bool = False
    accepts_accompanying_children: bool = False
    intake_description: str | None = None


class ServiceFeature(BaseModel):
    """One service at one location as a GeoJSON Feature (``id``: the service at location)."""

    type: Literal["Feature"] = "Feature"
    id: str
    geometry: PointGeometry | None
    properties: ServiceProperties


class ServiceFeatureCollection(BaseModel):
    """Search results as a GeoJSON FeatureCollection, with the search page's counters."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[ServiceFeature]
    total_items: int | None = Field(default=None, description="As the JSON answer's.")
    total_is_lower_bound: bool | None = None
    page_number: int | None = None
    limit: int | None = None


def _top_level(code: str) -> str:
    return code.split(".", 1)[0]


def service_feature(result: Mapping[str, Any]) -> dict[str, Any]:
    """One result document (``domain.search.search_page``'s, or a ``SearchResult`` dumped in
    Python mode) as a GeoJSON Feature (a plain dict, ready to serialize)."""
    location, service = result["location"], result["service"]
    latitude, longitude = location["latitude"], location["longitude"]
    geometry = (
        None
        if latitude is None or longitude is None
        else {"type": "Point", "coordinates": [longitude, latitude]}
    )
    categories, languages = result["categories"], result["languages"]
    codes = [category["code"] for category in categories if category["code"]]
    last_verified = result["last_verified"]
    properties = {
        "name": service["name"],
        "service_id": str(service["id"]),
        "organization_id": str(service["organization_id"]),
        "organization_name": service["organization_name"],
        "location_id": str(location["id"]),
        "location_name": location["name"],
        "categories": [category["name"] for category in categories],
        "category_codes": codes,
        "top_category": _top_level(codes[0]) if codes else None,
        "languages": [language["name"] or language["code"] for language in languages],
        "language_codes": [language["code"] for language in languages],
        "phones": list(result["phones"]),
        "hours": list(result["hours"]),
        "open_now": result["open_now"],
        "open_24h": result["open_24h"],
        "last_verified": last_verified.isoformat()
        if isinstance(last_verified, date)
        else last_verified,
        "precision": location["precision"],
        "department_code": location["department_code"],
        "municipality_code": location["municipality_code"],
        "distance_m": result["distance_m"],
        "minimum_age": service["minimum_age"],
        "maximum_age": service["maximum_age"],
        "lgbtiq_affirming": service["lgbtiq_affirming"],
        "accepts_accompanying_children": service["accepts_accompanying_children"],
        "intake_description": location["intake_description"],
    }
    return {
        "type": "Feature",
        "id": str(result["service_at_location_id"]),
        "geometry": geometry,
        "properties": properties,
    }


def feature_collection(features: Iterable[Mapping[str, Any]], **members: Any) -> dict[str, Any]:
    """A FeatureCollection of ``features``, with foreign members (counters, links) after them."""
    return {"type": "FeatureCollection", "features": list(features), **members}


def _inline(node: Any, definitions: Mapping[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {key: _inline(value, definitions) for key, value in node.items() if key != "$defs"}
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    return node


def feature_collection_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`ServiceFeatureCollection` with every ``$ref`` inlined.

    An OpenAPI document resolves ``#/...`` from its own root, so a model's ``$defs`` cannot stay
    inside the schema of an extra media type; the models hold no cycle, so inlining ends.
    """
    schema = ServiceFeatureCollection.model_json_schema()
    inlined: dict[str, Any] = _inline(schema, schema.get("$defs", {}))
    return inlined
