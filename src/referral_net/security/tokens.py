"""Short-lived JWT bearer tokens (HS256) for staff users, with refresh tokens."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt

TokenKind = Literal["access", "refresh"]
_ALGORITHM = "HS256"
_ISSUER = "referral-net"


@dataclass(frozen=True)
class TokenClaims:
    """The claims referral-net puts in and reads back from a token."""

    user_id: uuid.UUID
    kind: TokenKind
    token_version: int
    expires_at: datetime


class InvalidToken(Exception):
    """The token is malformed, expired, of the wrong kind or signed with another key."""


def issue_token(
    *,
    secret: str,
    user_id: uuid.UUID,
    kind: TokenKind,
    token_version: int,
    lifetime: timedelta,
    now: datetime | None = None,
) -> str:
    """Sign a token for a user. The token carries no name and no role: those are looked up."""
    issued = now or datetime.now(UTC)
    payload = {
        "iss": _ISSUER,
        "sub": str(user_id),
        "typ": kind,
        "ver": token_version,
        "iat": int(issued.timestamp()),
        "exp": int((issued + lifetime).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(payload, secret, algorithm=_ALGORITHM)


def read_token(*, secret: str, token: str, expected_kind: TokenKind) -> TokenClaims:
    """Verify a token's signature, expiry, issuer and kind, and return its claims."""
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            issuer=_ISSUER,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
        if payload.get("typ") != expected_kind:
            raise InvalidToken("wrong token kind")
        return TokenClaims(
            user_id=uuid.UUID(str(payload["sub"])),
            kind=expected_kind,
            token_version=int(payload.get("ver", 0)),
            expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
        )
    except (jwt.PyJWTError, ValueError, KeyError) as exc:
        raise InvalidToken("invalid token") from exc
