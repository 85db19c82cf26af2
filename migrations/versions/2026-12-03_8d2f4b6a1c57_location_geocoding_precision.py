"""location.geocoding_precision and location.needs_geocoding: how a point was placed (issue 15)

Revision ID: 8d2f4b6a1c57
Revises: 7c41d2e9a0b3
Create Date: 2026-12-03 07:40:00.000000+00:00

An import places a spreadsheet row without coordinates at a known town or at its municipality's
representative point, and keeps a location whose coordinates are missing or out of range with no
point at all. A caseworker must know which: ``geocoding_precision`` says how the point was placed
(``given``, ``town``, ``municipality``; NULL for records written before this revision or through
the API, whose coordinates are the writer's own), ``needs_geocoding`` flags a location that has no
usable point yet.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8d2f4b6a1c57"
down_revision: str | None = "7c41d2e9a0b3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("location") as batch:
        batch.add_column(sa.Column("geocoding_precision", sa.String(length=20), nullable=True))
        batch.add_column(
            sa.Column("needs_geocoding", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.create_check_constraint(
            "ck_location_geocoding_precision",
            "geocoding_precision IS NULL"
            " OR geocoding_precision IN ('given', 'town', 'municipality')",
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("location") as batch:
        batch.drop_constraint("ck_location_geocoding_precision", type_="check")
        batch.drop_column("needs_geocoding")
        batch.drop_column("geocoding_precision")
