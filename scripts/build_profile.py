"""Build the referral-net HSDS profile: merge its patches into HSDS 3.0 and compile the result.

Usage (from the checkout root)::

    .venv/bin/python scripts/build_profile.py [--hsds DIR] [--patches DIR] [--output DIR]

``--hsds`` is a copy of the official HSDS 3.0 folder (its ``schema/*.json`` are read; default
``specs/hsds-3.0`` of the checkout, vendored). ``--patches`` holds the profile's JSON Merge
Patch files (RFC 7396), each named like the official schema it changes, plus whole new schemas
under names HSDS does not have (default ``profile/schema``). ``--output`` is the profile folder the
results go to (default ``profile``): ``schema/compiled/*.json`` and ``datapackage.json``. The output
is committed: the service serves it at run time, where no ``../shared`` exists.

The steps are those of Open Referral's reference tooling (``hsds_schema.py profile-all`` of
openreferral/hsds_schema_tools), rewritten here because it fetches the schemas from GitHub at run
time and needs click, flatterer and requests:

1. merge: each patch is applied to the official schema of the same name; a file with a new name
   is a new schema (the HSDS 3.1 draft's ``service_capacity`` and ``unit``).
2. compile: each ``$ref`` (``"x.json"`` on a property, or on an array's ``items``) is replaced by
   the compiled schema it names, the referring property's own keys laid over it. ``service``,
   ``organization`` (plus its ``services``) and ``service_at_location`` (plus its ``service``,
   without that service's ``service_at_locations``) are compiled whole, as arrays (``*_package``)
   and without their one-to-many relations (``*_list``, what list endpoints serve);
   ``service_with_definitions`` keeps the refs as ``#/definitions/`` and ``tabular`` holds every
   table as an array of flat rows. HSDS compiles only those;
   here every other schema is compiled on its own too (``location``, ``taxonomy_term``, ...), so
   each record type has a self-contained schema.
3. ``datapackage.json``: the tabular data package (Frictionless) of the merged schemas.

With an empty patch folder, steps 2 and 3 reproduce the official ``schema/compiled/*.json`` and
``datapackage.json`` exactly (tests/test_hsds_profile.py checks it).

The RFC 7396 merge and the ``$ref`` inlining are written out here (about 15 lines each): the
reference tooling's libraries (``json-merge-patch``, ``compiletojsonschema``) are not among the
project's dependencies, and the official compiled files follow the reference tooling's own
inlining (the referring keys laid over the target, relations dropped for list views), not
``compiletojsonschema``'s output.
"""

from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HSDS = ROOT / "specs" / "hsds-3.0"
DEFAULT_PATCHES = ROOT / "profile" / "schema"
DEFAULT_OUTPUT = ROOT / "profile"

Schema = dict[str, Any]
Schemas = dict[str, Schema]  # by file name: {"service.json": {...}}

# Relations HSDS attaches to nearly every table: they get no foreign key in the tabular form.
_UNLINKED_TABLES = ("attribute.json", "metadata.json")
# Keys of a table's JSON Schema that its tabular resource does not repeat as they are.
_NOT_IN_RESOURCE = ("datapackage_metadata", "type", "properties", "required", "tabular_required")

# The profile's datapackage.json header; the resources come from the merged schemas.
PROFILE_PACKAGE: dict[str, Any] = {
    "name": "referral_net_hsds_profile",
    "title": "referral-net profile of the Human Services Data Specification 3.0",
    "description": (
        "HSDS 3.0 as referral-net publishes it: address.postal_code optional, extension "
        "properties on location, organization, service, service_area, service_at_location and "
        "taxonomy_term, and the HSDS 3.1 "
        "draft's service_capacity and unit tables. See profile/README.md."
    ),
    "profile": "tabular-data-package",
    "version": "1.0.0",
    "homepage": "http://docs.openreferral.org",
    "license": {
        "url": "https://creativecommons.org/licenses/by-sa/4.0/",
        "type": "CC-BY-SA-4.0",
        "name": "Creative Commons Attribution-ShareAlike 4.0",
    },
}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON Merge Patch: ``patch`` applied to ``target``, neither of them changed.

    An object merges key by key, ``null`` removes a key, and anything else (arrays included)
    replaces the target's value whole: to drop one name from a ``required`` list, the patch
    gives the whole new list.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def read_schemas(folder: Path) -> Schemas:
    """The JSON files of ``folder`` by file name, without ``openapi.json`` (not a record schema)."""
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(folder.glob("*.json"))
        if path.name != "openapi.json"
    }


def merge_profile(official: Schemas, patches: Schemas) -> Schemas:
    """The profile's schemas: each official schema with its patch applied, plus the new ones."""
    merged = {name: copy.deepcopy(schema) for name, schema in official.items()}
    for name, patch in patches.items():
        if not isinstance(patch, dict):
            # The mechanism allows a file of just `null` (drop a whole table); this profile
            # drops nothing, so the script does not implement removing the refs to it.
            raise SystemExit(f"{name}: a patch must be a JSON object")
        merged[name] = merge_patch(merged[name], patch) if name in merged else patch
    return merged


def _inlined(name: str, schemas: Schemas, *, relations: bool) -> Schema:
    return inline_refs(copy.deepcopy(schemas[name]), schemas, relations=relations)


def inline_refs(schema: Schema, schemas: Schemas, *, relations: bool = True) -> Schema:
    """``schema`` with each property's ``$ref`` replaced by the schema it names, in place.

    The referring property's other keys (``name``, ``title``, ``description``) are laid over
    the inlined schema. Without ``relations``, one-to-many relations (arrays of referenced
    records) are dropped at every depth, as in HSDS's ``*_list`` schemas.
    """
    properties: dict[str, Any] = schema["properties"]
    for key, prop in list(properties.items()):
        items = prop.get("items", {})
        if "$ref" in items:
            if not relations:
                del properties[key]
                continue
            target = items.pop("$ref")
            prop["items"] = {**_inlined(target, schemas, relations=relations), **items}
        if "$ref" in prop:
            target = prop.pop("$ref")
            properties[key] = {**_inlined(target, schemas, relations=relations), **prop}
    return schema


def _with_definitions(schemas: Schemas) -> Schema:
    """``service`` with every other schema under ``definitions``, refs pointing there."""
    by_table: Schemas = {}
    for schema in copy.deepcopy(list(schemas.values())):
        for prop in schema["properties"].values():
            for holder in (prop, prop.get("items", {})):
                if "$ref" in holder:
                    holder["$ref"] = "#/definitions/" + holder["$ref"].removesuffix(".json")
        by_table[schema["name"]] = schema
    compiled = by_table.pop("service")
    ordered = sorted(by_table.items(), key=lambda item: item[1]["datapackage_metadata"]["order"])
    compiled["definitions"] = dict(ordered)
    return compiled


def _record_roots(schemas: Schemas) -> dict[str, Schema]:
    """The three records HSDS compiles, before compiling: a service, an organization with its
    services and a service at location with its service."""
    organization = copy.deepcopy(schemas["organization.json"])
    organization["properties"]["services"] = {"type": "array", "items": {"$ref": "service.json"}}
    service_at_location = copy.deepcopy(schemas["service_at_location.json"])
    service_at_location["properties"]["service"] = {"name": "service", "$ref": "service.json"}
    return {
        "service": copy.deepcopy(schemas["service.json"]),
        "organization": organization,
        "service_at_location": service_at_location,
    }


def _tabular(schemas: Schemas) -> Schema:
    """The tabular form as one JSON document: each table an array of flat rows.

    Object ``$ref``s are dropped (a row holds ``<table>_id`` instead); array ``$ref``s stay as
    they are, relative file names that resolve against the other compiled files.
    """
    tables = {}
    for name in sorted(schemas):
        table = copy.deepcopy(schemas[name])
        table["properties"] = {k: v for k, v in table["properties"].items() if "$ref" not in v}
        tables[table["name"]] = table
    ordered = sorted(tables.items(), key=lambda item: item[1]["datapackage_metadata"]["order"])
    return {
        "type": "object",
        "properties": {name: {"type": "array", "items": table} for name, table in ordered},
    }


def compile_schemas(schemas: Schemas) -> Schemas:
    """Every compiled schema, by output file name."""
    compiled: Schemas = {
        "service_with_definitions.json": _with_definitions(schemas),
        "tabular.json": _tabular(schemas),
    }
    for name, root in _record_roots(schemas).items():
        for relations, file_name in ((True, f"{name}.json"), (False, f"{name}_list.json")):
            result = inline_refs(copy.deepcopy(root), schemas, relations=relations)
            if name == "service_at_location":
                # The nested service is the one being described: not its other locations.
                result["properties"]["service"]["properties"].pop("service_at_locations", None)
            compiled[file_name] = result
        compiled[f"{name}_package.json"] = {"type": "array", "items": compiled[f"{name}.json"]}
    for file_name in schemas:
        if file_name not in compiled:
            compiled[file_name] = _inlined(file_name, schemas, relations=True)
    return dict(sorted(compiled.items()))


def _foreign_keys(schemas: Iterable[Schema]) -> list[tuple[str, str]]:
    """(table, referenced table) pairs: the table holds ``<referenced table>_id``."""
    keys: list[tuple[str, str]] = []
    for schema in schemas:
        for prop in schema["properties"].values():
            many = prop.get("items", {}).get("$ref")
            if many and many not in _UNLINKED_TABLES:
                keys.append((many.removesuffix(".json"), schema["name"]))
            one = prop.get("$ref")
            if one:
                keys.append((schema["name"], one.removesuffix(".json")))
    return keys


def _field(prop: dict[str, Any], *, required: bool) -> dict[str, Any]:
    """A Table Schema field from a column's JSON Schema property."""
    field = copy.deepcopy(prop)
    constraints = field["constraints"]
    unique = constraints.pop("unique")
    constraints["required"] = required
    constraints["unique"] = unique
    enum = field.pop("enum", None)
    if enum:
        constraints["enum"] = enum
    tabular_type = field.pop("datapackage_type", None)
    if tabular_type:
        field["type"] = tabular_type
        field.pop("format", None)
    return field


def _resource(schema: Schema, foreign_keys: list[tuple[str, str]]) -> dict[str, Any]:
    """A tabular data resource (one CSV file) from a table's schema."""
    required = set(schema.get("required", [])) | set(schema.get("tabular_required", []))
    metadata = {k: v for k, v in schema["datapackage_metadata"].items() if k != "order"}
    fields = [
        _field(prop, required=key in required)
        for key, prop in schema["properties"].items()
        if "constraints" in prop  # columns; relations (arrays and $refs) have none
    ]
    table: dict[str, Any] = {"primaryKey": "id", "fields": fields}
    links = [
        {"fields": f"{referenced}_id", "reference": {"resource": referenced, "fields": "id"}}
        for holder, referenced in foreign_keys
        if holder == schema["name"]
    ]
    if links:
        table["foreignKeys"] = links
    described = {k: v for k, v in schema.items() if k not in _NOT_IN_RESOURCE}
    return {**described, **metadata, "schema": table}


def datapackage(schemas: Schemas, header: dict[str, Any]) -> dict[str, Any]:
    """The Frictionless tabular data package of ``schemas`` under ``header``."""
    ordered = [schemas[name] for name in sorted(schemas)]
    foreign_keys = _foreign_keys(ordered)
    ordered.sort(key=lambda schema: schema["datapackage_metadata"]["order"])
    return {**header, "resources": [_resource(schema, foreign_keys) for schema in ordered]}


def _dump(value: Any, indent: int) -> str:
    """JSON as the official files are written (ASCII, ``indent``), plus a final newline."""
    return json.dumps(value, indent=indent) + "\n"


def build(hsds: Path, patches: Path, output: Path) -> list[Path]:
    """Write the compiled profile schemas and datapackage.json under ``output``; the paths."""
    schemas = merge_profile(read_schemas(hsds / "schema"), read_schemas(patches))
    compiled_dir = output / "schema" / "compiled"
    compiled_dir.mkdir(parents=True, exist_ok=True)
    for stale in compiled_dir.glob("*.json"):
        stale.unlink()  # a schema dropped from the profile must not linger
    written = []
    for file_name, schema in compile_schemas(schemas).items():
        path = compiled_dir / file_name
        path.write_text(_dump(schema, 2), encoding="utf-8")
        written.append(path)
    package = output / "datapackage.json"
    package.write_text(_dump(datapackage(schemas, PROFILE_PACKAGE), 4), encoding="utf-8")
    written.append(package)
    return written


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and build the profile."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hsds", type=Path, default=DEFAULT_HSDS, help="official HSDS 3.0 folder")
    parser.add_argument("--patches", type=Path, default=DEFAULT_PATCHES, help="profile patches")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="profile folder")
    args = parser.parse_args(argv)
    if not (args.hsds / "schema" / "service.json").is_file():
        parser.error(f"{args.hsds} has no schema/service.json: pass --hsds")
    for path in build(args.hsds, args.patches, args.output):
        print(path)


if __name__ == "__main__":
    main()
