"""Administrative areas: the boundary files load, and points are located as shapely says."""

from __future__ import annotations

import csv
import json
from functools import cache
from pathlib import Path

import pytest
from shapely.geometry import Point, shape
from shapely.prepared import prep
from sqlmodel import Session

from referral_net.db.dialect import spatialite
from referral_net.domain import areas

pytestmark = pytest.mark.db

SHARED = Path(__file__).resolve().parents[1] / "src/referral_net/data/guatemala"


@cache
def _municipality_polygons() -> dict[str, object]:
    data = json.loads((SHARED / "municipalities.geojson").read_text(encoding="utf-8"))
    return {
        f["properties"]["ine_code"]: prep(shape(f["geometry"]))
        for f in data["features"]
        if f["properties"]["ine_code"] not in areas.LAKE_CODES
    }


def _places(limit: int = 60) -> list[tuple[float, float]]:
    with (Path(__file__).resolve().parents[1] / "seed/places.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    step = max(1, len(rows) // limit)
    return [(float(r["lat"]), float(r["lon"])) for r in rows[::step]][:limit]


def test_loaded_counts(session: Session) -> None:
    assert areas.count_areas(session=session) == {"department": 22, "municipality": 340}


def test_point_lookup_matches_shapely_ground_truth(session: Session) -> None:
    polygons = _municipality_polygons()
    checked = 0
    for lat, lon in _places():
        expected = sorted(c for c, poly in polygons.items() if poly.contains(Point(lon, lat)))
        if len(expected) != 1:
            continue  # on a shared border or in a lake: ambiguous ground truth
        found = areas.area_codes_at(session=session, latitude=lat, longitude=lon)
        assert found.municipality_code == expected[0], (lat, lon)
        assert found.department_code == expected[0][:2]
        checked += 1
    assert checked >= 40


def test_point_outside_guatemala_has_no_codes(session: Session) -> None:
    # Tapachula, Mexico, and San Salvador, El Salvador
    for lat, lon in [(14.9056, -92.2634), (13.6929, -89.2182)]:
        found = areas.area_codes_at(session=session, latitude=lat, longitude=lon)
        assert found == areas.AreaCodes(department_code=None, municipality_code=None)


def test_points_looked_up_at_once_match_shapely_and_one_by_one(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import's page finds its sites' areas in one statement (``look_up_area_codes``): the
    same answers as the lookup of each point, and as shapely says; points outside the country
    and in Lago de Atitlán (a lake, not a municipality) included. SpatiaLite's statements take
    a few points each here, so that the positions cross statements."""
    monkeypatch.setattr(spatialite, "_POINTS_PER_STATEMENT", 7)
    polygons = _municipality_polygons()
    outside = [(14.9056, -92.2634), (13.6929, -89.2182)]
    atitlan = (14.6907, -91.2025)
    points = [*_places(), *outside, atitlan, (100.0, 101.0)]
    one_by_one = [
        areas.area_codes_at(session=session, latitude=lat, longitude=lon) for lat, lon in points
    ]
    areas.look_up_area_codes(session, points)
    assert [
        areas.area_codes_at(session=session, latitude=lat, longitude=lon) for lat, lon in points
    ] == one_by_one
    assert session.info[areas._LOOKED_UP].keys() == set(points)
    for (lat, lon), found in zip(points, one_by_one, strict=True):
        expected = sorted(c for c, poly in polygons.items() if poly.contains(Point(lon, lat)))
        if len(expected) == 1:
            assert found.municipality_code == expected[0], (lat, lon)
        elif not expected and (lat, lon) != atitlan:
            assert found.municipality_code is None, (lat, lon)
    assert one_by_one[len(_places()) + 2].municipality_code is None  # the lake
    assert one_by_one[len(_places()) + 2].department_code == "07"  # in Sololá


def test_representative_points_lie_inside_their_municipality(session: Session) -> None:
    polygons = _municipality_polygons()
    for code in ("0901", "1301", "1201", "0801", "1401", "0701", "0101"):
        area = areas.get_area(session=session, code=code)
        assert area is not None
        point = Point(area.representative_longitude, area.representative_latitude)
        assert polygons[code].contains(point)
