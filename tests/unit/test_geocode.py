"""Offline geocoding of spreadsheet rows (exchange/geocode.py).

The truth is read here, independently of the module: the towns from places.csv, the
municipalities' polygons (shapely) and representative points from the shipped data files.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from functools import cache
from importlib.resources import files
from typing import Any

import pytest
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from referral_net.exchange.geocode import GeocodeError, gazetteer, name_key

DATA = files("referral_net") / "data" / "guatemala"


@cache
def towns() -> list[dict[str, str]]:
    with (DATA / "places.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@cache
def inside_points() -> dict[str, tuple[float, float]]:
    with (DATA / "municipality_centroids.csv").open(encoding="utf-8", newline="") as handle:
        return {
            row["ine_code"]: (float(row["inside_lat"]), float(row["inside_lon"]))
            for row in csv.DictReader(handle)
        }


@cache
def polygons() -> dict[str, BaseGeometry]:
    collection = json.loads((DATA / "municipalities.geojson").read_text(encoding="utf-8"))
    return {f["properties"]["ine_code"]: shape(f["geometry"]) for f in collection["features"]}


def test_places_file_holds_the_geonames_rows_only_as_sources_md_says() -> None:
    # The dr5hn rows (ODbL) were left out of the shipped copy; see data/guatemala/SOURCES.md.
    assert {row["source"] for row in towns()} == {"geonames"}
    sources = (DATA / "SOURCES.md").read_text(encoding="utf-8")
    row = next(line for line in sources.splitlines() if line.startswith("| places.csv |"))
    assert f"| {len(towns())} |" in row
    assert "CC BY 4.0" in row


def test_every_town_named_in_an_address_is_placed_at_its_own_point() -> None:
    by_municipality: dict[tuple[str, str], set[tuple[float, float]]] = defaultdict(set)
    for row in towns():
        by_municipality[(row["adm2_ine"], row["name"])].add((float(row["lat"]), float(row["lon"])))
    placed = 0
    for row in towns():
        if row["adm2_ine"] in {"0100", "0700"}:
            continue
        placement = gazetteer().place(
            municipality=row["adm2_ine"], address=f"3a. calle 4-10, zona 1, {row['name']}"
        )
        assert placement.precision == "town", row
        assert placement.municipality.code == row["adm2_ine"]
        # The longest town name the address holds wins; it contains this row's name, so it is
        # this town unless a longer town name of the same municipality contains it.
        assert name_key(row["name"]) in name_key(placement.town or "")
        if placement.town == row["name"]:
            assert (placement.latitude, placement.longitude) in by_municipality[
                (row["adm2_ine"], row["name"])
            ]
            placed += 1
    assert placed >= len(towns()) - 5


def test_town_point_lies_in_its_municipality_polygon() -> None:
    placement = gazetteer().place(
        municipality="Cantel", department="Quetzaltenango", address="Cantel, frente al parque"
    )
    assert placement.precision == "town"
    assert polygons()["0914"].buffer(0.01).covers(Point(placement.longitude, placement.latitude))


@pytest.mark.parametrize("code", sorted(set(inside_points()) - {"0100", "0700"}))
def test_without_a_town_the_row_goes_to_the_municipality_point(code: str) -> None:
    placement = gazetteer().place(municipality=code, address="Km. 0, sin referencia")
    assert placement.precision == "municipality"
    assert (placement.latitude, placement.longitude) == inside_points()[code]
    assert polygons()[code].covers(Point(placement.longitude, placement.latitude))


VARIANTS: list[tuple[str, str | None, str]] = [
    ("Xela", None, "0901"),
    ("xelajú", "Quetzaltenango", "0901"),
    ("QUETZALTENANGO", "09", "0901"),
    ("Sta. Cruz del Quiché", None, "1401"),
    ("santa cruz del quiche", "El Quiché", "1401"),
    ("Sn. Pedro Sacatepéquez", "San Marcos", "1202"),
    ("S. Pedro Sacatepequez", "Guatemala", "0109"),
    ("Mpio. de Cantel", "Depto. de Quetzaltenango", "0914"),
    ("Municipio Cantel", "Quetzaltenango", "0914"),
    ("San Miguel Sigüilá", None, "0908"),
    ("San-Miguel-Siguila", None, "0908"),
    ("san juan ostuncalco", "Quetzaltenango", "0909"),
    ("Ciudad de Guatemala", None, "0101"),
    ("0914", None, "0914"),
    ("914", "09", "0914"),
    ("Todos Santos Cuchumatán", "Huehuetenango", "1315"),
    ("Huehue", None, "1301"),
]


@pytest.mark.parametrize(("name", "department", "code"), VARIANTS)
def test_names_match_ignoring_accents_case_and_variants(
    name: str, department: str | None, code: str
) -> None:
    assert gazetteer().municipality(name, department).code == code


@pytest.mark.parametrize(
    ("name", "department", "words"),
    [
        ("Atlantis", None, "unknown municipality"),
        ("San José", None, "several departments"),
        ("Cantel", "Sololá", "not in the department"),
        ("Cantel", "Narnia", "unknown department"),
        ("9999", None, "unknown municipality code"),
        ("", None, "missing"),
        ("Lago de Atitlán", None, "unknown municipality"),
    ],
)
def test_unknown_or_ambiguous_municipality_is_an_error(
    name: str, department: str | None, words: str
) -> None:
    with pytest.raises(GeocodeError, match=words):
        gazetteer().place(municipality=name, department=department)


def test_given_point_inside_its_municipality_is_kept_without_warning() -> None:
    lat, lon = inside_points()["0914"]
    placement = gazetteer().place(municipality="Cantel", latitude=lat, longitude=lon)
    assert (placement.precision, placement.latitude, placement.longitude) == ("given", lat, lon)
    assert placement.warnings == ()


def test_given_point_outside_its_municipality_is_kept_with_a_warning() -> None:
    lat, lon = inside_points()["0901"]  # Quetzaltenango's point, stated as Cantel
    assert not polygons()["0914"].covers(Point(lon, lat))
    placement = gazetteer().place(municipality="Cantel", latitude=lat, longitude=lon)
    assert placement.precision == "given"
    assert (placement.latitude, placement.longitude) == (lat, lon)
    assert len(placement.warnings) == 1
    assert "outside the municipality 'Cantel'" in placement.warnings[0]
    assert f"{lat}" not in placement.warnings[0]


def _error(**row: Any) -> str:
    with pytest.raises(GeocodeError) as caught:
        gazetteer().place(municipality="Cantel", **row)
    return str(caught.value)


def test_swapped_coordinates_are_an_error_that_quotes_no_coordinates() -> None:
    lat, lon = inside_points()["0914"]
    message = _error(latitude=lon, longitude=lat)
    assert "swapped" in message
    assert f"{lat:g}" not in message
    assert f"{lon:g}" not in message


def test_out_of_range_or_abroad_or_half_a_point_is_an_error() -> None:
    assert "not a point in Guatemala" in _error(latitude=100.0, longitude=101.0)
    assert "not a point in Guatemala" in _error(latitude=19.43, longitude=-99.13)  # Mexico City
    assert "go together" in _error(latitude=14.8, longitude=None)


def test_name_key_expands_abbreviations_and_drops_kind_words() -> None:
    assert name_key("Sta. María de Jesús") == "santa maria de jesus"
    assert name_key("Mpio. de Sto. Tomás") == "santo tomas"
    assert name_key("K'iche'") == "kiche"
