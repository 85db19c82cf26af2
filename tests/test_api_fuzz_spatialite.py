"""The API fuzz test (tests/api_fuzz.py) on SpatiaLite; its twin file runs it on PostGIS."""

from __future__ import annotations

import pytest

from tests.api_fuzz import api_schema, test_no_server_errors_and_problem_json

__all__ = ["api_schema", "test_no_server_errors_and_problem_json"]

pytestmark = [pytest.mark.db, pytest.mark.only_backend("spatialite")]
