"""The audit trail, for stewards: query it by record and by user, and verify its hash chain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from referral_net.api.deps import SessionDep, SettingsDep, require_roles
from referral_net.api.pagination import PageDep
from referral_net.api.params import KnownQueryOnly
from referral_net.domain import audit
from referral_net.schemas.common import Page
from referral_net.security.roles import Principal, Role

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
Steward = Annotated[Principal, Depends(require_roles(Role.STEWARD))]

_HASH_EXAMPLE = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


class AuditEntryRead(BaseModel):
    """One audit entry: who did what to which record, when and through which endpoint."""

    seq: int = Field(description="Position in the chain, from 1, without gaps.", examples=[42])
    occurred_at: datetime = Field(examples=["2026-11-29T14:03:12.123456Z"])
    actor: str = Field(description="A subject, never a person's name.", examples=["user:ana"])
    role: str = Field(description="The actor's role; `system` for the CLI.", examples=["steward"])
    action: str = Field(
        description="create, update, delete, or read_exact (a hidden site's place was shown).",
        examples=["update"],
    )
    resource_type: str = Field(examples=["location"])
    resource_id: str | None = Field(examples=["5b0e1c4e-8f3a-4c55-9a4e-0c1d2e3f4a5b"])
    endpoint: str = Field(
        description="Method and route template, or `cli`.",
        examples=["PATCH /api/v1/locations/{location_id}"],
    )
    detail: dict[str, Any] | None = Field(
        description="Names of changed fields only, never their values.",
        examples=[{"fields": ["phones", "visibility"]}],
    )
    prev_hash: str = Field(examples=["0" * 64])
    entry_hash: str = Field(examples=[_HASH_EXAMPLE])
    entry_mac: str | None = Field(
        default=None,
        description="HMAC of the chain under the audit key; null if written without the key.",
        examples=[_HASH_EXAMPLE],
    )


class VerifyRead(BaseModel):
    """The outcome of walking the hash chain."""

    ok: bool = Field(description="True when every entry and link checks out.", examples=[True])
    entries: int = Field(description="Entries checked before stopping.", examples=[1234])
    head_hash: str = Field(
        description="Hash of the last good entry; note it to detect later truncation.",
        examples=[_HASH_EXAMPLE],
    )
    first_bad_seq: int | None = Field(
        default=None, description="The first edited or missing entry.", examples=[None]
    )
    reason: str | None = Field(default=None, examples=[None])
    head_seq: int = Field(default=0, description="Seq of the last good entry.", examples=[1234])
    mac_checked: bool = Field(
        default=False,
        description="True when the server holds the audit key and recomputed every MAC.",
        examples=[True],
    )
    unanchored_entries: int = Field(
        default=0,
        description="Entries written before the audit key was set (no MAC); not a failure.",
        examples=[0],
    )


@router.get(
    "",
    summary="Query the audit trail by record and by user (stewards)",
    response_model=Page[AuditEntryRead],
    dependencies=[KnownQueryOnly],
)
def list_audit_entries(
    session: SessionDep,
    principal: Steward,
    page: PageDep,
    resource_id: Annotated[
        str | None, Query(max_length=64, description="Only entries about this record id.")
    ] = None,
    actor: Annotated[
        str | None, Query(max_length=320, description="Only entries by this actor (user:NAME).")
    ] = None,
) -> Page[AuditEntryRead]:
    """Audit entries, newest first, paginated (HSDS envelope)."""
    rows, total = audit.query(
        session=session,
        resource_id=resource_id,
        actor=actor,
        offset=page.offset,
        limit=page.per_page,
    )
    items = [AuditEntryRead.model_validate(r, from_attributes=True) for r in rows]
    return Page[AuditEntryRead].build(items, total=total, page=page.page, per_page=page.per_page)


@router.get("/verify", summary="Verify the audit trail's hash chain (stewards)")
def verify_audit_trail(
    session: SessionDep, settings: SettingsDep, principal: Steward
) -> VerifyRead:
    """Recompute every hash, link and (with the audit key) MAC; report the first bad entry.

    Checkpoints live off the server and are checked by ``referral-net audit verify
    --checkpoint FILE``; compare ``head_seq`` and ``head_hash`` with your latest one.
    """
    report = audit.verify(session=session, key=settings.audit_key)
    return VerifyRead(
        ok=report.ok,
        entries=report.entries,
        head_hash=report.head_hash,
        first_bad_seq=report.first_bad_seq,
        reason=report.reason,
        head_seq=report.head_seq,
        mac_checked=report.mac_checked,
        unanchored_entries=report.unanchored,
    )
