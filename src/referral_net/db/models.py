"""Table models: Open Referral HSDS 3.0, the HSDS 3.1 capacity draft, and the referral-net profile.

These classes describe tables only. The API has its own schemas (``schemas``) because a
geometry is WKB here and GeoJSON on the wire. The schema itself is created by Alembic migrations;
the application never calls ``create_all``.

Profile extensions beyond HSDS 3.0 are marked ``# profile`` and documented in
``docs/hsds-profile.md``.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Index,
    LargeBinary,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel

from referral_net.db.types import UTCDateTime, multipolygon_column_type, point_column_type
from referral_net.vocab import RecordStatus, Visibility


def _uuid_pk() -> Any:
    return Field(default_factory=uuid.uuid4, primary_key=True)


def _fk(target: str, *, nullable: bool = True, cascade: bool = True) -> Any:
    return Field(
        default=None if nullable else ...,
        foreign_key=target,
        nullable=nullable,
        index=True,
        ondelete="CASCADE" if cascade else ("SET NULL" if nullable else "RESTRICT"),
    )


def _timestamp(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable)


class Organization(SQLModel, table=True):
    """An organization that provides services (HSDS ``organization``)."""

    __tablename__ = "organization"

    id: uuid.UUID = _uuid_pk()
    name: str = Field(max_length=500, index=True)
    alternate_name: str | None = Field(default=None, max_length=500)
    description: str = Field(default="")
    email: str | None = Field(default=None, max_length=320)
    website: str | None = Field(default=None, max_length=2000)
    tax_status: str | None = Field(default=None, max_length=200)
    tax_id: str | None = Field(default=None, max_length=200)
    year_incorporated: int | None = None
    legal_status: str | None = Field(default=None, max_length=200)
    logo: str | None = Field(default=None, max_length=2000)
    uri: str | None = Field(default=None, max_length=2000)
    parent_organization_id: uuid.UUID | None = _fk("organization.id", cascade=False)
    status: str = Field(default=RecordStatus.ACTIVE, max_length=40)  # profile
    version: int = Field(default=1)  # profile: optimistic concurrency (ETag)
    last_modified: datetime | None = _timestamp()  # profile


class Program(SQLModel, table=True):
    """A group of related services (HSDS ``program``)."""

    __tablename__ = "program"

    id: uuid.UUID = _uuid_pk()
    organization_id: uuid.UUID = _fk("organization.id", nullable=False)
    name: str = Field(max_length=500)
    alternate_name: str | None = Field(default=None, max_length=500)
    description: str = Field(default="")


class Service(SQLModel, table=True):
    """A service offered by an organization (HSDS ``service``) with structured eligibility."""

    __tablename__ = "service"
    __table_args__ = (
        CheckConstraint(
            "minimum_age IS NULL OR maximum_age IS NULL OR minimum_age <= maximum_age",
            name="ck_service_age_range",
        ),
    )

    id: uuid.UUID = _uuid_pk()
    organization_id: uuid.UUID = _fk("organization.id", nullable=False)
    program_id: uuid.UUID | None = _fk("program.id", cascade=False)
    name: str = Field(max_length=500, index=True)
    alternate_name: str | None = Field(default=None, max_length=500)
    description: str | None = None
    url: str | None = Field(default=None, max_length=2000)
    email: str | None = Field(default=None, max_length=320)
    status: str = Field(default=RecordStatus.ACTIVE, max_length=40, index=True)
    interpretation_services: str | None = None
    application_process: str | None = None
    fees_description: str | None = None
    wait_time: str | None = None
    fees: str | None = None
    accreditations: str | None = None
    eligibility_description: str | None = None
    minimum_age: float | None = None
    maximum_age: float | None = None
    assured_date: date | None = None
    assurer_email: str | None = Field(default=None, max_length=320)
    licenses: str | None = None
    alert: str | None = None
    last_modified: datetime | None = _timestamp()
    # profile: structured eligibility and verification
    genders_served: list[str] | None = Field(default=None, sa_type=JSON(none_as_null=True))
    trans_inclusive: bool = False
    lgbtiq_affirming: bool = False
    accepts_accompanying_children: bool = False
    minors_only: bool = False
    assured_by: str | None = Field(default=None, max_length=320)
    version: int = Field(default=1)
    # Lower-case, accent-free text of name, alternate name and description, so that text search
    # ignores accents and case the same way on both backends ("psicologica" finds "Psicológica").
    search_text: str = Field(default="")
    # profile: a steward lists the service publicly although every site of it is hidden (a
    # national hotline that also runs a safe house). Off by default: a service seen only at
    # confidential sites is itself hidden from audiences that may not see those sites.
    listed_despite_hidden_sites: bool = False


class Location(SQLModel, table=True):
    """A place where services are delivered (HSDS ``location``) with its point and visibility."""

    __tablename__ = "location"
    __table_args__ = (
        CheckConstraint(
            "visibility IN ('public', 'restricted', 'confidential')", name="ck_location_visibility"
        ),
        CheckConstraint(
            "latitude IS NULL OR (latitude BETWEEN -90 AND 90)", name="ck_location_latitude"
        ),
        CheckConstraint(
            "longitude IS NULL OR (longitude BETWEEN -180 AND 180)", name="ck_location_longitude"
        ),
        CheckConstraint(
            "geocoding_precision IS NULL"
            " OR geocoding_precision IN ('given', 'town', 'municipality')",
            name="ck_location_geocoding_precision",
        ),
    )

    id: uuid.UUID = _uuid_pk()
    location_type: str = Field(default="physical", max_length=40)
    url: str | None = Field(default=None, max_length=2000)
    organization_id: uuid.UUID | None = _fk("organization.id")
    name: str | None = Field(default=None, max_length=500)
    alternate_name: str | None = Field(default=None, max_length=500)
    description: str | None = None
    transportation: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    external_identifier: str | None = Field(default=None, max_length=500)
    external_identifier_type: str | None = Field(default=None, max_length=200)
    # profile: geometry kept in step with latitude/longitude by the domain layer
    geom: Any = Field(default=None, sa_type=point_column_type(), nullable=True)
    # profile: the point the public and partners may see (the exact point of a public site, the
    # municipality's representative point of a restricted one, none for a confidential one).
    # Indexed separately so public search never touches the exact column.
    public_geom: Any = Field(default=None, sa_type=point_column_type(), nullable=True)
    visibility: str = Field(default=Visibility.PUBLIC, max_length=20, index=True)
    department_code: str | None = Field(default=None, max_length=2, index=True)
    municipality_code: str | None = Field(default=None, max_length=4, index=True)
    outside_country: bool = False
    intake_phone: str | None = Field(default=None, max_length=40)
    intake_description: str | None = None
    # profile (issue 15): how an import placed the point (given, town, municipality; NULL for a
    # point its writer gave through the API) and whether it still has no usable point
    geocoding_precision: str | None = Field(default=None, max_length=20)
    needs_geocoding: bool = False
    status: str = Field(default=RecordStatus.ACTIVE, max_length=40, index=True)
    version: int = Field(default=1)
    last_modified: datetime | None = _timestamp()


class ServiceAtLocation(SQLModel, table=True):
    """A service delivered at one location (HSDS ``service_at_location``)."""

    __tablename__ = "service_at_location"
    __table_args__ = (
        UniqueConstraint("service_id", "location_id", name="uq_sal_service_location"),
    )

    id: uuid.UUID = _uuid_pk()
    service_id: uuid.UUID = _fk("service.id", nullable=False)
    location_id: uuid.UUID = _fk("location.id", nullable=False)
    description: str | None = None


class Address(SQLModel, table=True):
    """A postal or physical address of a location (HSDS ``address``)."""

    __tablename__ = "address"

    id: uuid.UUID = _uuid_pk()
    location_id: uuid.UUID | None = _fk("location.id")
    attention: str | None = Field(default=None, max_length=500)
    address_1: str = Field(max_length=500)
    address_2: str | None = Field(default=None, max_length=500)
    city: str = Field(max_length=200)
    region: str | None = Field(default=None, max_length=200)
    state_province: str = Field(max_length=200)
    # The Guatemala profile relaxes postal_code: postal codes are little used there.
    postal_code: str | None = Field(default=None, max_length=40)
    country: str = Field(default="GT", max_length=2)
    address_type: str = Field(default="physical", max_length=40)


class Contact(SQLModel, table=True):
    """A named contact at an organization or service (HSDS ``contact``); never a victim."""

    __tablename__ = "contact"

    id: uuid.UUID = _uuid_pk()
    organization_id: uuid.UUID | None = _fk("organization.id")
    service_id: uuid.UUID | None = _fk("service.id")
    service_at_location_id: uuid.UUID | None = _fk("service_at_location.id")
    location_id: uuid.UUID | None = _fk("location.id")
    name: str | None = Field(default=None, max_length=500)
    title: str | None = Field(default=None, max_length=500)
    department: str | None = Field(default=None, max_length=500)
    email: str | None = Field(default=None, max_length=320)


class Phone(SQLModel, table=True):
    """A telephone number (HSDS ``phone``), stored in E.164 where possible."""

    __tablename__ = "phone"

    id: uuid.UUID = _uuid_pk()
    location_id: uuid.UUID | None = _fk("location.id")
    service_id: uuid.UUID | None = _fk("service.id")
    organization_id: uuid.UUID | None = _fk("organization.id")
    contact_id: uuid.UUID | None = _fk("contact.id")
    service_at_location_id: uuid.UUID | None = _fk("service_at_location.id")
    number: str = Field(max_length=40)
    extension: str | None = Field(default=None, max_length=20)
    type: str | None = Field(default=None, max_length=40)
    description: str | None = None


class Schedule(SQLModel, table=True):
    """When a service or location is open (HSDS ``schedule``, iCalendar-style recurrence)."""

    __tablename__ = "schedule"

    id: uuid.UUID = _uuid_pk()
    service_id: uuid.UUID | None = _fk("service.id")
    location_id: uuid.UUID | None = _fk("location.id")
    service_at_location_id: uuid.UUID | None = _fk("service_at_location.id")
    valid_from: date | None = None
    valid_to: date | None = None
    dtstart: date | None = None
    timezone: float | None = None
    until: date | None = None
    count: int | None = None
    wkst: str | None = Field(default=None, max_length=2)
    freq: str | None = Field(default=None, max_length=10)
    interval: int | None = None
    byday: str | None = Field(default=None, max_length=100)
    byweekno: str | None = Field(default=None, max_length=200)
    bymonthday: str | None = Field(default=None, max_length=200)
    byyearday: str | None = Field(default=None, max_length=200)
    description: str | None = None
    opens_at: time | None = None
    closes_at: time | None = None
    schedule_link: str | None = Field(default=None, max_length=2000)
    attending_type: str | None = Field(default=None, max_length=200)
    notes: str | None = None


class Language(SQLModel, table=True):
    """A language spoken at a service, location or phone (HSDS ``language``, ISO 639-3 codes)."""

    __tablename__ = "language"

    id: uuid.UUID = _uuid_pk()
    service_id: uuid.UUID | None = _fk("service.id")
    location_id: uuid.UUID | None = _fk("location.id")
    phone_id: uuid.UUID | None = _fk("phone.id")
    name: str | None = Field(default=None, max_length=200)
    code: str = Field(max_length=3, index=True)
    note: str | None = None


class ServiceArea(SQLModel, table=True):
    """The area a service covers (HSDS ``service_area``) with a real polygon (profile)."""

    __tablename__ = "service_area"

    id: uuid.UUID = _uuid_pk()
    service_id: uuid.UUID | None = _fk("service.id")
    service_at_location_id: uuid.UUID | None = _fk("service_at_location.id")
    name: str | None = Field(default=None, max_length=500)
    description: str | None = None
    extent: str | None = None
    extent_type: str | None = Field(default=None, max_length=40)
    uri: str | None = Field(default=None, max_length=2000)
    geom: Any = Field(default=None, sa_type=multipolygon_column_type(), nullable=True)


class Accessibility(SQLModel, table=True):
    """Accessibility provisions of a location (HSDS ``accessibility``)."""

    __tablename__ = "accessibility"

    id: uuid.UUID = _uuid_pk()
    location_id: uuid.UUID | None = _fk("location.id")
    description: str | None = None
    details: str | None = None
    url: str | None = Field(default=None, max_length=2000)


class CostOption(SQLModel, table=True):
    """What a service costs (HSDS ``cost_option``)."""

    __tablename__ = "cost_option"

    id: uuid.UUID = _uuid_pk()
    service_id: uuid.UUID | None = _fk("service.id")
    valid_from: date | None = None
    valid_to: date | None = None
    option: str | None = None
    currency: str | None = Field(default=None, max_length=3)
    amount: float | None = None
    amount_description: str | None = None


class RequiredDocument(SQLModel, table=True):
    """A document a service requires (HSDS ``required_document``)."""

    __tablename__ = "required_document"

    id: uuid.UUID = _uuid_pk()
    service_id: uuid.UUID | None = _fk("service.id")
    document: str | None = None
    uri: str | None = Field(default=None, max_length=2000)


class Funding(SQLModel, table=True):
    """A source of funding (HSDS ``funding``)."""

    __tablename__ = "funding"

    id: uuid.UUID = _uuid_pk()
    organization_id: uuid.UUID | None = _fk("organization.id")
    service_id: uuid.UUID | None = _fk("service.id")
    source: str | None = None


class OrganizationIdentifier(SQLModel, table=True):
    """An external identifier of an organization (HSDS ``organization_identifier``)."""

    __tablename__ = "organization_identifier"

    id: uuid.UUID = _uuid_pk()
    organization_id: uuid.UUID | None = _fk("organization.id")
    identifier_scheme: str | None = Field(default=None, max_length=200)
    identifier_type: str = Field(max_length=200)
    identifier: str = Field(max_length=500)


class Taxonomy(SQLModel, table=True):
    """A taxonomy (HSDS ``taxonomy``)."""

    __tablename__ = "taxonomy"

    id: uuid.UUID = _uuid_pk()
    name: str = Field(max_length=500)
    description: str = Field(default="")
    uri: str | None = Field(default=None, max_length=2000)
    version: str | None = Field(default=None, max_length=100)


class TaxonomyTerm(SQLModel, table=True):
    """A hierarchical term of a taxonomy (HSDS ``taxonomy_term``) with translated labels."""

    __tablename__ = "taxonomy_term"
    __table_args__ = (UniqueConstraint("taxonomy_id", "code", name="uq_taxonomy_term_code"),)

    id: uuid.UUID = _uuid_pk()
    code: str | None = Field(default=None, max_length=200, index=True)
    name: str = Field(max_length=500)
    description: str = Field(default="")
    parent_id: uuid.UUID | None = _fk("taxonomy_term.id", cascade=False)
    taxonomy: str | None = Field(default=None, max_length=500)
    language: str | None = Field(default=None, max_length=10)
    taxonomy_id: uuid.UUID | None = _fk("taxonomy.id")
    term_uri: str | None = Field(default=None, max_length=2000)
    # profile: {"en": {"name": ..., "description": ...}}; name/description above are Spanish
    translations: dict[str, Any] | None = Field(default=None, sa_type=JSON(none_as_null=True))
    # profile: the corresponding Open Eligibility term, where one exists
    open_eligibility: dict[str, Any] | None = Field(default=None, sa_type=JSON(none_as_null=True))


class Attribute(SQLModel, table=True):
    """Links a taxonomy term to any record (HSDS ``attribute``)."""

    __tablename__ = "attribute"
    __table_args__ = (Index("ix_attribute_link", "link_entity", "link_id"),)

    id: uuid.UUID = _uuid_pk()
    link_id: uuid.UUID
    taxonomy_term_id: uuid.UUID = _fk("taxonomy_term.id", nullable=False)
    link_type: str | None = Field(default=None, max_length=200)
    link_entity: str = Field(max_length=100)
    value: str | None = None
    label: str | None = Field(default=None, max_length=500)


class Metadata(SQLModel, table=True):
    """One field change of one record (HSDS ``metadata``): the change history."""

    __tablename__ = "metadata"
    __table_args__ = (Index("ix_metadata_resource", "resource_type", "resource_id"),)

    id: uuid.UUID = _uuid_pk()
    resource_id: uuid.UUID
    resource_type: str = Field(max_length=100)
    last_action_date: datetime = Field(sa_type=UTCDateTime, nullable=False)
    last_action_type: str = Field(max_length=40)
    field_name: str = Field(max_length=200)
    previous_value: str = Field(default="")
    replacement_value: str = Field(default="")
    updated_by: str = Field(max_length=320)


class Unit(SQLModel, table=True):
    """A unit of capacity such as a bed (HSDS 3.1 draft ``unit``)."""

    __tablename__ = "unit"

    id: uuid.UUID = _uuid_pk()
    name: str = Field(max_length=200)
    scheme: str | None = Field(default=None, max_length=200)
    identifier: str | None = Field(default=None, max_length=200)
    uri: str | None = Field(default=None, max_length=2000)


class ServiceCapacity(SQLModel, table=True):
    """Available and maximum capacity of a service (HSDS 3.1 draft ``service_capacity``)."""

    __tablename__ = "service_capacity"
    __table_args__ = (
        CheckConstraint("available >= 0", name="ck_capacity_available"),
        CheckConstraint("maximum IS NULL OR maximum >= 0", name="ck_capacity_maximum"),
    )

    id: uuid.UUID = _uuid_pk()
    service_id: uuid.UUID = _fk("service.id", nullable=False)
    unit_id: uuid.UUID = _fk("unit.id", nullable=False, cascade=False)
    available: float
    maximum: float | None = None
    description: str | None = None
    updated: datetime = Field(sa_type=UTCDateTime, nullable=False)


class AdminArea(SQLModel, table=True):
    """A department (2-digit INE code) or municipality (4-digit) of Guatemala, as a polygon."""

    __tablename__ = "admin_area"
    __table_args__ = (
        CheckConstraint("level IN ('department', 'municipality')", name="ck_admin_area_level"),
    )

    code: str = Field(primary_key=True, max_length=4)
    level: str = Field(max_length=20, index=True)
    name: str = Field(max_length=200)
    department_code: str = Field(max_length=2, index=True)
    representative_latitude: float
    representative_longitude: float
    geom: Any = Field(default=None, sa_type=multipolygon_column_type(), nullable=False)


class UserAccount(SQLModel, table=True):
    """A staff user (caseworker, justice, provider, steward or admin). Never a victim."""

    __tablename__ = "user_account"
    __table_args__ = (
        CheckConstraint(
            "role IN ('caseworker', 'justice', 'provider', 'steward', 'admin')",
            name="ck_user_account_role",
        ),
    )

    id: uuid.UUID = _uuid_pk()
    username: str = Field(max_length=100, unique=True)
    password_hash: str = Field(max_length=500)
    role: str = Field(max_length=20)
    organization_id: uuid.UUID | None = _fk("organization.id", cascade=False)
    disabled: bool = False
    # Bumped on disable or password change so every token issued before stops working.
    token_version: int = Field(default=1)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class RefreshToken(SQLModel, table=True):
    """One issued refresh token (by its ``jti``), in a family that descends from one log-in.

    Each refresh retires the token it used and issues the next of the family; presenting a
    retired token again means it was copied, so the whole family is revoked.
    """

    __tablename__ = "refresh_token"

    jti: str = Field(primary_key=True, max_length=64)
    family_id: uuid.UUID = Field(index=True)
    user_id: uuid.UUID = _fk("user_account.id", nullable=False)
    issued_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    used_at: datetime | None = _timestamp()
    revoked_at: datetime | None = _timestamp()


class ApiKey(SQLModel, table=True):
    """A partner site's API key. Only a hash is stored; the key is shown once, at creation."""

    __tablename__ = "api_key"

    id: uuid.UUID = _uuid_pk()
    name: str = Field(max_length=200)
    # The first characters of the key, stored in clear to find the row without scanning hashes.
    prefix: str = Field(max_length=16, unique=True)
    key_hash: str = Field(max_length=128)
    scopes: list[str] = Field(default_factory=list, sa_type=JSON(none_as_null=True))
    allowed_origins: list[str] = Field(default_factory=list, sa_type=JSON(none_as_null=True))
    requests_per_minute: int | None = None
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    revoked_at: datetime | None = _timestamp()
    replaced_by_id: uuid.UUID | None = _fk("api_key.id", cascade=False)


class AuditEntry(SQLModel, table=True):
    """One append-only, hash-chained audit record: a write, or a read of a hidden site's place.

    Holds who (a subject such as ``user:ana`` or ``key:web-partner``, never a victim), their
    role, when, what, and from which endpoint. ``entry_hash`` covers the entry and the previous
    entry's hash, so editing or deleting any entry breaks the chain.
    """

    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entry_resource", "resource_type", "resource_id"),)

    seq: int | None = Field(default=None, primary_key=True)
    occurred_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    actor: str = Field(max_length=320, index=True)
    role: str = Field(max_length=20)
    action: str = Field(max_length=40)
    resource_type: str = Field(max_length=100)
    resource_id: str | None = Field(default=None, max_length=64)
    endpoint: str = Field(max_length=300)
    detail: dict[str, Any] | None = Field(default=None, sa_type=JSON(none_as_null=True))
    prev_hash: str = Field(max_length=64)
    entry_hash: str = Field(max_length=64, unique=True)
    # HMAC-SHA256 of the entry hash and the previous entry's MAC, under a key the database
    # does not hold (settings): a database administrator can recompute the SHA-256 chain but
    # not this one. NULL for entries written while no audit key was configured.
    entry_mac: str | None = Field(default=None, max_length=64)


class ImportJob(SQLModel, table=True):
    """An import submitted over HTTP, run by a background worker (``exchange/jobs.py``).

    Holds no personal data: the submitter's audit name, the upload's file name (never a path),
    the options, and the report (counts and problems by table, row and field).
    """

    __tablename__ = "import_job"
    __table_args__ = (
        CheckConstraint(
            "state IN ('queued', 'running', 'succeeded', 'partly_imported', 'refused', 'failed')",
            name="ck_import_job_state",
        ),
    )

    id: uuid.UUID = _uuid_pk()
    state: str = Field(default="queued", max_length=20, index=True)
    source_name: str = Field(max_length=255)
    format: str = Field(max_length=20)
    options: dict[str, Any] = Field(default_factory=dict, sa_type=JSON(none_as_null=True))
    submitted_by: str = Field(max_length=320)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    started_at: datetime | None = _timestamp()
    finished_at: datetime | None = _timestamp()
    # The running worker's last sign of life; silent too long, the job is marked failed.
    heartbeat_at: datetime | None = _timestamp()
    # Which worker claimed the job: only it writes the job's outcome.
    worker: str | None = Field(default=None, max_length=200)
    progress: int = 0
    report: dict[str, Any] | None = Field(default=None, sa_type=JSON(none_as_null=True))


class ImportUpload(SQLModel, table=True):
    """The uploaded file of a job until the job has run (then deleted: it may name hidden sites).

    In the database rather than a spool folder, so that any worker process, on any host, can run
    the job, and a submission and its file are committed together.
    """

    __tablename__ = "import_upload"

    job_id: uuid.UUID = Field(primary_key=True, foreign_key="import_job.id", ondelete="CASCADE")
    content: bytes = Field(sa_type=LargeBinary)


# --- the search read model (issue 13) ---------------------------------------------------------
# Derived data: ``domain/search_model.py`` writes it in the same transaction as every write of
# the tables it is built from, and ``referral-net search rebuild`` recreates it. Never edit it.


def _text_list() -> Any:
    """A list of codes: ``text[]`` on PostGIS (GIN-indexed), a JSON array on SpatiaLite."""
    return ARRAY(Text()).with_variant(JSON(), "sqlite")


def _postgis_gin(name: str, column: str) -> Index:
    # Made on PostGIS only (``info["engines"]``: the migration and the drift check agree);
    # SpatiaLite filters codes through the side tables below instead.
    return Index(name, column, postgresql_using="gin", info={"engines": ("postgresql",)})


def _postgis_count_window(name: str, column: str) -> Index:
    """PostGIS: the index a radius's capped count walks, an index-only scan. Partial (listed
    entries with a point in ``column``: the condition every search has), keyed by the point's
    envelope (``dialect.postgis.count_window_key``), carrying the point itself and the category
    codes so that the distance and a category are tested without the wide heap row.

    PostGIS's GiST keys are float4 boxes it cannot hand back, hence the INCLUDE copy of the
    point. The key is an expression only the count names, so no KNN statement reads it:
    PostgreSQL refuses PostGIS's lossy KNN distance in an index-only scan, which this index would
    otherwise offer a statement reading nothing but the point and the codes (nearest searches
    walk ``_postgis_nearest``'s index instead).
    """
    return _postgis_listed_points(name, column, f"ST_Envelope({column})", ["category_codes"])


def _postgis_nearest(name: str, column: str) -> Index:
    """PostGIS: the index a nearest-first search walks, an index-only scan. Partial as the
    count's (listed entries with a point in ``column``), keyed by the point as PostgreSQL's own
    ``point`` (``dialect.postgis.nearest_key``), carrying the PostGIS point, the category codes
    and the entry's id.

    PostgreSQL's ``point`` KNN distance is exact, so the scan may answer from the index alone;
    PostGIS's own is lossy and PostgreSQL then refuses an index-only scan. Through the PostGIS
    point's index, a nearest search with a category read the wide heap row of every entry it
    passed, shelter or not (about 200 rows for 18 candidates at 10k entries); here it reads
    index pages only, then the page's rows by id.
    """
    key = f"point(ST_X({column}), ST_Y({column}))"
    return _postgis_listed_points(name, column, key, ["category_codes", "service_at_location_id"])


def _postgis_listed_points(name: str, column: str, key: str, carried: list[str]) -> Index:
    """A partial GiST index of the listed entries with a point in ``column`` (the condition
    every search has), keyed by the SQL expression ``key`` and carrying the point itself and
    the ``carried`` columns (INCLUDE), for index-only scans; made on PostGIS only."""
    return Index(
        name,
        text(key),
        postgresql_using="gist",
        postgresql_include=[column, *carried],
        postgresql_where=text(f"listed AND {column} IS NOT NULL"),
        info={"engines": ("postgresql",)},
    )


class SearchEntry(SQLModel, table=True):
    """One service at one location, flattened for search and matching (the read model).

    Every column is audience-independent: the read path picks the point column (``exact_geom``
    for callers who see exact points, ``public_geom`` for everyone else: NULL for a confidential
    site) and applies ``domain/access`` to what ``doc`` shows.
    """

    __tablename__ = "search_entry"
    __table_args__ = (
        _postgis_gin("ix_search_entry_category_codes", "category_codes"),
        _postgis_gin("ix_search_entry_language_codes", "language_codes"),
        _postgis_gin("ix_search_entry_served_genders", "served_genders"),
        _postgis_count_window("ix_search_entry_public_count_window", "public_geom"),
        _postgis_count_window("ix_search_entry_exact_count_window", "exact_geom"),
        _postgis_nearest("ix_search_entry_public_nearest", "public_geom"),
        _postgis_nearest("ix_search_entry_exact_nearest", "exact_geom"),
    )

    service_at_location_id: uuid.UUID = Field(
        primary_key=True, foreign_key="service_at_location.id", ondelete="CASCADE"
    )
    service_id: uuid.UUID = Field(index=True)
    location_id: uuid.UUID = Field(index=True)
    # The service's organization (the one whose status lists the row).
    organization_id: uuid.UUID = Field(index=True)
    location_organization_id: uuid.UUID | None = None
    # Service active, its organization and the location not defunct.
    listed: bool
    visibility: str = Field(max_length=20)
    exact_geom: Any = Field(default=None, sa_type=point_column_type(), nullable=True)
    public_geom: Any = Field(default=None, sa_type=point_column_type(), nullable=True)
    department_code: str | None = Field(default=None, max_length=2)
    municipality_code: str | None = Field(default=None, max_length=4)
    # The area's representative point: where a site is shown to an audience that may not see it.
    public_latitude: float | None = None
    public_longitude: float | None = None
    # The codes of the service's categories and of all their ancestors.
    category_codes: list[str] = Field(default_factory=list, sa_type=_text_list())
    language_codes: list[str] = Field(default_factory=list, sa_type=_text_list())
    # The person genders (vocab.GENDERS) the service admits, by matching.eligibility's rule.
    served_genders: list[str] = Field(default_factory=list, sa_type=_text_list())
    # Whole-year bounds an integer age must meet: ceil of the stored minimum, floor of the maximum
    # (equal to them for the whole numbers the API writes).
    minimum_age: int | None = None
    maximum_age: int | None = None
    minors_only: bool = False
    lgbtiq_affirming: bool = False
    accepts_accompanying_children: bool = False
    has_capacity: bool = False
    capacity_updated: datetime | None = _timestamp()
    search_text: str = Field(default="")
    assured_date: date | None = None
    service_name: str = Field(max_length=500)
    # The top level of the service's first category code (by code), as a map's clusters count it.
    top_category: str | None = Field(default=None, max_length=200)
    # The public point on the cluster grid (``geo.tiles.grid_mm``): whole millimetres of
    # WebMercatorQuad from the world's west and north edges; None without a public point.
    public_east_mm: int | None = Field(default=None, sa_type=BigInteger)
    public_south_mm: int | None = Field(default=None, sa_type=BigInteger)
    # The pre-rendered, audience-independent fields of a result (domain/search_model.py).
    doc: dict[str, Any] = Field(sa_type=JSON().with_variant(JSONB(), "postgresql"))


def _countable_index(name: str, flag: str) -> Index:
    """The listed entries of a code that have the point an audience reads, in id order: a
    count of one category's matches is an index-only scan that stops at its cap."""
    # Each engine's predicate as SQLAlchemy renders the flag in a WHERE clause (SQLite has no
    # boolean type: ``flag = 1``), so that the planner proves the query implies it.
    return Index(
        name,
        "code",
        "service_at_location_id",
        postgresql_where=text(flag),
        sqlite_where=text(f"{flag} = 1"),
    )


class SearchEntryCategory(SQLModel, table=True):
    """One row per code of ``SearchEntry.category_codes``, on both engines.

    SpatiaLite filters categories through it (no array index); both engines count a category's
    matches from it without reading the wide entries: the two flags are the conditions every
    match has (``listed`` and a point for the audience) and the partial indexes hold them.
    """

    __tablename__ = "search_entry_category"
    __table_args__ = (
        _countable_index("ix_search_entry_category_public_count", "listed_with_public_point"),
        _countable_index("ix_search_entry_category_exact_count", "listed_with_exact_point"),
    )

    code: str = Field(primary_key=True, max_length=200)
    service_at_location_id: uuid.UUID = Field(
        primary_key=True,
        foreign_key="search_entry.service_at_location_id",
        ondelete="CASCADE",
        index=True,
    )
    # The entry is listed and has a public point (its public_geom is not NULL) / an exact point.
    listed_with_public_point: bool = False
    listed_with_exact_point: bool = False


class SearchEntryLanguage(SQLModel, table=True):
    """SpatiaLite: one row per code of ``SearchEntry.language_codes`` (empty on PostGIS)."""

    __tablename__ = "search_entry_language"

    code: str = Field(primary_key=True, max_length=3)
    service_at_location_id: uuid.UUID = Field(
        primary_key=True,
        foreign_key="search_entry.service_at_location_id",
        ondelete="CASCADE",
        index=True,
    )


class ServiceClusterCell(SQLModel, table=True):
    """The listed services at locations with a public point in one cell of the map's cluster
    grid (``geo.tiles``: a tile of zoom ``level``, the cell of clusters at zoom ``level`` - 3),
    per top category: how many and the sums of their grid positions, so a clustered public
    tile reads its 64 cells instead of every point in it (issue 16).

    Kept in step by triggers on ``search_entry`` (migration ``d4e6f8a0b2c4``), in the statement
    that writes the entries, so it is exactly as fresh as the read model. Never edit it.
    """

    __tablename__ = "service_cluster_cell"
    __table_args__ = (
        # SQLite's triggers delete the cells a write emptied, found without reading the others
        # (PostgreSQL's delete them by key: see the migration).
        Index(
            "ix_service_cluster_cell_empty",
            "point_count",
            sqlite_where=text("point_count = 0"),
            info={"engines": ("sqlite",)},
        ),
    )

    level: int = Field(primary_key=True)
    cell_x: int = Field(primary_key=True)
    cell_y: int = Field(primary_key=True)
    # The top category ('' for none).
    top_category: str = Field(primary_key=True, max_length=200)
    point_count: int
    east_mm_sum: int = Field(sa_type=BigInteger)
    south_mm_sum: int = Field(sa_type=BigInteger)


# Tables whose column sets Alembic must keep in step with these models.
ALL_TABLES: tuple[type[SQLModel], ...] = (
    Organization,
    Program,
    Service,
    Location,
    ServiceAtLocation,
    Address,
    Contact,
    Phone,
    Schedule,
    Language,
    ServiceArea,
    Accessibility,
    CostOption,
    RequiredDocument,
    Funding,
    OrganizationIdentifier,
    Taxonomy,
    TaxonomyTerm,
    Attribute,
    Metadata,
    Unit,
    ServiceCapacity,
    AdminArea,
    UserAccount,
    RefreshToken,
    ApiKey,
    AuditEntry,
    SearchEntry,
    SearchEntryCategory,
    SearchEntryLanguage,
)


# --- referrals (issue 17; domain/referrals.py, docs/referrals.md) ------------------------------
# A referral names a pseudonymous case, never a person: no names, documents or contact details.


class Referral(SQLModel, table=True):
    """One referral from a caseworker's organization to one service at one location.

    ``traits`` and ``note_ciphertext`` are the only fields about the person; the retention purge
    erases both (``purged_at``). ``version`` is the ETag (optimistic concurrency).
    """

    __tablename__ = "referral"
    __table_args__ = (
        CheckConstraint(
            "status IN ('sent', 'received', 'accepted', 'declined', 'in_progress', 'completed',"
            " 'closed', 'cancelled')",
            name="ck_referral_status",
        ),
        CheckConstraint("urgency IN ('emergency', 'soon', 'routine')", name="ck_referral_urgency"),
        Index("ix_referral_sender_status", "sender_organization_id", "status"),
        Index("ix_referral_receiver_status", "receiver_organization_id", "status"),
    )

    id: uuid.UUID = _uuid_pk()
    case_code: str = Field(max_length=32, unique=True)
    sender_organization_id: uuid.UUID = _fk("organization.id", nullable=False, cascade=False)
    receiver_organization_id: uuid.UUID = _fk("organization.id", nullable=False, cascade=False)
    service_id: uuid.UUID = _fk("service.id", nullable=False, cascade=False)
    location_id: uuid.UUID = _fk("location.id", nullable=False, cascade=False)
    service_at_location_id: uuid.UUID | None = _fk("service_at_location.id", cascade=False)
    # The receiving site's department (INE code), kept for the aggregate report.
    department_code: str | None = Field(default=None, max_length=2)
    need_codes: list[str] = Field(default_factory=list, sa_type=JSON(none_as_null=True))
    urgency: str = Field(max_length=20)
    traits: dict[str, Any] | None = Field(default=None, sa_type=JSON(none_as_null=True))
    consent_given: bool = False
    consent_scope: str | None = Field(default=None, max_length=40)
    consent_date: date | None = None
    consent_expires: date | None = None
    consent_recorded_by: str | None = Field(default=None, max_length=320)
    emergency_override: bool = False
    override_reason: str | None = Field(default=None, max_length=40)
    note_ciphertext: bytes | None = Field(default=None, sa_type=LargeBinary)
    # The /match proposals (service_at_location ids, best first) the referral was made from.
    match_proposals: list[str] | None = Field(default=None, sa_type=JSON(none_as_null=True))
    status: str = Field(default="sent", max_length=20, index=True)
    decline_reason: str | None = Field(default=None, max_length=40)
    # The unit whose place an accepted emergency referral holds (released on complete/close).
    reserved_unit_id: uuid.UUID | None = _fk("unit.id", cascade=False)
    created_by: str = Field(max_length=320)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    received_at: datetime | None = _timestamp()
    accepted_at: datetime | None = _timestamp()
    finished_at: datetime | None = _timestamp()
    purged_at: datetime | None = _timestamp()
    version: int = Field(default=1)
    last_modified: datetime | None = _timestamp()


class ReferralTransition(SQLModel, table=True):
    """One step of a referral's status history: who, when, from, to and a reason code."""

    __tablename__ = "referral_transition"

    id: uuid.UUID = _uuid_pk()
    referral_id: uuid.UUID = _fk("referral.id", nullable=False)
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str = Field(max_length=20)
    actor: str = Field(max_length=320)
    role: str = Field(max_length=20)
    organization_id: uuid.UUID | None = None
    reason: str | None = Field(default=None, max_length=40)
    occurred_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class ReferralWebhook(SQLModel, table=True):
    """An organization's webhook: where referral events are POSTed, signed with the secret."""

    __tablename__ = "referral_webhook"

    organization_id: uuid.UUID = Field(
        primary_key=True, foreign_key="organization.id", ondelete="CASCADE"
    )
    url: str = Field(max_length=2000)
    secret: str = Field(max_length=200)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class WebhookDelivery(SQLModel, table=True):
    """One queued webhook POST (outbox pattern): written in the transaction of the change."""

    __tablename__ = "webhook_delivery"

    id: uuid.UUID = _uuid_pk()
    organization_id: uuid.UUID = _fk("organization.id", nullable=False)
    url: str = Field(max_length=2000)
    body: dict[str, Any] = Field(sa_type=JSON(none_as_null=True))
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    delivered_at: datetime | None = _timestamp()
    # Set once the retries are spent: the delivery is kept (for the steward) but not retried.
    abandoned_at: datetime | None = _timestamp()
    last_status: int | None = None
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
