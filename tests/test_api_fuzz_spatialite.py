"""The API fuzz tests (tests/api_fuzz.py) on SpatiaLite; its twin file runs them on PostGIS."""

from __future__ import annotations

import pytest

from tests.api_fuzz import (
    api_schema,
    role_headers,
    role_turns,
    test_create_read_update_delete_statefully,
    test_every_role_gets_documented_answers,
)

__all__ = [
    "api_schema",
    "role_headers",
    "role_turns",
    "test_create_read_update_delete_statefully",
    "test_every_role_gets_documented_answers",
]

pytestmark = [pytest.mark.db, pytest.mark.only_backend("spatialite")]
