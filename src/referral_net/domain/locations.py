"""Locations: the point kept in step with latitude/longitude, INE codes filled from the boundary
polygons, nested address/phones/languages/accessibility, and the visibility rule on every read.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from geoalchemy2 import WKTElement
from sqlalchemy import func
from sqlmodel import Session, SQLModel, col, select

from referral_net.db.models import (
    Accessibility,
    Address,
    AdminArea,
    Language,
    Location,
    Phone,
    Schedule,
)
from referral_net.domain import access, areas, audit, history, nested, organizations
from referral_net.domain.access import LocationView
from referral_net.domain.common import (
    children_by,
    history_language,
    history_schedule,
    replace_languages,
    replace_nested,
    replace_phones,
)
from referral_net.domain.record_ids import record_id
from referral_net.domain.recorded_write import recorded_write
from referral_net.errors import Forbidden, NotFound
from referral_net.schemas.directory import (
    LocationCreate,
    LocationRead,
    LocationUpdate,
)
from referral_net.schemas.nested import AccessibilityRead, AddressRead
from referral_net.security.roles import Principal
from referral_net.vocab import Locale, RecordStatus, Visibility

RESOURCE = "location"
# The nested lists a write sets (contacts are read-only through the API).
_NESTED = ("addresses", "phones", "languages", "accessibility", "schedules")
# What the change history follows (see ``history``): these columns of the exact site (never
# the geometry, which latitude and longitude stand for) and each nested list as one field.
HISTORY_COLUMNS = (
    "id",
    "organization_id",
    "name",
    "alternate_name",
    "description",
    "transportation",
    "location_type",
    "url",
    "visibility",
    "department_code",
    "municipality_code",
    "outside_country",
    "intake_phone",
    "intake_description",
    "external_identifier",
    "external_identifier_type",
    "status",
)
_NESTED_HISTORY_COLUMNS = {
    "addresses": (
        "attention",
        "address_1",
        "address_2",
        "city",
        "region",
        "state_province",
        "postal_code",
        "country",
        "address_type",
    ),
    "phones": ("number", "extension", "type", "description"),
    "accessibility": ("description", "details", "url"),
}


def point_element(latitude: float, longitude: float) -> WKTElement:
    """The geometry value for a WGS 84 point (x = longitude, y = latitude)."""
    return WKTElement(f"POINT({longitude!r} {latitude!r})", srid=4326)


def _set_point(
    session: Session, location: Location, latitude: float | None, longitude: float | None
) -> None:
    """Keep geom, latitude/longitude and the INE codes in step."""
    location.latitude = latitude
    location.longitude = longitude
    if latitude is None or longitude is None:
        location.geom = None
        location.department_code = None
        location.municipality_code = None
        return
    location.geom = point_element(latitude, longitude)
    codes = areas.area_codes_at(session=session, latitude=latitude, longitude=longitude)
    location.department_code = codes.department_code
    location.municipality_code = codes.municipality_code


def refresh_public_point(session: Session, location: Location) -> None:
    """Set the point the public may see: exact if public, municipality if restricted, else none."""
    if location.geom is None or location.visibility == Visibility.CONFIDENTIAL:
        location.public_geom = None
    elif location.visibility == Visibility.PUBLIC:
        location.public_geom = point_element(location.latitude or 0.0, location.longitude or 0.0)
    else:
        lat, lon = _representative_point(
            session, location.municipality_code or location.department_code
        )
        location.public_geom = None if lat is None or lon is None else point_element(lat, lon)


def _children(session: Session, ids: list[uuid.UUID]) -> dict[str, dict[uuid.UUID, list[Any]]]:
    return {
        "addresses": children_by(session, Address, "location_id", ids),
        "phones": children_by(session, Phone, "location_id", ids),
        "languages": children_by(session, Language, "location_id", ids),
        "accessibility": children_by(session, Accessibility, "location_id", ids),
    }


def _shaped(
    session: Session, ids: list[uuid.UUID], locale: Locale
) -> dict[str, dict[uuid.UUID, list[Any]]]:
    """The HSDS nested records of many locations, shaped (those a restricted site's public
    form shows, languages, and those only its exact form shows)."""
    return {
        "languages": nested.languages(session, "location_id", ids, locale),
        "phones": nested.phones(session, "location_id", ids, locale),
        "schedules": nested.schedules(session, "location_id", ids),
        "contacts": nested.contacts(session, "location_id", ids, locale),
    }


def _representative_point(session: Session, code: str | None) -> tuple[float | None, float | None]:
    if code is None:
        return None, None
    area = session.get(AdminArea, code)
    if area is None:
        return None, None
    return area.representative_latitude, area.representative_longitude


def to_read(
    session: Session,
    location: Location,
    children: dict[str, dict[uuid.UUID, list[Any]]],
    view: LocationView,
    shaped: dict[str, dict[uuid.UUID, list[Any]]],
) -> LocationRead:
    """Shape a location for a caller, degrading a restricted site to its municipality (its
    public form: the intake contact and languages; no address, phones, schedules or contacts)."""
    if view is LocationView.HIDDEN:
        raise NotFound("No such location.")
    languages = shaped["languages"].get(location.id, [])
    base = location.model_dump(exclude={"geom", "public_geom", "version"})
    if view is LocationView.MUNICIPALITY:
        lat, lon = _representative_point(
            session, location.municipality_code or location.department_code
        )
        return LocationRead(
            id=location.id,
            organization_id=location.organization_id,
            name=location.name,
            location_type=location.location_type,
            latitude=lat,
            longitude=lon,
            precision="municipality",
            visibility=location.visibility,
            department_code=location.department_code,
            municipality_code=location.municipality_code,
            intake_phone=location.intake_phone,
            intake_description=location.intake_description,
            status=location.status,
            languages=languages,
        )
    return LocationRead(
        **base,
        precision="exact",
        addresses=[
            AddressRead.model_validate(a, from_attributes=True)
            for a in children["addresses"][location.id]
        ],
        phones=shaped["phones"].get(location.id, []),
        languages=languages,
        accessibility=[
            AccessibilityRead.model_validate(a, from_attributes=True)
            for a in children["accessibility"][location.id]
        ],
        schedules=shaped["schedules"].get(location.id, []),
        contacts=shaped["contacts"].get(location.id, []),
    )


def _snapshot(session: Session, location: Location) -> dict[str, Any]:
    """The fields the change history follows (not the API shape: see ``history``)."""
    children = _children(session, [location.id])
    nested = {
        key: [history.fields_of(row, columns) for row in children[key][location.id]]
        for key, columns in _NESTED_HISTORY_COLUMNS.items()
    }
    languages = sorted(children["languages"][location.id], key=lambda lang: lang.code)
    # Schedules became writable with the HSDS write shapes: followed once a site has some (so
    # the histories of sites without any read as before).
    schedules = children_by(session, Schedule, "location_id", [location.id])[location.id]
    return (
        history.fields_of(location, HISTORY_COLUMNS)
        | {
            "latitude": history.as_float(location.latitude),
            "longitude": history.as_float(location.longitude),
            "languages": [history_language(lang) for lang in languages],
        }
        | nested
        | ({"schedules": [history_schedule(row) for row in schedules]} if schedules else {})
    )


def view_for(principal: Principal, location: Location) -> LocationView:
    """How this caller sees this location."""
    return access.location_view(
        principal, visibility=location.visibility, organization_id=location.organization_id
    )


def get(*, session: Session, principal: Principal, location_id: uuid.UUID) -> Location:
    """Fetch a location the caller may know about; otherwise 404 (never 403)."""
    location = session.get(Location, location_id)
    if (
        location is None
        or view_for(principal, location) is LocationView.HIDDEN
        or (location.status == RecordStatus.DEFUNCT and not access.can_see_defunct(principal))
    ):
        raise NotFound("No such location.")
    return location


def read(
    *, session: Session, principal: Principal, location_id: uuid.UUID, locale: Locale = "es"
) -> LocationRead:
    """Read one location as the caller may see it (an exact hidden site is audited)."""
    location = get(session=session, principal=principal, location_id=location_id)
    view = view_for(principal, location)
    ids = [location.id]
    shaped = to_read(
        session, location, _children(session, ids), view, _shaped(session, ids, locale)
    )
    _audit_exact(session, principal, [(location, view)])  # after shaping: see _audit_exact
    return shaped


def read_visible(
    *,
    session: Session,
    principal: Principal,
    location_ids: list[uuid.UUID],
    locale: Locale = "es",
) -> dict[uuid.UUID, LocationRead]:
    """Many locations as the caller may see them, by id (hidden ones left out); exact views of
    hidden sites are audited, after shaping, like :func:`read`."""
    rows = list(session.exec(select(Location).where(col(Location.id).in_(location_ids))))
    shown = [(r, view_for(principal, r)) for r in rows]
    shown = [(r, view) for r, view in shown if view is not LocationView.HIDDEN]
    ids = [r.id for r, _ in shown]
    children = _children(session, ids)
    nested_records = _shaped(session, ids, locale)
    shaped = {r.id: to_read(session, r, children, view, nested_records) for r, view in shown}
    _audit_exact(session, principal, shown)
    return shaped


def _audit_exact(
    session: Session, principal: Principal, shown: list[tuple[Location, LocationView]]
) -> None:
    """Audit every non-public location shown exactly (commits: see ``audit.record_exact_reads``).

    Called once the answer is shaped, after its last read: a failure while shaping records
    nothing, and a failed entry fails the request, so the read and its entries go together.
    """
    audit.record_exact_reads(
        session=session,
        principal=principal,
        location_ids=[
            loc.id
            for loc, view in shown
            if view is LocationView.EXACT and loc.visibility != Visibility.PUBLIC
        ],
    )


def list_page(
    *,
    session: Session,
    principal: Principal,
    offset: int,
    limit: int,
    organization_id: uuid.UUID | None = None,
    municipality_code: str | None = None,
    department_code: str | None = None,
    include_defunct: bool = False,
    modified_after: datetime | None = None,
    locale: Locale = "es",
) -> tuple[list[LocationRead], int]:
    """One page of the locations the caller may know about, ordered by name then id
    (``modified_after``: on or after that instant)."""
    query = select(Location).where(access.visible_locations_clause(principal))
    if not (include_defunct and access.can_see_defunct(principal)):
        query = query.where(col(Location.status) != RecordStatus.DEFUNCT.value)
    if organization_id is not None:
        query = query.where(col(Location.organization_id) == organization_id)
    if municipality_code is not None:
        query = query.where(col(Location.municipality_code) == municipality_code)
    if department_code is not None:
        query = query.where(col(Location.department_code) == department_code)
    if modified_after is not None:
        query = query.where(col(Location.last_modified) >= modified_after)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = list(
        session.exec(
            query.order_by(col(Location.name), col(Location.id)).offset(offset).limit(limit)
        )
    )
    ids = [r.id for r in rows]
    children = _children(session, ids)
    nested_records = _shaped(session, ids, locale)
    shown = [(r, view_for(principal, r)) for r in rows]
    shaped = [to_read(session, r, children, view, nested_records) for r, view in shown]
    _audit_exact(session, principal, shown)
    return shaped, int(total)


def _nested_rows(data: LocationCreate | LocationUpdate) -> dict[str, list[Any]]:
    """The plain nested lists the body gives (each item one row), by name."""
    return {
        name: items
        for name in ("addresses", "accessibility", "schedules")
        if (items := getattr(data, name)) is not None
    }


_MODEL_OF: dict[str, type[SQLModel]] = {
    "addresses": Address,
    "accessibility": Accessibility,
    "schedules": Schedule,
}


def _replace_nested(
    session: Session,
    location_id: uuid.UUID,
    data: LocationCreate | LocationUpdate,
    *,
    may_choose_ids: bool,
) -> None:
    """Write the nested lists present in the body (each replaces the stored one, ids kept)."""
    for name, items in _nested_rows(data).items():
        replace_nested(
            session,
            _MODEL_OF[name],
            "location_id",
            location_id,
            items,
            field=f"body.{name}",
            may_choose_ids=may_choose_ids,
        )
    if data.phones is not None:
        replace_phones(
            session,
            "location_id",
            location_id,
            data.phones,
            field="body.phones",
            may_choose_ids=may_choose_ids,
        )
    if data.languages is not None:
        replace_languages(
            session,
            "location_id",
            location_id,
            data.languages,
            field="body.languages",
            may_choose_ids=may_choose_ids,
        )


def create(
    *, session: Session, principal: Principal, data: LocationCreate, trusted_ids: bool = False
) -> Location:
    """Create a location of an organization the caller may edit.

    ``trusted_ids`` lets an import keep its ids; otherwise only stewards may choose one.
    """
    organizations.editable(
        session=session, principal=principal, organization_id=data.organization_id
    )
    location = Location(
        **data.model_dump(exclude={"id", "latitude", "longitude", *_NESTED}),
        id=record_id(session, Location, data.id, principal=principal, trusted=trusted_ids),
    )
    _set_point(session, location, data.latitude, data.longitude)
    refresh_public_point(session, location)
    with recorded_write(
        session,
        principal,
        location,
        resource_type=RESOURCE,
        action=history.CREATE,
        snapshot=_snapshot,
    ):
        _replace_nested(
            session,
            location.id,
            data,
            may_choose_ids=trusted_ids or access.may_choose_ids(principal),
        )
    return location


def served_for_comparison(
    *, session: Session, principal: Principal, location: Location, locale: Locale
) -> LocationRead:
    """The location as this caller's GET serves it, for comparing the read-only fields of a
    write's body with it. No audit entry and no commit: the comparison runs inside the write's
    transaction (which holds the write lock), and the write itself is recorded and audited."""
    ids = [location.id]
    return to_read(
        session,
        location,
        _children(session, ids),
        view_for(principal, location),
        _shaped(session, ids, locale),
    )


def editable(*, session: Session, principal: Principal, location_id: uuid.UUID) -> Location:
    """Fetch a location the caller may edit: 404 when unknown to them, 403 when not theirs."""
    location = get(session=session, principal=principal, location_id=location_id)
    if not access.can_edit(principal, location.organization_id):
        raise Forbidden("You may not edit this location.")
    return location


def update(
    *, session: Session, principal: Principal, location: Location, data: LocationUpdate
) -> Location:
    """Apply a partial update; visibility may rise only for stewards. Nested lists present in the
    body replace the stored ones, their items keeping the ids they name; read-only fields are the
    caller's to check first (``common.refuse_changed_read_only``)."""
    changes = data.model_dump(
        exclude_unset=True,
        exclude={"latitude", "longitude", *_NESTED, *data.read_only},
    )
    requested = changes.get("visibility")
    if requested is not None and not access.may_change_visibility(
        principal, current=location.visibility, requested=str(requested)
    ):
        raise Forbidden("Making a location more visible needs a steward.")
    with recorded_write(
        session,
        principal,
        location,
        resource_type=RESOURCE,
        action=history.UPDATE,
        snapshot=_snapshot,
    ):
        for field, value in changes.items():
            setattr(location, field, value.value if field == "visibility" else value)
        if data.latitude is not None and data.longitude is not None:
            _set_point(session, location, data.latitude, data.longitude)
        refresh_public_point(session, location)
        _replace_nested(session, location.id, data, may_choose_ids=access.may_choose_ids(principal))
    return location


def soft_delete(*, session: Session, principal: Principal, location: Location) -> None:
    """Mark a location defunct; it disappears from search but stewards can still read it."""
    with recorded_write(
        session,
        principal,
        location,
        resource_type=RESOURCE,
        action=history.DELETE,
        snapshot=_snapshot,
    ):
        location.status = RecordStatus.DEFUNCT.value
