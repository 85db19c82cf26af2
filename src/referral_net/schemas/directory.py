"""Request and response models of the directory: organizations, services, locations and links.

Request bodies forbid unknown fields. Validation rules (coordinates and swapped axes, polygons,
language codes, phone numbers) live in ``referral_net.validation`` and surface here as 422 field
errors naming the field.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import date, datetime, time
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    PrivateAttr,
    model_validator,
)

from referral_net import opening_hours, validation
from referral_net.schemas.common import PatchModel, StrictModel
from referral_net.schemas.nested import (
    AccessibilityRead,
    AddressRead,
    AttributeRead,
    ContactRead,
    CostOptionRead,
    FundingRead,
    LanguageRead,
    OrganizationIdentifierRead,
    PhoneRead,
    ProgramRead,
    RequiredDocumentRead,
    ScheduleRead,
    ServiceAreaRead,
    ServiceCapacityRead,
)
from referral_net.vocab import RecordStatus, ServedGender, Visibility

GenderCode = ServedGender
EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{2,63}$"
URL_PATTERN = r"^https?://[^\s]{1,2000}$"


def _phone(value: str) -> str:
    return validation.normalize_phone(value)


def _language(value: str) -> str:
    return validation.normalize_language_code(value)


# The patterns document the characters the validators accept, so that clients generating input
# from the OpenAPI document (tests/api_fuzz.py) send plausible values; the validators decide.
PhoneNumber = Annotated[
    str,
    Field(min_length=2, max_length=40, json_schema_extra={"pattern": validation.PHONE_CHARACTERS}),
    AfterValidator(_phone),
]
LanguageCode = Annotated[
    str,
    Field(
        min_length=2,
        max_length=3,
        examples=["mam"],
        json_schema_extra={"pattern": validation.LANGUAGE_CODE_CHARACTERS},
    ),
    AfterValidator(_language),
]
Email = Annotated[str, Field(max_length=320, pattern=EMAIL_PATTERN, examples=["info@example.org"])]
Url = Annotated[str, Field(max_length=2000, pattern=URL_PATTERN, examples=["https://example.org"])]
Name = Annotated[str, Field(min_length=1, max_length=500)]
Text = Annotated[str, Field(max_length=20_000)]
ID_DESCRIPTION = "Stewards only: keep a chosen id (a 422 for anyone else; the server assigns one)."


# --- nested pieces ---------------------------------------------------------------------------
# Writes accept what reads serve (HSDS 3.0): nested records with their ``id`` (kept when given;
# see docs/hsds-profile.md, "Writing HSDS records"), languages and categories as objects or as
# bare codes, a phone extension as a number.

NESTED_ID_DESCRIPTION = (
    "HSDS id of the nested record: one of this record's own keeps its id; leave it out for a new"
    " one (only stewards name a new id)."
)
NestedId = Annotated[uuid.UUID | None, Field(default=None, description=NESTED_ID_DESCRIPTION)]
LABEL_DESCRIPTION = (
    "Read-only label of the code, as GET serves it: accepted when it is the code's name in"
    " Spanish or English, refused (422) otherwise."
)


def _code_as_object(value: Any) -> Any:
    """A bare code is the short form of ``{"code": ...}`` (the form requests used before HSDS)."""
    return {"code": value} if isinstance(value, str) else value


def _extension_digits(value: Any) -> Any:
    """HSDS types ``phone.extension`` as a number; it is stored as its digits (a string)."""
    if isinstance(value, bool):
        raise ValueError("extension must be a number or a string of digits")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        if value < 0:
            raise ValueError("extension must not be negative")
        return str(value)
    return value


class LanguageIn(StrictModel):
    """A language spoken (HSDS ``language``); a bare ISO code is accepted for it too."""

    id: NestedId
    code: LanguageCode
    name: str | None = Field(default=None, max_length=200, description=LABEL_DESCRIPTION)
    note: Text | None = Field(default=None, examples=["Con cita previa"])


LanguageItem = Annotated[
    LanguageIn,
    BeforeValidator(_code_as_object, json_schema_input_type=LanguageIn | LanguageCode),
]
Extension = Annotated[
    str,
    BeforeValidator(_extension_digits, json_schema_input_type=int | str),
    Field(max_length=20, pattern=r"^[0-9]{1,20}$", examples=[101]),
]


class PhoneIn(StrictModel):
    """A phone number; stored in E.164 where the number allows it."""

    id: NestedId
    number: PhoneNumber = Field(examples=["+502 5555 0123"])
    extension: Extension | None = None
    type: Literal["voice", "fax", "text", "cell", "video", "pager", "textphone"] | None = "voice"
    description: Text | None = None
    languages: list[LanguageItem] = Field(
        default_factory=list, max_length=30, description="Languages spoken on this line."
    )


_DAY = "(MO|TU|WE|TH|FR|SA|SU)"
_ORDINAL_DAY = rf"([+-]?\d{{1,2}})?{_DAY}"
_NUMBERS_2 = r"^[+-]?\d{1,2}(,[+-]?\d{1,2})*$"
_NUMBERS_3 = r"^[+-]?\d{1,3}(,[+-]?\d{1,3})*$"


class ScheduleIn(StrictModel):
    """An HSDS schedule: an iCalendar recurrence plus opening hours; opens_at = closes_at means
    open the whole day. The recurrence is checked by the evaluator that reads it
    (``opening_hours``), so what is stored can be evaluated."""

    id: NestedId
    freq: Literal["WEEKLY", "MONTHLY", "DAILY", "YEARLY"] = Field(
        default="WEEKLY",
        description="HSDS lists WEEKLY and MONTHLY; DAILY and YEARLY (RFC 5545)"
        " are profile extensions.",
    )
    interval: int | None = Field(default=None, ge=1, le=52)
    byday: str | None = Field(
        default=None,
        max_length=100,
        pattern=rf"^{_ORDINAL_DAY}(,{_ORDINAL_DAY})*$",
        examples=["MO,TU,WE,TH,FR"],
    )
    bymonthday: str | None = Field(default=None, max_length=200, pattern=_NUMBERS_2)
    byweekno: str | None = Field(default=None, max_length=200, pattern=_NUMBERS_2)
    byyearday: str | None = Field(default=None, max_length=200, pattern=_NUMBERS_3)
    wkst: Literal["MO", "TU", "WE", "TH", "FR", "SA", "SU"] | None = None
    count: int | None = Field(default=None, ge=1, le=10_000)
    timezone: float | None = Field(
        default=None, ge=-12, le=14, description="HSDS UTC offset; stored, not evaluated."
    )
    opens_at: time | None = Field(default=None, examples=["08:00"])
    closes_at: time | None = Field(default=None, examples=["16:30"])
    valid_from: date | None = None
    valid_to: date | None = None
    dtstart: date | None = None
    until: date | None = None
    description: Text | None = None
    notes: Text | None = None
    schedule_link: Url | None = None
    attending_type: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _consistent(self) -> ScheduleIn:
        if (self.opens_at is None) != (self.closes_at is None):
            raise ValueError("opens_at and closes_at go together")
        if self.valid_from and self.valid_to and self.valid_from > self.valid_to:
            raise ValueError("valid_from is after valid_to")
        if self.freq == "WEEKLY" and not self.byday and self.dtstart is None:
            raise ValueError("a WEEKLY schedule needs byday (or dtstart, whose weekday it repeats)")
        # The evaluator's own checks (ordinals only with MONTHLY/YEARLY, count with until, day
        # and number ranges): one reading of the recurrence, not a second hand-written one.
        opening_hours.WeeklySchedule(
            freq=self.freq,
            interval=self.interval or 1,
            byday=self.byday,
            bymonthday=self.bymonthday,
            byweekno=self.byweekno,
            byyearday=self.byyearday,
            wkst=self.wkst,
            count=self.count,
            opens_at=self.opens_at,
            closes_at=self.closes_at,
            valid_from=self.valid_from,
            valid_to=self.valid_to,
            dtstart=self.dtstart,
            until=self.until,
        )
        return self


class AddressIn(StrictModel):
    """A physical or postal address (postal code optional in Guatemala)."""

    id: NestedId
    attention: str | None = Field(default=None, max_length=500)
    address_1: str = Field(min_length=1, max_length=500, examples=["4a Calle 10-20, Zona 1"])
    address_2: str | None = Field(default=None, max_length=500)
    city: str = Field(min_length=1, max_length=200, examples=["Quetzaltenango"])
    region: str | None = Field(default=None, max_length=200)
    state_province: str = Field(min_length=1, max_length=200, examples=["Quetzaltenango"])
    postal_code: str | None = Field(default=None, max_length=40)
    country: str = Field(default="GT", pattern=r"^[A-Z]{2}$")
    address_type: Literal["physical", "postal", "virtual"] = "physical"


class AccessibilityIn(StrictModel):
    """An accessibility provision of a location."""

    id: NestedId
    description: Text | None = Field(default=None, examples=["Rampa de acceso"])
    details: Text | None = None
    url: Url | None = None


class CostOptionIn(StrictModel):
    """What a service costs."""

    id: NestedId
    option: Text | None = Field(default=None, examples=["Gratuito"])
    amount: float | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$", examples=["GTQ"])
    amount_description: Text | None = None
    valid_from: date | None = None
    valid_to: date | None = None


class RequiredDocumentIn(StrictModel):
    """A document the service asks for."""

    id: NestedId
    document: Text = Field(examples=["Ninguno"])
    uri: Url | None = None


_AREA_EXAMPLE = {
    "type": "Polygon",
    "coordinates": [[[-91.6, 15.2], [-91.4, 15.2], [-91.4, 15.4], [-91.6, 15.2]]],
}


def _geojson_object(value: dict[str, Any] | str, field: str) -> dict[str, Any]:
    """A GeoJSON geometry given as an object or (HSDS ``extent``) as its JSON text."""
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value)
    except ValueError:
        raise ValueError(f"{field} is not GeoJSON text") from None
    if not isinstance(parsed, dict):
        raise ValueError(f"{field} is not a GeoJSON geometry object")
    return parsed


class ServiceAreaIn(StrictModel):
    """The area a service covers, a GeoJSON Polygon or MultiPolygon (WGS 84, lon/lat).

    HSDS ``extent`` is the GeoJSON *text* with ``extent_type`` "geojson"; the GeoJSON object is
    accepted in ``extent`` too, and the profile's ``geometry`` (the object, as read) may stand
    in for it. When both ``extent`` and ``geometry`` are given they must be the same area.
    """

    id: NestedId
    name: str | None = Field(
        default=None, max_length=500, examples=["Departamento de Huehuetenango"]
    )
    description: Text | None = None
    extent: dict[str, Any] | str | None = Field(
        default=None,
        description="GeoJSON Polygon or MultiPolygon: its text (HSDS) or the object.",
        examples=[json.dumps(_AREA_EXAMPLE), _AREA_EXAMPLE],
    )
    extent_type: Literal["geojson"] | None = Field(
        default=None, description="HSDS: the format of extent; only geojson is understood."
    )
    uri: Url | None = None
    geometry: dict[str, Any] | None = Field(
        default=None, description="Profile: the area as a GeoJSON object (as GET serves it)."
    )
    _area: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _valid_area(self) -> ServiceAreaIn:
        extent = None if self.extent is None else _geojson_object(self.extent, "extent")
        area = extent if extent is not None else self.geometry
        if area is None:
            raise ValueError("a service area needs its extent (GeoJSON)")
        shape = validation.check_area_geometry(area)
        if (
            extent is not None
            and self.geometry is not None
            and not shape.equals(validation.check_area_geometry(self.geometry))
        ):
            raise ValueError("geometry and extent describe different areas")
        self._area = area
        return self

    def geojson(self) -> dict[str, Any]:
        """The checked area as a GeoJSON geometry object, whichever form it was given in."""
        return self._area


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


class CategoryIn(StrictModel):
    """A category of the referral-net taxonomy, by code (a bare code is accepted for it too)."""

    code: str = Field(min_length=1, max_length=200, examples=["protection.legal_aid"])
    name: str | None = Field(default=None, max_length=500, description=LABEL_DESCRIPTION)


CategoryItem = Annotated[
    CategoryIn, BeforeValidator(_code_as_object, json_schema_input_type=CategoryIn | str)
]
READ_ONLY_DESCRIPTION = (
    "Read-only (as GET serves it): accepted when equal to the stored value, refused (422 naming"
    " the field) otherwise."
)
ReadOnly = Annotated[Any, Field(default=None, description=READ_ONLY_DESCRIPTION)]


class AttributeIn(StrictModel):
    """An HSDS ``attribute``: links the service to a taxonomy term.

    A term of the referral-net taxonomy is a category (``categories``). An Open Eligibility term
    is derived on read from the categories; it is accepted only as it would be derived.
    """

    id: NestedId
    taxonomy_term_id: uuid.UUID
    link_id: uuid.UUID | None = Field(default=None, description="The service's id, if given.")
    link_type: Literal["category"] | None = None
    link_entity: Literal["service"] | None = None
    value: Text | None = None
    label: str | None = Field(default=None, max_length=500)
    taxonomy_term: ReadOnly


class HsdsPatch(PatchModel):
    """A partial update that also takes the record as GET serves it (HSDS round trip).

    ``read_only`` names the fields a client may send back but not change: each is compared with
    the stored record as GET would serve it now (``domain.common.refuse_changed_read_only``).
    ``compared_as`` narrows that comparison for a field where part of the value is evaluated at
    each read (``open_now``, ``stale``) or where two forms are served.
    """

    read_only: ClassVar[frozenset[str]] = frozenset()
    compared_as: ClassVar[dict[str, Callable[[Any], Any]]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Collect ``read_only``: the fields declared ``ReadOnly``."""
        super().__pydantic_init_subclass__(**kwargs)
        cls.read_only = frozenset(
            name
            for name, field in cls.model_fields.items()
            if field.description == READ_ONLY_DESCRIPTION
        )


def _without(*keys: str) -> Callable[[Any], Any]:
    """A projection of a served object (as a dict) without ``keys`` (evaluated at each read)."""
    return lambda value: (
        {key: item for key, item in value.items() if key not in keys}
        if isinstance(value, dict)
        else value
    )


def _each(projection: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A projection of each item of a served list."""
    return lambda value: [projection(v) for v in value] if isinstance(value, list) else value


def _only(*keys: str) -> Callable[[Any], Any]:
    """A projection of a served object (as a dict) onto ``keys``."""
    return lambda value: {key: value.get(key) for key in keys} if isinstance(value, dict) else value


def _capacity_figures(value: Any) -> Any:
    """Capacity without ``stale``: freshness is evaluated at each read, not stored."""
    return _each(_without("stale"))(value)


def _service_as_stored(value: Any) -> Any:
    """A served service without what is evaluated at each read (open now, freshness)."""
    if not isinstance(value, dict):
        return value
    kept = _without("open_now", "open_24h")(value)
    return {**kept, "capacity": _capacity_figures(kept.get("capacity"))}


# --- organizations ---------------------------------------------------------------------------


class OrganizationServiceRead(BaseModel):
    """A service in an organization's ``services`` array: its id, name and status (HSDS allows
    this "simple information"; ``full_service=true`` gives whole service records instead)."""

    id: uuid.UUID
    name: str
    status: str = Field(examples=["active"])


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


class OrganizationUpdate(HsdsPatch):
    """A partial update: only the fields present change; ``phones`` replaces the stored list.

    The organization as GET serves it is accepted as a body: its read-only fields must be
    unchanged (``services`` is compared by id, name and status).
    """

    not_nullable = frozenset({"name", "description", "phones"})
    compared_as: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "services": _each(_only("id", "name", "status"))
    }

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
    id: ReadOnly
    status: ReadOnly
    contacts: ReadOnly
    funding: ReadOnly
    programs: ReadOnly
    organization_identifiers: ReadOnly
    services: ReadOnly
    last_modified: ReadOnly


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
    phones: list[PhoneRead] = Field(default_factory=list)
    contacts: list[ContactRead] = Field(default_factory=list)
    funding: list[FundingRead] = Field(default_factory=list)
    programs: list[ProgramRead] = Field(default_factory=list)
    organization_identifiers: list[OrganizationIdentifierRead] = Field(default_factory=list)
    services: list[ServiceRead | OrganizationServiceRead] | None = Field(
        default=None,
        description="Its services the caller may see: id, name and status (single reads, and"
        " lists with full=true); whole service records with full_service=true.",
    )
    last_modified: datetime | None = None


# --- services --------------------------------------------------------------------------------


class ServiceFields(HsdsPatch):
    """Fields shared by service creation and update.

    HSDS's top-level ``minimum_age``, ``maximum_age`` and ``eligibility_description`` and the
    profile's ``eligibility`` say the same thing: either may be given, and where both give a
    value the values must agree (422 otherwise). HSDS ``attributes`` and the profile's
    ``categories`` likewise: either sets the categories, both must name the same terms.
    """

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
    minimum_age: int | None = Field(default=None, ge=0, le=120, examples=[12])
    maximum_age: int | None = Field(default=None, ge=0, le=120, examples=[17])
    eligibility_description: Text | None = Field(
        default=None, description="HSDS; the same as eligibility.description."
    )
    attributes: list[AttributeIn] | None = Field(
        default=None,
        max_length=40,
        description="HSDS: the service's taxonomy terms; replaces the categories when given.",
    )


class ServiceCreate(ServiceFields):
    """A new service of an organization."""

    id: uuid.UUID | None = Field(default=None, description=ID_DESCRIPTION)
    organization_id: uuid.UUID
    name: Name = Field(examples=["Albergue para adolescentes (ejemplo)"])
    status: Literal["active", "inactive", "temporarily closed"] = "active"
    eligibility: EligibilityIn = Field(default_factory=EligibilityIn)
    categories: list[CategoryItem] = Field(
        default_factory=list, max_length=20, examples=[["protection.shelter.children_adolescents"]]
    )
    languages: list[LanguageItem] = Field(default_factory=list, max_length=30, examples=[["spa"]])
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
    """A partial update: only the fields present change; lists replace the stored list.

    The service as GET serves it is accepted as a body: its read-only fields must be unchanged,
    but for what is evaluated at each read (``open_now``, ``open_24h``, ``capacity[].stale``).
    Capacity changes through ``PUT /services/{id}/capacity``.
    """

    not_nullable = frozenset(
        {
            "name",
            "status",
            "eligibility",
            "categories",
            "attributes",
            "languages",
            "phones",
            "schedules",
            "cost_options",
            "required_documents",
            "service_areas",
            "listed_despite_hidden_sites",
        }
    )
    compared_as: ClassVar[dict[str, Callable[[Any], Any]]] = {"capacity": _capacity_figures}

    name: Name | None = Field(default=None, examples=["Nuevo nombre (ejemplo)"])
    status: Literal["active", "inactive", "temporarily closed"] | None = None
    eligibility: EligibilityIn | None = None
    categories: list[CategoryItem] | None = Field(default=None, max_length=20)
    languages: list[LanguageItem] | None = Field(default=None, max_length=30)
    phones: list[PhoneIn] | None = Field(default=None, max_length=20)
    schedules: list[ScheduleIn] | None = Field(default=None, max_length=30)
    cost_options: list[CostOptionIn] | None = Field(default=None, max_length=20)
    required_documents: list[RequiredDocumentIn] | None = Field(default=None, max_length=30)
    service_areas: list[ServiceAreaIn] | None = Field(default=None, max_length=50)
    listed_despite_hidden_sites: bool | None = Field(
        default=None,
        description="Stewards only: list the service although each of its sites is hidden.",
    )
    open_now: bool | None = Field(
        default=None, description="Evaluated at each read, never stored: any value is accepted."
    )
    open_24h: bool | None = Field(
        default=None, description="Evaluated at each read, never stored: any value is accepted."
    )
    id: ReadOnly
    organization_id: ReadOnly
    organization: ReadOnly
    program: ReadOnly
    fees: ReadOnly
    assurer_email: ReadOnly
    assured_date: ReadOnly
    assured_by: ReadOnly
    contacts: ReadOnly
    funding: ReadOnly
    capacities: ReadOnly
    capacity: ReadOnly
    last_modified: ReadOnly


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
    fees: str | None = None
    eligibility_description: str | None = None
    minimum_age: int | None = Field(default=None, examples=[12])
    maximum_age: int | None = Field(default=None, examples=[17])
    assurer_email: str | None = None
    organization: OrganizationRead | None = Field(
        default=None, description="The provider, nested (single service reads and full=true)."
    )
    program: ProgramRead | None = None
    attributes: list[AttributeRead] = Field(
        default_factory=list,
        description="HSDS: the service's taxonomy terms (ours and their Open Eligibility twins).",
    )
    eligibility: EligibilityOut = Field(description="Profile: structured eligibility.")
    categories: list[CategoryOut] = Field(
        default_factory=list, description="Profile: our taxonomy codes, labelled."
    )
    languages: list[LanguageRead] = Field(default_factory=list)
    phones: list[PhoneRead] = Field(default_factory=list)
    schedules: list[ScheduleRead] = Field(default_factory=list)
    contacts: list[ContactRead] = Field(default_factory=list)
    funding: list[FundingRead] = Field(default_factory=list)
    cost_options: list[CostOptionRead] = Field(default_factory=list)
    required_documents: list[RequiredDocumentRead] = Field(default_factory=list)
    service_areas: list[ServiceAreaRead] = Field(default_factory=list)
    capacities: list[ServiceCapacityRead] = Field(
        default_factory=list, description="HSDS 3.1 draft ``service_capacity`` records."
    )
    capacity: list[CapacityOut] = Field(
        default_factory=list, description="Profile: capacity with its freshness (stale)."
    )
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


class ServiceMinimal(BaseModel):
    """A service as HSDS ``minimal=true`` lists it: enough for incremental sync."""

    id: uuid.UUID
    last_modified: datetime | None = None


class CapacityUpdate(StrictModel):
    """Replace a service's capacity figures (provider staff and stewards)."""

    capacity: list[CapacityIn] = Field(min_length=1, max_length=5)


# --- locations -------------------------------------------------------------------------------


# How an import placed a location's point (issue 15): the source's own coordinates, a known town
# named in its address, or its municipality's representative point. None: the writer's own point.
GeocodingPrecision = Literal["given", "town", "municipality"]
GEOCODING_PRECISION_DESCRIPTION = (
    "How an import placed the point: given (the source's coordinates), town (a known town named"
    " in the address) or municipality (its representative point); absent for a point its writer"
    " gave directly."
)


class LocationFields(HsdsPatch):
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
    geocoding_precision: GeocodingPrecision | None = Field(
        default=None, description=GEOCODING_PRECISION_DESCRIPTION
    )
    addresses: list[AddressIn] = Field(default_factory=list, max_length=5)
    phones: list[PhoneIn] = Field(default_factory=list, max_length=20)
    languages: list[LanguageItem] = Field(default_factory=list, max_length=30)
    accessibility: list[AccessibilityIn] = Field(default_factory=list, max_length=20)
    schedules: list[ScheduleIn] = Field(default_factory=list, max_length=30)

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
    """A partial update. Latitude and longitude change together; lists replace the stored list.

    The location as its editor's GET serves it (exact) is accepted as a body: its read-only
    fields must be unchanged (the INE codes follow the point; status changes by DELETE).
    """

    not_nullable = frozenset(
        {
            "name",
            "outside_country",
            "visibility",
            "addresses",
            "phones",
            "languages",
            "accessibility",
            "schedules",
        }
    )

    name: Name | None = Field(default=None, examples=["Sede Xela (ejemplo)"])
    latitude: float | None = None
    longitude: float | None = None
    outside_country: bool | None = None
    visibility: Visibility | None = None
    addresses: list[AddressIn] | None = Field(default=None, max_length=5)
    phones: list[PhoneIn] | None = Field(default=None, max_length=20)
    languages: list[LanguageItem] | None = Field(default=None, max_length=30)
    accessibility: list[AccessibilityIn] | None = Field(default=None, max_length=20)
    schedules: list[ScheduleIn] | None = Field(default=None, max_length=30)
    id: ReadOnly
    organization_id: ReadOnly
    location_type: ReadOnly
    precision: ReadOnly
    geocoding_precision: ReadOnly
    needs_geocoding: ReadOnly
    department_code: ReadOnly
    municipality_code: ReadOnly
    status: ReadOnly
    contacts: ReadOnly
    last_modified: ReadOnly

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
    geocoding_precision: GeocodingPrecision | None = Field(
        default=None, description=GEOCODING_PRECISION_DESCRIPTION
    )
    needs_geocoding: bool = Field(
        default=False, description="Imported without a usable point: to be placed by hand."
    )
    visibility: Visibility
    department_code: str | None = Field(default=None, examples=["09"])
    municipality_code: str | None = Field(default=None, examples=["0901"])
    outside_country: bool = False
    intake_phone: str | None = None
    intake_description: str | None = None
    external_identifier: str | None = None
    external_identifier_type: str | None = None
    status: str = Field(examples=["active"])
    addresses: list[AddressRead] = Field(default_factory=list)
    phones: list[PhoneRead] = Field(default_factory=list)
    languages: list[LanguageRead] = Field(default_factory=list)
    accessibility: list[AccessibilityRead] = Field(default_factory=list)
    schedules: list[ScheduleRead] = Field(default_factory=list)
    contacts: list[ContactRead] = Field(default_factory=list)
    last_modified: datetime | None = None


# --- service at location ---------------------------------------------------------------------


class ServiceAtLocationCreate(StrictModel):
    """Link a service to a location where it is delivered."""

    id: uuid.UUID | None = Field(default=None, description=ID_DESCRIPTION)
    service_id: uuid.UUID
    location_id: uuid.UUID
    description: Text | None = Field(default=None, examples=["Atención con cita previa"])


class ServiceAtLocationUpdate(HsdsPatch):
    """Change a link's description.

    The link as GET serves it is accepted as a body: the rest is read-only and must be unchanged
    (its nested ``service`` but for what is evaluated at each read, as for a service).
    """

    compared_as: ClassVar[dict[str, Callable[[Any], Any]]] = {"service": _service_as_stored}

    description: Text | None = Field(default=None, examples=["Atención con cita previa"])
    id: ReadOnly
    service_id: ReadOnly
    location_id: ReadOnly
    service_name: ReadOnly
    location_name: ReadOnly
    phones: ReadOnly
    schedules: ReadOnly
    contacts: ReadOnly
    last_modified: ReadOnly
    service: ReadOnly
    location: ReadOnly


class ServiceAtLocationRead(BaseModel):
    """A service delivered at a location."""

    id: uuid.UUID
    service_id: uuid.UUID
    location_id: uuid.UUID
    description: str | None = None
    service_name: str | None = Field(default=None, examples=["Albergue (ejemplo)"])
    location_name: str | None = Field(default=None, examples=["Sede Xela (ejemplo)"])
    phones: list[PhoneRead] = Field(default_factory=list)
    schedules: list[ScheduleRead] = Field(default_factory=list)
    contacts: list[ContactRead] = Field(default_factory=list)
    last_modified: datetime | None = Field(
        default=None, description="Latest change of the link's service or location."
    )
    service: ServiceRead | None = Field(default=None, description="Nested with full=true.")
    location: LocationRead | None = Field(
        default=None, description="Nested with full=true, as the caller may see the site."
    )


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
