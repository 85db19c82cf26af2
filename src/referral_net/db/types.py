"""Column types that behave the same on SpatiaLite and PostGIS."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp stored in UTC.

    SQLite has no time zones, so values are normalised to UTC on the way in and marked UTC on the
    way out; PostgreSQL stores ``timestamptz``. Both backends then hand back the same value.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Reject naive datetimes (they are ambiguous) and convert to UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: timestamps must carry a time zone")
        converted = value.astimezone(UTC)
        return converted.replace(tzinfo=None) if dialect.name == "sqlite" else converted

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Mark values read back from SQLite as UTC."""
        if value is None:
            return None
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC) if isinstance(value, datetime) else value


def point_column_type() -> Geometry:
    """A WGS 84 point with a spatial index (GiST on PostGIS, R*Tree on SpatiaLite)."""
    return Geometry(geometry_type="POINT", srid=4326, spatial_index=True)


def multipolygon_column_type() -> Geometry:
    """A WGS 84 multipolygon with a spatial index."""
    return Geometry(geometry_type="MULTIPOLYGON", srid=4326, spatial_index=True)
