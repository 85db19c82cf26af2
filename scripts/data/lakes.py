"""Write src/referral_net/data/guatemala/lakes.geojson, the map's lakes (docs/tiles.md).

Two sources, both read here and nowhere at run time:

- Lago de Atitlán and Lago de Amatitlán from the shipped municipalities.geojson (OCHA / CONRED:
  the two lake polygons of that file, codes 0700 and 0100, which are not municipalities);
- every other lake of at least 1 km² that meets Guatemala, from GSHHG 2.3.7 at full resolution
  (Wessel & Smith; LGPL-3.0), dumped by GMT: Debian's ``gmt`` and ``gmt-gshhg-full`` packages
  (``apt-get install gmt gmt-gshhg-full``), which only this script needs.

Run from the repository root: ``.venv/bin/python scripts/data/lakes.py``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from shapely.geometry import LineString, Point, mapping, shape
from shapely.ops import polygonize, unary_union

DATA = Path("src/referral_net/data/guatemala")
OCHA_LAKES = {"0700": "Lago de Atitlán", "0100": "Lago de Amatitlán"}
REGION = "-92.3/-88.2/13.7/17.9"
# GSHHG carries no names: the largest lakes named by a point inside each.
GSHHG_NAMES = {
    "Lago de Izabal": (-89.06, 15.58),
    "Lago Petén Itzá": (-89.89, 16.97),
    "Lago de Güija": (-89.52, 14.27),
}
MIN_AREA_KM2 = 1.0
KM2_PER_SQUARE_DEGREE = 111.32 * 111.32 * 0.97  # cos(14°-17°): an area rank, not a survey


def _gshhg_lakes() -> list[Any]:
    """Level-2 (lake) shorelines of GSHHG in the region, closed into polygons."""
    dump = subprocess.run(  # noqa: S603 - a fixed command, GMT from PATH
        ["gmt", "coast", f"-R{REGION}", "-Df", "-M", "-W", "-A0/2/2"],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    segments: list[list[tuple[float, float]]] = [[]]
    for line in dump.splitlines():
        if line.startswith(">"):
            segments.append([])
        elif line.strip():
            x, y = (float(v) for v in line.split()[:2])
            segments[-1].append((x, y))
    lines = [LineString(s) for s in segments if len(s) > 1]
    return list(polygonize(unary_union(lines)))


def main() -> None:
    """Write the file."""
    departments = json.loads((DATA / "departments.geojson").read_text(encoding="utf-8"))
    country = unary_union([shape(f["geometry"]) for f in departments["features"]])
    municipalities = json.loads((DATA / "municipalities.geojson").read_text(encoding="utf-8"))
    features = []
    ocha = []
    for feature in municipalities["features"]:
        code = feature["properties"]["ine_code"]
        if code in OCHA_LAKES:
            geometry = shape(feature["geometry"])
            ocha.append(geometry)
            features.append((geometry, OCHA_LAKES[code], "OCHA / CONRED"))
    for lake in _gshhg_lakes():
        area = lake.area * KM2_PER_SQUARE_DEGREE
        if area < MIN_AREA_KM2 or not lake.intersects(country):
            continue
        if any(lake.intersects(known) for known in ocha):
            continue  # the OCHA polygon of the same lake, which fits the municipalities
        named = [name for name, (x, y) in GSHHG_NAMES.items() if lake.contains(Point(x, y))]
        features.append((lake, named[0] if named else None, "GSHHG 2.3.7"))
    features.sort(key=lambda item: -item[0].area)
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"id": f"lake-{i + 1}", "name": name, "source": source},
                "geometry": mapping(geometry.buffer(0)),
            }
            for i, (geometry, name, source) in enumerate(features)
        ],
    }
    text = json.dumps(collection, ensure_ascii=False, separators=(",", ":"))
    (DATA / "lakes.geojson").write_text(text + "\n", encoding="utf-8")
    print(f"{len(features)} lakes")


if __name__ == "__main__":
    main()
