"""The referral status workflow and consent rule, as plain data (no session, no clock).

::

    sent ──> received ──> accepted ──> in_progress ──> completed
                │             │              └───────> closed
                │             └──────────────────────> closed
                └───────> declined (reason from DECLINE_REASONS)
    cancelled: by the sender, from any state before completion (sent, received, accepted,
               in_progress)

The receiving organization moves a referral along; only the sender cancels. Declined, completed,
closed and cancelled are final: every other move is illegal (409). An accepted emergency referral
into a service that tracks capacity holds a place until it is completed, closed or cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from referral_net.errors import Conflict, InvalidInput


class Status(StrEnum):
    """The states of a referral."""

    SENT = "sent"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class Side(StrEnum):
    """Which end of a referral a caller's organization is."""

    SENDER = "sender"
    RECEIVER = "receiver"


# (from, to) -> the side that may make the move.
TRANSITIONS: dict[tuple[Status, Status], Side] = {
    (Status.SENT, Status.RECEIVED): Side.RECEIVER,
    (Status.RECEIVED, Status.ACCEPTED): Side.RECEIVER,
    (Status.RECEIVED, Status.DECLINED): Side.RECEIVER,
    (Status.ACCEPTED, Status.IN_PROGRESS): Side.RECEIVER,
    (Status.ACCEPTED, Status.CLOSED): Side.RECEIVER,
    (Status.IN_PROGRESS, Status.COMPLETED): Side.RECEIVER,
    (Status.IN_PROGRESS, Status.CLOSED): Side.RECEIVER,
    (Status.SENT, Status.CANCELLED): Side.SENDER,
    (Status.RECEIVED, Status.CANCELLED): Side.SENDER,
    (Status.ACCEPTED, Status.CANCELLED): Side.SENDER,
    (Status.IN_PROGRESS, Status.CANCELLED): Side.SENDER,
}
FINAL = frozenset({Status.DECLINED, Status.COMPLETED, Status.CLOSED, Status.CANCELLED})
# Final states whose referrals the retention purge erases. Declined is final too: a declined
# referral has no more use for the person's traits than a completed one.
PURGEABLE = FINAL
# Moves that give back a place held by an accepted emergency referral.
RELEASES_PLACE = frozenset({Status.COMPLETED, Status.CLOSED, Status.CANCELLED})

# Fixed lists, so that no free text about a person is written by a transition.
DECLINE_REASONS = (
    "no_capacity",
    "not_eligible",
    "service_not_offered",
    "outside_service_area",
    "person_declined",
    "duplicate",
    "other",
)
END_REASONS = (
    "person_declined",
    "person_unreachable",
    "person_moved",
    "duplicate",
    "sent_in_error",
    "other",
)
OVERRIDE_REASONS = (
    "imminent_danger",
    "medical_emergency",
    "unable_to_consent",
    "unaccompanied_minor",
)
CONSENT_SCOPES = ("referral", "referral_and_follow_up")


def side_for(current: Status, target: Status) -> Side | None:
    """The side that may move a referral from ``current`` to ``target``; None if illegal."""
    return TRANSITIONS.get((current, target))


def check_transition(current: Status, target: Status, side: Side) -> None:
    """Refuse an illegal move, or a legal one made by the wrong side (both 409)."""
    allowed = side_for(current, target)
    if allowed is None:
        raise Conflict(f"A referral that is {current.value} cannot become {target.value}.")
    if allowed is not side:
        raise Conflict(f"Only the {allowed.value} organization may make a referral {target.value}.")


def check_reason(target: Status, reason: str | None) -> None:
    """A decline needs a reason from DECLINE_REASONS; other moves take an optional one from
    END_REASONS (422 otherwise)."""
    allowed = DECLINE_REASONS if target is Status.DECLINED else END_REASONS
    if (target is Status.DECLINED and reason is None) or (
        reason is not None and reason not in allowed
    ):
        raise InvalidInput(
            f"reason must be one of: {', '.join(allowed)}",
            errors=[{"field": "body.reason", "message": "unknown reason", "type": "value_error"}],
        )


@dataclass(frozen=True)
class Consent:
    """The consent recorded for a referral."""

    given: bool
    given_on: date | None
    expires_on: date | None


def consent_is_current(consent: Consent | None, today: date) -> bool:
    """Given, not dated in the future, and not expired (an expiry day is still valid)."""
    if consent is None or not consent.given or consent.given_on is None:
        return False
    if consent.given_on > today:
        return False
    return consent.expires_on is None or consent.expires_on >= today
