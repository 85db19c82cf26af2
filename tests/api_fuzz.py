"""Property-based API fuzzing with schemathesis, driven by our own OpenAPI document.

Two runs, on both backends, each test in a transaction that is rolled back:

* **Every operation as every role.** Each generated request (valid and invalid input) is sent as
  the public, a partner key, a caseworker, a provider (both of an organization) and a steward, and
  each answer is checked against the document: never a 5xx, a documented status, a documented
  content type and headers, a body that validates against the documented schema, and every 4xx as
  RFC 9457 problem+json. Security parameters are not generated, so each role's own credentials
  are the ones sent.
* **Create, read, update, delete, statefully.** A state machine follows the links schemathesis
  infers from the document (a create's ``id`` into the read, update and delete of the same record,
  a new organization's ``id`` into a service's ``organization_id``, ...) over the directory's
  resources, as a steward, with valid input only. Besides the checks above it runs the stateful
  ones: a created record can be read, and a deleted one is gone. The test asserts that each step of
  a whole create → read → update → delete chain was taken and succeeded.

Not run: schemathesis' "positive data acceptance" check, which expects every schema-valid request
to be accepted. Rules that span fields (``minimum_age <= maximum_age``, latitude with longitude, a
WEEKLY schedule needs a day) or look a value up (ISO 639 codes, Guatemalan municipalities, a
possible phone number) cannot be written in JSON Schema, so it would fail on requests the API is
right to refuse. The document says what it can: patterns for phones, language codes and the no-NUL
rule (``api/openapi_document.py``).

The example counts bound the run (see docs/testing.md): every operation gets ``STATELESS_EXAMPLES``
generated requests (five answers each), the state machine ``STATEFUL_EXAMPLES`` scenarios.

schemathesis draws values its schema allows and seldom reaches the ends of the calendar or of the
number line; tests/test_extreme_inputs.py adds hypothesis strategies aimed there.

The tests are defined here once and collected from one file per backend
(tests/test_api_fuzz_spatialite.py, tests/test_api_fuzz_postgis.py, each marked `only_backend`):
the suite hands whole files to its workers, and the two halves, among the longest tests of the
suite, then run side by side.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, initialize
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.stateful.state_machine import StepInput, StepOutput
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ensure_resource_availability,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    use_after_free,
)
from sqlmodel import Session

from referral_net.domain import keys
from referral_net.security.roles import Role
from tests.factories import bearer, make_organization, make_user

pytestmark = pytest.mark.db

STATELESS_EXAMPLES = 8
STATEFUL_EXAMPLES = 40
STATEFUL_STEPS = 8
# The directory's resources: the state machine chains their create, read, update and delete.
CRUD_PATHS = r"^/api/v1/(organizations|services|locations|service_at_locations)(/\{[a-z_]+\})?$"
ORGANIZATION_NAMES = st.text(st.characters(categories=["L", "Zs"]), min_size=1, max_size=60)
_HEALTH_CHECKS = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
_HEALTH_CHECKS += [HealthCheck.filter_too_much, HealthCheck.data_too_large]


def errors_are_problem_json(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """Every 4xx is RFC 9457 application/problem+json."""
    if 400 <= response.status_code < 500:
        content_type = response.headers.get("content-type", [""])[0]
        assert content_type.startswith("application/problem+json"), (
            f"{case.method} {case.path}: {response.status_code} as {content_type!r}"
        )
    return None


RESPONSE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    errors_are_problem_json,
]
STATEFUL_CHECKS = [*RESPONSE_CHECKS, ensure_resource_availability, use_after_free]


def _config(*, valid_only: bool) -> SchemathesisConfig:
    generation: dict[str, Any] = {"with-security-parameters": False}
    if valid_only:
        generation["mode"] = "positive"
    return SchemathesisConfig.from_dict({"generation": generation})


@pytest.fixture
def api_schema(app: FastAPI, taxonomy_loaded: None) -> schemathesis.BaseSchema:
    """The application's OpenAPI schema, served from the app under test."""
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=_config(valid_only=False))


@pytest.fixture
def role_headers(app: FastAPI, session: Session) -> dict[str, dict[str, str]]:
    """The credentials of each role: none for the public, a key for a partner, bearer tokens for
    staff (the caseworker and the provider of one organization)."""
    organization = make_organization(session, "Fuzz (ejemplo)")
    _, partner_key = keys.create_key(session=session, name="partner-fuzz")
    session.commit()
    return {
        "public": {},
        "partner": {"X-API-Key": partner_key},
        "caseworker": bearer(app, make_user(session, Role.CASEWORKER, organization.id)),
        "provider": bearer(app, make_user(session, Role.PROVIDER, organization.id)),
        "steward": bearer(app, make_user(session, Role.STEWARD)),
    }


@pytest.fixture
def role_turns(
    role_headers: dict[str, dict[str, str]],
) -> Iterator[tuple[str, dict[str, str]]]:
    """The roles in turn, for requests sent as one role only."""
    return itertools.cycle(role_headers.items())


def _roles_for(
    case: schemathesis.Case,
    role_headers: dict[str, dict[str, str]],
    role_turns: Iterator[tuple[str, dict[str, str]]],
) -> list[tuple[str, dict[str, str]]]:
    """Every role for a generated request; one role in turn for each of the coverage phase's.

    The coverage phase sends every operation's boundary and wrong-type values, thousands of
    requests in all: sent as five roles each, they alone would take a quarter of the suite's time
    budget. In turn, each role still gets a fifth of them.
    """
    if case.meta is not None and case.meta.phase.name.value == "coverage":
        return [next(role_turns)]
    return list(role_headers.items())


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=STATELESS_EXAMPLES, deadline=None, suppress_health_check=_HEALTH_CHECKS)
def test_every_role_gets_documented_answers(
    case: schemathesis.Case,
    role_headers: dict[str, dict[str, str]],
    role_turns: Iterator[tuple[str, dict[str, str]]],
) -> None:
    for role, headers in _roles_for(case, role_headers, role_turns):
        response = case.call(headers=headers)
        try:
            case.validate_response(response, checks=RESPONSE_CHECKS, headers=headers)
        except BaseException as failure:  # schemathesis raises an exception group
            failure.add_note(f"as {role}")
            raise


def _step(case: schemathesis.Case, status: int) -> tuple[str, str, int]:
    return case.method, case.operation.path, status


def test_create_read_update_delete_statefully(
    app: FastAPI, session: Session, taxonomy_loaded: None
) -> None:
    steward = bearer(app, make_user(session, Role.STEWARD))
    crud = schemathesis.openapi.from_asgi("/openapi.json", app, config=_config(valid_only=True))
    taken: Counter[tuple[str, str, int]] = Counter()

    create_organization = crud["/api/v1/organizations"]["POST"]

    class Workflow(crud.include(path_regex=CRUD_PATHS).as_state_machine()):  # type: ignore[misc]
        # schemathesis starts scenarios only from creates whose every input it can produce: an
        # organization's optional parent_organization_id keeps its create out. Each scenario
        # therefore starts with one, drawn valid; the links take it from there.
        @initialize(target=Bundle("catch_all"), name=ORGANIZATION_NAMES)
        def an_organization(self, name: str) -> StepOutput:
            body = {"name": f"{name} (ejemplo)", "description": "fuzz", "phones": []}
            step = StepInput.initial(create_organization.Case(body=body))
            # What schemathesis' own root steps do first, so that later links find their parent.
            self.recorder.record_case(case=step.case)
            self.control.record_step(step, self.recorder)
            return self.step(step)

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"headers": steward}

        def validate_response(
            self,
            response: Any,
            case: schemathesis.Case,
            additional_checks: Any = None,
            **kwargs: Any,
        ) -> None:
            taken[_step(case, response.status_code)] += 1
            case.validate_response(
                response, checks=STATEFUL_CHECKS, headers=steward, transport_kwargs=kwargs
            )

    Workflow.run(
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            derandomize=True,
            suppress_health_check=_HEALTH_CHECKS,
        )
    )
    record = "/api/v1/organizations/{organization_id}"
    chain = [
        ("POST", "/api/v1/organizations", 201),
        ("GET", record, 200),
        ("PATCH", record, 200),
        ("DELETE", record, 204),
    ]
    missing = [step for step in chain if not taken[step]]
    assert not missing, f"steps never taken: {missing}; taken: {taken.most_common()}"
