"""OAuth2 password flow for staff: short-lived access tokens and refresh tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from referral_net.api.deps import SessionDep, SettingsDep, signing_key
from referral_net.api.ratelimit import client_ip, login_throttle
from referral_net.db.engine import read_before_write
from referral_net.domain import sessions, users
from referral_net.errors import Unauthenticated

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
# The route template named in the audit entry of a replayed refresh token.
REFRESH_ENDPOINT = "POST /api/v1/auth/refresh"


class TokenPair(BaseModel):
    """An access token and the refresh token that renews it."""

    access_token: str = Field(examples=["eyJhbGciOiJIUzI1NiIs..."])
    refresh_token: str = Field(examples=["eyJhbGciOiJIUzI1NiIs..."])
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int = Field(description="Seconds until the access token expires.", examples=[900])


class RefreshRequest(BaseModel):
    """A refresh token to exchange for a new pair."""

    model_config = {"extra": "forbid"}

    refresh_token: str = Field(min_length=10, max_length=4096, examples=["eyJhbGciOiJIUzI1NiIs..."])


def _lifetimes(settings: SettingsDep) -> tuple[timedelta, timedelta]:
    return timedelta(minutes=settings.access_token_minutes), timedelta(
        days=settings.refresh_token_days
    )


def _pair(issued: sessions.IssuedTokens) -> TokenPair:
    return TokenPair(
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        expires_in=issued.expires_in,
    )


@router.post(
    "/token",
    summary="Log in with username and password (OAuth2 password flow)",
    response_model=TokenPair,
    responses={
        401: {"description": "Incorrect username or password"},
        429: {"description": "Too many failed attempts from this address or for this username"},
    },
)
def login(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
    key: Annotated[str, Depends(signing_key)],
) -> TokenPair:
    """Exchange a staff user's credentials for a bearer token pair.

    Failed attempts are throttled per client IP and per username (``LoginThrottle``); once
    throttled, the password is not even checked until the window moves on.
    """
    throttle = login_throttle(request)
    ip = client_ip(request)
    if throttle is not None:
        throttle.check(ip, form.username)
    try:
        # The password check is slow on purpose (argon2): not while holding SQLite's write lock.
        with read_before_write(session):
            user = users.authenticate(
                session=session, username=form.username, password=form.password
            )
    except Unauthenticated:
        if throttle is not None:
            throttle.failed(ip, form.username)
        raise
    access, refresh_lifetime = _lifetimes(settings)
    return _pair(
        sessions.log_in(
            session=session,
            user=user,
            secret=key,
            access_lifetime=access,
            refresh_lifetime=refresh_lifetime,
        )
    )


@router.post(
    "/refresh",
    summary="Exchange a refresh token for a new token pair (rotation: each works once)",
    response_model=TokenPair,
    responses={401: {"description": "Invalid, expired, already used or revoked refresh token"}},
)
def refresh(
    body: RefreshRequest,
    session: SessionDep,
    settings: SettingsDep,
    key: Annotated[str, Depends(signing_key)],
) -> TokenPair:
    """Rotate: the refresh token is retired and a new pair of the same family is returned.

    Each refresh token works once. Presenting a retired one again revokes every token descended
    from the same log-in and is audited (``domain/sessions.py``).
    """
    access, refresh_lifetime = _lifetimes(settings)
    return _pair(
        sessions.refresh(
            session=session,
            refresh_token=body.refresh_token,
            secret=key,
            access_lifetime=access,
            refresh_lifetime=refresh_lifetime,
            endpoint=REFRESH_ENDPOINT,
        )
    )
