"""service_cluster_cell: the map's cluster cells, kept in step with search_entry by triggers

Revision ID: d4e6f8a0b2c4
Revises: 1b44da852149
Create Date: 2026-12-05 22:40:00.000000+00:00

A clustered public services tile (issue 16) read every point in it (up to 10,000 at 1M services)
to count 64 cells. Each entry now carries its top category and its public point on the cluster
grid (``geo.tiles.grid_mm``: whole millimetres of WebMercatorQuad), and ``service_cluster_cell``
holds, per cell of the levels 3-15 (the clusters of zooms 0-12) and top category, how many
listed entries with a public point it holds and the sums of their positions.

Triggers on ``search_entry`` keep the cells in step in the statement that writes the entries, so
they are exactly as fresh as the read model, see its rolled-back writes vanish with them and its
cascaded deletes too (a deleted location takes its entries with it, and the triggers see that).
Integer arithmetic only, so a cell's index and sums are the same in PostgreSQL, SQLite and
Python (``geo.tiles.cell_of``). PostgreSQL applies a statement's rows at once (transition
tables) under the audit trail's transaction lock, which every directory write takes anyway:
two writers updating the shared coarse cells in different orders could otherwise deadlock.
SQLite has one writer, and row triggers. A rebuild (one transaction over every entry) defers the
PostgreSQL triggers and refills the cells in one statement at its end: kept per batch, every
batch would update the same coarse cells again, and in one transaction each update leaves a row
version the next lookup walks (quadratic; a 1M rebuild did not end in 25 minutes).

The new columns are filled by the application's own rebuild at the end of the run (as in the
revision that made the read model); the triggers fill the cells as it inserts the entries.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import context, op

revision: str = "d4e6f8a0b2c4"
down_revision: str | None = "1b44da852149"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The flag env.py reads (config.attributes) to rebuild the read model after the last step.
REBUILD_SEARCH_MODEL = "rebuild_search_model"
# geo.tiles: WORLD_MM and STORED_CELL_LEVELS, frozen here as this revision wrote them.
_WORLD_MM = 40075016686
_LEVELS = range(3, 16)
# domain/audit.py's append lock ("audit" in ASCII): directory writes take it already.
_WRITE_LOCK_KEY = 0x6175646974
# db/dialect/postgis.py's CLUSTER_CELLS_SETTING: 'deferred' for the rest of a transaction that
# refills the cells itself.
_DEFERRED_SETTING = "referral_net.cluster_cells"
_COLUMNS = ("level", "cell_x", "cell_y", "top_category", "point_count")
_SUMS = ("east_mm_sum", "south_mm_sum")
_TRIGGERS = ("insert", "delete", "update")


def _cells_of(rows: str, sign: str, *, sqlite: bool) -> str:
    """An upsert adding (``sign`` '') or taking away ('-') the counted entries of ``rows`` (a
    transition table; on SQLite the trigger's NEW or OLD row) to or from their cells at every
    level, in key order (on PostgreSQL, locks are taken in one order)."""
    if sqlite:
        e = rows
        levels = " UNION ALL ".join(f"SELECT {level} AS level" for level in _LEVELS)
        source = f"({levels}) AS l"
        count, east, south = "1", f"{e}.public_east_mm", f"{e}.public_south_mm"
        grouping = ""
    else:
        e = "e"
        first, last = _LEVELS[0], _LEVELS[-1]
        source = f"{rows} AS e CROSS JOIN generate_series({first}, {last}) AS l(level)"
        count, east, south = "count(*)", "sum(e.public_east_mm)", "sum(e.public_south_mm)"
        grouping = " GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
    updates = ", ".join(
        f"{column} = service_cluster_cell.{column} + excluded.{column}"
        for column in ("point_count", *_SUMS)
    )
    # The WHERE clause also settles SQLite's parsing ambiguity of an upsert after a join.
    # Every part is a constant of this module: nothing from outside is spliced in.
    return (
        f"INSERT INTO service_cluster_cell ({', '.join((*_COLUMNS, *_SUMS))}) "  # noqa: S608
        f"SELECT l.level, ({e}.public_east_mm << l.level) / {_WORLD_MM}, "
        f"({e}.public_south_mm << l.level) / {_WORLD_MM}, coalesce({e}.top_category, ''), "
        f"{sign}{count}, {sign}{east}, {sign}{south} FROM {source} "
        f"WHERE {e}.listed AND {e}.public_east_mm IS NOT NULL{grouping} "
        f"ON CONFLICT (level, cell_x, cell_y, top_category) DO UPDATE SET {updates}"
    )


# SQLite deletes a row at once (no dead versions): its partial index holds only empty cells.
_EMPTIED = "DELETE FROM service_cluster_cell WHERE point_count = 0"


def _postgresql_taken_away() -> str:
    """Take the deleted entries (``old_entries``) away from their cells: a cell they empty is
    deleted, the others updated; every one exists, as the entries were counted in it. (Deleting
    the emptied cells by their own keys: a scan for empty cells would walk the dead index
    entries of every cell emptied since the last vacuum, thousands after a rebuild.)"""
    first, last = _LEVELS[0], _LEVELS[-1]
    key = " AND ".join(f"cell.{column} = gone.{column}" for column in _COLUMNS[:4])
    updates = ", ".join(
        f"{column} = cell.{column} - gone.{column}" for column in ("point_count", *_SUMS)
    )
    return (
        "WITH gone AS ("  # noqa: S608 - constants of this module only
        f"SELECT l.level, (e.public_east_mm << l.level) / {_WORLD_MM} AS cell_x, "
        f"(e.public_south_mm << l.level) / {_WORLD_MM} AS cell_y, "
        "coalesce(e.top_category, '') AS top_category, count(*) AS point_count, "
        "sum(e.public_east_mm) AS east_mm_sum, sum(e.public_south_mm) AS south_mm_sum "
        f"FROM old_entries AS e CROSS JOIN generate_series({first}, {last}) AS l(level) "
        "WHERE e.listed AND e.public_east_mm IS NOT NULL GROUP BY 1, 2, 3, 4), "
        "emptied AS (DELETE FROM service_cluster_cell AS cell USING gone "
        f"WHERE {key} AND cell.point_count = gone.point_count) "
        f"UPDATE service_cluster_cell AS cell SET {updates} FROM gone "
        f"WHERE {key} AND cell.point_count <> gone.point_count"
    )


def _postgresql_triggers() -> list[str]:
    function = f"""
CREATE FUNCTION service_cluster_cell_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A rebuild defers the cells and refills them once at its end (``db.dialect``).
    IF current_setting('{_DEFERRED_SETTING}', true) = 'deferred' THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock({_WRITE_LOCK_KEY});
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        {_postgresql_taken_away()};
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        {_cells_of("new_entries", "", sqlite=False)};
    END IF;
    RETURN NULL;
END
$$"""
    referencing = {
        "insert": "NEW TABLE AS new_entries",
        "delete": "OLD TABLE AS old_entries",
        "update": "OLD TABLE AS old_entries NEW TABLE AS new_entries",
    }
    return [function] + [
        f"CREATE TRIGGER search_entry_cells_{event} AFTER {event.upper()} ON search_entry "
        f"REFERENCING {referencing[event]} FOR EACH STATEMENT "
        "EXECUTE FUNCTION service_cluster_cell_apply()"
        for event in _TRIGGERS
    ]


def _sqlite_triggers() -> list[str]:
    bodies = {
        "insert": [_cells_of("NEW", "", sqlite=True)],
        "delete": [_cells_of("OLD", "-", sqlite=True), _EMPTIED],
        "update": [_cells_of("OLD", "-", sqlite=True), _cells_of("NEW", "", sqlite=True), _EMPTIED],
    }
    return [
        f"CREATE TRIGGER search_entry_cells_{event} AFTER {event.upper()} ON search_entry "
        f"BEGIN {'; '.join(statements)}; END"
        for event, statements in bodies.items()
    ]


def upgrade() -> None:
    """Apply this revision."""
    op.add_column(
        "search_entry",
        sa.Column("top_category", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    )
    op.add_column("search_entry", sa.Column("public_east_mm", sa.BigInteger(), nullable=True))
    op.add_column("search_entry", sa.Column("public_south_mm", sa.BigInteger(), nullable=True))
    op.create_table(
        "service_cluster_cell",
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("cell_x", sa.Integer(), nullable=False),
        sa.Column("cell_y", sa.Integer(), nullable=False),
        sa.Column("top_category", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("point_count", sa.Integer(), nullable=False),
        sa.Column("east_mm_sum", sa.BigInteger(), nullable=False),
        sa.Column("south_mm_sum", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("level", "cell_x", "cell_y", "top_category"),
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.create_index(
            "ix_service_cluster_cell_empty",
            "service_cluster_cell",
            ["point_count"],
            sqlite_where=sa.text("point_count = 0"),
        )
    for statement in _sqlite_triggers() if sqlite else _postgresql_triggers():
        op.execute(statement)
    context.config.attributes[REBUILD_SEARCH_MODEL] = True


def downgrade() -> None:
    """Revert this revision."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    for event in _TRIGGERS:
        on = "" if sqlite else " ON search_entry"
        op.execute(f"DROP TRIGGER search_entry_cells_{event}{on}")
    if not sqlite:
        op.execute("DROP FUNCTION service_cluster_cell_apply()")
    if sqlite:
        op.drop_index("ix_service_cluster_cell_empty", table_name="service_cluster_cell")
    op.drop_table("service_cluster_cell")
    for column in ("public_south_mm", "public_east_mm", "top_category"):
        op.execute(f"ALTER TABLE search_entry DROP COLUMN {column}")
