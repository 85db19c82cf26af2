"""The search read model (``search_entry``) is kept in step with every write, on both backends.

After any sequence of writes through the domain, the table holds exactly what a fresh rebuild
writes; a rolled-back write leaves it as it was; its ``doc`` says what a service read says; and
an upgraded database is filled by the migration.
"""

from __future__ import annotations

import json
import math
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from pyproj import Transformer
from sqlalchemy import Connection, Engine, delete, func, inspect, select, text, update
from sqlmodel import Session, col
from typer.testing import CliRunner

from referral_net.cli import app
from referral_net.db import migrate
from referral_net.db.engine import make_engine
from referral_net.db.models import (
    Location,
    Schedule,
    SearchEntry,
    SearchEntryCategory,
    SearchEntryLanguage,
    Service,
    ServiceAtLocation,
    ServiceClusterCell,
    TaxonomyTerm,
)
from referral_net.domain import (
    areas,
    locations,
    organizations,
    search_model,
    seed,
    service_at_locations,
    services,
    taxonomy,
)
from referral_net.domain.common import children_by
from referral_net.errors import Conflict
from referral_net.geo.tiles import STORED_CELL_LEVELS, WORLD_MM
from referral_net.opening_hours import WeeklySchedule
from referral_net.schemas.directory import (
    AccessibilityIn,
    CapacityIn,
    CapacityOut,
    EligibilityIn,
    LocationCreate,
    LocationUpdate,
    OrganizationCreate,
    OrganizationUpdate,
    ScheduleIn,
    ServiceAtLocationCreate,
    ServiceCreate,
    ServiceUpdate,
)
from referral_net.security.roles import Principal, Role
from referral_net.settings import Settings
from tests.conftest import joined_session, make_backend_settings, unavailable
from tests.factories import GUATEMALA_CITY, HUEHUETENANGO, QUETZALTENANGO

pytestmark = pytest.mark.db

STEWARD = Principal(role=Role.STEWARD, subject="test:search-model")
_ENTRY = SearchEntry.__table__  # type: ignore[attr-defined]

# --- reading the table in a comparable form -----------------------------------------------------


def _table_rows(session: Session) -> dict[str, dict[str, Any]]:
    """Every entry as plain values (points as WKT, side-table codes as sets), by link id."""
    skipped = {"exact_geom", "public_geom", "doc", "category_codes", "language_codes"}
    columns = [c for c in _ENTRY.c if c.name not in skipped]
    statement = select(
        *columns,
        func.ST_AsText(_ENTRY.c.exact_geom).label("exact_wkt"),
        func.ST_AsText(_ENTRY.c.public_geom).label("public_wkt"),
        _ENTRY.c.doc,
        _ENTRY.c.category_codes,
        _ENTRY.c.language_codes,
    )
    rows: dict[str, dict[str, Any]] = {}
    for row in session.connection().execute(statement):
        values = dict(row._mapping)
        values["doc"] = json.loads(json.dumps(values["doc"]))
        rows[str(row.service_at_location_id)] = values
    languages = SearchEntryLanguage.__table__  # type: ignore[attr-defined]
    for link_id, code in session.connection().execute(
        select(languages.c.service_at_location_id, languages.c.code)
    ):
        rows[str(link_id)].setdefault("side_langs", set()).add(code)
    categories = SearchEntryCategory.__table__  # type: ignore[attr-defined]
    for link_id, code, public, exact in session.connection().execute(
        select(
            categories.c.service_at_location_id,
            categories.c.code,
            categories.c.listed_with_public_point,
            categories.c.listed_with_exact_point,
        )
    ):
        values = rows[str(link_id)]
        values.setdefault("side_categories", set()).add(code)
        values.setdefault("side_flags", set()).add((bool(public), bool(exact)))
    return rows


def _rebuilt_rows(session: Session) -> dict[str, dict[str, Any]]:
    """What a fresh rebuild writes, read the same way (the rebuild itself is rolled back); the
    cluster cells it leaves (refilled in one statement on PostgreSQL) hold the entries' sums."""
    nested = session.begin_nested()
    try:
        search_model.rebuild(session)
        rows = _table_rows(session)
        assert _stored_cells(session) == _expected_cells(rows)
        return rows
    finally:
        nested.rollback()


_CELL = ServiceClusterCell.__table__  # type: ignore[attr-defined]
_MERCATOR = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
_HALF_WORLD_M = 20037508.342789244


def _stored_cells(session: Session) -> dict[tuple[int, int, int, str], tuple[int, int, int]]:
    """The cluster cells as the triggers left them: key -> (count, east sum, south sum)."""
    return {
        (row.level, row.cell_x, row.cell_y, row.top_category): (
            row.point_count,
            row.east_mm_sum,
            row.south_mm_sum,
        )
        for row in session.connection().execute(select(_CELL))
    }


def _grid_position(public_wkt: str) -> tuple[int, int]:
    """A public point's grid position from pyproj and the grid's definition: millimetres of
    WebMercatorQuad from the world's west and north edges, rounded half up."""
    lon, lat = (float(v) for v in public_wkt.removeprefix("POINT(").removesuffix(")").split())
    x, y = _MERCATOR.transform(lon, lat)
    return (
        math.floor((x + _HALF_WORLD_M) * 1000 + 0.5),
        math.floor((_HALF_WORLD_M - y) * 1000 + 0.5),
    )


def _expected_cells(
    entries: dict[str, dict[str, Any]],
) -> dict[tuple[int, int, int, str], tuple[int, int, int]]:
    """The cells summed here from the entries: every listed entry with a public point, in its
    cell of each stored level (a tile of that zoom: the cell is the tile holding the point)."""
    sums: dict[tuple[int, int, int, str], list[int]] = {}
    for values in entries.values():
        if not values["listed"] or values["public_wkt"] is None:
            continue
        east, south = _grid_position(values["public_wkt"])
        assert (values["public_east_mm"], values["public_south_mm"]) == (east, south)
        for level in STORED_CELL_LEVELS:
            tiles = 1 << level
            key = (
                level,
                east * tiles // WORLD_MM,
                south * tiles // WORLD_MM,
                values["top_category"] or "",
            )
            total = sums.setdefault(key, [0, 0, 0])
            total[0] += 1
            total[1] += east
            total[2] += south
    return {key: (n, east, south) for key, (n, east, south) in sums.items()}


def assert_in_step(session: Session) -> None:
    """The table equals a fresh rebuild, and holds one entry per service at a location; the
    cluster cells hold exactly the sums of the entries."""
    stored = _table_rows(session)
    assert stored == _rebuilt_rows(session)
    links = session.connection().execute(select(func.count()).select_from(ServiceAtLocation))
    assert len(stored) == links.scalar_one()
    assert _stored_cells(session) == _expected_cells(stored)


def _sides_match_lists(session: Session, backend: str) -> None:
    rows = _table_rows(session)
    for values in rows.values():
        # Both engines count categories from their side table: its flags are the conditions
        # every match has, read here from the entry itself.
        assert values.get("side_categories", set()) == set(values["category_codes"])
        if values["category_codes"]:
            listed = bool(values["listed"])
            public = listed and values["public_wkt"] is not None
            exact = listed and values["exact_wkt"] is not None
            assert values["side_flags"] == {(public, exact)}
        if backend == "spatialite":
            assert values.get("side_langs", set()) == set(values["language_codes"])
        else:  # PostGIS filters languages on the array: that side table stays empty
            assert "side_langs" not in values


# --- building records through the domain --------------------------------------------------------

POINTS = (QUETZALTENANGO, HUEHUETENANGO, GUATEMALA_CITY)
CATEGORY_CHOICES = (
    "protection.shelter.women",
    "protection.shelter",
    "protection.legal_aid",
    "prevention",
)
LANGUAGE_CHOICES = ("spa", "quc", "mam", "eng", "fra")
WEEKDAYS = ScheduleIn(freq="WEEKLY", byday="MO,TU,WE,TH,FR", opens_at="08:00", closes_at="16:00")
INDEX = st.integers(min_value=0, max_value=31)
ALWAYS = ScheduleIn(
    freq="WEEKLY", byday="MO,TU,WE,TH,FR,SA,SU", opens_at="00:00", closes_at="00:00"
)


def _organization(session: Session, name: str) -> uuid.UUID:
    created = organizations.create(
        session=session, principal=STEWARD, data=OrganizationCreate(name=f"{name} (ejemplo)")
    )
    return created.id


def _location(
    session: Session, organization_id: uuid.UUID, point: tuple[float, float], visibility: str
) -> uuid.UUID:
    created = locations.create(
        session=session,
        principal=STEWARD,
        data=LocationCreate(
            organization_id=organization_id,
            name="Sede (ejemplo)",
            latitude=point[0],
            longitude=point[1],
            visibility=visibility,
            intake_phone="+502 5555 0101",
            accessibility=[AccessibilityIn(description="Rampa de acceso")],
            languages=["spa"],
        ),
    )
    return created.id


def _service(
    session: Session, organization_id: uuid.UUID, categories: list[str], langs: list[str]
) -> uuid.UUID:
    created = services.create(
        session=session,
        principal=STEWARD,
        data=ServiceCreate(
            organization_id=organization_id,
            name="Servicio (ejemplo)",
            description="Atención psicológica",
            categories=categories,
            languages=langs,
            eligibility=EligibilityIn(minimum_age=12, maximum_age=60, genders_served=["woman"]),
            schedules=[WEEKDAYS],
            capacity=[CapacityIn(unit="bed", available=2, maximum=5)],
            interpretation_services="K'iche'",
        ),
    )
    return created.id


def _link(session: Session, service_id: uuid.UUID, location_id: uuid.UUID) -> uuid.UUID | None:
    try:
        link = service_at_locations.create(
            session=session,
            principal=STEWARD,
            data=ServiceAtLocationCreate(service_id=service_id, location_id=location_id),
        )
    except Conflict:
        session.rollback()
        return None
    return link.id


def _service_record(session: Session, service_id: uuid.UUID) -> Service:
    found = session.get(Service, service_id)
    assert found is not None
    return found


def _location_record(session: Session, location_id: uuid.UUID) -> Location:
    found = session.get(Location, location_id)
    assert found is not None
    return found


# --- the stateful test ------------------------------------------------------------------------


class ReadModelMachine(RuleBasedStateMachine):
    """Random writes through the domain; after each, the table equals a fresh rebuild.

    Each example starts from a small network (two organizations, three sites of each visibility,
    two services, three links), so that every kind of write reaches entries from the first step.
    Records are picked by index; a deleted one leaves its list.
    """

    def __init__(self, connection: Connection) -> None:
        """One example: its own SAVEPOINT on the test's connection, rolled back at the end."""
        super().__init__()
        self.example = connection.begin_nested()
        self.session = joined_session(connection)
        first, second = _organization(self.session, "Alfa"), _organization(self.session, "Beta")
        self.organizations = [first, second]
        self.locations = [
            _location(self.session, first, QUETZALTENANGO, "public"),
            _location(self.session, first, HUEHUETENANGO, "restricted"),
            _location(self.session, second, GUATEMALA_CITY, "confidential"),
        ]
        self.services = [
            _service(self.session, first, ["protection.shelter.women"], ["spa", "quc"]),
            _service(self.session, second, ["protection.legal_aid"], ["mam"]),
        ]
        self.links = [
            link
            for service_id, location_id in (
                (self.services[0], self.locations[0]),
                (self.services[0], self.locations[1]),
                (self.services[1], self.locations[2]),
            )
            if (link := _link(self.session, service_id, location_id)) is not None
        ]

    def teardown(self) -> None:
        """Forget the example's writes."""
        self.session.close()
        self.example.rollback()

    @staticmethod
    def _pick(records: list[uuid.UUID], index: int) -> uuid.UUID:
        return records[index % len(records)]

    @rule(name=st.sampled_from(["Gamma", "Delta"]))
    def create_organization(self, name: str) -> None:
        self.organizations.append(_organization(self.session, name))

    @precondition(lambda self: self.organizations)
    @rule(
        index=INDEX,
        point=st.sampled_from(POINTS),
        visibility=st.sampled_from(["public", "restricted", "confidential"]),
    )
    def create_location(self, index: int, point: tuple[float, float], visibility: str) -> None:
        organization_id = self._pick(self.organizations, index)
        self.locations.append(_location(self.session, organization_id, point, visibility))

    @precondition(lambda self: self.organizations)
    @rule(
        index=INDEX,
        categories=st.lists(st.sampled_from(CATEGORY_CHOICES), max_size=2, unique=True),
        langs=st.lists(st.sampled_from(LANGUAGE_CHOICES), max_size=3, unique=True),
    )
    def create_service(self, index: int, categories: list[str], langs: list[str]) -> None:
        organization_id = self._pick(self.organizations, index)
        self.services.append(_service(self.session, organization_id, categories, langs))

    @precondition(lambda self: self.services and self.locations)
    @rule(service=INDEX, location=INDEX)
    def link(self, service: int, location: int) -> None:
        service_id = self._pick(self.services, service)
        link_id = _link(self.session, service_id, self._pick(self.locations, location))
        if link_id is not None:
            self.links.append(link_id)

    @precondition(lambda self: self.services)
    @rule(
        index=INDEX,
        name=st.sampled_from(["Refugio (ejemplo)", "Clínica (ejemplo)"]),
        categories=st.none() | st.lists(st.sampled_from(CATEGORY_CHOICES), max_size=2, unique=True),
        langs=st.none() | st.lists(st.sampled_from(LANGUAGE_CHOICES), max_size=3, unique=True),
        genders=st.none() | st.lists(st.sampled_from(["woman", "man", "trans_woman"]), unique=True),
        affirming=st.booleans(),
        schedules=st.none() | st.sampled_from([[], [WEEKDAYS], [ALWAYS, WEEKDAYS]]),
        status=st.none() | st.sampled_from(["active", "inactive"]),
    )
    def update_service(
        self,
        index: int,
        name: str,
        categories: list[str] | None,
        langs: list[str] | None,
        genders: list[str] | None,
        affirming: bool,
        schedules: list[ScheduleIn] | None,
        status: str | None,
    ) -> None:
        data: dict[str, Any] = {"name": name}
        if categories is not None:
            data["categories"] = categories
        if langs is not None:
            data["languages"] = langs
        if schedules is not None:
            data["schedules"] = schedules
        if status is not None:
            data["status"] = status
        data["eligibility"] = EligibilityIn(
            minimum_age=18, genders_served=genders, lgbtiq_affirming=affirming
        )
        services.update(
            session=self.session,
            principal=STEWARD,
            service=_service_record(self.session, self._pick(self.services, index)),
            data=ServiceUpdate(**data),
        )

    @precondition(lambda self: self.services)
    @rule(
        index=INDEX,
        rows=st.lists(
            st.builds(
                CapacityIn,
                unit=st.sampled_from(["bed", "room"]),
                available=st.integers(0, 3),
                maximum=st.just(3),
            ),
            max_size=2,
        ),
        hours_ago=st.integers(0, 100),
    )
    def set_capacity(self, index: int, rows: list[CapacityIn], hours_ago: int) -> None:
        services.set_capacity(
            session=self.session,
            principal=STEWARD,
            service=_service_record(self.session, self._pick(self.services, index)),
            rows=rows,
            when=datetime.now(UTC) - timedelta(hours=hours_ago),
        )

    @precondition(lambda self: self.services)
    @rule(index=INDEX)
    def verify(self, index: int) -> None:
        service = _service_record(self.session, self._pick(self.services, index))
        services.verify(session=self.session, principal=STEWARD, service=service)

    @precondition(lambda self: self.locations)
    @rule(
        index=INDEX,
        visibility=st.none() | st.sampled_from(["public", "restricted", "confidential"]),
        point=st.none() | st.sampled_from(POINTS),
        intake=st.none() | st.just("+502 5555 0199"),
        accessible=st.booleans(),
    )
    def update_location(
        self,
        index: int,
        visibility: str | None,
        point: tuple[float, float] | None,
        intake: str | None,
        accessible: bool,
    ) -> None:
        data: dict[str, Any] = {
            "name": "Sede nueva (ejemplo)",
            "accessibility": [AccessibilityIn(description="Silla de ruedas")] if accessible else [],
        }
        if visibility is not None:
            data["visibility"] = visibility
        if point is not None:
            data["latitude"], data["longitude"] = point
        if intake is not None:
            data["intake_phone"] = intake
        locations.update(
            session=self.session,
            principal=STEWARD,
            location=_location_record(self.session, self._pick(self.locations, index)),
            data=LocationUpdate(**data),
        )

    @precondition(lambda self: self.organizations)
    @rule(index=INDEX, name=st.sampled_from(["Gamma", "Delta"]))
    def rename_organization(self, index: int, name: str) -> None:
        organization = organizations.editable(
            session=self.session,
            principal=STEWARD,
            organization_id=self._pick(self.organizations, index),
        )
        organizations.update(
            session=self.session,
            principal=STEWARD,
            organization=organization,
            data=OrganizationUpdate(name=f"{name} (ejemplo)"),
        )

    @precondition(lambda self: self.organizations)
    @rule(index=INDEX)
    def delete_organization(self, index: int) -> None:
        organization_id = self._pick(self.organizations, index)
        organization = organizations.editable(
            session=self.session, principal=STEWARD, organization_id=organization_id
        )
        organizations.soft_delete(
            session=self.session, principal=STEWARD, organization=organization
        )
        self.organizations.remove(organization_id)

    @precondition(lambda self: self.services)
    @rule(index=INDEX)
    def delete_service(self, index: int) -> None:
        service_id = self._pick(self.services, index)
        service = _service_record(self.session, service_id)
        services.soft_delete(session=self.session, principal=STEWARD, service=service)
        self.services.remove(service_id)

    @precondition(lambda self: self.locations)
    @rule(index=INDEX)
    def delete_location(self, index: int) -> None:
        location_id = self._pick(self.locations, index)
        location = _location_record(self.session, location_id)
        locations.soft_delete(session=self.session, principal=STEWARD, location=location)
        self.locations.remove(location_id)

    @precondition(lambda self: self.links)
    @rule(index=INDEX)
    def unlink(self, index: int) -> None:
        link_id = self._pick(self.links, index)
        link = self.session.get(ServiceAtLocation, link_id)
        assert link is not None
        service_at_locations.delete(session=self.session, principal=STEWARD, link=link)
        self.links.remove(link_id)

    @rule(code=st.sampled_from(CATEGORY_CHOICES), label=st.sampled_from(["Uno", "Dos"]))
    def relabel_category(self, code: str, label: str) -> None:
        term = self.session.scalars(
            select(TaxonomyTerm).where(col(TaxonomyTerm.code) == code)
        ).one()
        term.name = f"{label} {code}"
        term.translations = {"en": {"name": f"{label} (en)", "description": ""}}
        self.session.commit()

    @precondition(lambda self: self.services)
    @rule(index=INDEX, name=st.sampled_from(["Masivo (ejemplo)", "Lote (ejemplo)"]))
    def bulk_rename_service(self, index: int, name: str) -> None:
        # An ORM bulk UPDATE: no object passes through the flush.
        service_id = self._pick(self.services, index)
        self.session.execute(update(Service).where(col(Service.id) == service_id).values(name=name))
        self.session.commit()

    @precondition(lambda self: self.services)
    @rule(index=INDEX)
    def rolled_back_write(self, index: int) -> None:
        service = _service_record(self.session, self._pick(self.services, index))
        service.name = "Nunca (ejemplo)"
        self.session.flush()
        self.session.rollback()

    @invariant()
    def model_equals_a_rebuild(self) -> None:
        assert_in_step(self.session)


def test_any_sequence_of_writes_leaves_the_model_equal_to_a_rebuild(
    connection: Connection, session: Session, taxonomy_loaded: None
) -> None:
    session.commit()
    run_state_machine_as_test(
        lambda: ReadModelMachine(connection),
        settings=settings(
            max_examples=12,
            stateful_step_count=15,
            deadline=None,
            # No shrinking: a failing run prints its steps, and shrinking database-backed steps
            # takes minutes.
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


# --- single behaviours ---------------------------------------------------------------------------


@pytest.fixture
def network(session: Session, taxonomy_loaded: None) -> dict[str, uuid.UUID]:
    """An organization with a public and a restricted site and one service at both."""
    organization_id = _organization(session, "Red")
    public = _location(session, organization_id, QUETZALTENANGO, "public")
    restricted = _location(session, organization_id, HUEHUETENANGO, "restricted")
    service_id = _service(session, organization_id, ["protection.shelter"], ["spa", "quc"])
    first = _link(session, service_id, public)
    second = _link(session, service_id, restricted)
    assert first is not None
    assert second is not None
    return {
        "organization": organization_id,
        "public": public,
        "restricted": restricted,
        "service": service_id,
        "public_link": first,
        "restricted_link": second,
    }


def test_a_write_refreshes_its_entries_in_its_transaction(
    session: Session, network: dict[str, uuid.UUID], backend: str
) -> None:
    rows = _table_rows(session)
    entry = rows[str(network["public_link"])]
    assert entry["listed"] is True
    assert entry["category_codes"] == ["protection", "protection.shelter"]
    assert entry["language_codes"] == ["quc", "spa"]
    assert entry["served_genders"] == ["woman"]
    assert entry["has_capacity"] is True
    assert entry["exact_wkt"] == entry["public_wkt"]
    hidden = rows[str(network["restricted_link"])]
    assert hidden["exact_wkt"] != hidden["public_wkt"]  # the municipality's point
    _sides_match_lists(session, backend)

    services.set_capacity(
        session=session,
        principal=STEWARD,
        service=_service_record(session, network["service"]),
        rows=[CapacityIn(unit="bed", available=0, maximum=5)],
    )
    after = _table_rows(session)[str(network["public_link"])]
    assert after["has_capacity"] is False
    assert [item["available"] for item in after["doc"]["capacity"]] == [0]
    assert_in_step(session)


def test_a_rolled_back_write_leaves_the_entries_unchanged(
    session: Session, network: dict[str, uuid.UUID]
) -> None:
    before = _table_rows(session)
    service = _service_record(session, network["service"])
    # The write and its refresh both happen, inside a SAVEPOINT that commits...
    with session.begin_nested():
        service.name = "Cambiado (ejemplo)"
    inside = _table_rows(session)
    assert inside[str(network["public_link"])]["service_name"] == "Cambiado (ejemplo)"
    # ... and the transaction around it rolls back: the entries are as they were.
    session.rollback()
    assert _table_rows(session) == before


def test_deleting_a_link_deletes_its_entry(session: Session, network: dict[str, uuid.UUID]) -> None:
    link = session.get(ServiceAtLocation, network["public_link"])
    assert link is not None
    service_at_locations.delete(session=session, principal=STEWARD, link=link)
    assert str(network["public_link"]) not in _table_rows(session)
    assert_in_step(session)


def test_a_service_deleted_by_the_database_takes_its_entries_and_side_rows(
    session: Session, network: dict[str, uuid.UUID]
) -> None:
    assert _stored_cells(session)  # the network's public site is counted
    session.execute(delete(Service).where(col(Service.id) == network["service"]))
    session.commit()
    assert _table_rows(session) == {}
    assert _stored_cells(session) == {}
    for model in (SearchEntryCategory, SearchEntryLanguage, ServiceClusterCell):
        count = session.connection().execute(select(func.count()).select_from(model))
        assert count.scalar_one() == 0


def test_the_cluster_cells_follow_an_update_of_the_entries_too(
    session: Session, network: dict[str, uuid.UUID]
) -> None:
    """The model is written by delete and insert; an UPDATE (an operator's repair) keeps the
    cells in step as well: unlisting every entry empties them, listing them again refills them."""
    before = _stored_cells(session)
    assert before
    session.execute(update(SearchEntry).values(listed=False))
    assert _stored_cells(session) == {}
    session.execute(update(SearchEntry).values(listed=True))
    assert _stored_cells(session) == before == _expected_cells(_table_rows(session))


def test_writes_after_a_rebuild_in_its_transaction_keep_the_cells(
    session: Session, network: dict[str, uuid.UUID]
) -> None:
    """A rebuild defers the cells' triggers only until it refills them: a write later in the
    same transaction is counted as any other."""
    search_model.rebuild(session)
    link = session.get(ServiceAtLocation, network["public_link"])
    assert link is not None
    service_at_locations.delete(session=session, principal=STEWARD, link=link)
    search_model.refresh_pending(session)
    rows = _table_rows(session)
    assert str(network["public_link"]) not in rows
    assert _stored_cells(session) == _expected_cells(rows)


def test_a_statement_sent_to_the_connection_needs_an_explicit_refresh(
    session: Session, network: dict[str, uuid.UUID]
) -> None:
    service_table = Service.__table__  # type: ignore[attr-defined]
    session.connection().execute(
        update(service_table)
        .where(service_table.c.id == network["service"])
        .values(name="Directo (ejemplo)")
    )
    session.commit()
    stale = _table_rows(session)[str(network["public_link"])]
    assert stale["service_name"] != "Directo (ejemplo)"
    search_model.refresh(
        session, service_at_location_ids=[network["public_link"], network["restricted_link"]]
    )
    session.commit()
    assert_in_step(session)


@contextmanager
def _hooks_removed() -> Iterator[None]:
    search_model.uninstall()
    try:
        yield
    finally:
        search_model.install()


def test_without_the_hooks_the_model_goes_stale(
    session: Session, network: dict[str, uuid.UUID]
) -> None:
    """The invariant above is not vacuous: the same write without the hooks breaks it."""
    with _hooks_removed():
        services.set_capacity(
            session=session,
            principal=STEWARD,
            service=_service_record(session, network["service"]),
            rows=[],
        )
    with pytest.raises(AssertionError):
        assert_in_step(session)


def test_compact_schedules_round_trip() -> None:
    weekly = [
        WeeklySchedule(freq="weekly", byday="MO,FR", opens_at=None, closes_at=None),
        WeeklySchedule(
            freq="MONTHLY",
            interval=2,
            bymonthday="1,-1",
            opens_at=datetime(2026, 1, 1, 8, 30, 15).time(),
            closes_at=datetime(2026, 1, 1, 23, 59).time(),
            valid_from=datetime(2026, 1, 1).date(),
            dtstart=datetime(2026, 1, 5).date(),
        ),
    ]
    compact = search_model.to_compact(weekly)
    assert json.loads(json.dumps(compact)) == compact
    assert search_model.from_compact(compact) == weekly


# --- the sample network, and the doc against a service read -------------------------------------


def test_the_sample_network_loads_in_step_and_its_docs_say_what_a_service_read_says(
    session: Session, backend: str
) -> None:
    seed.load_sample(session=session)
    assert_in_step(session)
    _sides_match_lists(session, backend)
    rows = _table_rows(session)
    now = datetime.now(UTC)
    contexts = {
        locale: services.ReadContext(
            locale=locale, at=now, capacity_stale_after=timedelta(hours=72)
        )
        for locale in ("es", "en")
    }
    parents = taxonomy.parent_map(session=session)
    for values in rows.values():
        doc = values["doc"]
        service = _service_record(session, values["service_id"])
        reads = {
            locale: services.read(
                session=session, principal=STEWARD, service_id=service.id, context=context
            )
            for locale, context in contexts.items()
        }
        for locale, read in reads.items():
            assert doc["categories"][locale] == [c.model_dump() for c in read.categories]
            assert doc["languages"][locale] == [
                {"code": lang.code, "name": lang.name} for lang in read.languages
            ]
        read = reads["es"]
        assert doc["service"] == {
            "id": str(service.id),
            "name": read.name,
            "organization_id": str(read.organization_id),
            "organization_name": doc["service"]["organization_name"],
            "minimum_age": read.eligibility.minimum_age,
            "maximum_age": read.eligibility.maximum_age,
            "genders_served": read.eligibility.genders_served,
            "lgbtiq_affirming": read.eligibility.lgbtiq_affirming,
            "accepts_accompanying_children": read.eligibility.accepts_accompanying_children,
        }
        capacity = [
            CapacityOut(
                **services.capacity_document(
                    unit=item["unit"],
                    available=item["available"],
                    maximum=item["maximum"],
                    description=item["description"],
                    updated=datetime.fromisoformat(item["updated"]),
                    context=contexts["es"],
                )
            )
            for item in doc["capacity"]
        ]
        assert capacity == read.capacity
        stored = children_by(session, Schedule, "service_id", [service.id])[service.id]
        assert search_model.from_compact(doc["schedules"]) == services.weekly_schedules(stored)
        expected_codes = set()
        for category in read.categories:
            expected_codes |= {category.code, *taxonomy.ancestor_codes(category.code, parents)}
        assert set(values["category_codes"]) == expected_codes
        assert values["language_codes"] == sorted({lang.code for lang in read.languages})
        site = _location_record(session, values["location_id"])
        assert doc["location"]["latitude"] == site.latitude
        assert doc["location"]["longitude"] == site.longitude
        assert doc["last_verified"] == (
            None if read.assured_date is None else read.assured_date.isoformat()
        )


# --- the migration fills the model of an upgraded database ---------------------------------------


@pytest.fixture(params=["spatialite", "postgis"])
def fresh_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for an empty database, separate from the session's shared one."""
    backend = str(request.param)
    try:
        return make_backend_settings(backend, tmp_path, suffix="_search_model")
    except Exception as exc:
        unavailable(request, backend, exc)
        raise


def test_the_migration_fills_the_model_of_an_upgraded_database_and_the_cli_rebuilds_it(
    fresh_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    previous = "5b1e0f7c2a91"
    # The records are written through today's domain at the head, then the database is taken
    # back to the revision before the read model (the downgrades keep the directory's rows and
    # drop the model): written at that old revision, today's models would name columns that a
    # later revision added.
    migrate.upgrade(fresh_settings)
    engine = make_engine(fresh_settings)
    try:
        with Session(engine) as session:
            areas.load_areas(session=session)
            taxonomy.load_taxonomy(session=session)
            organization_id = _organization(session, "Antes")
            location_id = _location(session, organization_id, QUETZALTENANGO, "restricted")
            service_id = _service(session, organization_id, ["protection.shelter"], ["spa"])
            assert _link(session, service_id, location_id) is not None
        engine.dispose()
        migrate.downgrade(fresh_settings, previous)
        with engine.connect() as conn:
            assert not inspect(conn).has_table("search_entry")
            assert conn.execute(text("SELECT count(*) FROM service_at_location")).scalar() == 1
        migrate.upgrade(fresh_settings)
        with Session(engine) as session:
            assert len(_table_rows(session)) == 1
            assert_in_step(session)
            session.execute(delete(SearchEntry))
            session.commit()
            assert _table_rows(session) == {}

        monkeypatch.setenv("REFERRAL_NET_DATABASE_URL", fresh_settings.database_url)
        result = CliRunner().invoke(app, ["search", "rebuild"])
        assert result.exit_code == 0, result.output
        assert result.output == "rebuilt 1 search entries\n"
        with Session(engine) as session:
            assert len(_table_rows(session)) == 1
            assert_in_step(session)
        migrate.downgrade(fresh_settings, previous)
        with engine.connect() as conn:
            tables = conn.execute(text("SELECT 1 FROM service_at_location")).all()
            assert len(tables) == 1
    finally:
        engine.dispose()


def test_both_points_have_a_spatial_index_and_postgis_the_code_lists_gin(engine: Engine) -> None:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.execute(
                text(
                    "SELECT f_geometry_column, geometry_type, srid, spatial_index_enabled"
                    " FROM geometry_columns WHERE f_table_name = 'search_entry'"
                    " ORDER BY f_geometry_column"
                )
            ).all()
            assert [tuple(row) for row in rows] == [
                ("exact_geom", 1, 4326, 1),  # 1 = POINT, R*Tree enabled
                ("public_geom", 1, 4326, 1),
            ]
            return
        indexdefs = set(
            conn.execute(
                text("SELECT indexdef FROM pg_indexes WHERE tablename = 'search_entry'")
            ).scalars()
        )
        for column in ("exact_geom", "public_geom"):
            assert any(f"USING gist ({column})" in d for d in indexdefs), column
        for column in ("category_codes", "language_codes", "served_genders"):
            assert any(f"USING gin ({column})" in d for d in indexdefs), column


@pytest.fixture
def postgis_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A migrated PostGIS database of its own, with areas and the taxonomy: committed data that
    two connections share (the per-test rollback cannot hold two transactions)."""
    try:
        settings = make_backend_settings("postgis", tmp_path, suffix="_search_model_locks")
        migrate.upgrade(settings)
    except Exception as exc:
        unavailable(request, "postgis", exc)
        raise
    engine = make_engine(settings)
    try:
        with Session(engine) as session:
            areas.load_areas(session=session)
            taxonomy.load_taxonomy(session=session)
    finally:
        engine.dispose()
    return settings


def test_two_writers_reaching_one_entry_leave_it_with_both_writes(
    postgis_settings: Settings,
) -> None:
    """PostgreSQL runs writers side by side: the second refresh of an entry waits for the first
    to commit and then reads it (without the lock it would miss the first write, or fail on the
    primary key of the entry the first one inserted)."""
    engine = make_engine(postgis_settings)
    try:
        with Session(engine, expire_on_commit=False) as session:
            organization_id = _organization(session, "Concurrente")
            location_id = _location(session, organization_id, QUETZALTENANGO, "public")
            service_id = _service(session, organization_id, ["protection.shelter"], ["spa"])
            link_id = _link(session, service_id, location_id)
        first = Session(engine, expire_on_commit=False)
        # The first writer changes the site and refreshes the entry, holding its transaction.
        location = _location_record(first, location_id)
        location.name = "Sede primera (ejemplo)"
        first.flush()
        search_model.refresh(first, service_at_location_ids=[link_id])
        second_done = threading.Event()
        failures: list[BaseException] = []

        def second_writer() -> None:
            try:
                with Session(engine, expire_on_commit=False) as second:
                    service = _service_record(second, service_id)
                    service.name = "Servicio segundo (ejemplo)"
                    second.commit()  # its refresh waits for the first writer's commit
            except BaseException as exc:  # noqa: BLE001 - reported to the test thread
                failures.append(exc)
            finally:
                second_done.set()

        thread = threading.Thread(target=second_writer)
        thread.start()
        assert not second_done.wait(0.5)  # held by the first writer's lock on the link
        first.commit()
        first.close()
        thread.join(timeout=30)
        assert failures == []
        with Session(engine) as session:
            entry = _table_rows(session)[str(link_id)]
            assert entry["doc"]["location"]["name"] == "Sede primera (ejemplo)"
            assert entry["service_name"] == "Servicio segundo (ejemplo)"
            assert_in_step(session)
    finally:
        engine.dispose()
