"""search_entry_category on both engines, with the flags a count reads: index-only counts

Revision ID: 7c41d2e9a0b3
Revises: 3fe099859b05
Create Date: 2026-12-02 20:15:00.000000+00:00

Near mode counts a category's matches up to a cap (issue 13). On PostGIS that count read the
wide ``search_entry`` heap (a sequential scan until 201 matches: 8 of the 9 ms of a 1M-row
search). The side table, until now filled on SpatiaLite only, is filled on both engines and
carries the two conditions every match has: listed, with a point for the audience. A partial
index per audience holds the listed rows of each code in id order, so the count is an
index-only scan that stops at its cap.

The backfill is SQL over the read model of the previous revision (no application code), so it
stays valid whatever later revisions change.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c41d2e9a0b3"
down_revision: str | None = "3fe099859b05"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FLAGS = ("listed_with_public_point", "listed_with_exact_point")
_INDEXES = {
    "ix_search_entry_category_public_count": "listed_with_public_point",
    "ix_search_entry_category_exact_count": "listed_with_exact_point",
}


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("search_entry_category") as batch:
        for flag in _FLAGS:
            batch.add_column(
                sa.Column(flag, sa.Boolean(), nullable=False, server_default=sa.false())
            )
    if op.get_bind().dialect.name == "postgresql":  # empty until now: fill it from the arrays
        op.execute(
            "INSERT INTO search_entry_category (code, service_at_location_id,"
            " listed_with_public_point, listed_with_exact_point)"
            " SELECT DISTINCT c.code, e.service_at_location_id,"
            " e.listed AND e.public_geom IS NOT NULL, e.listed AND e.exact_geom IS NOT NULL"
            " FROM search_entry e CROSS JOIN LATERAL unnest(e.category_codes) AS c(code)"
        )
    else:
        op.execute(
            "UPDATE search_entry_category SET"
            " listed_with_public_point = COALESCE((SELECT e.listed AND e.public_geom IS NOT NULL"
            " FROM search_entry e WHERE e.service_at_location_id"
            " = search_entry_category.service_at_location_id), 0),"
            " listed_with_exact_point = COALESCE((SELECT e.listed AND e.exact_geom IS NOT NULL"
            " FROM search_entry e WHERE e.service_at_location_id"
            " = search_entry_category.service_at_location_id), 0)"
        )
    for name, flag in _INDEXES.items():
        op.create_index(
            name,
            "search_entry_category",
            ["code", "service_at_location_id"],
            postgresql_where=sa.text(flag),
            sqlite_where=sa.text(f"{flag} = 1"),
        )


def downgrade() -> None:
    """Revert this revision (PostGIS's side table was empty before it)."""
    for name in _INDEXES:
        op.drop_index(name, table_name="search_entry_category")
    with op.batch_alter_table("search_entry_category") as batch:
        for flag in _FLAGS:
            batch.drop_column(flag)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DELETE FROM search_entry_category")
