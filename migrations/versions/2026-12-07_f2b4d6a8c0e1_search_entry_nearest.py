"""search_entry: the indexes a nearest-first search walks, index-only (PostgreSQL)

Revision ID: f2b4d6a8c0e1
Revises: e8a1c3f5b7d9
Create Date: 2026-12-07 09:30:00.000000+00:00

A nearest search (issue 13) takes its candidates in KNN order from the GiST index of the point
column and tests each entry's filters on its row. With a category most entries it passes are
other services: at 10k entries a shelter search passed about 200 rows for its 18 candidates,
each a visit to the wide ``search_entry`` heap (its pre-rendered document), and at 1M rows
those pages are mostly outside shared buffers. PostGIS's KNN distance is lossy, so PostgreSQL
refuses an index-only scan on its index.

One partial index per audience's point column, keyed by the point as PostgreSQL's own ``point``
(whose KNN distance is exact), carrying the PostGIS point, the category codes and the entry's id:
the candidates and the category test come from the index alone, and only the page's rows are
read from the heap, by id (``dialect.postgis.nearest_key``). SpatiaLite has no KNN index:
nothing to do there.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f2b4d6a8c0e1"
down_revision: str | None = "e8a1c3f5b7d9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = {
    "ix_search_entry_public_nearest": "public_geom",
    "ix_search_entry_exact_nearest": "exact_geom",
}


def upgrade() -> None:
    """Apply this revision."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, column in _INDEXES.items():
        op.create_index(
            name,
            "search_entry",
            [sa.text(f"point(ST_X({column}), ST_Y({column}))")],
            postgresql_using="gist",
            postgresql_include=[column, "category_codes", "service_at_location_id"],
            postgresql_where=sa.text(f"listed AND {column} IS NOT NULL"),
        )


def downgrade() -> None:
    """Revert this revision."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in _INDEXES:
        op.drop_index(name, table_name="search_entry")
