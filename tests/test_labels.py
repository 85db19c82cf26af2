"""Issue 10 #21: language names follow Accept-Language; an unknown category names its parameter
and is not echoed back."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.factories import location_body, organization_body, service_body

pytestmark = pytest.mark.db


def _names(languages: list[dict[str, str]]) -> dict[str, str]:
    return {language["code"]: language["name"] for language in languages}


def test_language_names_follow_accept_language(
    client: TestClient, steward_headers: dict[str, str], taxonomy_loaded: None
) -> None:
    org = client.post("/api/v1/organizations", json=organization_body(), headers=steward_headers)
    assert org.status_code == 201, org.text
    body = service_body(org.json()["id"], languages=["spa", "eng", "mam", "fra"])
    created = client.post("/api/v1/services", json=body, headers=steward_headers)
    assert created.status_code == 201, created.text
    url = f"/api/v1/services/{created.json()['id']}"

    english = client.get(url, headers={**steward_headers, "Accept-Language": "en"})
    spanish = client.get(url, headers={**steward_headers, "Accept-Language": "es"})
    default = client.get(url, headers=steward_headers)

    assert _names(english.json()["languages"]) == {
        "eng": "English",
        "fra": "French",
        "mam": "Mam",
        "spa": "Spanish",
    }
    assert _names(spanish.json()["languages"]) == {
        "eng": "inglés",
        "fra": "francés",
        "mam": "mam",
        "spa": "español",
    }
    assert default.json()["languages"] == spanish.json()["languages"]
    listed = client.get(
        "/api/v1/services",
        params={"category": "protection.legal_aid"},
        headers={**steward_headers, "Accept-Language": "en"},
    )
    mine = next(s for s in listed.json()["contents"] if s["id"] == created.json()["id"])
    assert _names(mine["languages"])["spa"] == "Spanish"


def test_location_language_names_follow_accept_language(
    client: TestClient, steward_headers: dict[str, str]
) -> None:
    org = client.post("/api/v1/organizations", json=organization_body(), headers=steward_headers)
    body = location_body(org.json()["id"], languages=["es", "mam", "en"])
    created = client.post("/api/v1/locations", json=body, headers=steward_headers)
    assert created.status_code == 201, created.text
    url = f"/api/v1/locations/{created.json()['id']}"

    english = client.get(url, headers={"Accept-Language": "en"}).json()["languages"]
    spanish = client.get(url, headers={"Accept-Language": "es"}).json()["languages"]

    assert _names(english) == {"spa": "Spanish", "mam": "Mam", "eng": "English"}
    assert _names(spanish) == {"spa": "español", "mam": "mam", "eng": "inglés"}
    listed = client.get(
        "/api/v1/locations",
        params={"organization_id": org.json()["id"]},
        headers={"Accept-Language": "en"},
    ).json()["contents"]
    assert _names(listed[0]["languages"])["spa"] == "Spanish"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/search?near=14.84,-91.52&category=protection&category=zz.secret-code",
        "/api/v1/services?category=zz.secret-code",
    ],
)
def test_unknown_category_names_the_parameter_and_is_not_echoed(
    client: TestClient, taxonomy_loaded: None, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert [error["field"] for error in problem["errors"]] == ["category"]
    assert "zz.secret-code" not in response.text


def test_unknown_category_in_a_body_names_categories(
    client: TestClient, steward_headers: dict[str, str], taxonomy_loaded: None
) -> None:
    org = client.post("/api/v1/organizations", json=organization_body(), headers=steward_headers)
    body = service_body(org.json()["id"], categories=["protection.legal_aid", "zz.secret-code"])
    response = client.post("/api/v1/services", json=body, headers=steward_headers)
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["categories"]
    assert "item 2" in response.json()["errors"][0]["message"]
    assert "zz.secret-code" not in response.text


@pytest.mark.parametrize(("asked", "announced"), [("en", "en"), ("es", "es"), (None, "es")])
def test_a_search_announces_its_language(
    client: TestClient, taxonomy_loaded: None, asked: str | None, announced: str
) -> None:
    # The search negotiates its locale itself (api/hot_reads.py): the answer still says which.
    headers = {"Accept-Language": asked} if asked else {}
    for answer_format in ("json", "geojson"):
        response = client.get(
            "/api/v1/search", params={"near": "14.84,-91.52", "f": answer_format}, headers=headers
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-language"] == announced
    refused = client.get("/api/v1/search", params={"near": "91,0"}, headers=headers)
    assert refused.status_code == 422
    assert "content-language" not in refused.headers
