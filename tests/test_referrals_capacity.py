"""No overbooking: 10 simultaneous acceptances of emergencies into a shelter with 3 places.

Each acceptance runs in its own thread, connection and write transaction, as concurrent requests
do, on a fresh database of each backend (the per-test rolled-back transaction of the other tests
would serialize them). PostGIS: the capacity rows are locked (``SELECT ... FOR UPDATE``);
SpatiaLite: a write transaction holds the one write lock from ``BEGIN IMMEDIATE``. Exactly 3
succeed, the other 7 get a 409 (Conflict), and the free count and the search read model agree.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from referral_net.db import migrate
from referral_net.db.engine import make_engine, write_session
from referral_net.db.models import Referral, SearchEntry, ServiceCapacity
from referral_net.domain import referrals, taxonomy
from referral_net.domain.referral_workflow import Status
from referral_net.errors import Conflict
from referral_net.schemas.referrals import ReferralCreate
from referral_net.security.roles import Principal, Role
from referral_net.settings import Settings
from tests.conftest import make_backend_settings, unavailable
from tests.factories import make_organization, make_referral_target

pytestmark = pytest.mark.db
PLACES = 3
ACCEPTANCES = 10
POLICY = referrals.ReferralPolicy.from_settings(Settings())


@pytest.fixture(params=["spatialite", "postgis"])
def engine_of_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh migrated database of each backend and its engine."""
    backend = str(request.param)
    try:
        settings = make_backend_settings(backend, tmp_path, suffix="_places")
        migrate.upgrade(settings)
    except Exception as exc:
        unavailable(request, backend, exc)
        raise
    engine = make_engine(settings)
    yield engine
    engine.dispose()


def _received_emergencies(engine: Engine) -> tuple[uuid.UUID, Principal, list[uuid.UUID]]:
    """A shelter with 3 free places and 10 emergency referrals to it, all received."""
    with Session(engine, expire_on_commit=False) as session:
        taxonomy.load_taxonomy(session=session)
        session.commit()
        sender_org = make_organization(session, "Defensoría (ejemplo)")
        receiver_org = make_organization(session, "Refugio (ejemplo)")
        link_id = make_referral_target(session, receiver_org, beds=PLACES, maximum=PLACES)
        sender = Principal(
            role=Role.CASEWORKER, subject="user:sender", organization_id=sender_org.id
        )
        receiver = Principal(
            role=Role.PROVIDER, subject="user:receiver", organization_id=receiver_org.id
        )
        body = ReferralCreate.model_validate(
            {
                "service_at_location_id": str(link_id),
                "needs": ["protection.shelter.women"],
                "urgency": "emergency",
                "consent": {"given": True, "given_on": datetime.now(UTC).date().isoformat()},
            }
        )
        ids = []
        for _ in range(ACCEPTANCES):
            created = referrals.create(session=session, principal=sender, body=body, policy=POLICY)
            referrals.transition(
                session=session,
                principal=receiver,
                referral_id=created.id,
                target=Status.RECEIVED,
                reason=None,
                expected_version=None,
                policy=POLICY,
            )
            ids.append(created.id)
    return link_id, receiver, ids


def test_three_places_ten_simultaneous_acceptances_exactly_three_succeed(
    engine_of_backend: Engine,
) -> None:
    engine = engine_of_backend
    link_id, receiver, ids = _received_emergencies(engine)
    start = threading.Barrier(ACCEPTANCES)
    outcomes: dict[uuid.UUID, str] = {}
    lock = threading.Lock()

    def accept(referral_id: uuid.UUID) -> None:
        start.wait()
        try:
            with write_session(engine) as session:
                referrals.transition(
                    session=session,
                    principal=receiver,
                    referral_id=referral_id,
                    target=Status.ACCEPTED,
                    reason=None,
                    expected_version=None,
                    policy=POLICY,
                )
            outcome = "accepted"
        except Conflict:
            outcome = "conflict"
        except Exception as exc:  # noqa: BLE001 - any other outcome fails the test below
            outcome = f"error: {type(exc).__name__}: {exc}"
        with lock:
            outcomes[referral_id] = outcome

    threads = [threading.Thread(target=accept, args=(rid,)) for rid in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(outcomes.values()) == ["accepted"] * PLACES + ["conflict"] * (
        ACCEPTANCES - PLACES
    ), outcomes

    with Session(engine) as session:
        accepted = session.exec(
            select(Referral).where(col(Referral.status) == Status.ACCEPTED.value)
        ).all()
        assert {r.id for r in accepted} == {rid for rid, o in outcomes.items() if o == "accepted"}
        assert all(r.reserved_unit_id is not None for r in accepted)
        still_received = session.exec(
            select(Referral).where(col(Referral.status) == Status.RECEIVED.value)
        ).all()
        assert len(still_received) == ACCEPTANCES - PLACES
        assert all(r.reserved_unit_id is None for r in still_received)
        entry = session.get(SearchEntry, link_id)
        assert entry is not None
        capacity = session.exec(
            select(ServiceCapacity).where(col(ServiceCapacity.service_id) == entry.service_id)
        ).one()
        assert capacity.available == 0
        assert entry.has_capacity is False
