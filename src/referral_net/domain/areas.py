"""Guatemala's administrative areas: loading the boundary files and locating points in them."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from geoalchemy2.shape import from_shape, to_shape
from shapely import union_all
from shapely.geometry import MultiPolygon, Polygon, shape
from sqlalchemy import delete
from sqlmodel import Session, col, select

from referral_net.db import dialect
from referral_net.db.models import AdminArea

# Lakes carry municipality-style codes in the OCHA layer but are not municipalities.
LAKE_CODES = frozenset({"0100", "0700"})
# session.info key: area codes found by :func:`look_up_area_codes`, by (latitude, longitude).
_LOOKED_UP = "referral_net.areas.looked_up"


@dataclass(frozen=True)
class AreaCodes:
    """The department and municipality INE codes at a point (None outside Guatemala)."""

    department_code: str | None
    municipality_code: str | None


@dataclass(frozen=True)
class LoadReport:
    """How many areas a load wrote."""

    departments: int
    municipalities: int


def default_data_dir() -> Path:
    """The boundary files shipped inside the package (OCHA / CONRED, see SOURCES.md)."""
    return Path(str(files("referral_net") / "data" / "guatemala"))


def _as_multipolygon(geometry: dict[str, Any]) -> MultiPolygon:
    geom = shape(geometry)
    if geom.geom_type == "Polygon":
        return MultiPolygon([geom])
    if geom.geom_type == "MultiPolygon":
        return geom
    raise ValueError(f"expected a polygon, got {geom.geom_type}")


def load_areas(*, session: Session, data_dir: Path | None = None) -> LoadReport:
    """Replace the admin_area table with the departments and municipalities in ``data_dir``."""
    data_dir = data_dir or default_data_dir()
    departments = json.loads((data_dir / "departments.geojson").read_text(encoding="utf-8"))
    municipalities = json.loads((data_dir / "municipalities.geojson").read_text(encoding="utf-8"))
    with (data_dir / "municipality_centroids.csv").open(encoding="utf-8", newline="") as handle:
        inside = {row["ine_code"]: row for row in csv.DictReader(handle)}

    session.execute(delete(AdminArea))
    for feature in departments["features"]:
        props = feature["properties"]
        geom = _as_multipolygon(feature["geometry"])
        point = geom.representative_point()
        session.add(
            AdminArea(
                code=props["ine_code"],
                level="department",
                name=props["ADM1_ES"],
                department_code=props["ine_code"],
                representative_latitude=round(point.y, 6),
                representative_longitude=round(point.x, 6),
                geom=from_shape(geom, srid=4326),
            )
        )
    municipality_count = 0
    for feature in municipalities["features"]:
        props = feature["properties"]
        code = props["ine_code"]
        if code in LAKE_CODES:
            continue
        geom = _as_multipolygon(feature["geometry"])
        row = inside.get(code)
        lat = float(row["inside_lat"]) if row else geom.representative_point().y
        lon = float(row["inside_lon"]) if row else geom.representative_point().x
        session.add(
            AdminArea(
                code=code,
                level="municipality",
                name=props["ADM2_ES"],
                department_code=code[:2],
                representative_latitude=lat,
                representative_longitude=lon,
                geom=from_shape(geom, srid=4326),
            )
        )
        municipality_count += 1
    session.commit()
    return LoadReport(departments=len(departments["features"]), municipalities=municipality_count)


def look_up_area_codes(session: Session, points: Sequence[tuple[float, float]]) -> None:
    """Find the areas of many (latitude, longitude) points at once, for :func:`area_codes_at`
    to answer from within this session's transaction (a batch of writes that will ask for
    each: one statement instead of one per point)."""
    known: dict[tuple[float, float], AreaCodes] = session.info.setdefault(_LOOKED_UP, {})
    wanted = list(dict.fromkeys(p for p in points if p not in known))
    for at, codes in zip(wanted, dialect.admin_area_codes_at_points(session, wanted), strict=True):
        known[at] = _area_codes(codes)


def area_codes_at(*, session: Session, latitude: float, longitude: float) -> AreaCodes:
    """Find the department and municipality containing a point."""
    known: dict[tuple[float, float], AreaCodes] | None = session.info.get(_LOOKED_UP)
    if known is not None and (latitude, longitude) in known:
        return known[(latitude, longitude)]
    return _area_codes(dialect.admin_area_codes_at(session, latitude=latitude, longitude=longitude))


def _area_codes(codes: Sequence[str]) -> AreaCodes:
    """The department and municipality among the codes of the areas at a point."""
    municipality = next((c for c in codes if len(c) == 4 and c not in LAKE_CODES), None)
    department = next((c for c in codes if len(c) == 2), None)
    if department is None and municipality is not None:
        department = municipality[:2]
    return AreaCodes(department_code=department, municipality_code=municipality)


def get_area(*, session: Session, code: str) -> AdminArea | None:
    """Return one department or municipality by INE code."""
    return session.exec(select(AdminArea).where(AdminArea.code == code)).first()


def count_areas(*, session: Session) -> dict[str, int]:
    """Count loaded areas by level."""
    rows = session.exec(select(AdminArea.level)).all()
    counts: dict[str, int] = {"department": 0, "municipality": 0}
    for level in rows:
        counts[level] = counts.get(level, 0) + 1
    return counts


def union_geometry(*, session: Session, codes: Sequence[str]) -> MultiPolygon:
    """The union of departments and municipalities by INE code; ``GT`` means the whole country."""
    if list(codes) == ["GT"]:
        query = select(AdminArea).where(col(AdminArea.level) == "department")
    else:
        query = select(AdminArea).where(col(AdminArea.code).in_(list(codes)))
    rows = list(session.exec(query))
    found = {row.code for row in rows}
    missing = sorted(set(codes) - found - {"GT"})
    if missing or not rows:
        raise ValueError(f"unknown area code(s): {', '.join(missing) or 'none given'}")
    merged = union_all([to_shape(row.geom) for row in rows])
    # Dissolving simplified neighbours leaves sliver holes along shared borders; drop them.
    polygons = list(merged.geoms) if isinstance(merged, MultiPolygon) else [merged]
    return MultiPolygon([Polygon(p.exterior) for p in polygons if isinstance(p, Polygon)])
