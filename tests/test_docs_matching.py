"""docs/matching.md and the match API cannot drift apart.

Every field named in the request table must exist in ``MatchRequest`` (and every request field
must be in the table), and every JSON request example on the page must be accepted by
``POST /api/v1/match`` on both backends.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from referral_net.schemas.match import MatchRequest
from referral_net.security.roles import Role
from tests.factories import bearer, make_user

DOC = Path(__file__).resolve().parents[1] / "docs" / "matching.md"


def _request_table(text: str) -> list[str]:
    """The field names in the first column of the table headed ``| Field | Meaning |``."""
    lines = text.splitlines()
    start = lines.index("| Field | Meaning |")
    names: list[str] = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        first = line.split("|")[1]
        names += [name.strip().strip("`") for name in first.split(",")]
    return names


def _json_examples(text: str) -> list[dict[str, Any]]:
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.DOTALL)]


def _schema_fields() -> set[str]:
    schema = MatchRequest.model_json_schema()
    location = schema["$defs"]["PersonLocation"]["properties"]
    return {name for name in schema["properties"] if name != "location"} | {
        f"location.{name}" for name in location
    }


def test_the_request_table_names_exactly_the_request_fields() -> None:
    documented = _request_table(DOC.read_text(encoding="utf-8"))
    assert len(documented) == len(set(documented)), "a field is documented twice"
    fields = _schema_fields()
    assert sorted(set(documented) - fields) == [], "documented but not accepted by the API"
    assert sorted(fields - set(documented)) == [], "accepted by the API but not documented"


def test_the_page_has_request_examples() -> None:
    assert len(_json_examples(DOC.read_text(encoding="utf-8"))) >= 2


@pytest.mark.db
def test_every_documented_request_example_is_accepted(
    app: FastAPI, client: TestClient, session: Session, taxonomy_loaded: None
) -> None:
    caseworker = bearer(app, make_user(session, Role.CASEWORKER))
    for example in _json_examples(DOC.read_text(encoding="utf-8")):
        for locale in ("es", "en"):
            response = client.post(
                "/api/v1/match", json=example, headers={**caseworker, "Accept-Language": locale}
            )
            assert response.status_code == 200, response.text
            assert response.headers["content-language"] == locale
            codes = [need["code"] for need in response.json()["needs"]]
            assert codes == [need["code"] for need in example["needs"]]
