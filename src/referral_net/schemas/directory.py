"""Request and response models of the directory: organizations, services, locations and links.

Request bodies forbid unknown fields. Validation rules (coordinates and swapped axes, polygons,
language codes, phone numbers) live in ``referral_net.validation`` and surface here as 422 field
errors naming the field.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, field_validator, model_validator

from referral_net import validation
from referral_net.schemas.common import PatchModel, StrictModel
from referral_net.vocab import RecordStatus, ServedGender, Visibility

GenderCode = ServedGender
EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{2,63}$"
URL_PATTERN = r"^https?://[^\s]{1,2000}$"


def _phone(value: str) -> str:
    return validation.normalize_phone(value)


def _language(value: str) -> str:
    return validation.normalize_language_code(value)


PhoneNumber = Annotated[str, Field(min_length=2, max_length=40), AfterValidator(_phone)]
LanguageCode = Annotated[
    str, Field(min_length=2, max_length=3, examples=["mam"]), AfterValidator(_language)
]
Email = Annotated[str, Field(max_length=320, pattern=EMAIL_PATTERN, examples=["info@example.org"])]
Url = Annotated[str, Field(max_length=2000, pattern=URL_PATTERN, examples=["https://example.org"])]
Name = Annotated[str, Field(min_length=1, max_length=500)]
Text = Annotated[str, Field(max_length=20_000)]
ID_DESCRIPTION = "Stewards only: keep a chosen id (a 422 for anyone else; the server assigns one)."


# --- nested pieces ---------------------------------------------------------------------------


class PhoneIn(StrictModel):
    """A phone number; stored in E.164 where the number allows it."""

    number: PhoneNumber = Field(examples=["+502 5555 0123"])
    extension: str | None = Field(default=None, max_length=20, pattern=r"^[0-9]{1,20}$")
    type: Literal["voice", "fax", "text", "cell", "video", "pager", "textphone"] | None = "voice"
    description: Text | None = None


class PhoneOut(BaseModel):
    """A stored phone number."""

    number: str = Field(examples=["+50255550123"])
    extension: str | None = None
    type: str | None = Field(default=None, examples=["voice"])
    description: str | None = None


class ScheduleIn(StrictModel):
    """An HSDS weekly schedule; opens_at = closes_at means open the whole day."""

    freq: Literal["WEEKLY", "MONTHLY"] = "WEEKLY"
    interval: int | None = Field(default=None, ge=1, le=52)
    byday: str | None = Field(
        default=None,
        max_length=40,
        pattern=r"^(MO|TU|WE|TH|FR|SA|SU)(,(MO|TU|WE|TH|FR|SA|SU))*$",
        examples=["MO,TU,WE,TH,FR"],
    )
    bymonthday: str | None = Field(
        default=None, max_length=100, pattern=r"^-?\d{1,2}(,-?\d{1,2})*$"
    )
    opens_at: time | None = Field(default=None, examples=["08:00"])
    closes_at: time | None = Field(default=None, examples=["16:30"])
    valid_from: date | None = None
    valid_to: date | None = None
    dtstart: date | None = None
    until: date | None = None
    description: Text | None = None
    notes: Text | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ScheduleIn:
        if (self.opens_at is None) != (self.closes_at is None):
            raise ValueError("opens_at and closes_at go together")
        if self.valid_from and self.valid_to and self.valid_from > self.valid_to:
            raise ValueError("valid_from is after valid_to")
        if self.freq == "WEEKLY" and not self.byday:
            raise ValueError("a WEEKLY schedule needs byday")
        return self


class ScheduleOut(BaseModel):
    """A stored schedule."""

    freq: str | None = Field(default=None, examples=["WEEKLY"])
    interval: int | None = None
    byday: str | None = Field(default=None, examples=["MO,TU,WE,TH,FR"])
    bymonthday: str | None = None
    opens_at: time | None = None
    closes_at: time | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    dtstart: date | None = None
    until: date | None = None
    description: str | None = None
    notes: str | None = None


class AddressIn(StrictModel):
    """A physical or postal address (postal code optional in Guatemala)."""

    attention: str | None = Field(default=None, max_length=500)
    address_1: str = Field(min_length=1, max_length=500, examples=["4a Calle 10-20, Zona 1"])
    address_2: str | None = Field(default=None, max_length=500)
    city: str = Field(min_length=1, max_length=200, examples=["Quetzaltenango"])
    region: str | None = Field(default=None, max_length=200)
    state_province: str = Field(min_length=1, max_length=200, examples=["Quetzaltenango"])
    postal_code: str | None = Field(default=None, max_length=40)
    country: str = Field(default="GT", pattern=r"^[A-Z]{2}$")
    address_type: Literal["physical", "postal", "virtual"] = "physical"


class AddressOut(BaseModel):
    """A stored address."""

    attention: str | None = None
    address_1: str = Field(examples=["4a Calle 10-20, Zona 1"])
    address_2: str | None = None
    city: str
    region: str | None = None
    state_province: str
    postal_code: str | None = None
    country: str
    address_type: str


class AccessibilityIn(StrictModel):
    """An accessibility provision of a location."""

    description: Text | None = Field(default=None, examples=["Rampa de acceso"])
    details: Text | None = None
    url: Url | None = None


class AccessibilityOut(BaseModel):
    """A stored accessibility provision."""

    description: str | None = Field(default=None, examples=["Rampa de acceso"])
    details: str | None = None
    url: str | None = None


class CostOptionIn(StrictModel):
    """What a service costs."""

    option: Text | None = Field(default=None, examples=["Gratuito"])
    amount: float | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$", examples=["GTQ"])
    amount_description: Text | None = None
    valid_from: date | None = None
    valid_to: date | None = None


class CostOptionOut(BaseModel):
    """A stored cost option."""

    option: str | None = Field(default=None, examples=["Gratuito"])
    amount: float | None = None
    currency: str | None = None
    amount_description: str | None = None
    valid_from: date | None = None
    valid_to: date | None = None


class RequiredDocumentIn(StrictModel):
    """A document the service asks for."""

    document: Text = Field(examples=["Ninguno"])
    uri: Url | None = None


class RequiredDocumentOut(BaseModel):
    """A stored required document."""

    document: str | None = Field(default=None, examples=["Ninguno"])
    uri: str | None = None


class ServiceAreaIn(StrictModel):
    """The area a service covers, as a GeoJSON Polygon or MultiPolygon."""

    name: str | None = Field(
        default=None, max_length=500, examples=["Departamento de Huehuetenango"]
    )
    description: Text | None = None
    extent: dict[str, Any] = Field(
        description="GeoJSON Polygon or MultiPolygon (WGS 84, lon/lat).",
        examples=[
            {
                "type": "Polygon",
                "coordinates": [[[-91.6, 15.2], [-91.4, 15.2], [-91.4, 15.4], [-91.6, 15.2]]],
            }
        ],
    )
    uri: Url | None = None

    @field_validator("extent")
    @classmethod
    def _valid_area(cls, value: dict[str, Any]) -> dict[str, Any]:
        validation.check_area_geometry(value)
        return value


class ServiceAreaOut(BaseModel):
    """A stored service area with its polygon."""

    id: uuid.UUID
    name: str | None = None
    description: str | None = None
    extent: dict[str, Any] | None = Field(default=None, description="GeoJSON geometry.")
    extent_type: str | None = Field(default=None, examples=["geojson"])
    uri: str | None = None


class CapacityIn(StrictModel):
    """Free and total places of one unit (HSDS 3.1 draft service_capacity)."""

    unit: Literal["bed", "place", "room"] = Field(examples=["bed"])
    available: int = Field(ge=0, le=100_000, examples=[3])
    maximum: int | None = Field(default=None, ge=0, le=100_000, examples=[12])
    description: Text | None = None

    @model_validator(mode="after")
    def _available_within_maximum(self) -> CapacityIn:
        if self.maximum is not None and self.available > self.maximum:
            raise ValueError("available exceeds maximum")
        return self


class CapacityOut(BaseModel):
    """Stored capacity with its freshness."""

    unit: str = Field(examples=["bed"])
    available: int = Field(examples=[3])
    maximum: int | None = Field(default=None, examples=[12])
    description: str | None = None
    updated: datetime
    stale: bool = Field(description="Older than the configured freshness window (72 h).")


class EligibilityIn(StrictModel):
    """Who a service takes (HSDS ages plus the profile's structured eligibility)."""

    minimum_age: int | None = Field(default=None, ge=0, le=120, examples=[12])
    maximum_age: int | None = Field(default=None, ge=0, le=120, examples=[17])
    genders_served: list[GenderCode] | None = Field(
        default=None, description="Null means every gender.", examples=[["woman", "trans_woman"]]
    )
    trans_inclusive: bool = False
    lgbtiq_affirming: bool = False
    accepts_accompanying_children: bool = False
    minors_only: bool = False
    description: Text | None = Field(default=None, description="HSDS eligibility_description.")

    @model_validator(mode="after")
    def _age_range(self) -> EligibilityIn:
        if (
            self.minimum_age is not None
            and self.maximum_age is not None
            and self.minimum_age > self.maximum_age
        ):
            raise ValueError("minimum_age is above maximum_age")
        return self


class EligibilityOut(BaseModel):
    """A service's stored eligibility."""

    minimum_age: int | None = Field(default=None, examples=[12])
    maximum_age: int | None = Field(default=None, examples=[17])
    genders_served: list[str] | None = None
    trans_inclusive: bool = False
    lgbtiq_affirming: bool = False
    accepts_accompanying_children: bool = False
    minors_only: bool = False
    description: str | None = None


class CategoryOut(BaseModel):
    """A taxonomy term attached to a record, labelled in the request's language."""

    code: str = Field(examples=["protection.shelter.emergency"])
    name: str = Field(examples=["Albergue de emergencia"])


class LanguageOut(BaseModel):
    """A language, ISO 639-3."""

    code: str = Field(examples=["mam"])
    name: str | None = Field(default=None, examples=["Mam"])


# --- organizations ---------------------------------------------------------------------------


class OrganizationCreate(StrictModel):
    """A new organization."""

    id: uuid.UUID | None = Field(default=None, description=ID_DESCRIPTION)
    name: Name = Field(examples=["Asociación Refugio de la Niñez (ejemplo)"])
    alternate_name: str | None = Field(default=None, max_length=500)
    description: Text = Field(default="", examples=["Protección integral a niñez y adolescencia."])
    email: Email | None = None
    website: Url | None = None
    tax_status: str | None = Field(default=None, max_length=200)
    tax_id: str | None = Field(default=None, max_length=200)
    year_incorporated: int | None = Field(default=None, ge=1800, le=2100)
    legal_status: str | None = Field(default=None, max_length=200)
    logo: Url | None = None
    uri: Url | None = None
    parent_organization_id: uuid.UUID | None = None
    phones: list[PhoneIn] = Field(default_factory=list, max_length=20)


class OrganizationUpdate(PatchModel):
    """A partial update: only the fields present change."""

    not_nullable = frozenset({"name", "description", "phones"})

    name: Name | None = Field(default=None, examples=["Nuevo nombre (ejemplo)"])
    alternate_name: str | None = Field(default=None, max_length=500)
    description: Text | None = None
    email: Email | None = None
    website: Url | None = None
    tax_status: str | None = Field(default=None, max_length=200)
    tax_id: str | None = Field(default=None, max_length=200)
    year_incorporated: int | None = Field(default=None, ge=1800, le=2100)
    legal_status: str | None = Field(default=None, max_length=200)
    logo: Url | None = None
    uri: Url | None = None
    parent_organization_id: uuid.UUID | None = None
    phones: list[PhoneIn] | None = Field(default=None, max_length=20)


class OrganizationRead(BaseModel):
    """An organization as served."""

    id: uuid.UUID
    name: str = Field(examples=["Asociación Refugio de la Niñez (ejemplo)"])
    alternate_name: str | None = None
    description: str
    email: str | None = None
    website: str | None = None
    tax_status: str | None = None
    tax_id: str | None = None
    year_incorporated: int | None = None
    legal_status: str | None = None
    logo: str | None = None
    uri: str | None = None
    parent_organization_id: uuid.UUID | None = None
    status: RecordStatus
    phones: list[PhoneOut] = Field(default_factory=list)
    last_modified: datetime | None = None


# --- services --------------------------------------------------------------------------------


class ServiceFields(PatchModel):
    """Fields shared by service creation and update."""

    program_id: uuid.UUID | None = None
    alternate_name: str | None = Field(default=None, max_length=500)
    description: Text | None = Field(
        default=None, examples=["Albergue temporal para adolescentes."]
    )
    url: Url | None = None
    email: Email | None = None
    interpretation_services: Text | None = Field(default=None, examples=["Intérprete de mam"])
    application_process: Text | None = None
    fees_description: Text | None = None
    wait_time: Text | None = None
    accreditations: Text | None = None
    licenses: Text | None = None
    alert: Text | None = None


class ServiceCreate(ServiceFields):
    """A new service of an organization."""

    id: uuid.UUID | None = Field(default=None, description=ID_DESCRIPTION)
    organization_id: uuid.UUID
    name: Name = Field(examples=["Albergue para adolescentes (ejemplo)"])
    status: Literal["active", "inactive", "temporarily closed"] = "active"
    eligibility: EligibilityIn = Field(default_factory=EligibilityIn)
    categories: list[str] = Field(
        default_factory=list, max_length=20, examples=[["protection.shelter.children_adolescents"]]
    )
    languages: list[LanguageCode] = Field(default_factory=list, max_length=30, examples=[["spa"]])
    phones: list[PhoneIn] = Field(default_factory=list, max_length=20)
    schedules: list[ScheduleIn] = Field(default_factory=list, max_length=30)
    cost_options: list[CostOptionIn] = Field(default_factory=list, max_length=20)
    required_documents: list[RequiredDocumentIn] = Field(default_factory=list, max_length=30)
    service_areas: list[ServiceAreaIn] = Field(default_factory=list, max_length=50)
    capacity: list[CapacityIn] = Field(default_factory=list, max_length=5)
    listed_despite_hidden_sites: bool = Field(
        default=False,
        description="Stewards only: list the service although each of its sites is hidden.",
    )


class ServiceUpdate(ServiceFields):
    """A partial update: only the fields present change; lists replace the stored list."""

    not_nullable = frozenset(
        {
            "name",
            "status",
            "eligibility",
            "categories",
            "languages",
            "phones",
            "schedules",
            "cost_options",
            "required_documents",
            "service_areas",
            "listed_despite_hidden_sites",
        }
    )

    name: Name | None = Field(default=None, examples=["Nuevo nombre (ejemplo)"])
    status: Literal["active", "inactive", "temporarily closed"] | None = None
    eligibility: EligibilityIn | None = None
    categories: list[str] | None = Field(default=None, max_length=20)
    languages: list[LanguageCode] | None = Field(default=None, max_length=30)
    phones: list[PhoneIn] | None = Field(default=None, max_length=20)
    schedules: list[ScheduleIn] | None = Field(default=None, max_length=30)
    cost_options: list[CostOptionIn] | None = Field(default=None, max_length=20)
    required_documents: list[RequiredDocumentIn] | None = Field(default=None, max_length=30)
    service_areas: list[ServiceAreaIn] | None = Field(default=None, max_length=50)
    listed_despite_hidden_sites: bool | None = Field(
        default=None,
        description="Stewards only: list the service although each of its sites is hidden.",
    )


class ServiceRead(BaseModel):
    """A service as served, with its nested records."""

    id: uuid.UUID
    organization_id: uuid.UUID
    program_id: uuid.UUID | None = None
    name: str = Field(examples=["Albergue para adolescentes (ejemplo)"])
    alternate_name: str | None = None
    description: str | None = None
    url: str | None = None
    email: str | None = None
    status: str = Field(examples=["active"])
    interpretation_services: str | None = None
    application_process: str | None = None
    fees_description: str | None = None
    wait_time: str | None = None
    accreditations: str | None = None
    licenses: str | None = None
    alert: str | None = None
    eligibility: EligibilityOut
    categories: list[CategoryOut] = Field(default_factory=list)
    languages: list[LanguageOut] = Field(default_factory=list)
    phones: list[PhoneOut] = Field(default_factory=list)
    schedules: list[ScheduleOut] = Field(default_factory=list)
    cost_options: list[CostOptionOut] = Field(default_factory=list)
    required_documents: list[RequiredDocumentOut] = Field(default_factory=list)
    service_areas: list[ServiceAreaOut] = Field(default_factory=list)
    capacity: list[CapacityOut] = Field(default_factory=list)
    open_now: bool | None = Field(default=None, description="Open at the evaluated instant.")
    open_24h: bool = False
    assured_date: date | None = Field(default=None, description="Last verified.")
    assured_by: str | None = None
    listed_despite_hidden_sites: bool | None = Field(
        default=None,
        description="Set by a steward: listed although every site is hidden from some audiences."
        " Shown to trusted roles and the organization's editors; null for everyone else.",
    )
    last_modified: datetime | None = None


class CapacityUpdate(StrictModel):
    """Replace a service's capacity figures (provider staff and stewards)."""

    capacity: list[CapacityIn] = Field(min_length=1, max_length=5)


# --- locations -------------------------------------------------------------------------------


class LocationFields(PatchModel):
    """Fields shared by location creation and update."""

    alternate_name: str | None = Field(default=None, max_length=500)
    description: Text | None = None
    transportation: Text | None = None
    url: Url | None = None
    external_identifier: str | None = Field(default=None, max_length=500)
    external_identifier_type: str | None = Field(default=None, max_length=200)
    intake_phone: PhoneNumber | None = Field(
        default=None, description="Public front-door phone shown instead of a hidden site."
    )
    intake_description: Text | None = Field(default=None, examples=["Oficina de ingreso"])


class LocationCreate(LocationFields):
    """A new location. A point outside Guatemala needs ``outside_country: true``."""

    id: uuid.UUID | None = Field(default=None, description=ID_DESCRIPTION)
    organization_id: uuid.UUID
    name: Name = Field(examples=["Sede Xela (ejemplo)"])
    location_type: Literal["physical", "postal", "virtual"] = "physical"
    latitude: float | None = Field(default=None, examples=[14.8347])
    longitude: float | None = Field(default=None, examples=[-91.5181])
    outside_country: bool = False
    visibility: Visibility = Visibility.PUBLIC
    addresses: list[AddressIn] = Field(default_factory=list, max_length=5)
    phones: list[PhoneIn] = Field(default_factory=list, max_length=20)
    languages: list[LanguageCode] = Field(default_factory=list, max_length=30)
    accessibility: list[AccessibilityIn] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _point(self) -> LocationCreate:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude go together")
        if self.location_type == "physical" and self.latitude is None:
            raise ValueError("a physical location needs latitude and longitude")
        if self.latitude is not None and self.longitude is not None:
            validation.check_coordinates(
                self.latitude, self.longitude, allow_outside_country=self.outside_country
            )
        return self


class LocationUpdate(LocationFields):
    """A partial update. Latitude and longitude change together."""

    not_nullable = frozenset(
        {
            "name",
            "outside_country",
            "visibility",
            "addresses",
            "phones",
            "languages",
            "accessibility",
        }
    )

    name: Name | None = Field(default=None, examples=["Sede Xela (ejemplo)"])
    latitude: float | None = None
    longitude: float | None = None
    outside_country: bool | None = None
    visibility: Visibility | None = None
    addresses: list[AddressIn] | None = Field(default=None, max_length=5)
    phones: list[PhoneIn] | None = Field(default=None, max_length=20)
    languages: list[LanguageCode] | None = Field(default=None, max_length=30)
    accessibility: list[AccessibilityIn] | None = Field(default=None, max_length=20)

    @model_validator(mode="after")
    def _point(self) -> LocationUpdate:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude change together")
        if self.latitude is not None and self.longitude is not None:
            validation.check_coordinates(
                self.latitude, self.longitude, allow_outside_country=bool(self.outside_country)
            )
        return self


class LocationRead(BaseModel):
    """A location as the caller may see it.

    For a restricted location seen by the public or partners, ``precision`` is ``municipality``:
    the point is the municipality's representative point and the address, phones and site
    details are absent; the intake contact is the way in.
    """

    id: uuid.UUID
    organization_id: uuid.UUID | None = None
    name: str | None = Field(default=None, examples=["Sede Xela (ejemplo)"])
    alternate_name: str | None = None
    description: str | None = None
    transportation: str | None = None
    location_type: str = Field(examples=["physical"])
    url: str | None = None
    latitude: float | None = Field(default=None, examples=[14.8347])
    longitude: float | None = Field(default=None, examples=[-91.5181])
    precision: Literal["exact", "municipality"] = "exact"
    visibility: Visibility
    department_code: str | None = Field(default=None, examples=["09"])
    municipality_code: str | None = Field(default=None, examples=["0901"])
    outside_country: bool = False
    intake_phone: str | None = None
    intake_description: str | None = None
    external_identifier: str | None = None
    external_identifier_type: str | None = None
    status: str = Field(examples=["active"])
    addresses: list[AddressOut] = Field(default_factory=list)
    phones: list[PhoneOut] = Field(default_factory=list)
    languages: list[LanguageOut] = Field(default_factory=list)
    accessibility: list[AccessibilityOut] = Field(default_factory=list)
    last_modified: datetime | None = None


# --- service at location ---------------------------------------------------------------------


class ServiceAtLocationCreate(StrictModel):
    """Link a service to a location where it is delivered."""

    id: uuid.UUID | None = Field(default=None, description=ID_DESCRIPTION)
    service_id: uuid.UUID
    location_id: uuid.UUID
    description: Text | None = Field(default=None, examples=["Atención con cita previa"])


class ServiceAtLocationUpdate(StrictModel):
    """Change a link's description."""

    description: Text | None = Field(default=None, examples=["Atención con cita previa"])


class ServiceAtLocationRead(BaseModel):
    """A service delivered at a location."""

    id: uuid.UUID
    service_id: uuid.UUID
    location_id: uuid.UUID
    description: str | None = None
    service_name: str | None = Field(default=None, examples=["Albergue (ejemplo)"])
    location_name: str | None = Field(default=None, examples=["Sede Xela (ejemplo)"])


class VerificationDue(BaseModel):
    """A listing whose verification is due."""

    service_id: uuid.UUID
    name: str = Field(examples=["Albergue (ejemplo)"])
    organization_id: uuid.UUID
    assured_date: date | None = None
    days_since_verified: int | None = Field(default=None, examples=[240])


class VerifyRequest(StrictModel):
    """Mark a listing verified (today unless a date is given)."""

    assured_date: date | None = Field(default=None, examples=["2026-11-29"])
