"""HSDS 3.0 nested records as the directory serves them: each with its own ``id``.

HSDS requires an ``id`` on every nested record (phone, schedule, language, contact, ...), so a
consumer can update one without replacing its siblings. Absent values are ``None`` here and are
left out of the JSON (the directory routes serialise with ``exclude_none``): HSDS has no nulls.
Field names and types follow the official schemas in ``profile/schema/compiled/``; where this
project adds a field it says so.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time

from pydantic import BaseModel, Field


class LanguageRead(BaseModel):
    """A language spoken (HSDS ``language``); ``name`` in the response's language."""

    id: uuid.UUID
    code: str = Field(examples=["mam"])
    name: str | None = Field(default=None, examples=["Mam"])
    note: str | None = None


class PhoneRead(BaseModel):
    """A stored phone number (HSDS ``phone``); ``extension`` is a number, as HSDS types it."""

    id: uuid.UUID
    number: str = Field(examples=["+50255550123"])
    extension: int | None = Field(default=None, examples=[101])
    type: str | None = Field(default=None, examples=["voice"])
    description: str | None = None
    languages: list[LanguageRead] = Field(default_factory=list)


class ScheduleRead(BaseModel):
    """A stored schedule (HSDS ``schedule``): an iCalendar recurrence plus opening hours."""

    id: uuid.UUID
    valid_from: date | None = None
    valid_to: date | None = None
    dtstart: date | None = None
    timezone: float | None = None
    until: date | None = None
    count: int | None = None
    wkst: str | None = None
    freq: str | None = Field(default=None, examples=["WEEKLY"])
    interval: int | None = None
    byday: str | None = Field(default=None, examples=["MO,TU,WE,TH,FR"])
    byweekno: str | None = None
    bymonthday: str | None = None
    byyearday: str | None = None
    description: str | None = None
    opens_at: time | None = None
    closes_at: time | None = None
    schedule_link: str | None = None
    attending_type: str | None = None
    notes: str | None = None


class AddressRead(BaseModel):
    """A stored address (HSDS ``address``; the profile makes ``postal_code`` optional)."""

    id: uuid.UUID
    attention: str | None = None
    address_1: str
    address_2: str | None = None
    city: str
    region: str | None = None
    state_province: str
    postal_code: str | None = None
    country: str
    address_type: str


class AccessibilityRead(BaseModel):
    """A stored accessibility provision (HSDS ``accessibility``)."""

    id: uuid.UUID
    description: str | None = Field(default=None, examples=["Rampa de acceso"])
    details: str | None = None
    url: str | None = None


class CostOptionRead(BaseModel):
    """A stored cost option (HSDS ``cost_option``)."""

    id: uuid.UUID
    option: str | None = Field(default=None, examples=["Gratuito"])
    amount: float | None = None
    currency: str | None = None
    amount_description: str | None = None
    valid_from: date | None = None
    valid_to: date | None = None


class RequiredDocumentRead(BaseModel):
    """A stored required document (HSDS ``required_document``)."""

    id: uuid.UUID
    document: str | None = Field(default=None, examples=["Ninguno"])
    uri: str | None = None


class ServiceAreaRead(BaseModel):
    """A stored service area (HSDS ``service_area``).

    ``extent`` is the HSDS string: the GeoJSON text of the polygon (``extent_type`` "geojson").
    ``geometry`` (profile) is the same polygon as a GeoJSON object, for clients that map it.
    """

    id: uuid.UUID
    name: str | None = None
    description: str | None = None
    extent: str | None = Field(default=None, description="GeoJSON text of the area.")
    extent_type: str | None = Field(default=None, examples=["geojson"])
    uri: str | None = None
    geometry: dict[str, object] | None = Field(
        default=None, description="Profile: the area as a GeoJSON geometry object."
    )


class ContactRead(BaseModel):
    """A named contact of an organization, service or site (HSDS ``contact``); never a victim."""

    id: uuid.UUID
    name: str | None = None
    title: str | None = None
    department: str | None = None
    email: str | None = None
    phones: list[PhoneRead] = Field(default_factory=list)


class FundingRead(BaseModel):
    """A source of funding (HSDS ``funding``)."""

    id: uuid.UUID
    source: str | None = None


class ProgramRead(BaseModel):
    """A program grouping services (HSDS ``program``)."""

    id: uuid.UUID
    organization_id: uuid.UUID | None = None
    name: str
    alternate_name: str | None = None
    description: str


class OrganizationIdentifierRead(BaseModel):
    """An external identifier of an organization (HSDS ``organization_identifier``)."""

    id: uuid.UUID
    identifier_scheme: str | None = None
    identifier_type: str
    identifier: str


class AttributeTermRead(BaseModel):
    """The taxonomy term an attribute points at, as HSDS nests it in ``attribute``.

    ``name`` and ``description`` are the term's own (``language``), as stored.
    """

    id: uuid.UUID
    code: str | None = None
    name: str
    description: str
    parent_id: uuid.UUID | None = None
    taxonomy: str | None = None
    taxonomy_id: uuid.UUID | None = None
    language: str | None = None
    term_uri: str | None = None


class AttributeRead(BaseModel):
    """A link from a record to a taxonomy term (HSDS ``attribute``)."""

    id: uuid.UUID
    link_id: uuid.UUID
    taxonomy_term_id: uuid.UUID
    link_type: str | None = None
    link_entity: str
    value: str | None = None
    label: str | None = None
    taxonomy_term: AttributeTermRead | None = None


class UnitRead(BaseModel):
    """A unit of capacity (HSDS 3.1 draft ``unit``)."""

    id: uuid.UUID
    name: str = Field(examples=["Bed"])
    scheme: str | None = None
    identifier: str | None = Field(default=None, examples=["bed"])
    uri: str | None = None


class ServiceCapacityRead(BaseModel):
    """Available and maximum places (HSDS 3.1 draft ``service_capacity``)."""

    id: uuid.UUID
    service_id: uuid.UUID
    unit: UnitRead
    available: float = Field(examples=[3])
    maximum: float | None = Field(default=None, examples=[12])
    description: str | None = None
    updated: datetime
