"""Every list endpoint refuses a query parameter it does not read with a 400 problem, on both
backends; the known names come from each route's own signature and dependencies.

The list routes are found by walking the application, so a new list endpoint is covered without
touching this file (and fails here until it refuses unknown parameters too).
"""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import Depends, FastAPI, Query, Request
from fastapi.dependencies.utils import get_dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import BaseModel
from starlette.datastructures import QueryParams

from referral_net.api.pagination import PageDep
from referral_net.api.params import (
    SearchQueryParameters,
    parse_query,
    query_parameter_names,
    reads_query_model,
)

pytestmark = pytest.mark.db

# GET routes under /api/v1 without path parameters that answer one thing, not a list.
NOT_LISTS = frozenset({"/api/v1/audit/verify"})
UNKNOWN = "definitely_not_a_parameter"


def list_routes(app: FastAPI) -> list[str]:
    """The paths of the application's list endpoints: GET collections under /api/v1."""
    # FastAPI 0.16x keeps included routers lazily; iter_route_contexts yields their routes.
    return sorted(
        route.path
        for route in iter_route_contexts(app.routes)
        if "GET" in (route.methods or set())
        and (route.path or "").startswith("/api/v1/")
        and "{" not in route.path
        and route.path not in NOT_LISTS
    )


def test_the_list_routes_are_found(app: FastAPI) -> None:
    paths = set(list_routes(app))
    assert {
        "/api/v1/search",
        "/api/v1/services",
        "/api/v1/locations",
        "/api/v1/organizations",
        "/api/v1/service_at_locations",
        "/api/v1/taxonomies",
        "/api/v1/taxonomy_terms",
        "/api/v1/verification/due",
        "/api/v1/audit",
        "/api/v1/metadata",
    } <= paths
    every_get = {r.path for r in iter_route_contexts(app.routes) if "GET" in (r.methods or set())}
    assert every_get >= NOT_LISTS  # an exception that no longer exists is a stale exception


def test_every_list_endpoint_refuses_an_unknown_parameter(app: FastAPI, client: TestClient) -> None:
    for path in list_routes(app):
        response = client.get(path, params={UNKNOWN: "x"})
        assert response.status_code == 400, (path, response.status_code, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["type"] == "urn:referral-net:problem:bad-request", path
        assert problem["detail"] == f"Unknown query parameter(s): {UNKNOWN}.", path


def test_a_misspelt_filter_is_refused_not_ignored(client: TestClient) -> None:
    # Was: every service, as if no filter had been given.
    response = client.get("/api/v1/services", params={"taxonomy": "nonsense"})
    assert response.status_code == 400, response.text
    assert response.json()["detail"] == "Unknown query parameter(s): taxonomy."
    several = client.get("/api/v1/locations", params={"zz": "1", "aa": "2", "page": "1"})
    assert several.status_code == 400
    assert several.json()["detail"] == "Unknown query parameter(s): aa, zz."


def test_parameters_of_nested_dependencies_are_known(
    client: TestClient, taxonomy_loaded: None
) -> None:
    # page and per_page come from the pagination dependency, not the endpoint's own signature;
    # search's parameters all come from its parameter dependency.
    services = client.get(
        "/api/v1/services",
        params={"page": 1, "per_page": 5, "category": "protection", "open_now": "false"},
    )
    assert services.status_code == 200, services.text
    search = client.get(
        "/api/v1/search",
        params={"near": "14.8347,-91.5181", "radius_m": 5000, "limit": 5, "page": 1, "q": "x"},
    )
    assert search.status_code == 200, search.text


class _Filters(BaseModel):
    colour: str | None = None


async def _nested(
    page: PageDep, sort: Annotated[str | None, Query(alias="order-by")] = None
) -> None:
    return None


def _endpoint(
    filters: Annotated[_Filters, Query()],
    q: str | None = None,
    nested: Annotated[None, Depends(_nested)] = None,
) -> None:
    return None


def test_query_parameter_names_walk_the_dependency_tree() -> None:
    names = query_parameter_names(get_dependant(path="/x", call=_endpoint))
    assert names == {"q", "page", "per_page", "order-by", "colour"}


class _ReadItself(BaseModel):
    shade: str | None = None
    tags: list[str] | None = None


@reads_query_model(_ReadItself)
async def _reads_itself(request: Request) -> _ReadItself:
    return parse_query(_ReadItself, request.query_params)


def _endpoint_reading_a_model(given: Annotated[_ReadItself, Depends(_reads_itself)]) -> None:
    return None


def test_a_model_a_dependency_reads_itself_is_known() -> None:
    names = query_parameter_names(get_dependant(path="/x", call=_endpoint_reading_a_model))
    assert names == {"shade", "tags"}


def test_parse_query_reads_repeats_as_fastapi_does() -> None:
    # A list field takes every value in order; any other field its last one (FastAPI's rule).
    given = QueryParams("tags=a&shade=red&tags=b&shade=blue")
    assert parse_query(_ReadItself, given) == _ReadItself(shade="blue", tags=["a", "b"])
    assert parse_query(_ReadItself, QueryParams("")) == _ReadItself()


def test_parse_query_refuses_with_the_query_location() -> None:
    class Numbers(BaseModel):
        age: int | None = None
        limit: int = 10

    with pytest.raises(RequestValidationError) as refused:
        parse_query(Numbers, QueryParams("age=old&limit=&other=1"))
    assert [(e["loc"], e["type"]) for e in refused.value.errors()] == [
        (("query", "age"), "int_parsing"),
        (("query", "limit"), "int_parsing"),
    ]


def test_the_search_parameters_are_documented_from_their_model(app: FastAPI) -> None:
    declared = app.openapi()["paths"]["/api/v1/search"]["get"]["parameters"]
    query = {p["name"]: p for p in declared if p["in"] == "query"}
    assert set(query) == set(SearchQueryParameters.model_fields) | {"f"}
    assert query["limit"]["schema"]["minimum"] == 1
    assert query["limit"]["schema"]["default"] == 10
    assert query["near"]["description"] == "lat,lon: nearest first, with distances."
    assert query["category"]["schema"]["anyOf"][0]["type"] == "array"
    assert query["department"]["schema"]["anyOf"][0]["pattern"] == r"^\d{2}$"
    assert not any(p["required"] for p in declared)
