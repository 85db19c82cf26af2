"""Refresh-token rotation and reuse detection, on both backends: each refresh token works once;
replaying a retired one revokes its whole family (the newest token included) and is audited;
expired tokens, tokens of disabled users and tokens from before rotation are refused; of two
simultaneous refreshes with one token at most one wins."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from referral_net.db import migrate
from referral_net.db.engine import make_engine
from referral_net.db.models import AuditEntry, RefreshToken, UserAccount
from referral_net.domain import audit, sessions, users
from referral_net.errors import Unauthenticated
from referral_net.security import tokens
from referral_net.security.roles import Role
from referral_net.settings import Settings
from tests.conftest import make_backend_settings, unavailable

pytestmark = pytest.mark.db
PASSWORD = "correct horse battery staple"
TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/refresh"
SECRET = "a-test-signing-key-of-at-least-32-bytes!"


def _user(session: Session, name: str) -> UserAccount:
    return users.create_user(session=session, username=name, password=PASSWORD, role=Role.STEWARD)


def _login(client: TestClient, username: str) -> dict[str, str]:
    response = client.post(TOKEN, data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


def _refresh(client: TestClient, token: str) -> int:
    return client.post(REFRESH, json={"refresh_token": token}).status_code


def _reuse_entries(session: Session) -> list[AuditEntry]:
    return list(
        session.exec(
            select(AuditEntry)
            .where(col(AuditEntry.action) == sessions.REUSE_ACTION)
            .order_by(col(AuditEntry.seq))
            .execution_options(populate_existing=True)
        )
    )


def test_each_refresh_rotates_the_refresh_token(
    client: TestClient, session: Session, unique: str
) -> None:
    _user(session, f"rot-{unique}")
    first = _login(client, f"rot-{unique}")
    response = client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (
        client.get(
            "/api/v1/verification/due",
            headers={"Authorization": f"Bearer {second['access_token']}"},
        ).status_code
        == 200
    )
    # The new token carries the same family and a new id; the old one is retired.
    old = tokens.read_token(
        secret=client.app.state.signing_key,  # type: ignore[attr-defined]
        token=first["refresh_token"],
        expected_kind="refresh",
    )
    new = tokens.read_token(
        secret=client.app.state.signing_key,  # type: ignore[attr-defined]
        token=second["refresh_token"],
        expected_kind="refresh",
    )
    assert old.family_id is not None
    assert old.family_id == new.family_id
    assert old.jti != new.jti
    third = client.post(REFRESH, json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200, third.text
    rows = session.exec(
        select(RefreshToken)
        .where(col(RefreshToken.family_id) == old.family_id)
        .execution_options(populate_existing=True)
    ).all()
    assert len(rows) == 3
    assert sum(r.used_at is None for r in rows) == 1
    assert all(r.revoked_at is None for r in rows)


def test_replaying_a_retired_token_revokes_the_family_and_is_audited(
    client: TestClient, session: Session, unique: str
) -> None:
    user = _user(session, f"rep-{unique}")
    stolen = _login(client, f"rep-{unique}")["refresh_token"]
    other_family = _login(client, f"rep-{unique}")["refresh_token"]
    newest = client.post(REFRESH, json={"refresh_token": stolen}).json()["refresh_token"]
    before = len(_reuse_entries(session))

    assert _refresh(client, stolen) == 401  # the replay
    assert _refresh(client, newest) == 401  # the family's newest token died with it
    assert _refresh(client, other_family) == 200  # another log-in is not touched

    entries = _reuse_entries(session)
    assert len(entries) == before + 1
    entry = entries[-1]
    family = tokens.read_token(
        secret=client.app.state.signing_key,  # type: ignore[attr-defined]
        token=stolen,
        expected_kind="refresh",
    ).family_id
    assert (entry.actor, entry.role, entry.resource_type, entry.resource_id) == (
        f"user:{user.username}",
        "steward",
        sessions.FAMILY_RESOURCE,
        str(family),
    )
    assert entry.endpoint == "POST /api/v1/auth/refresh"
    assert entry.detail == {"revoked_tokens": 2}
    dumped = json.dumps(entry.model_dump(mode="json"))
    assert stolen not in dumped
    assert newest not in dumped
    assert audit.verify(session=session).ok


def test_expired_unknown_and_pre_rotation_tokens_are_refused(
    client: TestClient, session: Session, unique: str
) -> None:
    user = _user(session, f"exp-{unique}")
    key: str = client.app.state.signing_key  # type: ignore[attr-defined]
    expired = sessions.log_in(
        session=session,
        user=user,
        secret=key,
        access_lifetime=timedelta(minutes=5),
        refresh_lifetime=timedelta(days=1),
        now=datetime.now(UTC) - timedelta(days=2),
    ).refresh_token
    pre_rotation = tokens.issue_token(
        secret=key,
        user_id=user.id,
        kind="refresh",
        token_version=user.token_version,
        lifetime=timedelta(days=1),
    )
    unknown = tokens.issue_token(
        secret=key,
        user_id=user.id,
        kind="refresh",
        token_version=user.token_version,
        lifetime=timedelta(days=1),
        family_id=user.id,
    )
    for token in (expired, pre_rotation, unknown):
        assert _refresh(client, token) == 401
    # None of these was ever retired, so none is a replay.
    assert all(e.actor != f"user:{user.username}" for e in _reuse_entries(session))


def test_disabling_a_user_kills_every_family(
    client: TestClient, session: Session, unique: str
) -> None:
    _user(session, f"dis-{unique}")
    first = _login(client, f"dis-{unique}")["refresh_token"]
    rotated = client.post(REFRESH, json={"refresh_token": first}).json()["refresh_token"]
    second = _login(client, f"dis-{unique}")["refresh_token"]
    users.disable_user(session=session, username=f"dis-{unique}")
    assert _refresh(client, rotated) == 401
    assert _refresh(client, second) == 401


@pytest.fixture(params=["spatialite", "postgis"])
def race_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A freshly migrated database of each backend, for writers in separate transactions."""
    backend = str(request.param)
    try:
        settings = make_backend_settings(backend, tmp_path, suffix="_refresh_race")
        migrate.upgrade(settings)
    except Exception as exc:
        unavailable(request, backend, exc)
        raise
    return settings


def test_two_simultaneous_refreshes_with_one_token_at_most_one_wins(
    race_settings: Settings,
) -> None:
    engine = make_engine(race_settings)
    lifetimes = {"access_lifetime": timedelta(minutes=5), "refresh_lifetime": timedelta(days=1)}
    try:
        with Session(engine, expire_on_commit=False) as session:
            user = _user(session, "racer")
            token = sessions.log_in(
                session=session, user=user, secret=SECRET, **lifetimes
            ).refresh_token
        barrier = threading.Barrier(2)
        won: list[str] = []
        lost: list[str] = []
        errors: list[BaseException] = []

        def attempt() -> None:
            with Session(engine, expire_on_commit=False) as session:
                barrier.wait()
                try:
                    issued = sessions.refresh(
                        session=session, refresh_token=token, secret=SECRET, **lifetimes
                    )
                    won.append(issued.refresh_token)
                except Unauthenticated:
                    lost.append("401")
                except Exception as exc:  # noqa: BLE001 - a lock error would be a 500: record it
                    errors.append(exc)

        threads = [threading.Thread(target=attempt) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        assert (len(won), len(lost)) == (1, 1)
        # The loser looked like a replay: the family is revoked, the winner's new token too.
        with Session(engine) as session:
            with pytest.raises(Unauthenticated):
                sessions.refresh(session=session, refresh_token=won[0], secret=SECRET, **lifetimes)
            assert len(_reuse_entries(session)) == 1
            assert audit.verify(session=session).ok
    finally:
        engine.dispose()
