"""search read model: search_entry, its SpatiaLite side tables, and the backfill

Revision ID: 3fe099859b05
Revises: 5b1e0f7c2a91
Create Date: 2026-12-02 12:53:00.000000+00:00

One row per service at a location (issue 13, ``domain/search_model.py``). PostGIS keeps the code
lists in ``text[]`` columns with GIN indexes; SpatiaLite keeps them as JSON arrays and, for its
index path, in the side tables ``search_entry_category`` and ``search_entry_language`` (created on
both engines so the schema is one, filled on SpatiaLite only). Both point columns get a spatial
index (GiST / R*Tree).

The backfill is the application's own rebuild, so an upgraded database holds exactly what the
code writes from then on. That code reads and writes the newest schema, so this revision does not
run it: it asks ``env.py`` to, once the run has reached the head (``REBUILD_SEARCH_MODEL``).
"""

from collections.abc import Sequence

import geoalchemy2  # noqa: F401 - used by spatial migrations
import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import context, op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "3fe099859b05"
down_revision: str | None = "5b1e0f7c2a91"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The flag env.py reads (config.attributes) to rebuild the read model after the last step.
REBUILD_SEARCH_MODEL = "rebuild_search_model"
_CODE_LISTS = ("category_codes", "language_codes", "served_genders")
_SIDE_TABLES = {"search_entry_category": 200, "search_entry_language": 3}


def _point() -> Geometry:
    return Geometry(
        geometry_type="POINT",
        srid=4326,
        dimension=2,
        spatial_index=False,
        from_text="ST_GeomFromEWKT",
        name="geometry",
    )


def _code_list() -> sa.types.TypeEngine[list[str]]:
    return postgresql.ARRAY(sa.Text()).with_variant(sa.JSON(), "sqlite")


def upgrade() -> None:
    """Apply this revision."""
    op.create_geospatial_table(
        "search_entry",
        sa.Column("service_at_location_id", sa.Uuid(), nullable=False),
        sa.Column("service_id", sa.Uuid(), nullable=False),
        sa.Column("location_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("location_organization_id", sa.Uuid(), nullable=True),
        sa.Column("listed", sa.Boolean(), nullable=False),
        sa.Column("visibility", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("exact_geom", _point(), nullable=True),
        sa.Column("public_geom", _point(), nullable=True),
        sa.Column("department_code", sqlmodel.sql.sqltypes.AutoString(length=2), nullable=True),
        sa.Column("municipality_code", sqlmodel.sql.sqltypes.AutoString(length=4), nullable=True),
        sa.Column("public_latitude", sa.Float(), nullable=True),
        sa.Column("public_longitude", sa.Float(), nullable=True),
        *(sa.Column(name, _code_list(), nullable=False) for name in _CODE_LISTS),
        sa.Column("minimum_age", sa.Integer(), nullable=True),
        sa.Column("maximum_age", sa.Integer(), nullable=True),
        sa.Column("minors_only", sa.Boolean(), nullable=False),
        sa.Column("lgbtiq_affirming", sa.Boolean(), nullable=False),
        sa.Column("accepts_accompanying_children", sa.Boolean(), nullable=False),
        sa.Column("has_capacity", sa.Boolean(), nullable=False),
        sa.Column("capacity_updated", sa.DateTime(timezone=True), nullable=True),
        sa.Column("search_text", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("assured_date", sa.Date(), nullable=True),
        sa.Column("service_name", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("doc", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_at_location_id"], ["service_at_location.id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("service_at_location_id"),
    )
    for column in ("exact_geom", "public_geom"):
        op.create_geospatial_index(
            f"idx_search_entry_{column}",
            "search_entry",
            [column],
            unique=False,
            postgresql_using="gist",
            postgresql_ops={},
        )
    for column in ("service_id", "location_id", "organization_id"):
        op.create_index(f"ix_search_entry_{column}", "search_entry", [column], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        for column in _CODE_LISTS:
            op.create_index(
                f"ix_search_entry_{column}", "search_entry", [column], postgresql_using="gin"
            )
    for table, length in _SIDE_TABLES.items():
        op.create_table(
            table,
            sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=length), nullable=False),
            sa.Column("service_at_location_id", sa.Uuid(), nullable=False),
            sa.ForeignKeyConstraint(
                ["service_at_location_id"],
                ["search_entry.service_at_location_id"],
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("code", "service_at_location_id"),
        )
        op.create_index(
            f"ix_{table}_service_at_location_id", table, ["service_at_location_id"], unique=False
        )
    _backfill()


def _backfill() -> None:
    """Have the entries of the rows written before this revision built at the end of the run."""
    context.config.attributes[REBUILD_SEARCH_MODEL] = True


def downgrade() -> None:
    """Revert this revision."""
    for table in _SIDE_TABLES:
        op.drop_index(f"ix_{table}_service_at_location_id", table_name=table)
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        for column in _CODE_LISTS:
            op.drop_index(
                f"ix_search_entry_{column}", table_name="search_entry", postgresql_using="gin"
            )
    for column in ("service_id", "location_id", "organization_id"):
        op.drop_index(f"ix_search_entry_{column}", table_name="search_entry")
    for column in ("exact_geom", "public_geom"):
        op.drop_geospatial_index(
            f"idx_search_entry_{column}",
            table_name="search_entry",
            postgresql_using="gist",
            column_name=column,
        )
    op.drop_geospatial_table("search_entry")
