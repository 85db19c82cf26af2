"""Request and response models of referrals (issue 17).

A referral identifies nobody: a pseudonymous case code made by the server, needs, urgency and the
same non-identifying traits as a match profile (``schemas/match.py``). Unknown fields are refused
(``StrictModel``), so a name, document number or phone number has nowhere to go.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from referral_net.schemas.common import StrictModel
from referral_net.schemas.match import (
    GenderIdentity,
    LanguageCode,
    MobilityNeed,
    SensoryNeed,
    Urgency,
)

ReferralStatus = Literal[
    "sent",
    "received",
    "accepted",
    "declined",
    "in_progress",
    "completed",
    "closed",
    "cancelled",
]
TargetStatus = Literal[
    "received", "accepted", "declined", "in_progress", "completed", "closed", "cancelled"
]
ConsentScope = Literal["referral", "referral_and_follow_up"]
OverrideReason = Literal[
    "imminent_danger", "medical_emergency", "unable_to_consent", "unaccompanied_minor"
]
Box = Literal["inbox", "outbox"]
NOTE_MAX_LENGTH = 1000


class ReferralTraits(StrictModel):
    """What the receiving service needs to know, in the match profile's vocabulary."""

    age: int | None = Field(default=None, ge=0, le=120, examples=[16])
    is_minor: bool | None = None
    gender: GenderIdentity | None = Field(default=None, examples=["woman"])
    lgbtiq: bool = False
    languages: list[LanguageCode] = Field(default_factory=list, max_length=5)
    accompanying_children: int = Field(default=0, ge=0, le=20)
    mobility_needs: list[MobilityNeed] = Field(default_factory=list, max_length=2)
    sensory_needs: list[SensoryNeed] = Field(default_factory=list, max_length=4)
    migrant: bool | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ReferralTraits:
        if self.age is not None and self.is_minor is not None and self.is_minor != (self.age < 18):
            raise ValueError("is_minor contradicts age")
        return self


class ConsentIn(StrictModel):
    """The person's consent to this referral, as the caseworker recorded it."""

    given: bool = Field(examples=[True])
    scope: ConsentScope = Field(default="referral", examples=["referral"])
    given_on: date = Field(examples=["2026-12-04"])
    expires_on: date | None = Field(default=None, examples=["2027-03-04"])

    @model_validator(mode="after")
    def _ordered(self) -> ConsentIn:
        if self.expires_on is not None and self.expires_on < self.given_on:
            raise ValueError("expires_on is before given_on")
        return self


class EmergencyOverrideIn(StrictModel):
    """Refer without current consent: emergencies only, with a reason from a fixed list."""

    reason: OverrideReason = Field(examples=["imminent_danger"])


class ReferralCreate(StrictModel):
    """A new referral to one service at one location."""

    service_at_location_id: uuid.UUID
    needs: list[str] = Field(
        min_length=1,
        max_length=8,
        description="Taxonomy codes of the needs this referral addresses.",
        examples=[["protection.shelter.children_adolescents"]],
    )
    urgency: Urgency = Field(default="routine", examples=["emergency"])
    traits: ReferralTraits = Field(default_factory=ReferralTraits)
    consent: ConsentIn | None = None
    emergency_override: EmergencyOverrideIn | None = None
    note: str | None = Field(
        default=None,
        min_length=1,
        max_length=NOTE_MAX_LENGTH,
        description="Short note for the receiving service, encrypted at rest. No names, "
        "documents or contact details of the person.",
    )
    match_proposals: list[uuid.UUID] | None = Field(
        default=None,
        max_length=50,
        description="The service_at_location_id of each /match proposal for the need, best "
        "first, so the report can tell whether the first proposal was the one accepted.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ReferralCreate:
        if len(set(self.needs)) != len(self.needs):
            raise ValueError("each need may appear only once")
        if self.emergency_override is not None and self.urgency != "emergency":
            raise ValueError("an emergency override needs urgency 'emergency'")
        return self


class TransitionIn(StrictModel):
    """Move a referral to another status."""

    status: TargetStatus = Field(examples=["accepted"])
    reason: str | None = Field(
        default=None,
        max_length=40,
        description="Declines: one of no_capacity, not_eligible, service_not_offered, "
        "outside_service_area, person_declined, duplicate, other. Other moves (optional): "
        "person_declined, person_unreachable, person_moved, duplicate, sent_in_error, other.",
        examples=["no_capacity"],
    )


class ConsentRead(BaseModel):
    """Consent as recorded (who recorded it is a staff account, never the person)."""

    given: bool
    scope: str | None
    given_on: date | None
    expires_on: date | None
    recorded_by: str | None


class TransitionRead(BaseModel):
    """One step of the status history."""

    from_status: str | None
    to_status: str
    actor: str
    role: str
    reason: str | None
    occurred_at: datetime


class ReferralRead(BaseModel):
    """A referral as its sending or receiving organization sees it."""

    id: uuid.UUID
    case_code: str = Field(examples=["RN-7K3Q-M2XD-9PWA-4HTC"])
    status: ReferralStatus
    version: int
    urgency: Urgency
    needs: list[str]
    sender_organization_id: uuid.UUID
    receiver_organization_id: uuid.UUID
    service_id: uuid.UUID
    location_id: uuid.UUID
    service_at_location_id: uuid.UUID | None
    traits: ReferralTraits | None = Field(description="None once purged.")
    consent: ConsentRead
    emergency_override: bool
    override_reason: str | None
    note: str | None = Field(description="Decrypted for the two organizations; None if none.")
    note_unreadable: bool = Field(
        default=False, description="A note is stored but this server's key cannot decrypt it."
    )
    match_proposals: list[uuid.UUID] | None
    first_proposal: bool | None = Field(
        description="The referral went to the first /match proposal (None: not from /match)."
    )
    decline_reason: str | None
    place_reserved: bool
    overdue: bool
    created_by: str
    created_at: datetime
    received_at: datetime | None
    accepted_at: datetime | None
    finished_at: datetime | None
    purged_at: datetime | None
    history: list[TransitionRead] = Field(default_factory=list)


class WebhookIn(StrictModel):
    """An organization's webhook for referral events."""

    url: str = Field(
        min_length=8,
        max_length=2000,
        pattern=r"^https?://[^\s]+$",
        examples=["https://intake.example.org/referral-net"],
    )
    secret: str = Field(min_length=32, max_length=200, description="HMAC-SHA256 key (>= 32).")


class WebhookRead(BaseModel):
    """An organization's webhook (the secret is never shown again)."""

    organization_id: uuid.UUID
    url: str
    created_at: datetime


class ReportCell(BaseModel):
    """One count of the report; ``count`` is None when suppressed (fewer than the threshold)."""

    dimension: str = Field(examples=["month"])
    value: str = Field(examples=["2026-12"])
    count: int | None = Field(examples=[12])
    suppressed: bool = False


class ReferralReport(BaseModel):
    """Aggregate counts of referrals; small cells suppressed so nobody can be singled out."""

    generated_at: datetime
    min_cell: int
    total: int | None
    cells: list[ReportCell]
