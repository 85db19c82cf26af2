"""``referral-net referrals purge`` on both backends: erases note and traits of referrals
finished longer ago than the retention, keeps history and counts, and is idempotent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import update
from sqlmodel import Session, col, func, select
from typer.testing import CliRunner

from referral_net.cli import app
from referral_net.db import migrate
from referral_net.db.engine import make_engine
from referral_net.db.models import Referral, ReferralTransition
from referral_net.domain import referrals, taxonomy
from referral_net.domain.referral_workflow import Status
from referral_net.schemas.referrals import ReferralCreate
from referral_net.security.roles import Principal, Role
from referral_net.settings import Settings
from tests.conftest import make_backend_settings, unavailable
from tests.factories import make_organization, make_referral_target

pytestmark = pytest.mark.db


@pytest.fixture(params=["spatialite", "postgis"])
def migrated(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A fresh migrated database of each backend, with the taxonomy."""
    backend = str(request.param)
    try:
        settings = make_backend_settings(backend, tmp_path, suffix="_purge")
        migrate.upgrade(settings)
    except Exception as exc:
        unavailable(request, backend, exc)
        raise
    engine = make_engine(settings)
    with Session(engine) as session:
        taxonomy.load_taxonomy(session=session)
        session.commit()
    engine.dispose()
    return settings


def _finished_referrals(settings: Settings, *, days_ago: list[int]) -> None:
    """One completed referral with a note per entry, finished that many days ago."""
    key = SecretStr(Fernet.generate_key().decode("ascii"))
    policy = referrals.ReferralPolicy.from_settings(
        settings.model_copy(update={"referral_note_key": key})
    )
    engine = make_engine(settings)
    with Session(engine, expire_on_commit=False) as session:
        sender_org = make_organization(session, "Defensoría (ejemplo)")
        receiver_org = make_organization(session, "Refugio (ejemplo)")
        link_id = make_referral_target(session, receiver_org)
        sender = Principal(role=Role.CASEWORKER, subject="user:s", organization_id=sender_org.id)
        receiver = Principal(role=Role.PROVIDER, subject="user:r", organization_id=receiver_org.id)
        body = ReferralCreate.model_validate(
            {
                "service_at_location_id": str(link_id),
                "needs": ["protection.shelter.women"],
                "traits": {"age": 30},
                "consent": {"given": True, "given_on": datetime.now(UTC).date().isoformat()},
                "note": "nota breve",
            }
        )
        for days in days_ago:
            created = referrals.create(session=session, principal=sender, body=body, policy=policy)
            for target in (Status.RECEIVED, Status.ACCEPTED, Status.IN_PROGRESS, Status.COMPLETED):
                referrals.transition(
                    session=session,
                    principal=receiver,
                    referral_id=created.id,
                    target=target,
                    reason=None,
                    expected_version=None,
                    policy=policy,
                )
            session.execute(
                update(Referral)
                .where(col(Referral.id) == created.id)
                .values(finished_at=datetime.now(UTC) - timedelta(days=days))
            )
            session.commit()
    engine.dispose()


def test_referrals_purge_is_idempotent_and_keeps_history(
    migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _finished_referrals(migrated, days_ago=[200, 190, 10])
    monkeypatch.setenv("REFERRAL_NET_DATABASE_URL", migrated.database_url)
    runner = CliRunner()

    first = runner.invoke(app, ["referrals", "purge"])
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == "purged 2 referrals"
    again = runner.invoke(app, ["referrals", "purge"])
    assert again.stdout.strip() == "purged 0 referrals"
    shorter = runner.invoke(app, ["referrals", "purge", "--days", "5"])
    assert shorter.stdout.strip() == "purged 1 referrals"

    engine = make_engine(migrated)
    with Session(engine) as session:
        rows = session.exec(select(Referral)).all()
        assert len(rows) == 3
        assert all(r.traits is None and r.note_ciphertext is None for r in rows)
        assert all(r.status == Status.COMPLETED.value for r in rows)
        steps = session.exec(select(func.count()).select_from(ReferralTransition)).one()
        assert steps == 3 * 5
    engine.dispose()
