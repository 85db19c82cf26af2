"""HSDS import: source records upserted by id through the domain's use cases, all or nothing.

:func:`run_import` takes :class:`SourceRecord` items (from ``exchange/sources.py`` or the
spreadsheet reader) and answers with an :class:`ImportReport`. How it goes:

1. **Normalize.** Each record is split into flat records in dependency order: a service's nested
   ``organization``, ``program``, ``service_at_locations`` (with their ``location``) and the
   taxonomy terms of its ``attributes`` (with their ``taxonomy_detail``); an organization's
   ``locations`` and ``services``; a link's ``location`` and ``service``; a term's taxonomy. A
   flat record already written by this import with the same content is not written twice.
2. **Write.** Everything runs in ONE outer transaction (``BEGIN IMMEDIATE`` on SpatiaLite). Each
   source record gets a SAVEPOINT, each flat record another one inside it; the domain's own
   commits are releases of the session's SAVEPOINT within (``join_transaction_mode=
   "create_savepoint"``). Writes go through the domain's create/update use cases with
   ``trusted_ids=True`` under a steward principal named by ``actor``; the HSDS fields the API's
   bodies do not take go through ``domain/imported_records.py``.
3. **Compare.** A flat record's stored state (its row and nested rows, without version, time
   stamps and geometry) is read before and after its write; when they are equal the write is
   rolled back to its SAVEPOINT and the record counts as ``unchanged`` (a repeated import writes
   nothing, not even history).
4. **End.** Any error refuses its record (its SAVEPOINT rolled back) and the import goes on, so
   the report lists every error. Then: a dry run, or errors without ``skip_invalid``, roll the
   outer transaction back (nothing written); otherwise one audit entry with the counts is
   appended and the transaction commits.

Errors never leave :func:`run_import` as exceptions: each becomes a :class:`Problem` (table,
row, field, message). A location that would be confidential never has its values in a message.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import chain, islice
from typing import Any, Literal

from pydantic import SecretStr, ValidationError, model_validator
from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, SQLModel, col, select

from referral_net import validation
from referral_net.db.engine import write_bind
from referral_net.db.models import (
    Accessibility,
    Address,
    Attribute,
    Contact,
    CostOption,
    Funding,
    Language,
    Location,
    Organization,
    OrganizationIdentifier,
    Phone,
    Program,
    RequiredDocument,
    Schedule,
    Service,
    ServiceArea,
    ServiceAtLocation,
    ServiceCapacity,
    Taxonomy,
    TaxonomyTerm,
)
from referral_net.domain import (
    areas,
    audit,
    common,
    imported_records,
    locations,
    organizations,
    search_model,
    service_at_locations,
    services,
)
from referral_net.domain.recorded_write import creates_recorded_together
from referral_net.errors import ReferralNetError
from referral_net.exchange import export
from referral_net.exchange.records import (
    ImportOptions,
    ImportReport,
    Problem,
    RecordTable,
    SourceRecord,
)
from referral_net.schemas.directory import (
    LocationCreate,
    LocationUpdate,
    OrganizationCreate,
    OrganizationUpdate,
    PhoneIn,
    ScheduleIn,
    ServiceAtLocationCreate,
    ServiceAtLocationUpdate,
    ServiceCreate,
    ServiceUpdate,
)
from referral_net.security.roles import Principal, Role
from referral_net.vocab import Visibility

AUDIT_ACTION = "import"
# Source records written together when all are new (see ``_Importer.take_page``).
PAGE_SIZE = 200
# Ids per existence query (below SQLite's bound-parameter limit on every supported version).
_ID_CHUNK = 500
_NEW_PAGE_TABLES: frozenset[str] = frozenset(
    {"taxonomy", "taxonomy_term", "organization", "location", "service", "service_at_location"}
)
# The records a flat record of a page points at, by table (loaded for the page at once).
_PARENTS_OF: dict[str, tuple[str, ...]] = {
    "taxonomy": (),
    "taxonomy_term": (),
    "organization": (),
    "location": ("organization",),
    "service": ("organization",),
    "service_at_location": ("service", "location"),
}
_MODELS: dict[str, type[SQLModel]] = {
    "taxonomy": Taxonomy,
    "taxonomy_term": TaxonomyTerm,
    "organization": Organization,
    "location": Location,
    "service": Service,
    "service_at_location": ServiceAtLocation,
}
# The tables of the nested records a page's source may name by id (checked once per page).
_NESTED_ID_MODELS: tuple[type[SQLModel], ...] = (
    Phone,
    Language,
    Schedule,
    Contact,
    Funding,
    OrganizationIdentifier,
    Program,
    Address,
    Accessibility,
    CostOption,
    RequiredDocument,
    ServiceArea,
    ServiceCapacity,
    Attribute,
)
# session.info key: the records a page's session keeps (see ``_prepare_page_session``).
_KEPT = "referral_net.importer.kept"
AUDIT_RESOURCE = "import"
_HIDDEN_RANK = {Visibility.PUBLIC: 0, Visibility.RESTRICTED: 1, Visibility.CONFIDENTIAL: 2}
# Errors a record's data can cause; anything else is a bug and propagates.
_RECORD_ERRORS = (
    ReferralNetError,
    ValidationError,
    ValueError,
    KeyError,
    TypeError,
    SQLAlchemyError,
)
# Columns left out of the comparison of a record's state: moved by every write, or derived.
_VOLATILE = frozenset({"version", "last_modified", "search_text", "geom", "public_geom"})
# Foreign keys a nested record may carry (the tabular form's columns), dropped when nested.
_PARENT_KEYS = frozenset(
    {
        "organization_id",
        "service_id",
        "location_id",
        "service_at_location_id",
        "contact_id",
        "phone_id",
        "link_id",
    }
)


class _Refused(Exception):
    """A flat record could not be written: its problems."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems[0].message if problems else "refused")
        self.problems = problems


# --- the domain's bodies, as an import fills them -------------------------------------------


class ImportedLocationCreate(LocationCreate):
    """A new location as an import gives it: how its point was placed, and no point at all when
    the source has none usable (flagged for geocoding; coordinates are never invented)."""

    geocoding_precision: Literal["given", "town", "municipality"] | None = None
    needs_geocoding: bool = False

    @model_validator(mode="after")
    def _point(self) -> ImportedLocationCreate:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude go together")
        if self.latitude is not None and self.longitude is not None:
            validation.check_coordinates(
                self.latitude, self.longitude, allow_outside_country=self.outside_country
            )
        return self


class ImportedLocationUpdate(LocationUpdate):
    """An update of a location by an import: the point's placement too."""

    geocoding_precision: Literal["given", "town", "municipality"] | None = None
    needs_geocoding: bool | None = None


# --- flat records ------------------------------------------------------------------------------


@dataclass
class _Flat:
    """One top-level HSDS record of a source record, its nested parents split off."""

    table: RecordTable
    origin: str
    data: dict[str, Any]


@dataclass
class _Pending:
    """A link to a record that may come later in the source: set at the end, or a warning."""

    table: RecordTable
    origin: str
    record_id: uuid.UUID
    target_id: uuid.UUID
    field: str


def _as_dict(value: Any) -> dict[str, Any] | None:
    return dict(value) if isinstance(value, Mapping) else None


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def flatten(table: RecordTable, data: Mapping[str, Any], origin: str) -> list[_Flat]:
    """Split one nested HSDS record into flat records, parents before children."""
    out: list[_Flat] = []
    _FLATTENERS[table](dict(data), origin, out)
    return out


def _flat_taxonomy(data: dict[str, Any], origin: str, out: list[_Flat]) -> None:
    out.append(_Flat("taxonomy", origin, data))


def _flat_term(data: dict[str, Any], origin: str, out: list[_Flat]) -> None:
    detail = _as_dict(data.pop("taxonomy_detail", None))
    if detail is not None:
        _flat_taxonomy(detail, f"{origin} > taxonomy_detail", out)
        data.setdefault("taxonomy_id", detail.get("id"))
    out.append(_Flat("taxonomy_term", origin, data))


def _flat_organization(data: dict[str, Any], origin: str, out: list[_Flat]) -> None:
    nested_locations = _as_list(data.pop("locations", None))
    nested_services = _as_list(data.pop("services", None))
    out.append(_Flat("organization", origin, data))
    for index, item in enumerate(nested_locations):
        if isinstance(item, Mapping):
            location = {"organization_id": data.get("id"), **item}
            _flat_location(location, f"{origin} > locations[{index}]", out)
    for index, item in enumerate(nested_services):
        # An organization as the API serves it lists its services by id, name and status
        # only: those are references, not records to write.
        if isinstance(item, Mapping) and set(item) - {"id", "name", "status"}:
            service = {"organization_id": data.get("id"), **item}
            _flat_service(service, f"{origin} > services[{index}]", out)


def _flat_location(data: dict[str, Any], origin: str, out: list[_Flat]) -> None:
    out.append(_Flat("location", origin, data))


def _flat_service(data: dict[str, Any], origin: str, out: list[_Flat]) -> None:
    organization = _as_dict(data.pop("organization", None))
    if organization is not None and set(organization) - {"id", "name"}:
        organization.pop("services", None)  # the service itself is written below
        _flat_organization(organization, f"{origin} > organization", out)
    if organization is not None:
        data.setdefault("organization_id", organization.get("id"))
    for index, attribute in enumerate(_as_list(data.get("attributes"))):
        term = _as_dict(attribute.get("taxonomy_term")) if isinstance(attribute, Mapping) else None
        if term is not None and set(term) - {"id"}:
            _flat_term(term, f"{origin} > attributes[{index}].taxonomy_term", out)
    links = _as_list(data.pop("service_at_locations", None))
    out.append(_Flat("service", origin, data))
    for index, item in enumerate(links):
        if not isinstance(item, Mapping):
            continue
        link = dict(item)
        link.setdefault("service_id", data.get("id"))
        location = _as_dict(link.pop("location", None))
        where = f"{origin} > service_at_locations[{index}]"
        if location is not None:
            location.setdefault("organization_id", data.get("organization_id"))
            _flat_location(location, f"{where}.location", out)
            link.setdefault("location_id", location.get("id"))
        out.append(_Flat("service_at_location", where, link))


def _flat_link(data: dict[str, Any], origin: str, out: list[_Flat]) -> None:
    service = _as_dict(data.pop("service", None))
    location = _as_dict(data.pop("location", None))
    if service is not None:
        service.pop("service_at_locations", None)
        _flat_service(service, f"{origin} > service", out)
        data.setdefault("service_id", service.get("id"))
    if location is not None:
        if service is not None:
            location.setdefault("organization_id", service.get("organization_id"))
        _flat_location(location, f"{origin} > location", out)
        data.setdefault("location_id", location.get("id"))
    out.append(_Flat("service_at_location", origin, data))


_FLATTENERS: dict[RecordTable, Callable[[dict[str, Any], str, list[_Flat]], None]] = {
    "taxonomy": _flat_taxonomy,
    "taxonomy_term": _flat_term,
    "organization": _flat_organization,
    "location": _flat_location,
    "service": _flat_service,
    "service_at_location": _flat_link,
}


# --- the stored state of a record, for "unchanged" ------------------------------------------

_NESTED_OF: dict[RecordTable, tuple[type[SQLModel], str, tuple[type[SQLModel], ...]]] = {
    "organization": (
        Organization,
        "organization_id",
        (Phone, Contact, Funding, Program, OrganizationIdentifier),
    ),
    "location": (
        Location,
        "location_id",
        (Address, Phone, Language, Accessibility, Schedule, Contact),
    ),
    "service": (
        Service,
        "service_id",
        (
            Phone,
            Schedule,
            Language,
            Contact,
            Funding,
            CostOption,
            RequiredDocument,
            ServiceArea,
            ServiceCapacity,
        ),
    ),
    "service_at_location": (
        ServiceAtLocation,
        "service_at_location_id",
        (Phone, Schedule, Contact),
    ),
    "taxonomy": (Taxonomy, "", ()),
    "taxonomy_term": (TaxonomyTerm, "", ()),
}


def _dump(row: SQLModel) -> dict[str, Any]:
    return {key: value for key, value in row.model_dump().items() if key not in _VOLATILE}


def _rows(session: Session, model: type[SQLModel], fk: str, ids: Sequence[Any]) -> list[Any]:
    if not ids:
        return []
    column = col(getattr(model, fk))
    return sorted(
        session.exec(select(model).where(column.in_(list(ids)))).all(),
        key=lambda row: str(row.id),
    )


def _state(session: Session, table: RecordTable, record_id: uuid.UUID) -> Any:
    """The stored record and its nested rows as plain values (None when it does not exist)."""
    model, fk, children = _NESTED_OF[table]
    row = session.get(model, record_id)
    if row is None:
        return None
    state: dict[str, Any] = {"record": _dump(row)}
    for child in children:
        rows = _rows(session, child, fk, [record_id])
        state[child.__name__] = [_dump(r) for r in rows]
        if child is Phone:
            state["phone_languages"] = [
                _dump(r) for r in _rows(session, Language, "phone_id", [r.id for r in rows])
            ]
        if child is Contact:
            phones = _rows(session, Phone, "contact_id", [r.id for r in rows])
            state["contact_phones"] = [_dump(r) for r in phones]
            state["contact_phone_languages"] = [
                _dump(r) for r in _rows(session, Language, "phone_id", [r.id for r in phones])
            ]
    if table == "service":
        attributes = _rows(session, Attribute, "link_id", [record_id])
        state["Attribute"] = [_dump(r) for r in attributes]
    return state


# --- values of a record ----------------------------------------------------------------------


def _uuid(value: Any) -> uuid.UUID:
    """A record id: a UUID, or the stable UUID of a publisher's other identifier."""
    if isinstance(value, uuid.UUID):
        return value
    text = str(value).strip()
    try:
        return uuid.UUID(text)
    except ValueError:
        # Not every publisher uses UUIDs: a stable one from its own id keeps upserts idempotent.
        return uuid.uuid5(uuid.NAMESPACE_URL, f"hsds-id:{text}")


def _optional_uuid(value: Any) -> uuid.UUID | None:
    return None if value is None or value == "" else _uuid(value)


def _id_text(value: Any) -> str | None:
    """A record's id as the report names it (None when the record has none)."""
    return None if value is None or value == "" else str(value)


def _hash(data: Mapping[str, Any]) -> bytes:
    return hashlib.sha1(  # noqa: S324 - a content fingerprint, not security
        json.dumps(data, sort_keys=True, default=str).encode()
    ).digest()


@dataclass
class _Context:
    """What writing one flat record needs, and the warnings it gathers."""

    session: Session
    principal: Principal
    options: ImportOptions
    flat: _Flat
    warnings: list[Problem] = field(default_factory=list)
    pending: list[_Pending] = field(default_factory=list)
    confidential: bool = False

    def warn(self, field_name: str, message: str) -> None:
        """Add a warning about this record."""
        self.warnings.append(
            Problem(
                self.flat.table,
                self.flat.origin,
                field_name,
                message,
                _id_text(self.flat.data.get("id")),
            )
        )

    def not_kept(self, keys: Iterable[str]) -> None:
        """Warn about fields this import cannot keep (nothing is dropped silently)."""
        for key in sorted(keys):
            self.warn(key, "not an HSDS field referral-net keeps: not imported")


def _child_items(
    ctx: _Context,
    model: type[SQLModel],
    fk: str,
    parent_id: uuid.UUID,
    items: Any,
    *,
    key: str,
) -> list[dict[str, Any]]:
    """A nested list ready for the domain: every item with an id of its own.

    An item without an id gets a stable one (from the parent and its place), so a repeated
    import matches it. An id another parent's row already holds (the official examples reuse
    one phone id on five records) is replaced by a stable one derived from both, with a warning:
    a nested record belongs to one parent.
    """
    ready: list[dict[str, Any]] = []
    for index, item in enumerate(_as_list(items)):
        if not isinstance(item, Mapping):
            raise _Refused(
                [
                    Problem(
                        ctx.flat.table,
                        ctx.flat.origin,
                        f"{key}.{index}",
                        "not an object",
                        _id_text(ctx.flat.data.get("id")),
                    )
                ]
            )
        # The tabular form's foreign keys: nesting already says the parent (a row naming
        # several parents is nested under each of them).
        value = {k: v for k, v in item.items() if k not in _PARENT_KEYS}
        given = _optional_uuid(value.get("id"))
        if given is None:
            value["id"] = uuid.uuid5(parent_id, f"{key}:{index}")
        else:
            row = common.get_unless_absent(ctx.session, model, given)
            if row is not None and getattr(row, fk) != parent_id:
                value["id"] = uuid.uuid5(parent_id, str(given))
                ctx.warn(
                    f"{key}.{index}.id",
                    "id already used by another record's nested record: given a new id",
                )
            else:
                value["id"] = given
        ready.append(value)
    return ready


def _phones(
    ctx: _Context, fk: str, parent_id: uuid.UUID, items: Any, key: str = "phones"
) -> list[dict[str, Any]]:
    """Phones with ids of their own and their languages' ids; a number in quotes (a defect
    of the official examples) loses its quotes, with a warning."""
    phones = _child_items(ctx, Phone, fk, parent_id, items, key=key)
    for index, phone in enumerate(phones):
        number = phone.get("number")
        if isinstance(number, str) and len(number) > 1 and number[0] == number[-1] == '"':
            phone["number"] = number[1:-1]
            ctx.warn(f"{key}.{index}.number", "number in quotes: the quotes were removed")
        phone["languages"] = _child_items(
            ctx,
            Language,
            "phone_id",
            phone["id"],
            phone.get("languages"),
            key=f"{key}.{index}.languages",
        )
    return phones


def _schedules(
    ctx: _Context, fk: str, parent_id: uuid.UUID, items: Any, key: str = "schedules"
) -> list[dict[str, Any]]:
    """Schedules with ids of their own. A recurrence with both ``count`` and ``until`` (which
    RFC 5545 forbids; the official examples have one) keeps its end date, and ``count`` is
    left out with a warning."""
    schedules = _child_items(ctx, Schedule, fk, parent_id, items, key=key)
    for index, schedule in enumerate(schedules):
        if schedule.get("count") not in (None, "") and schedule.get("until") not in (None, ""):
            schedule.pop("count")
            ctx.warn(
                f"{key}.{index}.count",
                "count and until exclude each other (RFC 5545): until kept, count not imported",
            )
    return schedules


def _contacts(ctx: _Context, fk: str, parent_id: uuid.UUID, items: Any) -> list[dict[str, Any]]:
    """Contacts with ids of their own, their phones checked as the API checks phones."""
    contacts = _child_items(ctx, Contact, fk, parent_id, items, key="contacts")
    for index, contact in enumerate(contacts):
        phones = _phones(
            ctx, "contact_id", contact["id"], contact.get("phones"), f"contacts.{index}.phones"
        )
        contact["phones"] = [PhoneIn.model_validate(phone) for phone in phones]
        unknown = set(contact) - {"id", "name", "title", "department", "email", "phones"}
        ctx.not_kept(f"contacts.{index}.{name}" for name in unknown)
    return contacts


def _require(
    ctx: _Context, model: type[SQLModel], target: uuid.UUID | None, field_name: str
) -> uuid.UUID:
    """The id of a record this one points at; refused when it is neither stored nor imported
    earlier."""
    if target is None or ctx.session.get(model, target) is None:
        raise _Refused(
            [
                Problem(
                    ctx.flat.table,
                    ctx.flat.origin,
                    field_name,
                    f"no such {model.__tablename__} in the database or earlier in this import",
                    _id_text(ctx.flat.data.get("id")),
                )
            ]
        )
    return target


def _pick(data: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    return {name: data[name] for name in names if name in data}


def _datetime(value: Any) -> datetime | None:
    """An HSDS date or date-time as an aware instant (a date, or a time without a zone, is
    read as UTC: the database keeps aware instants only)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, date):
        when = datetime(value.year, value.month, value.day)
    else:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _keep_last_modified(ctx: _Context, record: Any) -> None:
    if ctx.options.keep_last_modified and ctx.flat.data.get("last_modified"):
        when = _datetime(ctx.flat.data["last_modified"])
        if when is not None:
            imported_records.set_last_modified(ctx.session, record, when)


def _metadata(ctx: _Context, resource_id: uuid.UUID) -> None:
    items = []
    for index, item in enumerate(_as_list(ctx.flat.data.get("metadata"))):
        if not isinstance(item, Mapping):
            continue
        value = dict(item)
        value["id"] = _optional_uuid(value.get("id")) or uuid.uuid5(
            resource_id, f"metadata:{index}"
        )
        value["resource_id"] = _optional_uuid(value.get("resource_id"))
        value["last_action_date"] = _datetime(value.get("last_action_date"))
        items.append(value)
    imported_records.add_metadata(ctx.session, resource_id, items)


# --- writers, one per table -------------------------------------------------------------------

_ORGANIZATION_FIELDS = set(OrganizationCreate.model_fields) - {
    "id",
    "phones",
    "parent_organization_id",
}
_ORGANIZATION_KEPT = {
    "id",
    "phones",
    "parent_organization_id",
    "contacts",
    "funding",
    "programs",
    "organization_identifiers",
    "metadata",
    "last_modified",
    "status",
}


def _write_organization(ctx: _Context) -> None:
    data = ctx.flat.data
    organization_id = _uuid(data["id"])
    session = ctx.session
    ctx.not_kept(set(data) - _ORGANIZATION_FIELDS - _ORGANIZATION_KEPT)
    body = _pick(data, _ORGANIZATION_FIELDS)
    body["phones"] = _phones(ctx, "organization_id", organization_id, data.get("phones"))
    parent = _optional_uuid(data.get("parent_organization_id"))
    if parent is not None and parent != organization_id:
        if session.get(Organization, parent) is not None:
            body["parent_organization_id"] = parent
        else:
            ctx.pending.append(
                _Pending(
                    "organization",
                    ctx.flat.origin,
                    organization_id,
                    parent,
                    "parent_organization_id",
                )
            )
    existing = common.get_unless_absent(session, Organization, organization_id)
    if existing is None:
        organization = organizations.create(
            session=session,
            principal=ctx.principal,
            data=OrganizationCreate.model_validate({**body, "id": organization_id}),
            trusted_ids=True,
        )
    else:
        if "parent_organization_id" not in body and parent is None:
            body["parent_organization_id"] = None
        organization = organizations.update(
            session=session,
            principal=ctx.principal,
            organization=existing,
            data=OrganizationUpdate.model_validate(body),
        )
    oid = organization.id
    contacts = _contacts(ctx, "organization_id", oid, data.get("contacts"))
    imported_records.replace_contacts(session, "organization_id", oid, contacts, field="contacts")
    funding = _child_items(ctx, Funding, "organization_id", oid, data.get("funding"), key="funding")
    imported_records.replace_funding(session, "organization_id", oid, funding, field="funding")
    identifiers = _child_items(
        ctx,
        OrganizationIdentifier,
        "organization_id",
        oid,
        data.get("organization_identifiers"),
        key="organization_identifiers",
    )
    imported_records.replace_identifiers(
        session, oid, identifiers, field="organization_identifiers"
    )
    programs = _child_items(
        ctx, Program, "organization_id", oid, data.get("programs"), key="programs"
    )
    imported_records.upsert_programs(session, oid, programs)
    _metadata(ctx, oid)
    _keep_last_modified(ctx, organization)


_LOCATION_FIELDS = set(LocationCreate.model_fields) - {
    "id",
    "latitude",
    "longitude",
    "visibility",
    "phones",
    "languages",
    "addresses",
    "accessibility",
    "schedules",
}
_LOCATION_KEPT = {
    "id",
    "latitude",
    "longitude",
    "visibility",
    "phones",
    "languages",
    "addresses",
    "accessibility",
    "schedules",
    "contacts",
    "metadata",
    "last_modified",
    "geocoding_precision",
    "status",
}
_LOCATION_READ_ONLY = {"location_type", "organization_id"}


def _visibility(ctx: _Context, existing: Location | None) -> Visibility:
    """The location's visibility: the command's default unless the record states a more hidden
    one (or the sheet's own column wins, ``visibility_from_source``); an existing record is
    never made more visible by an import."""
    stated_raw = ctx.flat.data.get("visibility")
    stated = Visibility(stated_raw) if stated_raw not in (None, "") else None
    default = ctx.options.visibility
    if stated is not None and ctx.options.visibility_from_source:
        chosen = stated
    else:
        chosen = max([default, stated or default], key=_HIDDEN_RANK.__getitem__)
        if stated is not None and _HIDDEN_RANK[stated] < _HIDDEN_RANK[default]:
            ctx.warn("visibility", f"held to {default.value}, the import's default")
    if existing is not None and not ctx.options.visibility_from_source:
        current = Visibility(existing.visibility)
        if _HIDDEN_RANK[current] > _HIDDEN_RANK[chosen]:
            chosen = current
    return chosen


def _point(ctx: _Context) -> tuple[float | None, float | None]:
    """The record's coordinates, or none (with a warning) when missing or out of range."""
    data = ctx.flat.data
    latitude, longitude = data.get("latitude"), data.get("longitude")
    if latitude in (None, "") and longitude in (None, ""):
        ctx.warn("latitude", "no coordinates: imported without a point, flagged for geocoding")
        return None, None
    try:
        lat, lon = float(latitude), float(longitude)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        ctx.warn("latitude", "coordinates are not numbers: imported without a point, flagged")
        return None, None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        ctx.warn(
            "latitude",
            "coordinates out of range: imported without a point, flagged for geocoding",
        )
        return None, None
    return lat, lon


def _write_location(ctx: _Context) -> None:
    data = ctx.flat.data
    session = ctx.session
    location_id = _uuid(data["id"])
    existing = common.get_unless_absent(session, Location, location_id)
    visibility = _visibility(ctx, existing)
    ctx.confidential = visibility is Visibility.CONFIDENTIAL
    ctx.not_kept(set(data) - _LOCATION_FIELDS - _LOCATION_KEPT)
    latitude, longitude = _point(ctx)
    needs_geocoding = latitude is None
    # A record that states how its point was placed keeps it (even null: nobody said); only an
    # unstated one with usable coordinates is taken as given by the source. A location as
    # referral-net serves it (``needs_geocoding`` beside) leaves a null out: it states null.
    if "geocoding_precision" in data:
        precision = data["geocoding_precision"] or None
    elif "needs_geocoding" in data:
        precision = None
    else:
        precision = None if needs_geocoding else "given"
    body: dict[str, Any] = _pick(data, _LOCATION_FIELDS - _LOCATION_READ_ONLY)
    body |= {
        "latitude": latitude,
        "longitude": longitude,
        "visibility": visibility,
        "geocoding_precision": precision,
        "needs_geocoding": needs_geocoding,
        "phones": _phones(ctx, "location_id", location_id, data.get("phones")),
        "languages": _child_items(
            ctx, Language, "location_id", location_id, data.get("languages"), key="languages"
        ),
        "addresses": _child_items(
            ctx, Address, "location_id", location_id, data.get("addresses"), key="addresses"
        ),
        "accessibility": _child_items(
            ctx,
            Accessibility,
            "location_id",
            location_id,
            data.get("accessibility"),
            key="accessibility",
        ),
        "schedules": _schedules(ctx, "location_id", location_id, data.get("schedules")),
    }
    if existing is None:
        _require(ctx, Organization, _optional_uuid(data.get("organization_id")), "organization_id")
        location = locations.create(
            session=session,
            principal=ctx.principal,
            data=ImportedLocationCreate.model_validate(
                {
                    **body,
                    **_pick(data, _LOCATION_READ_ONLY),
                    "id": location_id,
                }
            ),
            trusted_ids=True,
        )
    else:
        given_org = _optional_uuid(data.get("organization_id"))
        if given_org is not None and given_org != existing.organization_id:
            raise _Refused(
                [
                    Problem(
                        "location",
                        ctx.flat.origin,
                        "organization_id",
                        "the stored location belongs to another organization",
                        str(location_id),
                    )
                ]
            )
        if latitude is None and existing.latitude is not None:
            body.pop("latitude")
            body.pop("longitude")
            body["needs_geocoding"] = False
            body["geocoding_precision"] = existing.geocoding_precision
            ctx.warn("latitude", "no usable coordinates: the stored point is kept")
        location = locations.update(
            session=session,
            principal=ctx.principal,
            location=existing,
            data=ImportedLocationUpdate.model_validate(body),
        )
    contacts = _contacts(ctx, "location_id", location.id, data.get("contacts"))
    imported_records.replace_contacts(
        session, "location_id", location.id, contacts, field="contacts"
    )
    _metadata(ctx, location.id)
    _keep_last_modified(ctx, location)


_SERVICE_FIELDS = set(ServiceCreate.model_fields) - {
    "id",
    "organization_id",
    "phones",
    "languages",
    "schedules",
    "cost_options",
    "required_documents",
    "service_areas",
    "attributes",
    "program_id",
    "capacity",
}
_SERVICE_NESTED: tuple[tuple[str, type[SQLModel]], ...] = (
    ("languages", Language),
    ("schedules", Schedule),
    ("cost_options", CostOption),
    ("required_documents", RequiredDocument),
    ("service_areas", ServiceArea),
)
_SERVICE_KEPT = {
    "id",
    "organization_id",
    "phones",
    "attributes",
    "program_id",
    "program",
    "contacts",
    "funding",
    "fees",
    "assured_date",
    "assured_by",
    "assurer_email",
    "capacity",
    "capacities",
    "metadata",
    "last_modified",
    *(name for name, _ in _SERVICE_NESTED),
}


def _service_areas(ctx: _Context, areas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Service areas the domain can keep: an extent that is no GeoJSON (the examples' "extent")
    cannot be kept as an area; the area is left out with a warning naming it."""
    kept = []
    for index, area in enumerate(areas):
        extent, geometry = area.get("extent"), area.get("geometry")
        usable = geometry is not None or isinstance(extent, Mapping)
        if isinstance(extent, str):
            with suppress(ValueError):
                usable = usable or isinstance(json.loads(extent), Mapping)
        if usable:
            kept.append(area)
        else:
            ctx.warn(
                f"service_areas.{index}.extent",
                "not a GeoJSON polygon: the service area was not imported",
            )
    return kept


def _cost_options(ctx: _Context, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for index, item in enumerate(items):
        currency = item.get("currency")
        if isinstance(currency, str) and currency != currency.upper():
            item["currency"] = currency.upper()
            ctx.warn(f"cost_options.{index}.currency", "currency code upper-cased (ISO 4217)")
    return items


def _attributes(
    ctx: _Context, service_id: uuid.UUID
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The service's attributes split: categories and Open Eligibility terms (the domain's)
    and links to other taxonomies' terms (kept as plain HSDS attributes)."""
    items = _child_items(
        ctx, Attribute, "link_id", service_id, ctx.flat.data.get("attributes"), key="attributes"
    )
    ours, foreign = [], []
    for item in items:
        term = _as_dict(item.get("taxonomy_term"))
        term_id = _optional_uuid(item.get("taxonomy_term_id") or (term or {}).get("id"))
        value = {
            "id": item["id"],
            "taxonomy_term_id": term_id,
            "link_type": item.get("link_type"),
            "value": item.get("value"),
            "label": item.get("label"),
        }
        stored = None if term_id is None else ctx.session.get(TaxonomyTerm, term_id)
        if stored is not None and stored.taxonomy_id not in (
            None,
            imported_records.OWN_TAXONOMY_ID,
            imported_records.OPEN_ELIGIBILITY_TAXONOMY_ID,
        ):
            foreign.append(value)
        else:
            ours.append({**value, "link_entity": item.get("link_entity")})
    return ours, foreign


def _capacity_number(value: Any, name: str, *, optional: bool = False) -> float | None:
    """A capacity figure: a number of places, not negative."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name}: not a number of places")
    if value < 0:
        raise ValueError(f"{name}: a number of places is not negative")
    return float(value)


def _capacity(ctx: _Context, service_id: uuid.UUID) -> list[dict[str, Any]]:
    """The service's capacity figures: HSDS 3.1 draft ``capacities`` (ids and units as
    stated), else the profile's served ``capacity`` (a unit named by its identifier). Each
    keeps its ``updated`` instant (the import's when the source has none); ``stale`` is
    evaluated at each read, so it is not kept."""
    data = ctx.flat.data
    key = "capacities" if "capacities" in data else "capacity"
    items = _child_items(ctx, ServiceCapacity, "service_id", service_id, data.get(key), key=key)
    now = datetime.now(UTC)
    figures = []
    for index, item in enumerate(items):
        unit = item.get("unit")
        if isinstance(unit, Mapping):
            unit = dict(unit)
            unit["id"] = _optional_uuid(unit.get("id"))
        elif isinstance(item.get("unit_id"), str | uuid.UUID):
            unit = {"id": _uuid(item["unit_id"])}
        elif isinstance(unit, str) and unit.strip():
            unit = {"identifier": unit, "scheme": "referral-net"}
        else:
            raise KeyError(f"{key}.{index}.unit")
        if unit.get("id") is None and not unit.get("identifier"):
            raise KeyError(f"{key}.{index}.unit.identifier")
        available = _capacity_number(item.get("available"), f"{key}.{index}.available")
        maximum = _capacity_number(item.get("maximum"), f"{key}.{index}.maximum", optional=True)
        if maximum is not None and available is not None and available > maximum:
            raise ValueError(f"{key}.{index}: available exceeds maximum")
        figures.append(
            {
                "id": item["id"],
                "unit": unit,
                "available": available,
                "maximum": maximum,
                "description": item.get("description"),
                "updated": _datetime(item.get("updated")) or now,
            }
        )
    return figures


def _program(ctx: _Context, organization_id: uuid.UUID | None) -> uuid.UUID | None:
    data = ctx.flat.data
    program = _as_dict(data.get("program"))
    if program is not None and organization_id is not None and program.get("id"):
        program["id"] = _uuid(program["id"])
        imported_records.upsert_programs(ctx.session, organization_id, [program])
    program_id = _optional_uuid(data.get("program_id") or (program or {}).get("id"))
    if program_id is None:
        return None
    owner = imported_records.program_owner(ctx.session, program_id)
    if owner is None or owner != organization_id:
        ctx.warn("program_id", "no such program of the service's organization: link not kept")
        return None
    return program_id


def _write_service(ctx: _Context) -> None:
    data = ctx.flat.data
    session = ctx.session
    service_id = _uuid(data["id"])
    organization_id = _optional_uuid(data.get("organization_id"))
    ctx.not_kept(set(data) - _SERVICE_FIELDS - _SERVICE_KEPT)
    body: dict[str, Any] = _pick(data, _SERVICE_FIELDS)
    body["phones"] = _phones(ctx, "service_id", service_id, data.get("phones"))
    for name, model in _SERVICE_NESTED:
        body[name] = _child_items(ctx, model, "service_id", service_id, data.get(name), key=name)
    body["schedules"] = _schedules(ctx, "service_id", service_id, data.get("schedules"))
    body["service_areas"] = _service_areas(ctx, body["service_areas"])
    body["cost_options"] = _cost_options(ctx, body["cost_options"])
    ours, foreign = _attributes(ctx, service_id)
    if "attributes" in data:
        # Only what the record has: ``categories`` alone set the categories, and an empty
        # ``attributes`` beside them would name other ones.
        body["attributes"] = ours
    capacity = _capacity(ctx, service_id)
    body["program_id"] = _program(ctx, organization_id)
    existing = common.get_unless_absent(session, Service, service_id)
    if existing is None:
        _require(ctx, Organization, organization_id, "organization_id")
        service = services.create(
            session=session,
            principal=ctx.principal,
            data=ServiceCreate.model_validate(
                {**body, "id": service_id, "organization_id": organization_id}
            ),
            trusted_ids=True,
        )
    else:
        if organization_id is not None and organization_id != existing.organization_id:
            raise _Refused(
                [
                    Problem(
                        "service",
                        ctx.flat.origin,
                        "organization_id",
                        "the stored service belongs to another organization",
                        str(service_id),
                    )
                ]
            )
        service = services.update(
            session=session,
            principal=ctx.principal,
            service=services.editable(
                session=session, principal=ctx.principal, service_id=service_id
            ),
            data=ServiceUpdate.model_validate(body),
        )
    imported_records.replace_foreign_attributes(session, "service", service.id, foreign)
    imported_records.set_service_columns(
        session,
        service,
        fees=data.get("fees"),
        assured_date=date.fromisoformat(data["assured_date"])
        if isinstance(data.get("assured_date"), str)
        else data.get("assured_date"),
        assured_by=data.get("assured_by"),
        assurer_email=data.get("assurer_email"),
    )
    imported_records.replace_capacity(session, service.id, capacity, field="capacities")
    contacts = _contacts(ctx, "service_id", service.id, data.get("contacts"))
    imported_records.replace_contacts(session, "service_id", service.id, contacts, field="contacts")
    funding = _child_items(
        ctx, Funding, "service_id", service.id, data.get("funding"), key="funding"
    )
    imported_records.replace_funding(session, "service_id", service.id, funding, field="funding")
    _metadata(ctx, service.id)
    _keep_last_modified(ctx, service)


_LINK_KEPT = {
    "id",
    "service_id",
    "location_id",
    "description",
    "phones",
    "schedules",
    "contacts",
    "service_name",
    "location_name",
    "last_modified",
}


def _write_link(ctx: _Context) -> None:
    data = ctx.flat.data
    session = ctx.session
    link_id = _uuid(data["id"])
    ctx.not_kept(set(data) - _LINK_KEPT)
    service_id = _optional_uuid(data.get("service_id"))
    location_id = _optional_uuid(data.get("location_id"))
    existing = common.get_unless_absent(session, ServiceAtLocation, link_id)
    if existing is None:
        link = service_at_locations.create(
            session=session,
            principal=ctx.principal,
            data=ServiceAtLocationCreate(
                id=link_id,
                service_id=_require(ctx, Service, service_id, "service_id"),
                location_id=_require(ctx, Location, location_id, "location_id"),
                description=data.get("description"),
            ),
            trusted_ids=True,
        )
    else:
        if (existing.service_id, existing.location_id) != (service_id, location_id):
            raise _Refused(
                [
                    Problem(
                        "service_at_location",
                        ctx.flat.origin,
                        "service_id",
                        "the stored link with this id joins another service or location",
                        str(link_id),
                    )
                ]
            )
        link = service_at_locations.update(
            session=session,
            principal=ctx.principal,
            link=existing,
            data=ServiceAtLocationUpdate.model_validate({"description": data.get("description")}),
        )
    phones = [
        PhoneIn.model_validate(p)
        for p in _phones(ctx, "service_at_location_id", link.id, data.get("phones"))
    ]
    schedules = [
        ScheduleIn.model_validate(s)
        for s in _schedules(ctx, "service_at_location_id", link.id, data.get("schedules"))
    ]
    contacts = _contacts(ctx, "service_at_location_id", link.id, data.get("contacts"))
    imported_records.replace_link_nested(
        session, link, phones=phones, schedules=schedules, contacts=contacts
    )


def _write_taxonomy(ctx: _Context) -> None:
    data = dict(ctx.flat.data)
    ctx.not_kept(set(data) - {"id", "name", "description", "uri", "version"})
    data["id"] = _uuid(data["id"])
    if not isinstance(data.get("name"), str) or not data["name"].strip():
        raise KeyError("name")
    imported_records.upsert_taxonomy(ctx.session, data)


_TERM_KEPT = {
    "id",
    "code",
    "name",
    "description",
    "parent_id",
    "taxonomy",
    "taxonomy_id",
    "language",
    "term_uri",
}


# What a served term of our own taxonomies adds to HSDS (an export has them): compared, not kept.
_OWN_TERM_SERVED = {"parent_code", "localized", "translations", "open_eligibility"}


def _check_own_term(ctx: _Context, term_id: uuid.UUID) -> None:
    """A term of our own taxonomies is ``taxonomy load``'s: one equal to the stored term (as an
    export serves it) is accepted as it is, nothing written; any other is refused."""
    stored = ctx.session.get(TaxonomyTerm, term_id)

    def refused(field_name: str, message: str) -> _Refused:
        return _Refused(
            [Problem("taxonomy_term", ctx.flat.origin, field_name, message, str(term_id))]
        )

    if stored is None:
        raise refused(
            "id",
            "not a stored term of referral-net's own taxonomies: those come from `taxonomy load`",
        )
    served: dict[str, Any] = export.term_reads(ctx.session, [stored], "es")[0].model_dump(
        mode="json"
    )
    # ``localized`` is the label in the reader's language: it depends on who asked, not on the term.
    for name in sorted((set(ctx.flat.data) & (_TERM_KEPT | _OWN_TERM_SERVED)) - {"localized"}):
        given = ctx.flat.data[name]
        if name == "description" and given is None:
            given = ""
        if json.loads(json.dumps(given, default=str)) != served.get(name):
            raise refused(
                name,
                "differs from the stored term of referral-net's own taxonomies: those change "
                "through `taxonomy load` only",
            )
    ctx.not_kept(set(ctx.flat.data) - _TERM_KEPT - _OWN_TERM_SERVED)


def _write_term(ctx: _Context) -> None:
    data = dict(ctx.flat.data)
    session = ctx.session
    if _optional_uuid(data.get("taxonomy_id")) not in (
        imported_records.OWN_TAXONOMY_ID,
        imported_records.OPEN_ELIGIBILITY_TAXONOMY_ID,
    ):
        ctx.not_kept(set(data) - _TERM_KEPT)
    term_id = _uuid(data["id"])
    if not isinstance(data.get("name"), str) or not data["name"].strip():
        raise KeyError("name")
    data["id"] = term_id
    data["taxonomy_id"] = _optional_uuid(data.get("taxonomy_id"))
    if data["taxonomy_id"] in (
        imported_records.OWN_TAXONOMY_ID,
        imported_records.OPEN_ELIGIBILITY_TAXONOMY_ID,
    ):
        _check_own_term(ctx, term_id)
        return
    if data["taxonomy_id"] is not None and session.get(Taxonomy, data["taxonomy_id"]) is None:
        ctx.warn("taxonomy_id", "no such taxonomy: the term is kept without it")
        data["taxonomy_id"] = None
    parent = _optional_uuid(data.get("parent_id"))
    data["parent_id"] = None
    if parent is not None and parent != term_id:
        if session.get(TaxonomyTerm, parent) is not None:
            data["parent_id"] = parent
        else:
            ctx.pending.append(
                _Pending("taxonomy_term", ctx.flat.origin, term_id, parent, "parent_id")
            )
    imported_records.upsert_term(session, data)


_WRITERS: dict[RecordTable, Callable[[_Context], None]] = {
    "taxonomy": _write_taxonomy,
    "taxonomy_term": _write_term,
    "organization": _write_organization,
    "location": _write_location,
    "service": _write_service,
    "service_at_location": _write_link,
}


# --- problems ---------------------------------------------------------------------------------


def _field_of(raw: str) -> str:
    """A domain error's field without its request location (``body.phones.0`` -> ``phones.0``)."""
    return raw.removeprefix("body.").removeprefix("body")


def problems_of(  # noqa: PLR0911 - one answer per kind of error
    exc: BaseException, *, table: str, origin: str, record_id: str | None, confidential: bool
) -> list[Problem]:
    """The problems an error of one record stands for (every field error of it).

    For a location that would be confidential the messages are generic: a validator's message
    may quote the value (a phone number, an address).
    """

    def problem(field_name: str, message: str) -> Problem:
        if confidential:
            message = "invalid value (not shown: the location is confidential)"
        return Problem(table, origin, field_name, message, record_id)

    if isinstance(exc, _Refused):
        return exc.problems
    if isinstance(exc, ValidationError):
        return [
            problem(".".join(str(part) for part in error["loc"]), error["msg"])
            for error in exc.errors(include_input=False, include_url=False)
        ]
    if isinstance(exc, ReferralNetError):
        if exc.errors:
            return [
                problem(_field_of(str(item.get("field", ""))), str(item.get("message", "")))
                for item in exc.errors
            ]
        return [problem("", exc.detail)]
    if isinstance(exc, KeyError):
        return [problem(str(exc.args[0]) if exc.args else "", "required field missing")]
    if isinstance(exc, SQLAlchemyError):
        # The driver's text may quote the row's values: only the kind of failure is said.
        return [problem("", f"the database refused the record ({type(exc).__name__})")]
    return [problem("", str(exc))]


# --- the import -------------------------------------------------------------------------------


class _Importer:
    """One import's state: the connection, the counts, what was written, what is pending."""

    def __init__(
        self,
        connection: Connection,
        options: ImportOptions,
        report: ImportReport,
        principal: Principal,
        audit_key: SecretStr | str | None,
    ) -> None:
        self.connection = connection
        self.options = options
        self.report = report
        self.principal = principal
        self.audit_key = audit_key
        self.seen: dict[tuple[str, uuid.UUID], bytes] = {}
        self.pending: list[_Pending] = []

    def session(self) -> Session:
        """A session whose commits are SAVEPOINT releases inside the import's transaction."""
        session = Session(
            bind=self.connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        audit.use_key(session, self.audit_key)
        return session

    def take(self, record: SourceRecord) -> None:
        """Write one source record in its own SAVEPOINT, or refuse it with its problems."""
        self.report.warnings.extend(record.warnings)
        if record.problems:
            self.report.errors.extend(record.problems)
            self.report.table(record.table).refused += 1
            return
        flats = flatten(record.table, record.data, record.origin)
        savepoint = self.connection.begin_nested()
        outcomes: list[tuple[_Flat, str, bytes]] = []
        errors: list[Problem] = []
        warnings: list[Problem] = []
        pending: list[_Pending] = []
        in_record: dict[tuple[str, uuid.UUID], bytes] = {}
        for flat in flats:
            fingerprint = _hash(flat.data)
            key = self._key(flat)
            if key is not None and fingerprint in (self.seen.get(key), in_record.get(key)):
                continue  # the same record nested twice in this import: written once
            if key is not None:
                in_record[key] = fingerprint
            try:
                outcome, ctx = self._write(flat)
            except _FlatFailed as failed:
                errors.extend(failed.problems)
                warnings.extend(failed.warnings)
                outcomes.append((flat, "refused", fingerprint))
                continue
            warnings.extend(ctx.warnings)
            pending.extend(ctx.pending)
            outcomes.append((flat, outcome, fingerprint))
        self.report.warnings.extend(warnings)
        if errors:
            savepoint.rollback()
            self.report.errors.extend(errors)
            for flat, _, _ in outcomes:
                self.report.table(flat.table).refused += 1
            return
        savepoint.commit()
        self.pending.extend(pending)
        for flat, outcome, fingerprint in outcomes:
            counts = self.report.table(flat.table)
            setattr(counts, outcome, getattr(counts, outcome) + 1)
            key = self._key(flat)
            if key is not None:
                self.seen[key] = fingerprint

    def take_page(self, records: Sequence[SourceRecord]) -> None:
        """Write a page of source records: all at once when every record of it is new (the
        first import of a directory), else (or when any record is refused) one by one."""
        if not self._take_new_page(records):
            for record in records:
                self.take(record)

    def _take_new_page(self, records: Sequence[SourceRecord]) -> bool:
        """Write a page whose flat records are all new, in one SAVEPOINT and one session; False
        (nothing written) when it is not such a page or any record is refused.

        The records go through the same writers and domain use cases as one by one; what is
        saved is the per-record machinery a record known to be new does not need: its stored
        state before and after (it has none before, so it is ``created``), a SAVEPOINT per
        record and per flat record, a refresh of the search read model per write (one for the
        page), a read of the audit trail's tail per write (chained in memory), an INSERT of
        history rows per write (one for the page), and the reads that check ids are free or
        fetch a new record's nested rows back (``common.note_absent``).
        """
        first: dict[tuple[str, uuid.UUID], bytes] = {}
        flats_of = self._new_flats(records, first)
        keys = list(first)
        if flats_of is None or self._any_stored(keys):
            return False
        fingerprints = list(first.values())
        savepoint = self.connection.begin_nested()
        # "rollback_only": the domain's commits end the session's transaction (flush, hooks)
        # but leave the page's SAVEPOINT open.
        session = Session(
            bind=self.connection, join_transaction_mode="rollback_only", expire_on_commit=False
        )
        audit.use_key(session, self.audit_key)
        contexts: list[list[_Context]] = []
        try:
            self._prepare_page_session(session, keys, list(chain.from_iterable(flats_of)))
            with (
                audit.tail_in_session(session),
                search_model.refreshed_once(session),
                creates_recorded_together(session),
            ):
                for flats in flats_of:
                    contexts.append([])
                    for flat in flats:
                        ctx = _Context(
                            session=session,
                            principal=self.principal,
                            options=self.options,
                            flat=flat,
                        )
                        _WRITERS[flat.table](ctx)
                        contexts[-1].append(ctx)
            session.flush()
        except (*_RECORD_ERRORS, _Refused):
            session.close()
            savepoint.rollback()
            return False
        session.close()
        savepoint.commit()
        written = iter(zip(keys, fingerprints, strict=True))
        for record, flats, record_contexts in zip(records, flats_of, contexts, strict=True):
            self.report.warnings.extend(record.warnings)
            for flat, ctx in zip(flats, record_contexts, strict=True):
                self.report.warnings.extend(ctx.warnings)
                self.pending.extend(ctx.pending)
                self.report.table(flat.table).created += 1
                key, fingerprint = next(written)
                self.seen[key] = fingerprint
        return True

    @staticmethod
    def _prepare_page_session(
        session: Session, keys: Sequence[tuple[str, uuid.UUID]], flats: Sequence[_Flat]
    ) -> None:
        """Spare a page's session the queries a page of new records would repeat.

        The session keeps every record it loads or writes (its identity map alone holds them
        weakly, so an organization fetched for one record was fetched again for the next),
        knows that the page's own ids are free, and loads the organizations, services and
        locations the page's records point at in one query per table.
        """
        kept: list[object] = []
        event.listen(session, "loaded_as_persistent", lambda _s, record: kept.append(record))
        event.listen(session, "pending_to_persistent", lambda _s, record: kept.append(record))
        session.info[_KEPT] = kept
        new_ids: dict[str, set[uuid.UUID]] = {}
        for table, record_id in keys:
            new_ids.setdefault(table, set()).add(record_id)
        for table, ids in new_ids.items():
            common.note_absent(session, _MODELS[table], ids)
        parents: dict[str, set[uuid.UUID]] = {}
        for flat in flats:
            for name in _PARENTS_OF[flat.table]:
                parent = _optional_uuid(flat.data.get(f"{name}_id"))
                if parent is not None and parent not in new_ids.get(name, ()):
                    parents.setdefault(name, set()).add(parent)
        nested: set[uuid.UUID] = set()
        for flat in flats:
            _nested_ids(flat.data, nested, top=True)
        for model in _NESTED_ID_MODELS:
            common.note_absent(session, model, nested - _stored_ids(session, model, nested))
        areas.look_up_area_codes(session, [p for p in map(_given_point, flats) if p is not None])
        service_at_locations.note_unlinked(
            session,
            [
                (service_id, location_id)
                for flat in flats
                if flat.table == "service_at_location"
                and (service_id := _optional_uuid(flat.data.get("service_id"))) is not None
                and (location_id := _optional_uuid(flat.data.get("location_id"))) is not None
            ],
        )
        for table, ids in parents.items():
            model = _MODELS[table]
            column = SQLModel.metadata.tables[table].c.id
            listed = sorted(ids)
            for start in range(0, len(listed), _ID_CHUNK):
                chunk = listed[start : start + _ID_CHUNK]
                session.exec(select(model).where(column.in_(chunk))).all()

    def _new_flats(
        self, records: Sequence[SourceRecord], first: dict[tuple[str, uuid.UUID], bytes]
    ) -> list[list[_Flat]] | None:
        """The flat records of each source record, each record once (``first`` gets their keys
        and fingerprints); None when a page cannot be written at once: a record with problems,
        one written earlier in this import, or one given twice with different content."""
        if any(record.problems for record in records):
            return None
        flats_of: list[list[_Flat]] = []
        for record in records:
            flats_of.append([])
            for flat in flatten(record.table, copy.deepcopy(record.data), record.origin):
                key = self._key(flat)
                if flat.table not in _NEW_PAGE_TABLES or key is None or key in self.seen:
                    return None
                fingerprint = _hash(flat.data)
                if key in first:
                    if first[key] != fingerprint:
                        return None  # a record given twice, differently: an update
                    continue  # the same record nested twice: written once, as one by one
                first[key] = fingerprint
                flats_of[-1].append(flat)
        return flats_of

    def _any_stored(self, keys: Sequence[tuple[str, uuid.UUID]]) -> bool:
        """Whether any of these records is in the database already (one query per table)."""
        by_table: dict[str, list[uuid.UUID]] = {}
        for table, record_id in keys:
            by_table.setdefault(table, []).append(record_id)
        for table, ids in by_table.items():
            column = SQLModel.metadata.tables[table].c.id
            for start in range(0, len(ids), _ID_CHUNK):
                found = self.connection.execute(
                    select(column).where(column.in_(ids[start : start + _ID_CHUNK])).limit(1)
                ).first()
                if found is not None:
                    return True
        return False

    @staticmethod
    def _key(flat: _Flat) -> tuple[str, uuid.UUID] | None:
        raw = flat.data.get("id")
        return None if raw in (None, "") else (flat.table, _uuid(raw))

    def _write(self, flat: _Flat) -> tuple[str, _Context]:
        """Write one flat record in a SAVEPOINT: created, updated or (rolled back) unchanged."""
        savepoint = self.connection.begin_nested()
        session = self.session()
        ctx = _Context(session=session, principal=self.principal, options=self.options, flat=flat)
        record_id: uuid.UUID | None = None
        try:
            if flat.data.get("id") in (None, ""):
                raise KeyError("id")
            record_id = _uuid(flat.data["id"])
            before = _state(session, flat.table, record_id)
            _WRITERS[flat.table](ctx)
            session.commit()
            after = _state(session, flat.table, record_id)
        except (*_RECORD_ERRORS, _Refused) as exc:
            session.rollback()
            session.close()
            savepoint.rollback()
            raise _FlatFailed(
                problems_of(
                    exc,
                    table=flat.table,
                    origin=flat.origin,
                    record_id=None if record_id is None else str(record_id),
                    confidential=ctx.confidential,
                ),
                ctx.warnings,
            ) from None
        session.close()
        if before is not None and before == after:
            savepoint.rollback()
            return "unchanged", ctx
        savepoint.commit()
        return ("created" if before is None else "updated"), ctx

    def finish(self) -> None:
        """Set the links to records that came later in the source; warn about the rest (and
        about a link the domain refuses, such as a parent that would make a cycle)."""
        for link in self.pending:
            savepoint = self.connection.begin_nested()
            session = self.session()
            try:
                linked = self._link(session, link)
                session.commit()
            except _RECORD_ERRORS as exc:
                session.rollback()
                linked = False
                reason = problems_of(
                    exc, table=link.table, origin=link.origin, record_id=None, confidential=False
                )[0].message
            else:
                reason = "no such record in the database or the import"
            session.close()
            if linked:
                savepoint.commit()
                continue
            savepoint.rollback()
            self.report.warnings.append(
                Problem(
                    link.table,
                    link.origin,
                    link.field,
                    f"{reason}: link not kept",
                    str(link.record_id),
                )
            )

    def _link(self, session: Session, link: _Pending) -> bool:
        """Set one pending link; False when either end is missing."""
        if link.table == "organization":
            target = session.get(Organization, link.target_id)
            record = session.get(Organization, link.record_id)
            if target is None or record is None:
                return False
            organizations.update(
                session=session,
                principal=self.principal,
                organization=record,
                data=OrganizationUpdate.model_validate({"parent_organization_id": target.id}),
            )
            return True
        term_target = session.get(TaxonomyTerm, link.target_id)
        term = session.get(TaxonomyTerm, link.record_id)
        if term_target is None or term is None:
            return False
        term.parent_id = term_target.id
        session.add(term)
        return True

    def record_audit(self) -> None:
        """One audit entry for the whole import, with its counts."""
        session = self.session()
        audit.append(
            session=session,
            actor=self.principal.audit_name,
            role=self.principal.role.value,
            action=AUDIT_ACTION,
            resource_type=AUDIT_RESOURCE,
            resource_id=None,
            endpoint="import",
            detail={
                "source": self.report.source,
                "skip_invalid": self.report.skip_invalid,
                "counts": {
                    name: counts.as_json() for name, counts in sorted(self.report.counts.items())
                },
                "errors": len(self.report.errors),
                "warnings": len(self.report.warnings),
            },
        )
        session.commit()
        session.close()


class _FlatFailed(Exception):
    """A flat record was refused: its problems and the warnings gathered before."""

    def __init__(self, problems: list[Problem], warnings: list[Problem]) -> None:
        super().__init__(problems[0].message if problems else "refused")
        self.problems = problems
        self.warnings = warnings


def _nested_ids(value: Any, into: set[uuid.UUID], *, top: bool = False) -> None:
    """Add the ids of the records nested anywhere in ``value`` (not its own) to ``into``."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key == "id" and not top:
                if item not in (None, ""):
                    into.add(_uuid(item))
            else:
                _nested_ids(item, into)
    elif isinstance(value, list):
        for item in value:
            _nested_ids(item, into)


def _stored_ids(session: Session, model: type[SQLModel], ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """Those of ``ids`` that rows of ``model`` hold (one query per 500 ids)."""
    column = SQLModel.metadata.tables[str(model.__tablename__)].c.id
    listed = sorted(ids)
    found: set[uuid.UUID] = set()
    for start in range(0, len(listed), _ID_CHUNK):
        chunk = listed[start : start + _ID_CHUNK]
        found.update(session.execute(select(column).where(column.in_(chunk))).scalars())
    return found


def _given_point(flat: _Flat) -> tuple[float, float] | None:
    """A location's (latitude, longitude) as its writer will read them, when both are numbers
    (whatever else the writer decides of them; a point looked up and not used costs nothing)."""
    if flat.table != "location":
        return None
    try:
        point = (float(flat.data["latitude"]), float(flat.data["longitude"]))
    except (KeyError, TypeError, ValueError):
        return None
    return point if all(math.isfinite(value) for value in point) else None


def _pages(records: Iterable[SourceRecord], size: int) -> Iterator[list[SourceRecord]]:
    """The records in lists of ``size`` (the last one shorter), read as they are needed."""
    iterator = iter(records)
    while page := list(islice(iterator, size)):
        yield page


def import_principal(actor: str) -> Principal:
    """The steward-like system principal an import writes as (``actor`` names it in history
    and the audit trail)."""
    return Principal(role=Role.STEWARD, subject=actor)


def run_import(
    *,
    engine: Engine,
    records: Iterable[SourceRecord],
    options: ImportOptions,
    on_progress: Callable[[int], None] | None = None,
    actor: str = "system:import",
    audit_key: SecretStr | str | None = None,
) -> ImportReport:
    """Import ``records`` (see the module doc) and report; ``on_progress`` is called with the
    number of source records handled so far. Bad data never raises: it is in the report."""
    report = ImportReport(
        source=options.source_name, dry_run=options.dry_run, skip_invalid=options.skip_invalid
    )
    with write_bind(engine).connect() as connection:
        outer = connection.begin()
        try:
            importer = _Importer(connection, options, report, import_principal(actor), audit_key)
            handled = 0
            for page in _pages(records, PAGE_SIZE):
                importer.take_page(page)
                handled += len(page)
                if on_progress is not None:
                    on_progress(handled)
            if not report.errors or options.skip_invalid:
                importer.finish()
            keep = not options.dry_run and (not report.errors or options.skip_invalid)
            if keep:
                importer.record_audit()
                outer.commit()
                report.written = True
            else:
                outer.rollback()
        except BaseException:
            if outer.is_active:
                outer.rollback()
            raise
    return report
