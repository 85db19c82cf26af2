"""search_entry.doc carries the phones of each entry's link, location and service (issue 16)

Revision ID: c5d1e8f2a4b9
Revises: b7e3c9a41d02
Create Date: 2026-12-03 14:00:00.000000+00:00

No column changes: search results and map features now show phones, which the read model's
``doc`` must hold. The entries are rebuilt by the application's own code once the run reaches the
head (``REBUILD_SEARCH_MODEL``, as in the revision that made the model); until then, an entry
without phones shows the intake phone alone.
"""

from collections.abc import Sequence

from alembic import context

revision: str = "c5d1e8f2a4b9"
down_revision: str | None = "b7e3c9a41d02"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The flag env.py reads (config.attributes) to rebuild the read model after the last step.
REBUILD_SEARCH_MODEL = "rebuild_search_model"


def upgrade() -> None:
    """Apply this revision: ask for the rebuild that writes the phones into every entry."""
    context.config.attributes[REBUILD_SEARCH_MODEL] = True


def downgrade() -> None:
    """Revert this revision: nothing to undo (older code ignores the phones of an entry)."""
