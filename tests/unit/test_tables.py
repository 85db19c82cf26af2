"""The tabular form <-> the nested form (exchange/tables.py), against Open Referral's own
examples: the official CSV datapackage and the official nested JSON describe the same records."""

from __future__ import annotations

import copy
import csv
import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from referral_net.exchange.records import SourceRecord
from referral_net.exchange.tables import (
    DERIVED_FIELDS,
    EMBEDDED_RECORDS,
    assemble,
    flatten,
    from_cell,
    tables,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "specs" / "hsds-3.0" / "examples"

# Where the official CSV and the official nested examples disagree about the same record. Each
# entry is (file, path in the record): the test asserts these differ and everything else agrees.
OFFICIAL_DISAGREEMENTS = {
    # The CSV's attribute names link_id f28dd44b..., its metadata row a location 38960354...:
    # neither is in the package, so neither nests under the service as the JSON has them.
    ("service_full.json", ".attributes"),
    ("service_full.json", ".metadata"),
    # The CSV's contact names organization ae67a707..., not the example organization.
    ("organization_full.json", ".contacts"),
    ("service_at_location_full.json", ".contacts"),
    ("organization_full.json", ".tax_id"),
    ("location.json", ".external_identifier"),
    ("location.json", ".external_identifier_type"),
    ("location.json", ".schedules[].opens_at"),
    ("location.json", ".schedules[].closes_at"),
}
# Keys the tabular form holds and the nested JSON leaves to its nesting.
TABULAR_ONLY = {
    "organization_id",
    "program_id",
    "service_id",
    "location_id",
    "taxonomy_id",
    "service_at_location_id",
    "link_id",
}


def official_csv() -> dict[str, list[dict[str, str]]]:
    """The official CSV datapackage's rows, by file name."""
    package = json.loads((EXAMPLES / "csv" / "datapackage.json").read_text(encoding="utf-8"))
    found = {}
    for resource in package["resources"]:
        with (EXAMPLES / "csv" / resource["path"]).open(newline="", encoding="utf-8") as file:
            found[resource["path"]] = list(csv.DictReader(file))
    return found


def differences(ours: Any, theirs: Any, path: str = "") -> set[str]:
    """The paths where two nested records differ (lists compared by their items' ids)."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        found: set[str] = set()
        for key in set(ours) | set(theirs):
            if key not in theirs and key in TABULAR_ONLY:
                continue
            if key not in ours or key not in theirs:
                found.add(f"{path}.{key}")
            else:
                found |= differences(ours[key], theirs[key], f"{path}.{key}")
        return found
    if isinstance(ours, list) and isinstance(theirs, list):
        mine = {item["id"]: item for item in ours}
        other = {item["id"]: item for item in theirs}
        if set(mine) != set(other):
            return {path}
        return set().union(*(differences(mine[k], other[k], f"{path}[]") for k in mine))
    return set() if ours == theirs else {path}


def without(record: dict[str, Any], table: str) -> dict[str, Any]:
    """The record without the other top-level records it embeds (its attributes' terms too)."""
    kept = {k: v for k, v in record.items() if k not in EMBEDDED_RECORDS.get(table, ())}
    if "attributes" in kept:
        kept["attributes"] = [without(a, "attribute") for a in kept["attributes"]]
    return kept


@pytest.mark.parametrize(
    ("name", "table"),
    [
        ("service_full.json", "service"),
        ("organization_full.json", "organization"),
        ("location.json", "location"),
        ("service_at_location_full.json", "service_at_location"),
        ("taxonomy.json", "taxonomy"),
        ("taxonomy_term.json", "taxonomy_term"),
    ],
)
def test_official_csv_assembles_to_the_official_nested_records(name: str, table: str) -> None:
    nested = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    records = {(r.table, r.data["id"]): r for r in assemble(official_csv())}
    record = records[(table, nested["id"])]
    assert record.problems == ()
    expected = {path for file, path in OFFICIAL_DISAGREEMENTS if file == name}
    assert differences(record.data, without(nested, table)) == expected


def test_official_csv_origins_types_and_warnings() -> None:
    records = list(assemble(official_csv()))
    assert [(r.table, r.origin) for r in records] == [
        ("taxonomy", "taxonomies.csv row 2"),
        ("taxonomy_term", "taxonomy_terms.csv row 2"),
        ("organization", "organizations.csv row 2"),
        ("location", "locations.csv row 2"),
        ("service", "services.csv row 2"),
        ("service_at_location", "service_at_location.csv row 2"),
    ]
    service = records[4].data
    assert service["minimum_age"] == 12
    assert isinstance(service["minimum_age"], int)
    assert service["cost_options"][0]["amount"] == 35
    assert service["schedules"][0]["timezone"] == 3
    # One phone row with five parents is nested under each of them that is in the package.
    phone = "1554f2e2-a373-45db-a3fa-9fc48a61c15e"
    assert [p["id"] for p in service["phones"]] == [phone]
    assert [p["id"] for p in service["contacts"][0]["phones"]] == [phone]
    assert [p["id"] for p in records[3].data["phones"]] == [phone]
    # Rows no record holds are not dropped silently: they are warnings of the first record.
    orphans = {(w.table, w.field) for w in records[0].warnings}
    assert {("attribute", "link_id"), ("metadata", "resource_id")} <= orphans


@pytest.mark.parametrize(
    "name", ["service_full.json", "organization_full.json", "location.json", "taxonomy_term.json"]
)
def test_flatten_then_assemble_is_identity_on_the_official_examples(name: str) -> None:
    nested = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    table = name.split("_full", maxsplit=1)[0].removesuffix(".json")
    rows: dict[str, list[dict[str, str]]] = {}
    for row_table, row in flatten(table, nested):
        assert set(row) == set(tables()[row_table].field_names)
        rows.setdefault(row_table, []).append(row)
    (record,) = [r for r in assemble(rows) if r.table == table]
    assert record.problems == ()
    assert record.warnings == ()
    assert differences(record.data, without(nested, table)) == set()


def served_service() -> dict[str, Any]:
    """A service as the API serves it: derived fields, capacities with units, attributes."""
    service_id, unit_id = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-22222222"
    return {
        "id": service_id,
        "organization_id": "33333333-3333-4333-8333-333333333333",
        "name": "Albergue",
        "status": "active",
        "minimum_age": 12,
        "eligibility": {"minimum_age": 12, "genders_served": ["woman"], "trans_inclusive": True},
        "categories": [{"code": "protection.shelter", "name": "Albergue"}],
        "open_now": True,
        "listed_despite_hidden_sites": False,
        "version": 3,
        "phones": [
            {
                "id": "44444444-4444-4444-8444-444444444444",
                "number": "+50255550123",
                "extension": 12,
                "languages": [{"id": "55555555-5555-4555-8555-555555555555", "code": "mam"}],
            }
        ],
        "schedules": [
            {"id": "66666666-6666-4666-8666-666666666666", "timezone": -6.0, "byday": "MO,TU"}
        ],
        "capacities": [
            {
                "id": "77777777-7777-4777-8777-777777777777",
                "service_id": service_id,
                "unit": {"id": unit_id, "name": "Bed", "identifier": "bed"},
                "available": 3.0,
                "updated": "2026-01-02T03:04:05Z",
            }
        ],
        "attributes": [
            {
                "id": "88888888-8888-4888-8888-888888888888",
                "link_id": service_id,
                "link_entity": "service",
                "taxonomy_term_id": "99999999-9999-4999-8999-999999999999",
                "label": "Albergue",
                "taxonomy_term": {"id": "99999999-9999-4999-8999-999999999999", "name": "x"},
            }
        ],
        "service_areas": [{"id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "extent": "{}"}],
    }


def test_flatten_then_assemble_is_identity_on_a_served_service() -> None:
    served = served_service()
    original = copy.deepcopy(served)
    rows: dict[str, list[dict[str, str]]] = {}
    for table, row in flatten("service", served):
        rows.setdefault(table, []).append(row)
    assert served == original  # flatten does not touch its input
    assert rows["attribute"][0]["link_entity"] == "service"
    assert rows["service_capacity"][0]["unit_id"] == rows["unit"][0]["id"]
    (record,) = [r for r in assemble(rows) if r.table == "service"]
    assert record.problems == ()
    assert record.warnings == ()
    expected = {k: v for k, v in served.items() if k not in DERIVED_FIELDS["service"]}
    expected["attributes"] = [
        {k: v for k, v in a.items() if k not in {"label", "taxonomy_term"}}
        for a in served["attributes"]
    ]
    assert record.data == expected
    assert isinstance(record.data["schedules"][0]["timezone"], float)


def rows_of(*pairs: tuple[str, dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    found: dict[str, list[dict[str, str]]] = {}
    for table, row in pairs:
        found.setdefault(table, []).append(row)
    return found


def test_a_bad_cell_is_a_problem_of_its_record_not_an_exception() -> None:
    service = {"id": "s1", "organization_id": "o1", "name": "x", "minimum_age": "doce"}
    schedule = {"id": "h1", "service_id": "s1", "opens_at": "25:99", "valid_from": "2026-13-01"}
    phone = {"id": "p1", "service_id": "s1", "number": "1", "extension": "1e999"}
    (record,) = assemble(
        rows_of(("services.csv", service), ("schedule", schedule), ("phones.csv", phone))
    )
    assert {(p.table, p.row, p.field) for p in record.problems} == {
        ("service", "services.csv row 2", "minimum_age"),
        ("schedule", "schedules.csv row 2", "opens_at"),
        ("schedule", "schedules.csv row 2", "valid_from"),
        ("phone", "phones.csv row 2", "extension"),
    }


def test_a_child_of_an_unknown_parent_is_reported() -> None:
    service = {"id": "s1", "organization_id": "o1", "name": "x"}
    mine = {"id": "p1", "service_id": "s1", "location_id": "nowhere", "number": "1"}
    lost = {"id": "p2", "service_id": "gone", "number": "2"}
    records = list(assemble(rows_of(("service", service), ("phone", mine), ("phone", lost))))
    assert [r.table for r in records] == ["service"]
    (record,) = records
    assert [p["id"] for p in record.data["phones"]] == ["p1"]
    reported = {(w.row, w.field) for w in record.warnings}
    assert ("phones.csv row 2", "location_id") in reported
    assert ("phones.csv row 3", "service_id") in reported


@pytest.mark.parametrize(
    ("field_type", "text", "value"),
    [
        ("integer", "7", 7),
        ("number", "2011", 2011),
        ("number", "-6.0", -6.0),
        ("boolean", "true", True),
        ("boolean", "0", False),
        ("object", '{"a": 1}', {"a": 1}),
        ("date", "2026-02-28", "2026-02-28"),
        ("string", "007", "007"),
    ],
)
def test_cells_become_the_json_type_of_their_field(field_type: str, text: str, value: Any) -> None:
    converted = from_cell(field_type, text)
    assert converted == value
    assert type(converted) is type(value)


@pytest.mark.parametrize(
    ("field_type", "text"),
    [("integer", "1.5"), ("number", "nan"), ("boolean", "yes"), ("object", "[1]"), ("date", "x")],
)
def test_unconvertible_cells_raise_value_error(field_type: str, text: str) -> None:
    with pytest.raises(ValueError, match=field_type.replace("boolean", "true or false")[:4]):
        from_cell(field_type, text)


def test_source_records_are_the_shared_contract() -> None:
    (record,) = assemble({"taxonomies.csv": [{"id": "t1", "name": "n", "description": "d"}]})
    assert isinstance(record, SourceRecord)
    assert record.data == {
        "id": "t1",
        "name": "n",
        "description": "d",
    }


def test_a_second_row_with_an_id_is_an_error_and_an_unknown_table_a_warning() -> None:
    first = {"id": "s1", "organization_id": "o1", "name": "first"}
    second = {"id": "s1", "organization_id": "o1", "name": "second"}
    records = list(
        assemble({**rows_of(("service", first), ("service", second)), "bogus.csv": [{"a": "1"}]})
    )
    assert [r.data["name"] for r in records] == ["first", "second"]
    assert records[0].problems == ()
    assert [(p.row, p.field, p.message) for p in records[1].problems] == [
        ("services.csv row 3", "id", "a second row with this id")
    ]
    # The package's own problems travel with the first record only.
    assert [(w.table, w.message) for w in records[0].warnings] == [
        ("bogus.csv", "not a table of the HSDS profile")
    ]
    assert records[1].warnings == ()


def test_a_row_nested_twice_in_one_record_is_one_row_with_its_problems_once() -> None:
    service = {"id": "s1", "organization_id": "o1", "name": "x"}
    contact = {"id": "c1", "service_id": "s1", "name": "desk"}
    # The phone names its service and its contact: it is nested under both, one row.
    phone = {"id": "p1", "service_id": "s1", "contact_id": "c1", "number": "1", "extension": "x"}
    (record,) = assemble(rows_of(("service", service), ("contact", contact), ("phone", phone)))
    (service_phone,) = record.data["phones"]
    (contact_phone,) = record.data["contacts"][0]["phones"]
    assert service_phone is contact_phone
    assert service_phone["number"] == "1"
    assert [(p.row, p.field) for p in record.problems] == [("phones.csv row 2", "extension")]


def _package_of(size: int) -> dict[str, Any]:
    """A package of ``size`` services with a schedule each, its rows made as they are read (as
    csv.DictReader gives them) so only the assembler can hold them."""

    def services() -> Any:
        for number in range(size):
            yield {"id": f"s{number}", "organization_id": "o1", "name": f"service {number}"}

    def schedules() -> Any:
        for number in range(size):
            yield {
                "id": f"h{number}",
                "service_id": f"s{number}",
                "byday": "MO,TU",
                "freq": "WEEKLY",
            }

    return {"services.csv": services(), "schedules.csv": schedules()}


def _peak_bytes_assembling(size: int) -> int:
    """The most Python memory held at once while a package of ``size`` services is assembled
    and each record is taken and let go (an importer's reading of it)."""
    tracemalloc.start()
    try:
        count = 0
        for record in assemble(_package_of(size)):
            assert [schedule["id"] for schedule in record.data["schedules"]] == [f"h{count}"]
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == size
    return peak


def test_assembling_a_package_holds_memory_bounded_by_a_record_not_the_package() -> None:
    _peak_bytes_assembling(10)  # the profile's tables and schemas, loaded once and cached
    small = _peak_bytes_assembling(1_000)
    large = _peak_bytes_assembling(10_000)
    # Ten times the rows: held whole, the peak grew about tenfold (about 7 KB a service); staged
    # on disk it is one record, a batch of rows and fixed overheads at either size.
    assert large < 1.5 * small, (small, large)
