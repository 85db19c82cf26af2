"""Roles and the principal making a request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """What a caller is; each role's permissions are listed in docs/access.md."""

    PUBLIC = "public"
    PARTNER = "partner"
    CASEWORKER = "caseworker"
    JUSTICE = "justice"
    PROVIDER = "provider"
    STEWARD = "steward"
    ADMIN = "admin"


STAFF_ROLES = frozenset({Role.CASEWORKER, Role.JUSTICE, Role.PROVIDER, Role.STEWARD, Role.ADMIN})


@dataclass(frozen=True)
class Principal:
    """Who is calling: an anonymous member of the public, a partner key, or a staff user."""

    role: Role
    subject: str
    user_id: uuid.UUID | None = None
    organization_id: uuid.UUID | None = None
    # Partner keys only: which key, the web origins bound to it, its scopes and its own limit.
    api_key_id: uuid.UUID | None = None
    allowed_origins: tuple[str, ...] = ()
    scopes: frozenset[str] = frozenset()
    requests_per_minute: int | None = None

    @classmethod
    def anonymous(cls) -> Principal:
        """The public, unauthenticated caller."""
        return cls(role=Role.PUBLIC, subject="anonymous")

    @property
    def is_staff(self) -> bool:
        """True for logged-in staff users of any role."""
        return self.role in STAFF_ROLES

    @property
    def audit_name(self) -> str:
        """The name written into change history and the audit log (never personal data)."""
        return self.subject
