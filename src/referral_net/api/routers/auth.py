"""OAuth2 password flow for staff: short-lived access tokens and refresh tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from referral_net.api.deps import SessionDep, SettingsDep, signing_key
from referral_net.api.ratelimit import client_ip, login_throttle
from referral_net.db.models import UserAccount
from referral_net.domain import users
from referral_net.errors import Unauthenticated
from referral_net.security import tokens

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


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


def _pair(user: UserAccount, settings: SettingsDep, key: str) -> TokenPair:
    access = timedelta(minutes=settings.access_token_minutes)
    return TokenPair(
        access_token=tokens.issue_token(
            secret=key,
            user_id=user.id,
            kind="access",
            token_version=user.token_version,
            lifetime=access,
        ),
        refresh_token=tokens.issue_token(
            secret=key,
            user_id=user.id,
            kind="refresh",
            token_version=user.token_version,
            lifetime=timedelta(days=settings.refresh_token_days),
        ),
        expires_in=int(access.total_seconds()),
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
        user = users.authenticate(session=session, username=form.username, password=form.password)
    except Unauthenticated:
        if throttle is not None:
            throttle.failed(ip, form.username)
        raise
    return _pair(user, settings, key)


@router.post(
    "/refresh",
    summary="Exchange a refresh token for a new token pair",
    response_model=TokenPair,
    responses={401: {"description": "Invalid or expired refresh token"}},
)
def refresh(
    body: RefreshRequest,
    session: SessionDep,
    settings: SettingsDep,
    key: Annotated[str, Depends(signing_key)],
) -> TokenPair:
    """Renew the pair while the user is active and the refresh token is current."""
    try:
        claims = tokens.read_token(secret=key, token=body.refresh_token, expected_kind="refresh")
    except tokens.InvalidToken as exc:
        raise Unauthenticated("Invalid or expired refresh token.") from exc
    user = session.get(UserAccount, claims.user_id)
    if user is None or user.disabled or user.token_version != claims.token_version:
        raise Unauthenticated("Invalid or expired refresh token.")
    return _pair(user, settings, key)
