"""import_job and import_upload: imports submitted over HTTP and run in the background (issue 15)

Revision ID: b7e3c9a41d02
Revises: 8d2f4b6a1c57
Create Date: 2026-12-03 08:00:00.000000+00:00

``POST /api/v1/imports`` stores the uploaded file (``import_upload``, deleted once the job has
run) and a job (``import_job``: state, options, progress, heartbeat, report) in one commit; a
worker thread of any process claims the job and runs it (``exchange/jobs.py``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "b7e3c9a41d02"
down_revision: str | None = "8d2f4b6a1c57"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "import_job",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("source_name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("format", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("options", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("submitted_by", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("report", sa.JSON(none_as_null=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('queued', 'running', 'succeeded', 'partly_imported', 'refused', 'failed')",
            name="ck_import_job_state",
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_import_job_state"), "import_job", ["state"], unique=False)
    op.create_table(
        "import_upload",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["import_job.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("import_upload")
    op.drop_index(op.f("ix_import_job_state"), table_name="import_job")
    op.drop_table("import_job")
