"""The served OpenAPI document: FastAPI's, with every error answer documented as it is sent.

FastAPI writes a response ``model`` under ``application/json``, but every error of this API goes
out as ``application/problem+json`` (``api/problems.py``): left as generated, a client validating
answers against the document (schemathesis' conformance checks, tests/api_fuzz.py) would find the
problem schema under a media type never sent, and nothing under the one that is. This module moves
it, and documents the statuses a route can answer without saying so itself:

- every operation: 503 (the database unreachable, restarting or busy; with ``Retry-After``);
- every operation with a request body: 413 (the body cap, ``api/body_limit.py``);
- every write (not a GET, HEAD or read-only POST): 409 (an id or a unique value already taken).

It also writes down a rule every text input follows: no NUL character (PostgreSQL text cannot hold
one; ``schemas/common.py`` refuses it in bodies, ``api/request_middleware.py`` in query strings).
Each plain string of the request side carries it as a ``pattern``, so a client generating valid
input from the document (schemathesis' positive data) never sends what the API must refuse.

The document is built once per application and cached, as FastAPI does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from referral_net.api.deps import READ_METHODS, is_reads_only_endpoint
from referral_net.api.problems import PROBLEM_MEDIA_TYPE

_PROBLEM_SCHEMA = {"$ref": "#/components/schemas/ProblemDetails"}
# ECMA-262 and Python's re both read \u0000 in a pattern as the NUL character.
_NO_NUL_PATTERN = "^[^\\u0000]*$"
_SERVER_WRITTEN = frozenset({"ProblemDetails", "FieldError"})  # errors may quote what was sent
_READ_METHODS = frozenset(method.lower() for method in READ_METHODS)  # OpenAPI spells them so
_UNDECLARED_PROBLEMS: dict[str, str] = {
    "409": "Conflict: the id or a unique value is taken, or the record changed meanwhile",
    "413": "The request body is larger than this route's cap",
    "503": "The database is unreachable or busy; try again after Retry-After seconds",
}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_SCHEMA}},
    }


def _problems_as_sent(responses: dict[str, Any]) -> None:
    """Put the problem schema under application/problem+json, the type the errors are sent as
    (also for error statuses a route declared with a description only)."""
    for status, response in responses.items():
        content = response.setdefault("content", {}) if status[0] in "45" else {}
        if PROBLEM_MEDIA_TYPE in content or (status[0] in "45" and not content):
            schema = content.pop("application/json", {}).get("schema", _PROBLEM_SCHEMA)
            content[PROBLEM_MEDIA_TYPE] = {**content.get(PROBLEM_MEDIA_TYPE, {}), "schema": schema}


def _refuse_nul(node: Any) -> None:
    """Add the no-NUL pattern to every plain string schema under ``node``."""
    if isinstance(node, list):
        for item in node:
            _refuse_nul(item)
        return
    if not isinstance(node, dict):
        return
    kinds = node.get("type")
    is_string = kinds == "string" or (isinstance(kinds, list) and "string" in kinds)
    if is_string and not {"pattern", "enum", "const", "format"} & node.keys():
        node["pattern"] = _NO_NUL_PATTERN
    for value in node.values():
        _refuse_nul(value)


def _reads_only(app: FastAPI) -> set[tuple[str, str]]:
    """(path, method) of the POST endpoints marked read-only (matching)."""
    # FastAPI 0.16x keeps included routers as branches; this walks them as its own OpenAPI does.
    routes = (context.original_route for context in iter_route_contexts(app.routes))
    return {
        (route.path_format, method.lower())
        for route in routes
        if isinstance(route, APIRoute) and is_reads_only_endpoint(route.endpoint)
        for method in route.methods or ()
    }


def complete(document: dict[str, Any], reads_only: set[tuple[str, str]]) -> dict[str, Any]:
    """Document the problems every operation can answer and the no-NUL rule (see above)."""
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        if name not in _SERVER_WRITTEN:
            _refuse_nul(schema)
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            _problems_as_sent(responses)
            _refuse_nul(operation.get("parameters", []))
            _refuse_nul(operation.get("requestBody", {}))
            wanted = ["503"]
            if "requestBody" in operation:
                wanted.append("413")
            if method not in _READ_METHODS and (path, method) not in reads_only:
                wanted.append("409")
            for status in wanted:
                responses.setdefault(status, _problem(_UNDECLARED_PROBLEMS[status]))
    return document


def install(app: FastAPI) -> None:
    """Serve the completed document at /openapi.json (and to ``app.openapi()``)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(generate(), _reads_only(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
