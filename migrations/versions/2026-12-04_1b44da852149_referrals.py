"""referral, referral_transition, referral_webhook, webhook_delivery: referrals (issue 17)

Revision ID: 1b44da852149
Revises: c5d1e8f2a4b9
Create Date: 2026-12-04 16:10:00.000000+00:00

A referral goes from a caseworker's organization to one service at one location under a
pseudonymous case code; it holds needs, urgency, non-identifying traits, consent, an encrypted
note and the /match proposals it came from (``domain/referrals.py``, ``docs/referrals.md``).
``referral_transition`` is its status history; ``webhook_delivery`` is the outbox of signed
webhook POSTs, written in the transaction of the change it reports.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "1b44da852149"
down_revision: str | None = "c5d1e8f2a4b9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUSES = (
    "status IN ('sent', 'received', 'accepted', 'declined', 'in_progress', 'completed',"
    " 'closed', 'cancelled')"
)
_REFERRAL_INDEXES: tuple[tuple[str, list[str]], ...] = (
    ("ix_referral_created_at", ["created_at"]),
    ("ix_referral_location_id", ["location_id"]),
    ("ix_referral_receiver_organization_id", ["receiver_organization_id"]),
    ("ix_referral_receiver_status", ["receiver_organization_id", "status"]),
    ("ix_referral_reserved_unit_id", ["reserved_unit_id"]),
    ("ix_referral_sender_organization_id", ["sender_organization_id"]),
    ("ix_referral_sender_status", ["sender_organization_id", "status"]),
    ("ix_referral_service_at_location_id", ["service_at_location_id"]),
    ("ix_referral_service_id", ["service_id"]),
    ("ix_referral_status", ["status"]),
)


def _string(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _timestamp(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "referral_webhook",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("url", _string(2000), nullable=False),
        sa.Column("secret", _string(200), nullable=False),
        _timestamp("created_at", nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("organization_id"),
    )
    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("url", _string(2000), nullable=False),
        sa.Column("body", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _timestamp("next_attempt_at", nullable=False),
        _timestamp("delivered_at"),
        _timestamp("abandoned_at"),
        sa.Column("last_status", sa.Integer(), nullable=True),
        _timestamp("created_at", nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_webhook_delivery_next_attempt_at"), "webhook_delivery", ["next_attempt_at"]
    )
    op.create_index(
        op.f("ix_webhook_delivery_organization_id"), "webhook_delivery", ["organization_id"]
    )
    op.create_table(
        "referral",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_code", _string(32), nullable=False),
        sa.Column("sender_organization_id", sa.Uuid(), nullable=False),
        sa.Column("receiver_organization_id", sa.Uuid(), nullable=False),
        sa.Column("service_id", sa.Uuid(), nullable=False),
        sa.Column("location_id", sa.Uuid(), nullable=False),
        sa.Column("service_at_location_id", sa.Uuid(), nullable=True),
        sa.Column("department_code", _string(2), nullable=True),
        sa.Column("need_codes", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("urgency", _string(20), nullable=False),
        sa.Column("traits", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("consent_given", sa.Boolean(), nullable=False),
        sa.Column("consent_scope", _string(40), nullable=True),
        sa.Column("consent_date", sa.Date(), nullable=True),
        sa.Column("consent_expires", sa.Date(), nullable=True),
        sa.Column("consent_recorded_by", _string(320), nullable=True),
        sa.Column("emergency_override", sa.Boolean(), nullable=False),
        sa.Column("override_reason", _string(40), nullable=True),
        sa.Column("note_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("match_proposals", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("status", _string(20), nullable=False),
        sa.Column("decline_reason", _string(40), nullable=True),
        sa.Column("reserved_unit_id", sa.Uuid(), nullable=True),
        sa.Column("created_by", _string(320), nullable=False),
        _timestamp("created_at", nullable=False),
        _timestamp("received_at"),
        _timestamp("accepted_at"),
        _timestamp("finished_at"),
        _timestamp("purged_at"),
        sa.Column("version", sa.Integer(), nullable=False),
        _timestamp("last_modified"),
        sa.CheckConstraint(_STATUSES, name="ck_referral_status"),
        sa.CheckConstraint(
            "urgency IN ('emergency', 'soon', 'routine')", name="ck_referral_urgency"
        ),
        sa.ForeignKeyConstraint(["location_id"], ["location.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(
            ["receiver_organization_id"], ["organization.id"], ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(["reserved_unit_id"], ["unit.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["sender_organization_id"], ["organization.id"], ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["service_at_location_id"], ["service_at_location.id"], ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["service_id"], ["service.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_code"),
    )
    for name, columns in _REFERRAL_INDEXES:
        op.create_index(name, "referral", columns)
    op.create_table(
        "referral_transition",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("from_status", _string(20), nullable=True),
        sa.Column("to_status", _string(20), nullable=False),
        sa.Column("actor", _string(320), nullable=False),
        sa.Column("role", _string(20), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=True),
        sa.Column("reason", _string(40), nullable=True),
        _timestamp("occurred_at", nullable=False),
        sa.ForeignKeyConstraint(["referral_id"], ["referral.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_referral_transition_referral_id"), "referral_transition", ["referral_id"]
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(op.f("ix_referral_transition_referral_id"), table_name="referral_transition")
    op.drop_table("referral_transition")
    for name, _ in reversed(_REFERRAL_INDEXES):
        op.drop_index(name, table_name="referral")
    op.drop_table("referral")
    op.drop_index(op.f("ix_webhook_delivery_organization_id"), table_name="webhook_delivery")
    op.drop_index(op.f("ix_webhook_delivery_next_attempt_at"), table_name="webhook_delivery")
    op.drop_table("webhook_delivery")
    op.drop_table("referral_webhook")
