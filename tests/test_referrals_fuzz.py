"""The referral operations fuzzed as their own users (tests/api_fuzz.py fuzzes every operation as a
steward, who gets a 403 from most of these before any body is read): as a caseworker and as a
provider of an organization, on both backends, whatever is sent, never a 5xx, and every 4xx is
problem+json."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from sqlmodel import Session

from referral_net.security.roles import Role
from tests.factories import bearer, make_organization, make_user

pytestmark = pytest.mark.db


@pytest.fixture
def referral_schema(app: FastAPI, taxonomy_loaded: None) -> schemathesis.BaseSchema:
    """The application's OpenAPI schema (the referral operations are picked below)."""
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture
def referral_workers(app: FastAPI, session: Session) -> list[dict[str, str]]:
    """Bearer headers of a caseworker and of a provider, each of an organization."""
    organization = make_organization(session, "Fuzz (ejemplo)")
    return [
        bearer(app, make_user(session, role, organization.id))
        for role in (Role.CASEWORKER, Role.PROVIDER)
    ]


# The filter goes on the lazy schema: one applied inside the fixture is not seen by parametrize,
# which then fuzzed every operation of the API (five minutes per backend, for nothing new).
schema = schemathesis.pytest.from_fixture("referral_schema").include(path_regex="referral")


@schema.parametrize()
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_referral_operations_answer_4xx_not_5xx(
    case: schemathesis.Case, referral_workers: list[dict[str, str]]
) -> None:
    for headers in referral_workers:
        response = case.call(headers=headers)
        assert response.status_code < 500, (case.method, case.path, response.status_code)
        if 400 <= response.status_code < 500:
            assert response.headers["content-type"][0].startswith("application/problem+json"), (
                case.method,
                case.path,
                response.status_code,
            )
