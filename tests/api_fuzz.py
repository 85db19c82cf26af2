"""Property-based API fuzzing with schemathesis, driven by our own OpenAPI document.

Whatever a client sends, on both backends: never a 5xx, and every 4xx is RFC 9457 problem+json.
Requests are made as a steward so write endpoints are exercised past authentication; each test
runs in a transaction that is rolled back.

schemathesis draws values its schema allows and seldom reaches the ends of the calendar or of the
number line; tests/test_extreme_inputs.py adds hypothesis strategies aimed there (datetimes from
year 1 to 9999 in any zone, extreme dates, huge and negative integers, NaN and infinity) over the
GET parameters that take them.

The test is defined here once and collected from one file per backend
(tests/test_api_fuzz_spatialite.py, tests/test_api_fuzz_postgis.py, each marked `only_backend`):
the suite hands whole files to its workers, and the two halves, the longest tests of the suite,
then run side by side.
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings

pytestmark = pytest.mark.db


@pytest.fixture
def api_schema(app: FastAPI, taxonomy_loaded: None) -> schemathesis.BaseSchema:
    """The application's OpenAPI schema, served from the app under test."""
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_no_server_errors_and_problem_json(
    case: schemathesis.Case, steward_headers: dict[str, str]
) -> None:
    response = case.call(headers=steward_headers)
    assert response.status_code < 500, (case.method, case.path, response.status_code)
    if 400 <= response.status_code < 500:
        assert response.headers["content-type"][0].startswith("application/problem+json"), (
            case.method,
            case.path,
            response.status_code,
        )
