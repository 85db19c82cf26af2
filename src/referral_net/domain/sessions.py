"""Staff sessions: refresh-token families, rotation and reuse detection.

A log-in starts a *family*: one random id shared by every refresh token descended from that
log-in. Each refresh retires the token it was given (``used_at``) and issues the next one of the
family, so a refresh token works once. Presenting a retired token again means that someone holds
a copy (the legitimate client never replays a token it has exchanged), so the whole family is
revoked, the newest token included, and the event is audited with the user's subject as actor.

Retiring a token is one conditional ``UPDATE ... WHERE used_at IS NULL``: of two simultaneous
refreshes with the same token, exactly one changes the row; the other sees no row changed and is
treated as a replay (it revokes the family, the winner's new token included: the safe side when
two parties hold one token). Disabling a user bumps ``token_version``, which still kills every
token of every family.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from referral_net.db.models import RefreshToken, UserAccount
from referral_net.domain import audit, users
from referral_net.errors import Unauthenticated
from referral_net.security import tokens

REUSE_ACTION = "refresh_token_reuse"
FAMILY_RESOURCE = "refresh_token_family"
_INVALID = "Invalid or expired refresh token."


@dataclass(frozen=True)
class IssuedTokens:
    """A freshly signed access token and the refresh token that renews it."""

    access_token: str
    refresh_token: str
    expires_in: int


def log_in(
    *,
    session: Session,
    user: UserAccount,
    secret: str,
    access_lifetime: timedelta,
    refresh_lifetime: timedelta,
    now: datetime | None = None,
) -> IssuedTokens:
    """Start a new token family for an authenticated user and issue its first pair; commits.

    The user's expired refresh-token rows are pruned on the way: they can no longer be used, and
    a replay of one is refused by its signature's expiry already.
    """
    now = now or datetime.now(UTC)
    session.exec(
        delete(RefreshToken)
        .where(col(RefreshToken.user_id) == user.id, col(RefreshToken.expires_at) <= now)
        .execution_options(synchronize_session=False)
    )
    issued = _issue(
        session=session,
        user=user,
        family_id=uuid.uuid4(),
        secret=secret,
        access_lifetime=access_lifetime,
        refresh_lifetime=refresh_lifetime,
        now=now,
    )
    session.commit()
    return issued


def refresh(
    *,
    session: Session,
    refresh_token: str,
    secret: str,
    access_lifetime: timedelta,
    refresh_lifetime: timedelta,
    endpoint: str = audit.NO_ENDPOINT,
    now: datetime | None = None,
) -> IssuedTokens:
    """Exchange a current refresh token for a new pair of the same family; commits.

    Raises Unauthenticated for a bad, expired, unknown, retired or revoked token, or a user who
    is gone, disabled or whose tokens were invalidated. A retired token revokes its family and
    is audited (``endpoint`` names the route in that entry).
    """
    now = now or datetime.now(UTC)
    try:
        claims = tokens.read_token(secret=secret, token=refresh_token, expected_kind="refresh")
    except tokens.InvalidToken as exc:
        raise Unauthenticated(_INVALID) from exc
    if claims.jti is None or claims.family_id is None:
        # Issued before rotation existed: no row to retire, so it cannot be rotated safely.
        raise Unauthenticated(_INVALID)
    # The first statement of the transaction is the write: SQLite then takes its write lock at
    # once (a read first would make a concurrent refresh fail to upgrade), PostgreSQL row-locks.
    retired = session.exec(
        update(RefreshToken)
        .where(
            col(RefreshToken.jti) == claims.jti,
            col(RefreshToken.user_id) == claims.user_id,
            col(RefreshToken.family_id) == claims.family_id,
            col(RefreshToken.used_at).is_(None),
            col(RefreshToken.revoked_at).is_(None),
            col(RefreshToken.expires_at) > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if retired.rowcount != 1:
        _refuse(session=session, claims=claims, endpoint=endpoint, now=now)
    user = session.get(UserAccount, claims.user_id, populate_existing=True)
    if (
        user is None
        or user.disabled
        or user.token_version != claims.token_version
        or _family_revoked(session=session, family_id=claims.family_id)
    ):
        session.rollback()
        raise Unauthenticated(_INVALID)
    issued = _issue(
        session=session,
        user=user,
        family_id=claims.family_id,
        secret=secret,
        access_lifetime=access_lifetime,
        refresh_lifetime=refresh_lifetime,
        now=now,
    )
    session.commit()
    return issued


def revoke_family(*, session: Session, family_id: uuid.UUID, now: datetime | None = None) -> int:
    """Revoke every live token of a family (flushed, not committed); returns how many."""
    result = session.exec(
        update(RefreshToken)
        .where(
            col(RefreshToken.family_id) == family_id,
            col(RefreshToken.revoked_at).is_(None),
        )
        .values(revoked_at=now or datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)


def _refuse(
    *, session: Session, claims: tokens.TokenClaims, endpoint: str, now: datetime
) -> NoReturn:
    """The token could not be retired: audit and revoke on a replay, then always refuse."""
    assert claims.family_id is not None  # checked by the caller
    row = session.exec(
        select(RefreshToken)
        .where(col(RefreshToken.jti) == claims.jti)
        .execution_options(populate_existing=True)
    ).first()
    if (
        row is not None
        and row.user_id == claims.user_id
        and row.family_id == claims.family_id
        and row.used_at is not None
    ):
        revoked = revoke_family(session=session, family_id=row.family_id, now=now)
        user = session.get(UserAccount, row.user_id)
        if user is not None:
            principal = users.principal_for(user)
            audit.append(
                session=session,
                actor=principal.audit_name,
                role=principal.role.value,
                action=REUSE_ACTION,
                resource_type=FAMILY_RESOURCE,
                resource_id=row.family_id,
                endpoint=endpoint,
                detail={"revoked_tokens": revoked},
                when=now,
            )
        session.commit()
    else:
        session.rollback()
    raise Unauthenticated(_INVALID)


def _family_revoked(*, session: Session, family_id: uuid.UUID) -> bool:
    # Any revoked member kills the family: a revocation that raced with a rotation may have
    # missed the newest row, and this check still refuses it.
    return (
        session.exec(
            select(RefreshToken.jti)
            .where(
                col(RefreshToken.family_id) == family_id,
                col(RefreshToken.revoked_at).is_not(None),
            )
            .limit(1)
        ).first()
        is not None
    )


def _issue(
    *,
    session: Session,
    user: UserAccount,
    family_id: uuid.UUID,
    secret: str,
    access_lifetime: timedelta,
    refresh_lifetime: timedelta,
    now: datetime,
) -> IssuedTokens:
    jti = uuid.uuid4().hex
    session.add(
        RefreshToken(
            jti=jti,
            family_id=family_id,
            user_id=user.id,
            issued_at=now,
            expires_at=now + refresh_lifetime,
        )
    )
    session.flush()
    return IssuedTokens(
        access_token=tokens.issue_token(
            secret=secret,
            user_id=user.id,
            kind="access",
            token_version=user.token_version,
            lifetime=access_lifetime,
            now=now,
        ),
        refresh_token=tokens.issue_token(
            secret=secret,
            user_id=user.id,
            kind="refresh",
            token_version=user.token_version,
            lifetime=refresh_lifetime,
            now=now,
            jti=jti,
            family_id=family_id,
        ),
        expires_in=int(access_lifetime.total_seconds()),
    )
