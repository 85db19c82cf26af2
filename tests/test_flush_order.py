"""A session that flushes new rows together inserts parents before children (db/flush_order.py),
on both engines, whose foreign keys refuse a child row inserted before its parent."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from referral_net.db.flush_order import insert_parents_first
from referral_net.db.models import Location, Organization, Schedule, Service, ServiceAtLocation

pytestmark = pytest.mark.db


def _children_first(session: Session) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """Add two services each with a location, a link and schedules, children before parents
    and the organization last (the order a relationship-less unit of work would follow)."""
    organization_id = uuid.uuid4()
    service_ids = []
    for number in range(2):
        service_id, location_id = uuid.uuid4(), uuid.uuid4()
        service_ids.append(service_id)
        session.add(Schedule(id=uuid.uuid4(), location_id=location_id, freq="WEEKLY", byday="MO"))
        session.add(Schedule(id=uuid.uuid4(), service_id=service_id, freq="WEEKLY", byday="TU"))
        session.add(
            ServiceAtLocation(id=uuid.uuid4(), service_id=service_id, location_id=location_id)
        )
        session.add(
            Service(id=service_id, organization_id=organization_id, name=f"s{number}", version=1)
        )
        session.add(
            Location(
                id=location_id,
                organization_id=organization_id,
                name=f"l{number}",
                location_type="physical",
                version=1,
            )
        )
    session.add(Organization(id=organization_id, name="o", description="d", version=1))
    return organization_id, service_ids


def test_without_the_order_children_first_are_refused(session: Session) -> None:
    _children_first(session)
    with pytest.raises(IntegrityError):
        session.flush()


def test_parents_first_inserts_every_row_one_batched_insert_per_table(
    session: Session, engine: Engine
) -> None:
    insert_parents_first(session)
    insert_parents_first(session)  # asking twice is asking once
    organization_id, service_ids = _children_first(session)
    inserts: list[tuple[str, bool]] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith("INSERT"):
            inserts.append((statement.split()[2], bool(_args[-1])))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        session.flush()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    tables = [table for table, _many in inserts]
    assert set(tables) == {"organization", "location", "service", "service_at_location", "schedule"}
    assert len(tables) == len(set(tables))  # one statement per table
    assert all(many for table, many in inserts if table != "organization")
    assert tables.index("organization") < tables.index("location") < tables.index("schedule")
    assert tables.index("service") < tables.index("service_at_location")
    assert tables.index("service") < tables.index("schedule")
    session.expire_all()
    stored = session.exec(
        select(col(Schedule.service_id)).where(col(Schedule.service_id).in_(service_ids))
    ).all()
    assert sorted(stored) == sorted(service_ids)
    assert session.get(Organization, organization_id) is not None
