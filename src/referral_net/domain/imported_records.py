"""The writes an HSDS import needs beyond the API's create and update bodies.

The API's ``XCreate`` schemas do not take every HSDS field a publisher's file holds: contacts
(with their phones), funding, programs, organization identifiers, the phones, schedules and
contacts of a service at a location, a service's verification columns, imported ``metadata``
rows, attributes linking to other taxonomies' terms, taxonomies and their terms, and how a
location's point was placed. An import (``exchange/importer.py``) writes the record through its
domain use case first, then these, in the same transaction; each function flushes (unless the
session flushes a page's new rows together, ``common.flush_or_defer``) and leaves the commit to
its caller. Nested rows keep the ids they name (``common.replace_children``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, select

from referral_net.db.models import (
    Attribute,
    Contact,
    Funding,
    Location,
    Metadata,
    OrganizationIdentifier,
    Program,
    Schedule,
    Service,
    ServiceAtLocation,
    ServiceCapacity,
    Taxonomy,
    TaxonomyTerm,
    Unit,
)
from referral_net.domain.common import (
    flush_or_defer,
    fresh_children,
    replace_children,
    replace_nested,
    replace_phones,
)
from referral_net.domain.services import _UNIT_NAMES as UNIT_NAMES
from referral_net.domain.taxonomy import OPEN_ELIGIBILITY_TAXONOMY_ID, OWN_TAXONOMY_ID
from referral_net.schemas.directory import PhoneIn, ScheduleIn

# Terms of any taxonomy but our own (domain.taxonomy.OWN_TAXONOMY_ID) that an import brings are
# "foreign": linked as plain HSDS attributes, never as categories.
__all__ = ["OPEN_ELIGIBILITY_TAXONOMY_ID", "OWN_TAXONOMY_ID"]


def replace_contacts(
    session: Session,
    fk: str,
    parent_id: uuid.UUID,
    contacts: Sequence[Mapping[str, Any]],
    *,
    field: str,
) -> None:
    """Make ``contacts`` (each a mapping with an ``id`` and its ``phones`` as PhoneIn) the
    contacts of one organization, service, location or service at a location."""
    rows = [
        Contact(
            id=contact["id"],
            name=contact.get("name"),
            title=contact.get("title"),
            department=contact.get("department"),
            email=contact.get("email"),
            **{fk: parent_id},
        )
        for contact in contacts
    ]
    replace_children(session, Contact, fk, parent_id, rows, field=field)
    for index, contact in enumerate(contacts):
        phones: list[PhoneIn] = list(contact.get("phones") or [])
        replace_phones(
            session,
            "contact_id",
            contact["id"],
            phones,
            field=f"{field}.{index}.phones",
            may_choose_ids=True,
        )


def replace_funding(
    session: Session,
    fk: str,
    parent_id: uuid.UUID,
    items: Sequence[Mapping[str, Any]],
    *,
    field: str,
) -> None:
    """Make ``items`` (id, source) the funding of one organization or service."""
    rows = [Funding(id=item["id"], source=item.get("source"), **{fk: parent_id}) for item in items]
    replace_children(session, Funding, fk, parent_id, rows, field=field)


def replace_identifiers(
    session: Session,
    organization_id: uuid.UUID,
    items: Sequence[Mapping[str, Any]],
    *,
    field: str,
) -> None:
    """Make ``items`` the organization's identifiers (HSDS ``organization_identifier``)."""
    rows = [
        OrganizationIdentifier(
            id=item["id"],
            organization_id=organization_id,
            identifier_scheme=item.get("identifier_scheme"),
            identifier_type=item["identifier_type"],
            identifier=item["identifier"],
        )
        for item in items
    ]
    replace_children(
        session, OrganizationIdentifier, "organization_id", organization_id, rows, field=field
    )


def upsert_programs(
    session: Session, organization_id: uuid.UUID, items: Sequence[Mapping[str, Any]]
) -> None:
    """Create or update the organization's programs named here; others are left alone (a
    service elsewhere may point at them)."""
    for item in items:
        program = session.get(Program, item["id"]) or Program(
            id=item["id"], organization_id=organization_id, name=item["name"]
        )
        program.organization_id = organization_id
        program.name = item["name"]
        program.alternate_name = item.get("alternate_name")
        program.description = item.get("description") or ""
        session.add(program)
    flush_or_defer(session)


def program_owner(session: Session, program_id: uuid.UUID) -> uuid.UUID | None:
    """The organization a stored program belongs to, or None when there is no such program."""
    program = session.get(Program, program_id)
    return None if program is None else program.organization_id


def set_service_columns(
    session: Session,
    service: Service,
    *,
    fees: str | None,
    assured_date: date | None,
    assured_by: str | None,
    assurer_email: str | None,
) -> None:
    """Set the service columns the API's bodies leave to other endpoints (HSDS ``fees``, the
    verification date and who verified)."""
    service.fees = fees
    service.assured_date = assured_date
    service.assured_by = assured_by
    service.assurer_email = assurer_email
    session.add(service)
    flush_or_defer(session)


def unit_for(session: Session, unit: Mapping[str, Any]) -> Unit:
    """The stored unit an imported capacity figure counts in: the one with its id, else the one
    with its scheme and identifier (``bed`` of ours), else a new one with the id it names."""
    if unit.get("id") is not None:
        found = session.get(Unit, unit["id"])
        if found is not None:
            return found
    identifier = unit.get("identifier")
    if identifier is not None:
        same = select(Unit).where(col(Unit.identifier) == identifier)
        if unit.get("scheme") is not None:
            same = same.where(col(Unit.scheme) == unit["scheme"])
        found = session.exec(same.order_by(col(Unit.id))).first()
        if found is not None:
            return found
    name = unit.get("name") or UNIT_NAMES.get(str(identifier), str(identifier))
    created = Unit(
        id=unit.get("id") or uuid.uuid4(),
        name=name,
        scheme=unit.get("scheme"),
        identifier=identifier,
        uri=unit.get("uri"),
    )
    session.add(created)
    flush_or_defer(session)
    return created


def replace_capacity(
    session: Session,
    service_id: uuid.UUID,
    items: Sequence[Mapping[str, Any]],
    *,
    field: str,
) -> None:
    """Make ``items`` (id, unit as a mapping, available, maximum, description, updated) the
    service's capacity figures, each with the instant the source says it was counted (a figure
    is only as fresh as its count; ``stale`` is evaluated at each read)."""
    rows = [
        ServiceCapacity(
            id=item["id"],
            service_id=service_id,
            unit_id=unit_for(session, item["unit"]).id,
            available=item["available"],
            maximum=item.get("maximum"),
            description=item.get("description"),
            updated=item["updated"],
        )
        for item in items
    ]
    replace_children(session, ServiceCapacity, "service_id", service_id, rows, field=field)


def replace_link_nested(
    session: Session,
    link: ServiceAtLocation,
    *,
    phones: Sequence[PhoneIn],
    schedules: Sequence[ScheduleIn],
    contacts: Sequence[Mapping[str, Any]],
) -> None:
    """The phones, schedules and contacts of a service at a location (HSDS 3.0 nests them)."""
    replace_phones(
        session,
        "service_at_location_id",
        link.id,
        list(phones),
        field="phones",
        may_choose_ids=True,
    )
    replace_nested(
        session,
        Schedule,
        "service_at_location_id",
        link.id,
        list(schedules),
        field="schedules",
        may_choose_ids=True,
    )
    replace_contacts(session, "service_at_location_id", link.id, contacts, field="contacts")


def set_placement(
    session: Session,
    location: Location,
    *,
    geocoding_precision: str | None,
    needs_geocoding: bool,
) -> None:
    """How the location's point was placed (given, town, municipality) and whether it still
    needs one (no coordinates, or coordinates out of range: never invented)."""
    location.geocoding_precision = geocoding_precision
    location.needs_geocoding = needs_geocoding
    session.add(location)
    flush_or_defer(session)


def set_last_modified(session: Session, record: Any, when: datetime) -> None:
    """Keep the source's ``last_modified`` on an imported record (``--keep-last-modified``)."""
    record.last_modified = when
    session.add(record)
    flush_or_defer(session)


def add_metadata(
    session: Session,
    resource_id: uuid.UUID,
    items: Sequence[Mapping[str, Any]],
) -> None:
    """Keep a source's HSDS ``metadata`` rows (its own change history) beside ours; a row whose
    id is already stored is left as it is (history is appended, never rewritten)."""
    for item in items:
        if session.get(Metadata, item["id"]) is not None:
            continue
        session.add(
            Metadata(
                id=item["id"],
                resource_id=item.get("resource_id") or resource_id,
                resource_type=item["resource_type"],
                last_action_date=item["last_action_date"],
                last_action_type=item["last_action_type"],
                field_name=item["field_name"],
                previous_value=item.get("previous_value") or "",
                replacement_value=item.get("replacement_value") or "",
                updated_by=item["updated_by"],
            )
        )
    flush_or_defer(session)


def replace_foreign_attributes(
    session: Session,
    link_entity: str,
    link_id: uuid.UUID,
    items: Sequence[Mapping[str, Any]],
) -> None:
    """Make ``items`` the attributes of one record that link terms of other taxonomies than
    ours (categories are the domain's ``attributes`` module's: those rows are left alone)."""
    fresh = fresh_children(session, Attribute, "link_id", link_id)
    current = (
        [row for row in fresh if row.link_entity == link_entity]
        if fresh is not None
        else list(
            session.exec(
                select(Attribute).where(
                    col(Attribute.link_entity) == link_entity, col(Attribute.link_id) == link_id
                )
            )
        )
    )
    wanted = {item["id"] for item in items}
    unwanted = [row for row in current if row.id not in wanted]
    if unwanted:
        # Only the terms these rows link are looked up (a new record has none).
        own = set(
            session.exec(
                select(col(TaxonomyTerm.id)).where(
                    col(TaxonomyTerm.taxonomy_id) == OWN_TAXONOMY_ID,
                    col(TaxonomyTerm.id).in_({row.taxonomy_term_id for row in unwanted}),
                )
            )
        )
        for row in unwanted:
            if row.taxonomy_term_id not in own:
                session.delete(row)
        flush_or_defer(session)
    if not items:
        return
    for item in items:
        row = session.get(Attribute, item["id"]) or Attribute(
            id=item["id"],
            link_id=link_id,
            link_entity=link_entity,
            taxonomy_term_id=item["taxonomy_term_id"],
        )
        row.link_id = link_id
        row.link_entity = link_entity
        row.taxonomy_term_id = item["taxonomy_term_id"]
        row.link_type = item.get("link_type")
        row.value = item.get("value")
        row.label = item.get("label")
        session.add(row)
    flush_or_defer(session)


def upsert_taxonomy(session: Session, data: Mapping[str, Any]) -> Taxonomy:
    """Create or update a taxonomy by id (name, description, uri, version)."""
    row = session.get(Taxonomy, data["id"]) or Taxonomy(id=data["id"], name=data["name"])
    row.name = data["name"]
    row.description = data.get("description") or ""
    row.uri = data.get("uri")
    row.version = data.get("version")
    session.add(row)
    flush_or_defer(session)
    return row


def upsert_term(session: Session, data: Mapping[str, Any]) -> TaxonomyTerm:
    """Create or update a taxonomy term by id (code, name, description, parent, taxonomy,
    language, term URI)."""
    row = session.get(TaxonomyTerm, data["id"]) or TaxonomyTerm(id=data["id"], name=data["name"])
    for name in ("code", "name", "parent_id", "taxonomy", "language", "taxonomy_id", "term_uri"):
        setattr(row, name, data.get(name))
    row.description = data.get("description") or ""
    session.add(row)
    flush_or_defer(session)
    return row


def is_own_term(session: Session, term_id: uuid.UUID) -> bool:
    """Whether a stored term belongs to our own taxonomy (a category)."""
    term = session.get(TaxonomyTerm, term_id)
    return term is not None and term.taxonomy_id == OWN_TAXONOMY_ID
