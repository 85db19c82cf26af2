"""The taxonomy: loading, the hierarchy, category links, and the read-only endpoints."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from referral_net.db.models import Attribute, Taxonomy, TaxonomyTerm
from referral_net.domain import taxonomy
from referral_net.errors import InvalidInput

pytestmark = pytest.mark.db

SEED = Path(__file__).resolve().parents[1] / "seed" / "taxonomy.json"
TOP_LEVEL = ["partnerships", "prevention", "prosecution", "protection"]
TERMS = "/api/v1/taxonomy_terms"
# The anti-trafficking taxonomy's id (the seed's); the loader adds Open Eligibility beside it.
OURS = json.loads(SEED.read_text(encoding="utf-8"))["taxonomy"]["id"]


def _seed_term_count() -> int:
    return len(json.loads(SEED.read_text(encoding="utf-8"))["terms"])


def _term(session: Session, code: str) -> TaxonomyTerm:
    term = session.exec(select(TaxonomyTerm).where(col(TaxonomyTerm.code) == code)).one()
    return term


# --- loading ---------------------------------------------------------------------------------


def test_load_is_idempotent(session: Session) -> None:
    first = taxonomy.load_taxonomy(session=session)
    ids = {t.code: t.id for t in session.exec(select(TaxonomyTerm))}
    second = taxonomy.load_taxonomy(session=session, path=SEED)
    assert first == second == _seed_term_count()
    assert taxonomy.count_terms(session=session) == _seed_term_count()
    assert {t.code: t.id for t in session.exec(select(TaxonomyTerm))} == ids
    assert sorted(t.name for t in session.exec(select(Taxonomy))) == [
        "Open Eligibility",
        "referral-net anti-trafficking taxonomy",
    ]


def test_loaded_fields(session: Session, taxonomy_loaded: None) -> None:
    term = _term(session, "protection.shelter.emergency")
    parent = _term(session, "protection.shelter")
    tax = session.get(Taxonomy, uuid.UUID(OURS))
    assert tax is not None
    assert term.name == "Albergue de emergencia"
    assert term.translations == {
        "en": {
            "name": "Emergency shelter",
            "description": (
                "Immediate short-stay accommodation (days or weeks), available at any hour."
            ),
        }
    }
    assert term.parent_id == parent.id
    assert term.taxonomy_id == tax.id
    assert term.taxonomy == tax.name
    assert term.language == "es"
    assert term.term_uri == f"{tax.uri}/protection.shelter.emergency"
    # 1135 is Housing > Emergency Shelter in Open Eligibility 2.0 (the project's taxonomy file).
    assert term.open_eligibility == {
        "code": "1135",
        "name": "Emergency Shelter",
        "path": "Housing > Emergency Shelter",
    }


def test_four_top_level_terms(session: Session, taxonomy_loaded: None) -> None:
    roots = session.exec(
        select(TaxonomyTerm.code)
        .where(
            col(TaxonomyTerm.parent_id).is_(None), col(TaxonomyTerm.taxonomy_id) == uuid.UUID(OURS)
        )
        .order_by(col(TaxonomyTerm.code))
    ).all()
    assert list(roots) == TOP_LEVEL


def test_reload_updates_changed_labels(session: Session, tmp_path: Path) -> None:
    taxonomy.load_taxonomy(session=session)
    data = json.loads(SEED.read_text(encoding="utf-8"))
    data["terms"][0]["name"]["es"] = "Protección integral"
    # Listed children first: the loader must still write parents before children.
    data["terms"].reverse()
    changed = tmp_path / "taxonomy.json"
    changed.write_text(json.dumps(data), encoding="utf-8")
    assert taxonomy.load_taxonomy(session=session, path=changed) == _seed_term_count()
    assert _term(session, "protection").name == "Protección integral"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["terms"][1].update(parent_code="nowhere"), "unknown parent_code"),
        (lambda d: d["terms"].append(dict(d["terms"][0])), "duplicate taxonomy code"),
        (lambda d: d["terms"][0].pop("name"), "not a valid taxonomy file"),
    ],
)
def test_bad_files_are_rejected(
    session: Session, tmp_path: Path, mutate: Callable[[dict[str, Any]], object], message: str
) -> None:
    data = json.loads(SEED.read_text(encoding="utf-8"))
    mutate(data)
    bad = tmp_path / "taxonomy.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(InvalidInput, match=message):
        taxonomy.load_taxonomy(session=session, path=bad)


# --- labels and codes ------------------------------------------------------------------------


def test_term_label(session: Session, taxonomy_loaded: None) -> None:
    term = _term(session, "protection")
    assert taxonomy.term_label(term, "es")[0] == "Protección"
    assert taxonomy.term_label(term, "en") == (
        "Protection",
        "Comprehensive assistance and protection for victims and survivors of human trafficking.",
    )
    untranslated = TaxonomyTerm(name="Nombre", description="Descripción", translations=None)
    assert taxonomy.term_label(untranslated, "en") == ("Nombre", "Descripción")


def test_descendant_codes(session: Session, taxonomy_loaded: None) -> None:
    codes = taxonomy.descendant_codes(session=session, codes=["protection.shelter"])
    assert "protection.shelter" in codes
    assert "protection.shelter.emergency" in codes
    assert "protection.shelter.long_term" in codes
    assert "protection.health" not in codes
    assert "protection" not in codes
    leaf = taxonomy.descendant_codes(session=session, codes=["protection.shelter.emergency"])
    assert leaf == frozenset({"protection.shelter.emergency"})
    everything = taxonomy.descendant_codes(session=session, codes=TOP_LEVEL)
    assert len(everything) == _seed_term_count()


def test_unknown_codes_are_invalid_input(session: Session, taxonomy_loaded: None) -> None:
    with pytest.raises(InvalidInput, match=r"2 unknown category code\(s\) in category") as caught:
        taxonomy.descendant_codes(session=session, codes=["protection", "zzz", "nope"])
    assert [e["message"] for e in caught.value.errors or []] == [
        "item 2: not a known category code",
        "item 3: not a known category code",
    ]
    assert "nope" not in str(caught.value)  # rejected values are not echoed
    with pytest.raises(InvalidInput, match="in categories"):
        taxonomy.resolve_codes(session=session, codes=["protection", "nope"])


def test_resolve_codes_keeps_order_without_repeats(session: Session, taxonomy_loaded: None) -> None:
    terms = taxonomy.resolve_codes(
        session=session, codes=["prevention", "protection.health", "prevention"]
    )
    assert [t.code for t in terms] == ["prevention", "protection.health"]
    assert taxonomy.resolve_codes(session=session, codes=[]) == []


def test_ancestor_codes() -> None:
    parents = {"a": None, "a.b": "a", "a.b.c": "a.b", "loop": "loop2", "loop2": "loop"}
    assert taxonomy.ancestor_codes("a.b.c", parents) == ["a.b", "a"]
    assert taxonomy.ancestor_codes("a", parents) == []
    assert taxonomy.ancestor_codes("unknown", parents) == []
    assert taxonomy.ancestor_codes("loop", parents) == ["loop2"]


def test_parent_map_feeds_ancestor_codes(session: Session, taxonomy_loaded: None) -> None:
    parents = taxonomy.parent_map(session=session)
    assert parents["protection"] is None
    assert taxonomy.ancestor_codes("protection.shelter.women", parents) == [
        "protection.shelter",
        "protection",
    ]


# --- category links --------------------------------------------------------------------------


def test_set_categories_and_categories_for(session: Session, taxonomy_loaded: None) -> None:
    first, second, bare = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    taxonomy.set_categories(
        session=session,
        link_entity="service",
        link_id=first,
        codes=["protection.shelter.emergency", "protection.legal_aid"],
    )
    taxonomy.set_categories(
        session=session, link_entity="service", link_id=second, codes=["prevention"]
    )
    session.commit()
    found = taxonomy.categories_for(
        session=session, link_entity="service", link_ids=[first, second, bare]
    )
    assert [t.code for t in found[first]] == [
        "protection.legal_aid",
        "protection.shelter.emergency",
    ]
    assert [t.code for t in found[second]] == ["prevention"]
    assert found[bare] == []
    # Another kind of record with the same id is not mixed in.
    assert taxonomy.categories_for(session=session, link_entity="location", link_ids=[first]) == {
        first: []
    }

    # Setting again replaces, it does not add.
    taxonomy.set_categories(
        session=session, link_entity="service", link_id=first, codes=["protection.health"]
    )
    session.commit()
    found = taxonomy.categories_for(session=session, link_entity="service", link_ids=[first])
    assert [t.code for t in found[first]] == ["protection.health"]
    rows = session.exec(select(Attribute).where(col(Attribute.link_id) == first)).all()
    assert [(r.link_type, r.link_entity) for r in rows] == [("category", "service")]

    taxonomy.set_categories(session=session, link_entity="service", link_id=first, codes=[])
    session.commit()
    assert taxonomy.categories_for(session=session, link_entity="service", link_ids=[first]) == {
        first: []
    }
    assert taxonomy.categories_for(session=session, link_entity="service", link_ids=[]) == {}


def test_set_categories_rejects_unknown_codes(session: Session, taxonomy_loaded: None) -> None:
    link_id = uuid.uuid4()
    with pytest.raises(InvalidInput, match="unknown category code"):
        taxonomy.set_categories(
            session=session, link_entity="service", link_id=link_id, codes=["prevention", "nope"]
        )


def test_link_ids_with_categories(session: Session, taxonomy_loaded: None) -> None:
    emergency, health, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for link_id, code in [
        (emergency, "protection.shelter.emergency"),
        (health, "protection.health.medical"),
        (other, "prevention.awareness"),
    ]:
        taxonomy.set_categories(
            session=session, link_entity="service", link_id=link_id, codes=[code]
        )
    session.commit()

    def linked(codes: list[str]) -> set[uuid.UUID]:
        query = taxonomy.link_ids_with_categories(
            session=session, link_entity="service", codes=codes
        )
        return set(session.exec(query).all())

    assert linked(["protection.shelter"]) == {emergency}
    assert linked(["protection"]) == {emergency, health}
    assert linked(["protection.shelter", "prevention"]) == {emergency, other}
    assert linked(["partnerships"]) == set()
    with pytest.raises(InvalidInput):
        linked(["nope"])

    by_id = taxonomy.link_ids_with_term_id(
        session=session, link_entity="service", term_id=_term(session, "protection").id
    )
    assert set(session.exec(by_id).all()) == {emergency, health}
    with pytest.raises(InvalidInput):
        taxonomy.link_ids_with_term_id(session=session, link_entity="service", term_id=uuid.uuid4())


# --- endpoints -------------------------------------------------------------------------------


def test_list_taxonomies(client: TestClient, taxonomy_loaded: None) -> None:
    response = client.get("/api/v1/taxonomies")
    assert response.status_code == 200
    body = response.json()
    assert body["total_items"] == 2
    tax = next(t for t in body["contents"] if t["id"] == OURS)
    assert tax["uri"] == "https://referral-net.org/taxonomy/anti-trafficking"
    one = client.get(f"/api/v1/taxonomies/{tax['id']}")
    assert one.status_code == 200
    assert one.json() == tax
    assert client.get(f"/api/v1/taxonomies/{uuid.uuid4()}").status_code == 404


def test_top_level_terms_in_spanish_by_default(client: TestClient, taxonomy_loaded: None) -> None:
    response = client.get(TERMS, params={"top_level": True, "taxonomy_id": OURS})
    assert response.status_code == 200
    assert response.headers["content-language"] == "es"
    body = response.json()
    assert [t["code"] for t in body["contents"]] == TOP_LEVEL
    names = {t["code"]: t["name"] for t in body["contents"]}
    assert names["protection"] == "Protección"
    assert names["prosecution"] == "Persecución penal"
    assert all(t["language"] == "es" and "parent_id" not in t for t in body["contents"])
    assert all(t["localized"]["language"] == "es" for t in body["contents"])


def test_english_via_accept_language(client: TestClient, taxonomy_loaded: None) -> None:
    # Issue 14: name, description and language stay the term's own (Spanish); the English label
    # is the profile's `localized` (and `translations`).
    headers = {"Accept-Language": "en-US,en;q=0.9,es;q=0.5"}
    response = client.get(TERMS, params={"top_level": True, "taxonomy_id": OURS}, headers=headers)
    assert response.headers["content-language"] == "en"
    contents = response.json()["contents"]
    localized = {t["code"]: t["localized"]["name"] for t in contents}
    assert localized["protection"] == "Protection"
    assert localized["partnerships"] == "Partnerships"
    assert {t["code"]: t["name"] for t in contents}["protection"] == "Protección"
    assert all(t["language"] == "es" and t["localized"]["language"] == "en" for t in contents)


def test_read_one_term(client: TestClient, session: Session, taxonomy_loaded: None) -> None:
    term = _term(session, "protection.shelter.emergency")
    response = client.get(f"{TERMS}/{term.id}", headers={"Accept-Language": "en"})
    assert response.status_code == 200
    assert response.headers["content-language"] == "en"
    body = response.json()
    assert body["name"] == "Albergue de emergencia"
    assert body["localized"]["name"] == "Emergency shelter"
    assert body["translations"]["en"]["name"] == "Emergency shelter"
    assert body["code"] == "protection.shelter.emergency"
    assert body["parent_code"] == "protection.shelter"
    assert body["parent_id"] == str(term.parent_id)
    assert body["term_uri"].endswith("/protection.shelter.emergency")
    assert body["open_eligibility"] == {
        "code": "1135",
        "name": "Emergency Shelter",
        "taxonomy_term_id": str(taxonomy.open_eligibility_term_id("Emergency Shelter")),
    }


def test_children_by_parent_code_and_id(
    client: TestClient, session: Session, taxonomy_loaded: None
) -> None:
    by_code = client.get(TERMS, params={"parent_code": "protection.shelter", "per_page": 100})
    assert by_code.status_code == 200
    codes = [t["code"] for t in by_code.json()["contents"]]
    assert codes == sorted(codes)
    assert "protection.shelter.emergency" in codes
    # Children only, not the parent nor grandchildren of other branches.
    assert all(c.startswith("protection.shelter.") for c in codes)
    parent_id = _term(session, "protection.shelter").id
    by_id = client.get(TERMS, params={"parent_id": str(parent_id), "per_page": 100})
    assert [t["code"] for t in by_id.json()["contents"]] == codes

    unknown = client.get(TERMS, params={"parent_code": "nope"})
    assert unknown.status_code == 422
    assert unknown.headers["content-type"].startswith("application/problem+json")
    both = client.get(TERMS, params={"parent_code": "protection", "parent_id": str(parent_id)})
    assert both.status_code == 400


def test_search_ignores_case_and_accents(client: TestClient, taxonomy_loaded: None) -> None:
    response = client.get(TERMS, params={"search": "PROTECCION", "top_level": True})
    assert [t["code"] for t in response.json()["contents"]] == ["protection"]
    english = client.get(TERMS, params={"search": "emergency shelter"})
    assert "protection.shelter.emergency" in [t["code"] for t in english.json()["contents"]]
    paged = client.get(TERMS, params={"search": "protection", "per_page": 2, "page": 2})
    assert paged.json()["page_number"] == 2
    assert paged.json()["size"] == 2
    assert paged.json()["total_items"] > 2


def test_list_pagination_envelope(client: TestClient, taxonomy_loaded: None) -> None:
    total = _seed_term_count()
    ours = {"per_page": 10, "taxonomy_id": OURS}
    first = client.get(TERMS, params=ours).json()
    assert first["total_items"] == total
    assert first["total_pages"] == -(-total // 10)
    assert first["page_number"] == 1
    assert first["size"] == 10
    assert first["first_page"] is True
    assert first["last_page"] is False
    assert first["empty"] is False
    last = client.get(TERMS, params={**ours, "page": first["total_pages"]}).json()
    assert last["last_page"] is True
    assert last["size"] == total - 10 * (first["total_pages"] - 1)
    codes = [
        t["code"]
        for page in range(1, first["total_pages"] + 1)
        for t in client.get(TERMS, params={**ours, "page": page}).json()["contents"]
    ]
    assert codes == sorted(codes)
    assert len(set(codes)) == total


def test_missing_term_is_a_404_problem(client: TestClient, taxonomy_loaded: None) -> None:
    response = client.get(f"{TERMS}/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "urn:referral-net:problem:not-found"


def test_bad_uuid_is_a_422_problem(client: TestClient) -> None:
    response = client.get(f"{TERMS}/not-a-uuid")
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"] == "path.term_id"
