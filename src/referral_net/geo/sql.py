"""THE one place for SQL that differs between SpatiaLite and PostGIS.

Every spatial predicate or measure the domain needs is a function here taking the session's
dialect into account. PostGIS uses its GiST indexes through ``&&``-aware predicates and
``geography`` for metres; SpatiaLite's R*Tree is *not* used by its planner on its own, so each
query here names the ``SpatialIndex`` virtual table explicitly (otherwise it is a full scan).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


def _is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def admin_area_codes_at(session: Session, *, latitude: float, longitude: float) -> list[str]:
    """Return the codes of the administrative areas (department and municipality) at a point."""
    if _is_sqlite(session):
        sql = text(
            "SELECT code FROM admin_area WHERE rowid IN ("
            " SELECT rowid FROM SpatialIndex WHERE f_table_name = 'admin_area'"
            " AND f_geometry_column = 'geom' AND search_frame = MakePoint(:lon, :lat, 4326))"
            " AND ST_Intersects(geom, MakePoint(:lon, :lat, 4326)) = 1"
            " ORDER BY code"
        )
    else:
        sql = text(
            "SELECT code FROM admin_area"
            " WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"
            " ORDER BY code"
        )
    rows = session.execute(sql, {"lat": latitude, "lon": longitude})
    return [str(code) for (code,) in rows]
