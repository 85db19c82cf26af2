"""HSDS nested records of many parents at once: phones, schedules, contacts, languages, ...

Each function reads the rows of one kind for many parents in a fixed number of queries and
returns them shaped (``schemas.nested``), grouped by the parent's id. The owner column names the
parent: ``service_id``, ``location_id``, ``organization_id`` or ``service_at_location_id``.
Visibility is the caller's business: a hidden site's nested rows must not be asked for.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from geoalchemy2.shape import to_shape
from sqlmodel import Session, col, select

from referral_net.db.models import (
    Attribute,
    Contact,
    Funding,
    Language,
    OrganizationIdentifier,
    Phone,
    Program,
    Schedule,
    ServiceArea,
    ServiceCapacity,
    TaxonomyTerm,
    Unit,
)
from referral_net.domain import taxonomy
from referral_net.domain.common import children_by
from referral_net.domain.languages import language_name
from referral_net.domain.taxonomy import CATEGORY_LINK_TYPE
from referral_net.geo.convert import to_geojson
from referral_net.schemas.nested import (
    AttributeRead,
    AttributeTermRead,
    ContactRead,
    FundingRead,
    LanguageRead,
    OrganizationIdentifierRead,
    PhoneRead,
    ProgramRead,
    ScheduleRead,
    ServiceAreaRead,
    ServiceCapacityRead,
    UnitRead,
)
from referral_net.vocab import Locale

Grouped = dict[uuid.UUID, list[Any]]


def _language(row: Language, locale: Locale) -> LanguageRead:
    return LanguageRead(
        id=row.id,
        code=row.code,
        name=language_name(row.code, locale, stored=row.name),
        note=row.note,
    )


def languages(
    session: Session, owner: str, ids: Sequence[uuid.UUID], locale: Locale
) -> dict[uuid.UUID, list[LanguageRead]]:
    """Languages of many parents, ordered by code (then id), names in ``locale``."""
    grouped: dict[uuid.UUID, list[LanguageRead]] = defaultdict(list)
    for parent, rows in children_by(session, Language, owner, list(ids)).items():
        rows.sort(key=lambda row: (row.code, str(row.id)))
        grouped[parent] = [_language(row, locale) for row in rows]
    return grouped


def _extension(value: str | None) -> int | None:
    """HSDS types ``phone.extension`` as a number; stored extensions are digits only (checked on
    write), so the conversion is exact; anything else (an older import) is left out."""
    return int(value) if value is not None and value.isdigit() else None


def phones(
    session: Session, owner: str, ids: Sequence[uuid.UUID], locale: Locale
) -> dict[uuid.UUID, list[PhoneRead]]:
    """Phones of many parents (in id order) with the languages spoken on each."""
    rows = children_by(session, Phone, owner, list(ids))
    spoken = languages(
        session, "phone_id", [p.id for found in rows.values() for p in found], locale
    )
    grouped: dict[uuid.UUID, list[PhoneRead]] = defaultdict(list)
    for parent, found in rows.items():
        grouped[parent] = [
            PhoneRead(
                id=row.id,
                number=row.number,
                extension=_extension(row.extension),
                type=row.type,
                description=row.description,
                languages=spoken.get(row.id, []),
            )
            for row in found
        ]
    return grouped


def schedules(
    session: Session, owner: str, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[ScheduleRead]]:
    """Schedules of many parents, every HSDS field."""
    return {
        parent: [ScheduleRead.model_validate(row, from_attributes=True) for row in found]
        for parent, found in children_by(session, Schedule, owner, list(ids)).items()
    }


def contacts(
    session: Session, owner: str, ids: Sequence[uuid.UUID], locale: Locale
) -> dict[uuid.UUID, list[ContactRead]]:
    """Named contacts of many parents (staff, never victims), each with its phones."""
    rows = children_by(session, Contact, owner, list(ids))
    reach = phones(session, "contact_id", [c.id for found in rows.values() for c in found], locale)
    return {
        parent: [
            ContactRead(
                id=row.id,
                name=row.name,
                title=row.title,
                department=row.department,
                email=row.email,
                phones=reach.get(row.id, []),
            )
            for row in found
        ]
        for parent, found in rows.items()
    }


def funding(
    session: Session, owner: str, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[FundingRead]]:
    """Funding sources of many parents."""
    return {
        parent: [FundingRead(id=row.id, source=row.source) for row in found]
        for parent, found in children_by(session, Funding, owner, list(ids)).items()
    }


def programs(
    session: Session, owner: str, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[ProgramRead]]:
    """Programs by organization (``owner="organization_id"``) or by their own id (``"id"``)."""
    return {
        parent: [ProgramRead.model_validate(row, from_attributes=True) for row in found]
        for parent, found in children_by(session, Program, owner, list(ids)).items()
    }


def organization_identifiers(
    session: Session, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[OrganizationIdentifierRead]]:
    """External identifiers of many organizations."""
    rows = children_by(session, OrganizationIdentifier, "organization_id", list(ids))
    return {
        parent: [
            OrganizationIdentifierRead.model_validate(row, from_attributes=True) for row in found
        ]
        for parent, found in rows.items()
    }


def service_area(area: ServiceArea) -> ServiceAreaRead:
    """A service area: ``extent`` is the GeoJSON text of the stored polygon (HSDS wants a string;
    the geometry column is the one search uses, so it is the source), ``geometry`` the object."""
    geometry = to_geojson(to_shape(area.geom)) if area.geom is not None else None
    if geometry is not None:
        extent: str | None = json.dumps(geometry, separators=(",", ":"))
        extent_type: str | None = "geojson"
    else:
        extent, extent_type = area.extent, area.extent_type
    return ServiceAreaRead(
        id=area.id,
        name=area.name,
        description=area.description,
        extent=extent,
        extent_type=extent_type,
        uri=area.uri,
        geometry=geometry,
    )


def capacities(
    rows: Sequence[ServiceCapacity], units: dict[uuid.UUID, Unit]
) -> list[ServiceCapacityRead]:
    """Capacity rows as HSDS 3.1 draft ``service_capacity`` records, ordered by unit."""
    ordered = sorted(rows, key=lambda r: (units[r.unit_id].identifier or "", str(r.id)))
    return [
        ServiceCapacityRead(
            id=row.id,
            service_id=row.service_id,
            unit=UnitRead.model_validate(units[row.unit_id], from_attributes=True),
            available=row.available,
            maximum=row.maximum,
            description=row.description,
            updated=row.updated,
        )
        for row in ordered
    ]


def units_of(session: Session, unit_ids: set[uuid.UUID]) -> dict[uuid.UUID, Unit]:
    """The units named by capacity rows, by id."""
    if not unit_ids:
        return {}
    return {u.id: u for u in session.exec(select(Unit).where(col(Unit.id).in_(unit_ids)))}


def _term(term: TaxonomyTerm) -> AttributeTermRead:
    return AttributeTermRead.model_validate(term, from_attributes=True)


def _open_eligibility_twins(
    session: Session, grouped: dict[uuid.UUID, list[AttributeRead]]
) -> None:
    """Add to each record the Open Eligibility terms its categories map onto, as attributes.

    They are derived, not stored (category filters read our taxonomy only), so their ids are
    uuid5 of the record and the term: the same attribute keeps its id from read to read.
    """
    ours = {a.taxonomy_term_id for found in grouped.values() for a in found}
    twins = taxonomy.open_eligibility_terms(session, ours)
    for link_id, found in grouped.items():
        seen: set[uuid.UUID] = set()
        derived = []
        for attribute in found:
            twin = twins.get(attribute.taxonomy_term_id)
            if twin is None or twin.id in seen or attribute.link_type != CATEGORY_LINK_TYPE:
                continue
            seen.add(twin.id)
            derived.append(
                attribute.model_copy(
                    update={
                        "id": uuid.uuid5(link_id, f"open-eligibility:{twin.id}"),
                        "taxonomy_term_id": twin.id,
                        "label": None,
                        "taxonomy_term": _term(twin),
                    }
                )
            )
        found.extend(derived)


def attributes(
    session: Session, link_entity: str, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[AttributeRead]]:
    """HSDS ``attribute`` records of many records of one table, with their terms, by record id,
    ordered by term code then attribute id; then the Open Eligibility terms their categories map
    onto (derived: see ``_open_eligibility_twins``)."""
    grouped: dict[uuid.UUID, list[AttributeRead]] = defaultdict(list)
    if not ids:
        return grouped
    rows = session.exec(
        select(Attribute, TaxonomyTerm)
        .join(TaxonomyTerm, col(TaxonomyTerm.id) == col(Attribute.taxonomy_term_id))
        .where(col(Attribute.link_entity) == link_entity, col(Attribute.link_id).in_(list(ids)))
        .order_by(col(TaxonomyTerm.code), col(Attribute.id))
    )
    for attribute, term in rows:
        grouped[attribute.link_id].append(
            AttributeRead(
                id=attribute.id,
                link_id=attribute.link_id,
                taxonomy_term_id=attribute.taxonomy_term_id,
                link_type=attribute.link_type,
                link_entity=attribute.link_entity,
                value=attribute.value,
                label=attribute.label,
                taxonomy_term=_term(term),
            )
        )
    _open_eligibility_twins(session, grouped)
    return grouped
