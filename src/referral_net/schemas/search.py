"""Response models of geospatial search."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field

from referral_net.schemas.directory import CapacityOut, CategoryOut, LanguageOut

SearchMode = Literal["near", "bbox", "department", "municipality", "covers"]


class SearchService(BaseModel):
    """The service of a result."""

    id: uuid.UUID
    name: str = Field(examples=["Albergue para adolescentes (ejemplo)"])
    organization_id: uuid.UUID
    organization_name: str = Field(examples=["Refugio de la Niñez (ejemplo)"])
    minimum_age: int | None = Field(default=None, examples=[12])
    maximum_age: int | None = Field(default=None, examples=[17])
    genders_served: list[str] | None = None
    lgbtiq_affirming: bool = False
    accepts_accompanying_children: bool = False


class SearchLocation(BaseModel):
    """Where the service is delivered, as precisely as the caller may see it."""

    id: uuid.UUID
    name: str | None = Field(default=None, examples=["Sede Xela (ejemplo)"])
    latitude: float | None = Field(default=None, examples=[14.8347])
    longitude: float | None = Field(default=None, examples=[-91.5181])
    precision: Literal["exact", "municipality"] = "exact"
    geocoding_precision: Literal["given", "town", "municipality"] | None = Field(
        default=None,
        description="How an import placed the exact point (given, town or municipality); shown"
        " with exact points only.",
    )
    department_code: str | None = Field(default=None, examples=["09"])
    municipality_code: str | None = Field(default=None, examples=["0901"])
    intake_phone: str | None = None
    intake_description: str | None = None


class SearchResult(BaseModel):
    """One service at one location."""

    service_at_location_id: uuid.UUID
    distance_m: float | None = Field(
        default=None,
        description="Geodesic metres (WGS 84) from the reference point.",
        examples=[1234.5],
    )
    service: SearchService
    location: SearchLocation
    categories: list[CategoryOut] = Field(default_factory=list)
    languages: list[LanguageOut] = Field(default_factory=list)
    open_now: bool | None = Field(default=None, description="Open at the evaluated instant.")
    open_24h: bool = False
    hours: list[str] = Field(
        default_factory=list,
        description="The service's weekly hours as text in the response's language (Guatemala"
        " time).",
        examples=[["lun–vie 08:00–16:30", "sáb 08:00–12:00"]],
    )
    phones: list[str] = Field(
        default_factory=list,
        description="Numbers to call: of the link, the site and the service, then the intake"
        " phone; only the intake phone where the site is shown at its municipality's point.",
        examples=[["+50277610000"]],
    )
    capacity: list[CapacityOut] = Field(default_factory=list)
    last_verified: date | None = Field(default=None, description="HSDS assured_date.")


class SearchPage(BaseModel):
    """A page of search results, nearest first where there is a reference point."""

    mode: SearchMode = Field(examples=["near"])
    total_items: int = Field(examples=[37])
    total_is_lower_bound: bool = Field(
        default=False,
        description="True when counting stopped at the count cap; there are at least this many.",
    )
    page_number: int = Field(examples=[1])
    limit: int = Field(examples=[10])
    size: int = Field(examples=[10])
    contents: list[SearchResult]


def page_json(page: Mapping[str, Any]) -> bytes:
    """A page document (``domain.search.search_page``) as the JSON body of a search answer:
    byte for byte what ``SearchPage.model_validate(page).model_dump_json()`` writes, without
    building the models (tests/test_search_documents.py holds the two equal).

    The document holds every value as the model would (fields in the model's order, ``UUID``s,
    aware ``datetime``s), and orjson writes them as pydantic-core does: the same float and
    string forms, a UTC offset as ``Z`` (``OPT_UTC_Z``).
    """
    return orjson.dumps(page, option=orjson.OPT_UTC_Z)
