"""The OpenAPI document: every operation has tags and a summary; schemas carry examples."""

from __future__ import annotations

from typing import Any

from referral_net.main import create_app
from referral_net.settings import Settings


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def test_every_operation_has_tags_and_summary() -> None:
    spec = create_app(Settings(database_url="sqlite:///unused.db")).openapi()
    operations = _operations(spec)
    assert operations
    for path, method, op in operations:
        assert op.get("tags"), f"{method.upper()} {path} has no tag"
        assert op.get("summary"), f"{method.upper()} {path} has no summary"


def test_declared_tags_cover_used_tags() -> None:
    spec = create_app(Settings(database_url="sqlite:///unused.db")).openapi()
    declared = {t["name"] for t in spec.get("tags", [])}
    used = {tag for _, _, op in _operations(spec) for tag in op["tags"]}
    assert used <= declared


def test_every_operation_shows_an_example() -> None:
    spec = create_app(Settings(database_url="sqlite:///unused.db")).openapi()
    schemas = spec.get("components", {}).get("schemas", {})

    def has_example(node: Any, seen: set[str]) -> bool:
        if isinstance(node, dict):
            if "example" in node or "examples" in node:
                return True
            ref = node.get("$ref")
            if isinstance(ref, str) and ref not in seen:
                seen.add(ref)
                return has_example(schemas.get(ref.rsplit("/", 1)[-1], {}), seen)
            return any(has_example(v, seen) for v in node.values())
        if isinstance(node, list):
            return any(has_example(v, seen) for v in node)
        return False

    for path, method, op in _operations(spec):
        assert has_example(op, set()), f"{method.upper()} {path} has no example"
