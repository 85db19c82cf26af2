"""Staff log-in: OAuth2 password flow, refresh, disabled users, and bad tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from referral_net.domain import users
from referral_net.security import tokens
from referral_net.security.roles import Role

pytestmark = pytest.mark.db
PASSWORD = "correct horse battery staple"


def _login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, object]:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    return {
        "status": response.status_code,
        "body": response.json(),
        "type": response.headers["content-type"],
    }


def test_login_refresh_and_use_token(client: TestClient, session: Session, unique: str) -> None:
    users.create_user(
        session=session, username=f"st-{unique}", password=PASSWORD, role=Role.STEWARD
    )
    result = _login(client, f"st-{unique}")
    assert result["status"] == 200
    body = result["body"]
    assert isinstance(body, dict)
    assert body["token_type"] == "bearer"
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get("/api/v1/verification/due", headers=headers).status_code == 200

    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert refreshed.status_code == 200
    assert refreshed.json()["access_token"] != body["access_token"]
    # an access token is not a refresh token
    wrong_kind = client.post("/api/v1/auth/refresh", json={"refresh_token": body["access_token"]})
    assert wrong_kind.status_code == 401


def test_wrong_password_and_unknown_user_look_the_same(
    client: TestClient, session: Session, unique: str
) -> None:
    users.create_user(
        session=session, username=f"cw-{unique}", password=PASSWORD, role=Role.CASEWORKER
    )
    wrong = _login(client, f"cw-{unique}", "not the password at all")
    unknown = _login(client, f"nobody-{unique}")
    assert wrong["status"] == unknown["status"] == 401
    assert wrong["type"] == "application/problem+json"
    assert wrong["body"] == {**unknown["body"]}  # type: ignore[dict-item]


def test_disabled_user_loses_login_and_tokens(
    client: TestClient, session: Session, unique: str
) -> None:
    users.create_user(session=session, username=f"j-{unique}", password=PASSWORD, role=Role.JUSTICE)
    body = _login(client, f"j-{unique}")["body"]
    assert isinstance(body, dict)
    users.disable_user(session=session, username=f"j-{unique}")
    assert _login(client, f"j-{unique}")["status"] == 401
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    response = client.get("/api/v1/organizations", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert refreshed.status_code == 401


def test_forged_and_expired_tokens_are_refused(
    app: FastAPI, client: TestClient, session: Session, unique: str
) -> None:
    user = users.create_user(
        session=session, username=f"s-{unique}", password=PASSWORD, role=Role.STEWARD
    )
    forged = tokens.issue_token(
        secret="another key entirely, not the app's",
        user_id=user.id,
        kind="access",
        token_version=user.token_version,
        lifetime=timedelta(minutes=5),
    )
    expired = tokens.issue_token(
        secret=app.state.signing_key,
        user_id=user.id,
        kind="access",
        token_version=user.token_version,
        lifetime=timedelta(seconds=-10),
    )
    for token in (forged, expired, "garbage"):
        response = client.get(
            "/api/v1/verification/due", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401


def test_user_rules(session: Session, unique: str) -> None:
    from referral_net.errors import Conflict, InvalidInput

    with pytest.raises(InvalidInput):
        users.create_user(
            session=session, username=f"p-{unique}", password=PASSWORD, role=Role.PROVIDER
        )
    with pytest.raises(InvalidInput):
        users.create_user(
            session=session, username=f"x-{unique}", password="short", role=Role.ADMIN
        )
    users.create_user(session=session, username=f"a-{unique}", password=PASSWORD, role=Role.ADMIN)
    with pytest.raises(Conflict):
        users.create_user(
            session=session, username=f"a-{unique}", password=PASSWORD, role=Role.ADMIN
        )
