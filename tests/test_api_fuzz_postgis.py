"""The API fuzz test (tests/api_fuzz.py) on PostGIS; its twin file runs it on SpatiaLite."""

from __future__ import annotations

import pytest

from tests.api_fuzz import api_schema, test_no_server_errors_and_problem_json

__all__ = ["api_schema", "test_no_server_errors_and_problem_json"]

pytestmark = [pytest.mark.db, pytest.mark.only_backend("postgis")]
