"""The HSDS profile (profile/, scripts/build_profile.py, referral_net.hsds and its router).

Checked against independent truth: the official HSDS 3.0 schemas, compiled schemas, datapackage
and examples in ``specs/hsds-3.0`` (the build must reproduce the official compiled files
from the official schemas), the HSDS 3.1 draft's capacity schemas, and the examples of RFC 7396.
No database.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from referral_net import hsds
from referral_net.api.problems import install_error_handlers
from referral_net.api.routers import profile as profile_router

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "profile"
SPECS = ROOT / "specs"
HSDS = SPECS / "hsds-3.0"
CAPACITY_DRAFT = SPECS / "hsds-3.1-dev-capacity"
UUID = "f75b808e-7bdb-11ef-afaa-ab00a77dc5c4"

# What the profile changes, as docs/hsds-profile.md and profile/README.md say it: (table, change,
# field). "property" is an added (optional) property; "not required" a relaxed requirement.
EXTENSIONS = {
    "location": (
        "visibility",
        "precision",
        "geocoding_precision",
        "needs_geocoding",
        "department_code",
        "municipality_code",
        "outside_country",
        "intake_phone",
        "intake_description",
        "status",
        "version",
        "last_modified",
    ),
    "organization": ("status", "version", "last_modified"),
    "service": (
        "eligibility",
        "categories",
        "capacities",
        "capacity",
        "open_now",
        "open_24h",
        "listed_despite_hidden_sites",
        "assured_by",
        "version",
    ),
    "service_area": ("geometry",),
    "service_at_location": ("service_name", "location_name", "last_modified"),
    "taxonomy_term": ("translations", "parent_code", "localized", "open_eligibility"),
}
# The extensions the tabular form has no column for: arrays and objects that repeat what other
# rows or columns carry (attribute rows, service_capacity rows, extent) or that depend on the
# request (localized). The other extensions are columns (objects as JSON ones).
WITHOUT_COLUMN = {
    ("service", "categories"),
    ("service", "capacities"),
    ("service", "capacity"),
    ("service_area", "geometry"),
    ("taxonomy_term", "localized"),
}
DECLARED = {("address", "not required", "postal_code")} | {
    (table, "property", field) for table, fields in EXTENSIONS.items() for field in fields
}
NEW_SCHEMAS = {"service_capacity.json", "unit.json"}
# The records HSDS compiles, and the example of each (a page's contents for the lists).
EXAMPLES = [
    ("service_full", "service"),
    ("service_list", "service_list"),
    ("organization_full", "organization"),
    ("organization_list", "organization_list"),
    ("service_at_location_full", "service_at_location"),
    ("service_at_location_list", "service_at_location_list"),
    ("location", "location"),
    ("taxonomy", "taxonomy"),
    ("taxonomy_list", "taxonomy"),
    ("taxonomy_term", "taxonomy_term"),
    ("taxonomy_term_list", "taxonomy_term"),
]
RECORD_FILES = [
    f"{name}{suffix}.json"
    for name in ("service", "organization", "service_at_location")
    for suffix in ("", "_list", "_package")
]


@pytest.fixture(scope="module")
def build_profile() -> ModuleType:
    """scripts/build_profile.py as a module (scripts/ is not a package)."""
    assert (HSDS / "schema" / "service.json").is_file(), f"the HSDS 3.0 copy is missing: {HSDS}"
    spec = importlib.util.spec_from_file_location(
        "build_profile", ROOT / "scripts/build_profile.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _example(name: str) -> list[Any]:
    """The records of an official example: the record itself, or a page's contents."""
    data = _load(HSDS / "examples" / f"{name}.json")
    records: list[Any] = data.get("contents", [data])
    return records


@cache
def _official_validator(name: str) -> Draft202012Validator:
    """The official schema ``name``: compiled where HSDS compiles it, else through its $refs."""
    compiled = HSDS / "schema" / "compiled" / f"{name}.json"
    if compiled.is_file():
        schema: dict[str, Any] = _load(compiled)
        registry: Registry[Any] = Registry()
    else:
        schema = {"$ref": f"{name}.json"}
        registry = Registry().with_resources(
            (path.name, DRAFT202012.create_resource(_load(path)))
            for path in (HSDS / "schema").glob("*.json")
            if path.name != "openapi.json"
        )
    return Draft202012Validator(
        schema, format_checker=Draft202012Validator.FORMAT_CHECKER, registry=registry
    )


def _official_errors(name: str, record: Any) -> list[str]:
    found = _official_validator(name).iter_errors(record)
    return sorted(f"{error.json_path}: {error.message}" for error in found)


def _differences(
    official: Any, profile: Any, table: str = "", *, properties: bool = False
) -> set[tuple[str, str, str]]:
    """How ``profile`` differs from ``official``, as (table, change, field) triples.

    ``table`` is the ``name`` of the innermost schema (inlined schemas keep their table's name);
    ``properties`` says that the two are a schema's ``properties``. A change that is neither an
    added property nor a changed ``required`` list is reported as ``(table, "changed", ...)``,
    ``"added"`` or ``"removed"``, which no declaration allows.
    """
    if not (isinstance(official, dict) and isinstance(profile, dict)):
        return set() if official == profile else {(table, "changed", json.dumps(official)[:60])}
    name = official.get("name")
    table = name if isinstance(name, str) and not properties else table
    found: set[tuple[str, str, str]] = set()
    for key in official.keys() | profile.keys():
        if key not in official:
            found.add((table, "property" if properties else "added", key))
        elif key not in profile:
            found.add((table, "removed", key))
        elif key == "required" and not properties:
            found |= {(table, "not required", f) for f in set(official[key]) - set(profile[key])}
            found |= {(table, "required", f) for f in set(profile[key]) - set(official[key])}
        else:
            found |= _differences(
                official[key],
                profile[key],
                table,
                properties=key == "properties" and not properties,
            )
    return found


# --- the build -------------------------------------------------------------------------------


def test_merge_patch_gives_the_results_of_rfc_7396_appendix_a(build_profile: ModuleType) -> None:
    cases = [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ]
    for original, patch, result in cases:
        before = copy.deepcopy(original)
        assert build_profile.merge_patch(original, patch) == result, (original, patch)
        assert original == before  # the target is not changed in place


def test_without_patches_the_build_reproduces_every_official_compiled_file(
    build_profile: ModuleType,
) -> None:
    official = build_profile.read_schemas(HSDS / "schema")
    compiled = build_profile.compile_schemas(official)
    official_files = sorted((HSDS / "schema" / "compiled").glob("*.json"))
    assert len(official_files) == 11
    for path in official_files:
        # Byte for byte, but for the final newline the script adds.
        assert json.dumps(compiled[path.name], indent=2) == path.read_text(), path.name


def test_without_patches_the_datapackage_is_the_official_one(build_profile: ModuleType) -> None:
    published = HSDS / "examples" / "csv" / "datapackage.json"
    header = {key: value for key, value in _load(published).items() if key != "resources"}
    package = build_profile.datapackage(build_profile.read_schemas(HSDS / "schema"), header)
    assert json.dumps(package, indent=4) == published.read_text().rstrip("\n")


def test_the_committed_profile_is_what_the_script_builds(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_profile.py"), "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    built = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.json")}
    committed = {
        p.relative_to(PROFILE).as_posix()
        for p in [PROFILE / "datapackage.json", *(PROFILE / "schema" / "compiled").glob("*.json")]
    }
    assert built == committed
    stale = [
        name
        for name in sorted(built)
        if (tmp_path / name).read_bytes() != (PROFILE / name).read_bytes()
    ]
    assert not stale, f"rebuild the profile (scripts/build_profile.py): {stale} changed"


# --- what the profile changes ----------------------------------------------------------------


def test_the_merged_schemas_differ_from_hsds_only_as_declared(build_profile: ModuleType) -> None:
    official = build_profile.read_schemas(HSDS / "schema")
    patches = build_profile.read_schemas(PROFILE / "schema")
    merged = build_profile.merge_profile(official, patches)
    assert set(merged) - set(official) == NEW_SCHEMAS
    found: set[tuple[str, str, str]] = set()
    for name, schema in official.items():
        found |= _differences(schema, merged[name])
    assert found == DECLARED


def test_the_compiled_records_differ_from_hsds_only_as_declared() -> None:
    found: set[tuple[str, str, str]] = set()
    for name in RECORD_FILES:
        official = _load(HSDS / "schema" / "compiled" / name)
        profile = _load(PROFILE / "schema" / "compiled" / name)
        differences = _differences(official, profile)
        assert differences <= DECLARED, name
        found |= differences
    assert found == DECLARED  # each change reaches the records HSDS serves


def test_every_extension_is_optional_and_described(build_profile: ModuleType) -> None:
    patches = build_profile.read_schemas(PROFILE / "schema")
    for table, fields in EXTENSIONS.items():
        patch = patches[f"{table}.json"]
        assert set(patch) == {"properties"}, table  # adds properties, requires nothing new
        for field in fields:
            prop = patch["properties"][field]
            assert prop["name"] == field
            assert prop["description"].startswith("referral-net profile extension."), field


def test_the_capacity_schemas_are_the_hsds_3_1_draft_with_tabular_columns() -> None:
    for name in NEW_SCHEMAS:
        draft = _load(CAPACITY_DRAFT / name)
        copied = _load(PROFILE / "schema" / name)
        for key, prop in copied["properties"].items():
            # Added so that the columns reach datapackage.json: the draft's tooling leaves a
            # property without "constraints" out of its tables (the id included).
            if "constraints" not in draft["properties"][key]:
                prop.pop("constraints", None)
            if "datapackage_type" not in draft["properties"][key]:
                prop.pop("datapackage_type", None)
        assert copied == draft, name


def test_the_datapackage_has_the_capacity_tables_and_the_extension_columns() -> None:
    resources = {r["name"]: r for r in _load(PROFILE / "datapackage.json")["resources"]}
    columns = {name: {f["name"] for f in r["schema"]["fields"]} for name, r in resources.items()}
    assert {"id", "service_id", "unit_id", "available", "updated"} <= columns["service_capacity"]
    assert {"id", "name"} <= columns["unit"]
    keys = resources["service_capacity"]["schema"]["foreignKeys"]
    assert {k["reference"]["resource"] for k in keys} == {"service", "unit"}
    missing = {(table, f) for table, fields in EXTENSIONS.items() for f in fields} - {
        (table, f) for table, names in columns.items() for f in names
    }
    assert missing == WITHOUT_COLUMN
    fields = {(r["name"], f["name"]): f for r in resources.values() for f in r["schema"]["fields"]}
    assert fields["service", "open_24h"]["type"] == "boolean"
    assert fields["location", "precision"]["constraints"]["enum"] == ["exact", "municipality"]
    # As HSDS types service.last_modified.
    last_modified = fields["service_at_location", "last_modified"]
    assert last_modified["type"] == fields["service", "last_modified"]["type"] == "datetime"
    postal_code = next(
        f for f in resources["address"]["schema"]["fields"] if f["name"] == "postal_code"
    )
    assert postal_code["constraints"]["required"] is False


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(("example", "schema"), EXAMPLES)
def test_each_official_example_is_judged_alike_by_hsds_and_the_profile(
    example: str, schema: str
) -> None:
    for record in _example(example):
        assert hsds.errors(schema, record) == _official_errors(schema, record) == []


def _without(key: str, value: Any) -> Any:
    """``value`` with ``key`` removed at every depth."""
    if isinstance(value, dict):
        return {k: _without(key, v) for k, v in value.items() if k != key}
    if isinstance(value, list):
        return [_without(key, v) for v in value]
    return value


def test_an_address_without_postal_code_is_valid_only_under_the_profile() -> None:
    location = _example("location")[0]
    address = _without("postal_code", location["addresses"][0])
    assert hsds.errors("address", address) == []
    assert _official_errors("address", address) == ["$: 'postal_code' is a required property"]
    service = _without("postal_code", _example("service_full")[0])
    assert hsds.errors("service", service) == []
    official = _official_errors("service", service)
    assert official
    assert all(error.endswith("'postal_code' is a required property") for error in official)


CAPACITY = {
    "id": UUID,
    "unit": {"id": "187a37a2-7b40-11ef-9790-dbf7623d4407", "name": "bed"},
    "available": 3,
    "maximum": 12,
    "updated": "2026-11-29T10:00:00Z",
}
# The profile's simple capacity form, as the API serves it beside capacities.
SIMPLE_CAPACITY = {
    "unit": "bed",
    "available": 3,
    "maximum": 12,
    "description": "Camas para adolescentes",
    "updated": "2026-11-29T10:00:00-06:00",
    "stale": False,
}
# RFC 7946's Polygon example, as a service area's geometry.
POLYGON = {
    "type": "Polygon",
    "coordinates": [[[100.0, 0.0], [101.0, 0.0], [101.0, 1.0], [100.0, 1.0], [100.0, 0.0]]],
}
GOOD = {
    "service": {
        "eligibility": {
            "minimum_age": 12,
            "maximum_age": 17,
            "genders_served": ["woman", "trans_woman"],
            "trans_inclusive": True,
            "lgbtiq_affirming": False,
            "accepts_accompanying_children": True,
            "minors_only": True,
            "description": "Adolescentes",
        },
        "categories": [{"code": "protection.shelter.emergency", "name": "Albergue de emergencia"}],
        "capacities": [CAPACITY],
        "capacity": [SIMPLE_CAPACITY, {**SIMPLE_CAPACITY, "unit": "room", "stale": True}],
        "open_now": True,
        "open_24h": False,
        "listed_despite_hidden_sites": False,
        "assured_by": "steward-ana",
        "version": 4,
    },
    "organization": {"status": "active", "version": 2, "last_modified": "2026-11-29T10:00:00Z"},
    "location": {
        "visibility": "restricted",
        "precision": "municipality",
        "geocoding_precision": "town",
        "needs_geocoding": False,
        "department_code": "09",
        "municipality_code": "0901",
        "outside_country": False,
        "intake_phone": "+50255550123",
        "intake_description": "Oficina de ingreso",
        "status": "temporarily closed",
        "version": 1,
        "last_modified": "2026-11-29T10:00:00Z",
    },
    "taxonomy_term": {
        "translations": {"en": {"name": "Emergency shelter", "description": "Short stay."}},
        "parent_code": "protection.shelter",
        "localized": {"language": "en", "name": "Emergency shelter", "description": "Short stay."},
        "open_eligibility": {"taxonomy_term_id": UUID, "code": "1135", "name": "Emergency Shelter"},
    },
    "service_area": {"geometry": POLYGON},
    "service_at_location": {
        "service_name": "Albergue de emergencia",
        "location_name": "Sede Xela",
        "last_modified": "2026-11-29T10:00:00.123Z",
    },
}
BASE_EXAMPLE = {
    "service": "service_full",
    "service_list": "service_list",
    "organization": "organization_full",
    "location": "location",
    "taxonomy_term": "taxonomy_term",
    "service_area": "service_full",
    "service_at_location": "service_at_location_full",
    "service_at_location_list": "service_at_location_list",
}


def _base_record(schema: str) -> dict[str, Any]:
    """The official example a test record of ``schema`` starts from."""
    record: dict[str, Any] = _example(BASE_EXAMPLE[schema])[0]
    # HSDS has no example of a service area on its own: the full service's first one.
    return record["service_areas"][0] if schema == "service_area" else record


def test_records_using_every_extension_are_valid_under_both() -> None:
    for schema, extensions in GOOD.items():
        assert set(extensions) == set(EXTENSIONS[schema])
        record = {**_base_record(schema), **extensions}
        assert hsds.errors(schema, record) == [], schema
        assert _official_errors(schema, record) == [], schema  # additive: HSDS ignores them


def test_the_extensions_reach_the_list_records_where_they_are_not_relations() -> None:
    service = {**_base_record("service_list"), **GOOD["service"]}
    assert hsds.errors("service_list", service) == []
    link = {**_base_record("service_at_location_list"), **GOOD["service_at_location"]}
    assert hsds.errors("service_at_location_list", link) == []
    assert _official_errors("service_at_location_list", link) == []


def test_the_nested_area_geometry_and_term_label_are_checked_within_a_service() -> None:
    service = copy.deepcopy(_base_record("service"))
    service["service_areas"][0]["geometry"] = POLYGON
    service["attributes"][0]["taxonomy_term"]["localized"] = GOOD["taxonomy_term"]["localized"]
    assert hsds.errors("service", service) == []
    assert _official_errors("service", service) == []
    service["service_areas"][0]["geometry"] = {**POLYGON, "type": "LineString"}
    service["attributes"][0]["taxonomy_term"]["localized"] = {"name": "Emergency shelter"}
    assert hsds.errors("service", service) == [
        "$.attributes[0].taxonomy_term.localized: 'description' is a required property",
        "$.service_areas[0].geometry.type: 'LineString' is not one of ['Polygon', 'MultiPolygon']",
    ]


def test_an_organization_lists_its_services_by_id_name_and_status_as_hsds_allows() -> None:
    # The API's organizations carry services as {id, name, status}; HSDS's service schema
    # requires just those, so the profile needs no change for them.
    organization = {
        **_base_record("organization"),
        "services": [{"id": UUID, "name": "Albergue", "status": "active"}],
    }
    assert hsds.errors("organization", organization) == []
    assert _official_errors("organization", organization) == []
    organization["services"] = [{"id": UUID, "name": "Albergue"}]
    expected = ["$.services[0]: 'status' is a required property"]
    assert hsds.errors("organization", organization) == expected
    assert _official_errors("organization", organization) == expected


@pytest.mark.parametrize(
    ("schema", "field", "value"),
    [
        ("service", "version", "4"),
        ("service", "open_now", "yes"),
        ("service", "listed_despite_hidden_sites", 0),
        ("service", "assured_by", 7),
        ("service", "eligibility", {"genders_served": ["everyone"]}),
        ("service", "eligibility", {"genders_served": []}),
        ("service", "eligibility", {"minimum_age": "12"}),
        ("service", "eligibility", {"minors_only": "true"}),
        ("service", "categories", [{"code": "protection"}]),
        ("service", "categories", {"code": "protection", "name": "Protección"}),
        ("service", "capacities", [{**CAPACITY, "available": "three"}]),
        ("service", "capacities", [{**CAPACITY, "unit": "bed"}]),
        ("service", "open_24h", "true"),
        ("service", "capacity", SIMPLE_CAPACITY),
        ("service", "capacity", [{**SIMPLE_CAPACITY, "available": "three"}]),
        ("service", "capacity", [{**SIMPLE_CAPACITY, "maximum": 1.5}]),
        ("service", "capacity", [{**SIMPLE_CAPACITY, "available": -1}]),
        ("service", "capacity", [{**SIMPLE_CAPACITY, "stale": "no"}]),
        ("service", "capacity", [{**SIMPLE_CAPACITY, "updated": "29/11/2026"}]),
        ("service", "capacity", [_without("updated", SIMPLE_CAPACITY)]),
        ("service_list", "open_24h", 1),
        ("service_list", "capacity", [{**SIMPLE_CAPACITY, "unit": None}]),
        ("service_list", "eligibility", {"trans_inclusive": "yes"}),
        ("service_list", "categories", [{"name": "Protección"}]),
        ("organization", "status", "closed"),
        ("organization", "version", 1.5),
        ("location", "visibility", "secret"),
        ("location", "department_code", 9),
        ("location", "municipality_code", "901"),
        ("location", "outside_country", "false"),
        ("location", "intake_phone", 50255550123),
        ("location", "intake_description", None),
        ("location", "status", "closed"),
        ("location", "precision", "approximate"),
        ("location", "geocoding_precision", "street"),
        ("location", "needs_geocoding", "yes"),
        ("service_area", "geometry", json.dumps(POLYGON)),
        ("service_area", "geometry", {"type": "Point", "coordinates": [-91.5, 14.8]}),
        ("service_area", "geometry", {"type": "Polygon"}),
        ("service_at_location", "service_name", 5),
        ("service_at_location", "location_name", None),
        ("service_at_location", "last_modified", "2026-11-29"),
        ("service_at_location_list", "last_modified", "yesterday"),
        ("taxonomy_term", "localized", {"language": "en", "name": "Emergency shelter"}),
        ("taxonomy_term", "localized", {"name": 5, "description": "Short stay."}),
        ("taxonomy_term", "localized", "Emergency shelter"),
        ("taxonomy_term", "translations", {"en": {"name": 5}}),
        ("taxonomy_term", "translations", {"english": {"name": "Shelter"}}),
        ("taxonomy_term", "parent_code", ["protection"]),
        ("taxonomy_term", "open_eligibility", {"code": None, "name": "Emergency Shelter"}),
        ("taxonomy_term", "open_eligibility", {"code": "x"}),
        ("taxonomy_term", "open_eligibility", {"taxonomy_term_id": "1135", "name": "Shelter"}),
    ],
)
def test_an_extension_with_a_wrong_value_is_invalid_under_the_profile(
    schema: str, field: str, value: Any
) -> None:
    record = {**_base_record(schema), field: value}
    assert _official_errors(schema, record) == []  # HSDS knows nothing of the field
    errors = hsds.errors(schema, record)
    assert errors
    assert all(error.startswith(f"$.{field}") for error in errors), errors


def test_the_validators_check_formats_and_know_only_the_profile_schemas() -> None:
    service = {**_example("service_full")[0], "id": "not-a-uuid"}
    assert hsds.errors("service", service) == ["$.id: 'not-a-uuid' is not a 'uuid'"]
    assert "service_list" in hsds.schema_names()
    assert "tabular" in hsds.schema_names()
    with pytest.raises(KeyError):
        hsds.validator("../pyproject")


def test_the_tabular_schema_resolves_its_sibling_refs_locally() -> None:
    organization = {
        "id": UUID,
        "name": "Ejemplo",
        "description": "Ejemplo",
        "attributes": [{"id": "not-a-uuid"}],
    }
    errors = hsds.errors("tabular", {"organization": [organization]})
    assert errors == ["$.organization[0].attributes[0].id: 'not-a-uuid' is not a 'uuid'"]


def test_the_profile_url_is_the_profile_folder_under_the_root() -> None:
    assert hsds.HSDS_VERSION == "3.0"
    assert hsds.profile_url("https://directory.example.org/") == (
        "https://directory.example.org/profile/"
    )
    assert hsds.profile_url("http://testserver") == "http://testserver/profile/"


# --- the router ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def profile_client() -> TestClient:
    """A plain app with just the profile router and the problem handlers."""
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(profile_router.router)
    return TestClient(app)


def test_the_profile_url_answers_with_the_readme(profile_client: TestClient) -> None:
    response = profile_client.get(hsds.profile_url(str(profile_client.base_url)))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/markdown")
    assert response.text == (PROFILE / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "path",
    [
        "schema/compiled/service.json",
        "schema/compiled/location.json",
        "schema/address.json",
        "schema/service_capacity.json",
        "datapackage.json",
    ],
)
def test_the_profile_files_are_served_as_json(profile_client: TestClient, path: str) -> None:
    response = profile_client.get(f"/profile/{path}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == _load(PROFILE / path)


@pytest.mark.parametrize(
    "path",
    [
        "/profile/schema/compiled/nope.json",
        "/profile/schema/openapi.json",
        "/profile/schema/compiled/service",
        "/profile/schema/compiled/..%2Faddress.json",
        "/profile/schema/compiled/%2E%2E.json",
        "/profile/schema/..%2F..%2Fpyproject.json",
        "/profile/schema/%2E%2E%2F%2E%2E%2Fsrc%2Freferral_net%2Fmain.json",
        "/profile/../pyproject.toml",
        "/profile/README.json",
    ],
)
def test_anything_else_is_a_404_problem(profile_client: TestClient, path: str) -> None:
    response = profile_client.get(path)
    assert response.status_code == 404, path
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404
