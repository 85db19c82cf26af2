"""Staff user accounts: creation, disabling, and password authentication."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlmodel import Session, select

from referral_net.db.models import Organization, UserAccount
from referral_net.domain import audit
from referral_net.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from referral_net.security.passwords import DUMMY_HASH, hash_password, verify_password
from referral_net.security.roles import Principal, Role

ORGANIZATION_ROLES = frozenset({Role.PROVIDER})
# Who the audit trail names for account changes made outside a request (the CLI).
AUDIT_ACTOR = "cli"


def create_user(
    *,
    session: Session,
    username: str,
    password: str,
    role: Role,
    organization_id: uuid.UUID | None = None,
) -> UserAccount:
    """Create a staff user; providers must belong to an organization."""
    if role in (Role.PUBLIC, Role.PARTNER):
        raise InvalidInput(f"role {role.value} is not a staff role; partners use API keys")
    if role in ORGANIZATION_ROLES and organization_id is None:
        raise InvalidInput("a provider user needs an organization")
    if organization_id is not None and session.get(Organization, organization_id) is None:
        raise NotFound("No such organization.")
    if session.exec(select(UserAccount).where(UserAccount.username == username)).first():
        raise Conflict("That username is taken.")
    try:
        password_hash = hash_password(password)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    user = UserAccount(
        username=username,
        password_hash=password_hash,
        role=role.value,
        organization_id=organization_id,
        created_at=datetime.now(UTC),
    )
    session.add(user)
    audit.record_write(
        session=session,
        actor=AUDIT_ACTOR,
        action="create",
        resource_type="user_account",
        resource_id=user.id,
        fields=["username", "password_hash", "role", "organization_id"],
    )
    session.commit()
    return user


def disable_user(*, session: Session, username: str) -> UserAccount:
    """Disable a user and invalidate every token issued to them."""
    user = session.exec(select(UserAccount).where(UserAccount.username == username)).first()
    if user is None:
        raise NotFound("No such user.")
    user.disabled = True
    user.token_version += 1
    session.add(user)
    audit.record_write(
        session=session,
        actor=AUDIT_ACTOR,
        action="update",
        resource_type="user_account",
        resource_id=user.id,
        fields=["disabled", "token_version"],
    )
    session.commit()
    return user


def authenticate(*, session: Session, username: str, password: str) -> UserAccount:
    """Return the active user with these credentials, or raise Unauthenticated."""
    user = session.exec(select(UserAccount).where(UserAccount.username == username)).first()
    if user is None:
        verify_password(DUMMY_HASH, password)  # same cost as a wrong password
        raise Unauthenticated("Incorrect username or password.")
    if not verify_password(user.password_hash, password) or user.disabled:
        raise Unauthenticated("Incorrect username or password.")
    return user


def current_user(*, session: Session, user_id: uuid.UUID, token_version: int) -> UserAccount | None:
    """The user an access token names, if it still counts: the account exists, is enabled, and
    no token invalidation (``disable_user``) happened after the token was issued."""
    user = session.get(UserAccount, user_id)
    if user is None or user.disabled or user.token_version != token_version:
        return None
    return user


def principal_for(user: UserAccount) -> Principal:
    """The principal a logged-in user acts as."""
    return Principal(
        role=Role(user.role),
        subject=f"user:{user.username}",
        user_id=user.id,
        organization_id=user.organization_id,
    )
