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


def test_errors_are_documented_as_they_are_sent() -> None:
    """Every error status carries the problem schema under application/problem+json (the type
    the API sends), every operation lists 503, every write 409 and every body 413."""
    spec = create_app(Settings(database_url="sqlite:///unused.db")).openapi()
    problem = {"$ref": "#/components/schemas/ProblemDetails"}
    for path, method, op in _operations(spec):
        where = f"{method.upper()} {path}"
        responses = op["responses"]
        assert "503" in responses, where
        if "requestBody" in op:
            assert "413" in responses, where
        if method != "get" and path != "/api/v1/match":  # matching only reads
            assert "409" in responses, where
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                assert response["content"] == {"application/problem+json": {"schema": problem}}, (
                    where,
                    status,
                )
    assert "409" not in spec["paths"]["/api/v1/match"]["post"]["responses"]


def test_text_inputs_document_that_they_take_no_nul() -> None:
    spec = create_app(Settings(database_url="sqlite:///unused.db")).openapi()
    name = spec["components"]["schemas"]["OrganizationCreate"]["properties"]["name"]
    assert name["pattern"] == "^[^\\u0000]*$"
    detail = spec["components"]["schemas"]["ProblemDetails"]["properties"]["detail"]
    assert "pattern" not in detail  # written by the server, which may quote what was sent
    query = spec["paths"]["/api/v1/search"]["get"]["parameters"]
    assert all("pattern" in p["schema"] or p["schema"].get("type") != "string" for p in query), (
        "every plain string query parameter carries a pattern"
    )


def test_the_search_documents_what_its_explicit_context_reads() -> None:
    # The search declares no dependencies (api/hot_reads.py); its operation must still show the
    # caller's two security schemes and Accept-Language exactly as a route declaring them does,
    # and every search parameter once.
    spec = create_app(Settings(database_url="sqlite:///unused.db")).openapi()
    search = spec["paths"]["/api/v1/search"]["get"]
    declared = spec["paths"]["/api/v1/services/{service_id}"]["get"]
    assert search["security"] == declared["security"]
    assert {"HTTPBearer", "APIKeyHeader"} == {name for item in search["security"] for name in item}

    def by_name(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {parameter["name"]: parameter for parameter in operation["parameters"]}

    assert by_name(search)["accept-language"] == by_name(declared)["accept-language"]
    names = [parameter["name"] for parameter in search["parameters"]]
    assert len(names) == len(set(names))
    assert {"near", "category", "radius_m", "limit", "page", "f"} <= set(names)
