"""The referral-net profile of HSDS 3.0: its files, its URI and validators of its compiled schemas.

The profile lives in ``profile/`` at the top of the checkout (merge patches in ``schema/``, the
compiled schemas in ``schema/compiled/``, ``datapackage.json``, ``README.md``), built by
``scripts/build_profile.py`` and committed; the wheel carries a copy (``referral_net.resources``).
Nothing here reaches the network: the compiled schemas have their ``$ref``s inlined, and the few
that keep one (``tabular.json`` names sibling files) resolve from the same folder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from referral_net.resources import resource_path

HSDS_VERSION = "3.0"
# The profile's path under the service's root URL, and its folder in the checkout.
PROFILE_PATH = "profile/"
PROFILE_FOLDER = "profile"
COMPILED_FOLDER = "schema/compiled"
# The files served, besides the JSON schemas: what a reader of the profile needs.
_DOCUMENTS = ("README.md", "LICENSE", "datapackage.json")


def profile_url(base_url: str) -> str:
    """The profile's URI for a service whose root URL is ``base_url``: ``{base_url}profile/``.

    It is what the HSDS API root reports as ``profile``; the service answers there with the
    profile's README.
    """
    root = base_url if base_url.endswith("/") else base_url + "/"
    return root + PROFILE_PATH


@cache
def profile_dir() -> Path:
    """The profile folder: the installed package's copy, else the checkout's."""
    return resource_path(PROFILE_FOLDER)


@cache
def profile_files() -> frozenset[str]:
    """The paths, relative to the profile folder, of every file the profile publishes."""
    root = profile_dir()
    found = {name for name in _DOCUMENTS if (root / name).is_file()}
    for folder in ("schema", COMPILED_FOLDER):
        found.update(f"{folder}/{path.name}" for path in (root / folder).glob("*.json"))
    return frozenset(found)


def profile_file(relative: str) -> Path:
    """The published file at ``relative`` (``"schema/compiled/service.json"``).

    Raises KeyError for any other path: only the files listed by ``profile_files`` are
    answered, so no path can reach outside the profile folder.
    """
    if relative not in profile_files():
        raise KeyError(relative)
    return profile_dir() / relative


def schema_names() -> tuple[str, ...]:
    """The names of the compiled profile schemas (``"service"``, ``"service_list"``, ...)."""
    prefix = COMPILED_FOLDER + "/"
    return tuple(
        sorted(
            path.removeprefix(prefix).removesuffix(".json")
            for path in profile_files()
            if path.startswith(prefix)
        )
    )


@cache
def compiled_schema(name: str) -> Mapping[str, Any]:
    """The compiled profile schema ``name`` (``"service"``, ``"location"``, ``"address"``, ...).

    Raises KeyError for a name that is not in ``schema_names()``.
    """
    path = profile_file(f"{COMPILED_FOLDER}/{name}.json")
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def _file_refs(node: Any) -> set[str]:
    """The names of the sibling files ``node`` refers to (``{"$ref": "attribute.json"}``)."""
    if isinstance(node, dict):
        found = set().union(*(_file_refs(value) for value in node.values()))
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.endswith(".json") and not ref.startswith("#"):
            found.add(ref.removesuffix(".json"))
        return found
    if isinstance(node, list):
        return set().union(*(_file_refs(value) for value in node))
    return set()


def _registry(schema: Mapping[str, Any]) -> Registry[Any]:
    """The sibling compiled schemas ``schema`` refers to, directly or not, under their names."""
    needed, pending = set(), _file_refs(schema)
    while pending:
        name = pending.pop()
        needed.add(name)
        pending |= _file_refs(compiled_schema(name)) - needed
    return Registry().with_resources(
        (f"{name}.json", DRAFT202012.create_resource(compiled_schema(name))) for name in needed
    )


@cache
def validator(name: str) -> Draft202012Validator:
    """A Draft 2020-12 validator of the compiled profile schema ``name``, formats checked.

    Formats (``uuid``, ``email``, ``uri``, ``date``, ``date-time``) are checked with
    jsonschema's own checker; a ``$ref`` to a sibling file resolves from the same folder.
    Raises KeyError for an unknown ``name``.
    """
    schema = compiled_schema(name)
    return Draft202012Validator(
        schema, format_checker=Draft202012Validator.FORMAT_CHECKER, registry=_registry(schema)
    )


def errors(name: str, record: Any) -> list[str]:
    """Why ``record`` is not valid under the profile schema ``name``: empty when it is valid.

    Each entry is ``"<JSON path>: <message>"``, sorted. Messages may quote the record's values,
    so they are for tests and tools, not for logs.
    """
    return sorted(
        f"{error.json_path}: {error.message}" for error in validator(name).iter_errors(record)
    )
