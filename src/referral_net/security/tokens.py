"""Short-lived JWT bearer tokens (HS256) for staff users, with refresh tokens.

A refresh token carries its own id (``jti``) and the id of its family (``fam``): every refresh
token descended from one log-in shares the family, which :mod:`referral_net.domain.sessions`
rotates and revokes.
"""

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
    jti: str | None = None
    family_id: uuid.UUID | None = None


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
    jti: str | None = None,
    family_id: uuid.UUID | None = None,
) -> str:
    """Sign a token for a user. The token carries no name and no role: those are looked up.

    ``jti`` defaults to a random id; ``family_id`` is set on refresh tokens only.
    """
    issued = now or datetime.now(UTC)
    payload: dict[str, str | int] = {
        "iss": _ISSUER,
        "sub": str(user_id),
        "typ": kind,
        "ver": token_version,
        "iat": int(issued.timestamp()),
        "exp": int((issued + lifetime).timestamp()),
        "jti": jti or uuid.uuid4().hex,
    }
    if family_id is not None:
        payload["fam"] = str(family_id)
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
            jti=str(payload["jti"]) if "jti" in payload else None,
            family_id=uuid.UUID(str(payload["fam"])) if "fam" in payload else None,
        )
    except (jwt.PyJWTError, ValueError, KeyError) as exc:
        raise InvalidToken("invalid token") from exc
