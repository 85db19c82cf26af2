"""search_entry: the indexes a radius's count walks, index-only (PostgreSQL)

Revision ID: e8a1c3f5b7d9
Revises: d4e6f8a0b2c4
Create Date: 2026-12-06 23:10:00.000000+00:00

A radius search counts its matches up to a cap (issue 13). The count walked the GiST index of
the point column and read each candidate's row from the wide ``search_entry`` heap, because
PostGIS's GiST keys are float4 boxes the index cannot hand back: at 1M rows a dense 10 km holds
some 250 candidates, and the count cost 1.3 of the statement's 1.5 ms. With a category, the
planner ANDed the window's bitmap with the category's GIN bitmap over the whole country (25-37
ms at 1M rows for shelters).

One partial index per audience's point column holds the listed entries with a point (the
condition every search has), carries the point itself and the category codes (INCLUDE), and is
keyed by the point's envelope: an expression only the count names (``dialect.postgis.
count_window_key``), so KNN statements keep to the point's own index (PostgreSQL refuses KNN's
lossy distance in an index-only scan, which an index carrying the point would offer). The count
is an index-only scan that tests each candidate's distance and categories from the index alone.
SpatiaLite counts from its R*Tree and side tables: nothing to do there.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e8a1c3f5b7d9"
down_revision: str | None = "d4e6f8a0b2c4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = {
    "ix_search_entry_public_count_window": "public_geom",
    "ix_search_entry_exact_count_window": "exact_geom",
}


def upgrade() -> None:
    """Apply this revision."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, column in _INDEXES.items():
        op.create_index(
            name,
            "search_entry",
            [sa.text(f"ST_Envelope({column})")],
            postgresql_using="gist",
            postgresql_include=[column, "category_codes"],
            postgresql_where=sa.text(f"listed AND {column} IS NOT NULL"),
        )


def downgrade() -> None:
    """Revert this revision."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in _INDEXES:
        op.drop_index(name, table_name="search_entry")
