"""Issue 14, taxonomy: the taxonomies and terms served are HSDS 3.0, on both backends.

- Every taxonomy and term served (list pages, single records, NDJSON lines; in Spanish and in
  English) validates against the official ``taxonomy.json``/``taxonomy_term.json`` and, for the
  lists, against the response schema the official ``openapi.json`` gives the path (the ``Page``
  envelope with the items). The validators are built from the files in ``specs/`` (vendored) (a
  ``referencing`` registry, format checks on, no network), independent of the code under test.
- A term's ``name``, ``description`` and ``language`` are its own as stored, whatever
  ``Accept-Language`` asks; the negotiated label is the profile's ``localized``.
- The loader adds the Open Eligibility taxonomy with the terms the seed maps onto, idempotently;
  its codes are checked against Open Eligibility 2.0; its terms are never categories.
- Every parameter the official ``openapi.json`` lists for these paths is implemented, and each
  filters as HSDS says, checked against the stored rows.
"""

from __future__ import annotations

import json
import unicodedata
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlmodel import Session, col, select

from referral_net.db.models import Attribute, Taxonomy, TaxonomyTerm
from referral_net.domain import taxonomy
from referral_net.errors import InvalidInput
from tests.specs import HSDS_EXAMPLES, HSDS_SCHEMA

pytestmark = pytest.mark.db

ROOT = Path(__file__).resolve().parents[1]
SEED = json.loads((ROOT / "seed" / "taxonomy.json").read_text(encoding="utf-8"))
SCHEMA_DIR = HSDS_SCHEMA
# The URIs the official openapi.json refers to the schemas by; the registry serves the local files
# under them.
OFFICIAL = "https://raw.githubusercontent.com/openreferral/specification/3.0/schema/"
TAXONOMIES = "/api/v1/taxonomies"
TERMS = "/api/v1/taxonomy_terms"
LANGUAGES = ("es", "en")

OURS = uuid.UUID(SEED["taxonomy"]["id"])
OE_URI = "https://openeligibility.org"
OE_ID = uuid.uuid5(uuid.NAMESPACE_URL, OE_URI)

# Where each mapped name occurs in Open Eligibility 2.0 (the project's `taxonomy` file, 2013, its
# `services` tree), transcribed from it: a numeric code must be one of these. The three names
# absent here come from later editions, which publish no codes.
OE_2_0_IDS = {
    "Emergency Shelter": {"1121", "1135"},
    "Long-Term Housing": {"1146"},
    "Safe Housing": {"1125", "1151"},
    "Medical Care": {"1206"},
    "Advocacy & Legal Aid": {"1375"},
    "Citizenship & Immigration": {"1346", "1381"},
    "Help Find Missing Persons": {"1122"},
    "Translation & Interpretation": {"1390"},
    "Education": {"1109"},
    "Help Find Work": {"1297", "1357"},
    "Help Hotlines": {"1305"},
    "Specialized Training": {"1356", "1372"},
}
LATER_EDITIONS = {"Temporary Shelter", "Sexual & Reproductive Health", "Mental Health Care"}


# --- the official validators ---------------------------------------------------------------------


@cache
def _registry() -> Registry:
    resources = [
        (OFFICIAL + path.name, Resource.from_contents(json.loads(path.read_text()), DRAFT202012))
        for path in SCHEMA_DIR.glob("*.json")
    ]
    return Registry().with_resources(resources)


@cache
def _validator(ref: str) -> Draft202012Validator:
    return Draft202012Validator(
        {"$ref": OFFICIAL + ref},
        registry=_registry(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def _pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def _response_schema(path: str) -> str:
    """The official openapi.json's schema of a 200 answer of GET ``path``, as a reference."""
    return "openapi.json#/" + _pointer(
        "paths", path, "get", "responses", "200", "content", "application/json", "schema"
    )


def _errors(ref: str, instance: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
        for e in _validator(ref).iter_errors(instance)
    ]


def _nulls(value: Any, where: str = "") -> list[str]:
    """Where a ``null`` is: HSDS leaves absent fields out."""
    if value is None:
        return [where or "(body)"]
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in _nulls(v, f"{where}/{k}")]
    if isinstance(value, list):
        return [n for i, v in enumerate(value) for n in _nulls(v, f"{where}/{i}")]
    return []


@cache
def _openapi_parameters(path: str) -> frozenset[str]:
    """The query parameters the official openapi.json lists for GET ``path``."""
    openapi = json.loads((SCHEMA_DIR / "openapi.json").read_text())
    names = set()
    for given in openapi["paths"][path]["get"].get("parameters", []):
        parameter = (
            openapi["components"]["parameters"][given["$ref"].rsplit("/", 1)[1]]
            if "$ref" in given
            else given
        )
        if parameter["in"] == "query":
            names.add(parameter["name"])
    return frozenset(names)


def test_the_validators_accept_the_official_examples() -> None:
    examples = HSDS_EXAMPLES
    for name, ref in [
        ("taxonomy.json", "taxonomy.json"),
        ("taxonomy_term.json", "taxonomy_term.json"),
        ("taxonomy_list.json", _response_schema("/taxonomies")),
        ("taxonomy_term_list.json", _response_schema("/taxonomy_terms")),
    ]:
        assert _errors(ref, json.loads((examples / name).read_text())) == [], name
    assert _errors("taxonomy_term.json", {"id": "not-a-uuid", "name": "n", "description": ""})
    assert _errors(_response_schema("/taxonomy_terms"), {"contents": [{"id": str(uuid.uuid4())}]})


# --- helpers -------------------------------------------------------------------------------------


def _get(client: TestClient, path: str, language: str = "es", **params: Any) -> httpx.Response:
    response = client.get(path, params=params, headers={"Accept-Language": language})
    assert response.status_code == 200, response.text
    return response


def _all_pages(client: TestClient, path: str, language: str = "es", **params: Any) -> list[Any]:
    items: list[Any] = []
    page = 1
    while True:
        body = _get(client, path, language, page=page, per_page=7, **params).json()
        items.extend(body["contents"])
        if body["last_page"]:
            return items
        page += 1


def _stored_terms(session: Session) -> list[TaxonomyTerm]:
    return list(session.exec(select(TaxonomyTerm)))


def _assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


# --- validity ------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_taxonomy_served_is_valid_hsds(
    client: TestClient, session: Session, taxonomy_loaded: None, language: str
) -> None:
    body = _get(client, TAXONOMIES, language, per_page=100).json()
    assert _errors(_response_schema("/taxonomies"), body) == []
    assert _nulls(body) == []
    assert {t["id"] for t in body["contents"]} == {
        str(t.id) for t in session.exec(select(Taxonomy))
    }
    for item in body["contents"]:
        assert _errors("taxonomy.json", item) == [], item["name"]
        one = _get(client, f"{TAXONOMIES}/{item['id']}", language).json()
        assert _errors("taxonomy.json", one) == []
        assert _nulls(one) == []
        assert one == item
    lines = _get(client, TAXONOMIES, language, format="ndjson").text.splitlines()
    assert [json.loads(line) for line in lines] == body["contents"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_term_served_is_valid_hsds(
    client: TestClient, session: Session, taxonomy_loaded: None, language: str
) -> None:
    body = _get(client, TERMS, language, per_page=100).json()
    assert body["total_items"] == len(_stored_terms(session)) < 100
    assert _errors(_response_schema("/taxonomy_terms"), body) == []
    assert _nulls(body) == []
    for item in body["contents"]:
        assert _errors("taxonomy_term.json", item) == [], item["code"]
        response = _get(client, f"{TERMS}/{item['id']}", language)
        assert response.headers["content-language"] == language
        one = response.json()
        assert _errors("taxonomy_term.json", one) == [], item["code"]
        assert _nulls(one) == []
        assert one == item
    stream = _get(client, TERMS, language, format="ndjson")
    assert stream.headers["content-type"].startswith("application/x-ndjson")
    assert stream.headers["content-language"] == language
    lines = [json.loads(line) for line in stream.text.splitlines()]
    assert lines == body["contents"]


# --- language ------------------------------------------------------------------------------------


def test_term_language_is_the_stored_one(
    client: TestClient, session: Session, taxonomy_loaded: None
) -> None:
    stored = {str(term.id): term for term in _stored_terms(session)}
    seed = {term["id"]: term for term in SEED["terms"]}
    served = {lang: {t["id"]: t for t in _all_pages(client, TERMS, lang)} for lang in LANGUAGES}
    assert set(served["es"]) == set(served["en"]) == set(stored)
    for term_id, term in stored.items():
        spanish, english = served["es"][term_id], served["en"][term_id]
        # The HSDS fields are the term's own, and the same in every negotiated language.
        hsds_fields = {"name": term.name, "description": term.description}
        assert {k: spanish[k] for k in hsds_fields} == hsds_fields
        assert spanish["language"] == english["language"] == term.language
        assert {k: v for k, v in english.items() if k != "localized"} == {
            k: v for k, v in spanish.items() if k != "localized"
        }
        if term_id in seed:  # ours: stored in Spanish, English in translations
            assert term.language == "es"
            assert spanish["name"] == seed[term_id]["name"]["es"]
            assert spanish["localized"] == {"language": "es", **_seed_label(seed[term_id], "es")}
            assert english["localized"] == {"language": "en", **_seed_label(seed[term_id], "en")}
            assert english["translations"] == {"en": _seed_label(seed[term_id], "en")}
        else:  # Open Eligibility: English only, so English whatever is asked
            assert term.language == "en"
            own = {"language": "en", "name": term.name, "description": term.description}
            assert spanish["localized"] == english["localized"] == own
            assert "translations" not in spanish


def _seed_label(term: dict[str, Any], language: str) -> dict[str, str]:
    return {"name": term["name"][language], "description": term["description"][language]}


# --- Open Eligibility ----------------------------------------------------------------------------


def _seed_mappings() -> dict[str, dict[str, str]]:
    """The Open Eligibility terms the seed maps onto, by name."""
    return {
        term["open_eligibility"]["name"]: term["open_eligibility"]
        for term in SEED["terms"]
        if term["open_eligibility"] is not None
    }


def test_open_eligibility_taxonomy_and_terms_after_load(
    session: Session, taxonomy_loaded: None
) -> None:
    oe = session.get(Taxonomy, OE_ID)
    assert oe is not None
    assert (oe.name, oe.uri) == ("Open Eligibility", OE_URI)
    terms = session.exec(select(TaxonomyTerm).where(col(TaxonomyTerm.taxonomy_id) == OE_ID)).all()
    mappings = _seed_mappings()
    assert {term.name for term in terms} == set(mappings)
    for term in terms:
        assert term.id == uuid.uuid5(OE_ID, term.name)
        assert term.code == mappings[term.name]["code"]
        assert (term.taxonomy, term.language, term.parent_id) == ("Open Eligibility", "en", None)
        assert term.description == mappings[term.name]["path"]
        assert term.code is not None
        if term.name in LATER_EDITIONS:
            assert term.code == term.name
        else:
            assert term.code in OE_2_0_IDS[term.name], term.name
    assert set(OE_2_0_IDS) | LATER_EDITIONS == set(mappings)
    assert len({term.code for term in terms}) == len(terms)
    # Never categories: no attribute links anything to an Open Eligibility term.
    linked = session.exec(
        select(Attribute).where(col(Attribute.taxonomy_term_id).in_([t.id for t in terms]))
    ).all()
    assert linked == []


def _snapshot(session: Session) -> list[tuple[Any, ...]]:
    session.expire_all()
    terms = [
        (
            t.id,
            t.code,
            t.name,
            t.description,
            t.parent_id,
            t.taxonomy,
            t.taxonomy_id,
            t.language,
            t.term_uri,
            json.dumps(t.translations, sort_keys=True),
            json.dumps(t.open_eligibility, sort_keys=True),
        )
        for t in session.exec(select(TaxonomyTerm))
    ]
    taxonomies = [
        (t.id, t.name, t.description, t.uri, t.version) for t in session.exec(select(Taxonomy))
    ]
    return sorted(terms, key=str) + sorted(taxonomies, key=str)


def test_load_is_idempotent_for_both_taxonomies(session: Session) -> None:
    taxonomy.load_taxonomy(session=session)
    first = _snapshot(session)
    taxonomy.load_taxonomy(session=session)
    assert _snapshot(session) == first
    assert len(first) == len(SEED["terms"]) + len(_seed_mappings()) + 2


def _load_changed(session: Session, tmp_path: Path, data: dict[str, Any]) -> None:
    changed = tmp_path / "taxonomy.json"
    changed.write_text(json.dumps(data), encoding="utf-8")
    taxonomy.load_taxonomy(session=session, path=changed)


def _oe_names(session: Session) -> set[str]:
    terms = session.exec(select(TaxonomyTerm).where(col(TaxonomyTerm.taxonomy_id) == OE_ID))
    return {term.name for term in terms}


def test_reload_keeps_open_eligibility_to_the_mapped_terms(
    session: Session, tmp_path: Path
) -> None:
    taxonomy.load_taxonomy(session=session)
    data = json.loads(json.dumps(SEED))
    by_code = {term["code"]: term for term in data["terms"]}
    by_code["protection.hotline"]["open_eligibility"] = None  # Help Hotlines: unmapped
    by_code["protection.education"]["open_eligibility"] = None  # Education: unmapped but linked
    linked_id = uuid.uuid5(OE_ID, "Education")
    session.add(
        Attribute(
            link_id=uuid.uuid4(), link_entity="test", link_type="test", taxonomy_term_id=linked_id
        )
    )
    session.commit()
    _load_changed(session, tmp_path, data)
    names = _oe_names(session)
    assert "Help Hotlines" not in names
    assert "Education" in names  # an attribute links to it: kept rather than break the link
    assert names == (set(_seed_mappings()) - {"Help Hotlines"})


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda terms: terms["protection.hotline"]["open_eligibility"].update(code="1135"),
            "is given to two terms",
        ),
        (
            lambda terms: terms["protection.hotline"].update(
                open_eligibility={"code": "1", "name": "Emergency Shelter", "path": "x"}
            ),
            "has two codes or paths",
        ),
        (
            lambda terms: terms["protection.hotline"]["open_eligibility"].update(code=None),
            "not a valid taxonomy file",
        ),
    ],
)
def test_contradictory_open_eligibility_mappings_are_refused(
    session: Session, tmp_path: Path, mutate: Any, message: str
) -> None:
    data = json.loads(json.dumps(SEED))
    mutate({term["code"]: term for term in data["terms"]})
    with pytest.raises(InvalidInput, match=message):
        _load_changed(session, tmp_path, data)
    assert session.get(Taxonomy, OE_ID) is None  # refused before anything is written


def _expected_mapping() -> dict[uuid.UUID, uuid.UUID]:
    """From the seed file: each of our terms' own mapping, else its nearest ancestor's."""
    by_code = {term["code"]: term for term in SEED["terms"]}
    expected: dict[uuid.UUID, uuid.UUID] = {}
    for term in SEED["terms"]:
        current: dict[str, Any] | None = term
        while current is not None and current["open_eligibility"] is None:
            parent = current["parent_code"]
            current = by_code[parent] if parent else None
        if current is not None:
            name = current["open_eligibility"]["name"]
            expected[uuid.UUID(term["id"])] = uuid.uuid5(OE_ID, name)
    return expected


def test_open_eligibility_term_ids(session: Session, taxonomy_loaded: None) -> None:
    ours = [uuid.UUID(term["id"]) for term in SEED["terms"]]
    expected = _expected_mapping()
    oe_ids = [uuid.uuid5(OE_ID, name) for name in _seed_mappings()]
    found = taxonomy.open_eligibility_term_ids(session, [*ours, *oe_ids, uuid.uuid4()])
    assert found == expected
    # Inherited: the LGBTIQ+ shelter has no mapping of its own, its parent (shelter) has one.
    lgbtiq = uuid.UUID(next(t["id"] for t in SEED["terms"] if t["code"].endswith("lgbtiq")))
    assert found[lgbtiq] == uuid.uuid5(OE_ID, "Temporary Shelter")
    assert taxonomy.open_eligibility_term_ids(session, []) == {}
    served = {
        term_id: term.id
        for term_id, term in taxonomy.open_eligibility_terms(session, ours).items()
        if term.taxonomy_id == OE_ID
    }
    assert served == expected


def test_served_terms_link_their_open_eligibility_term(
    client: TestClient, taxonomy_loaded: None
) -> None:
    expected = _expected_mapping()
    oe_terms = {t["id"]: t for t in _all_pages(client, TERMS, taxonomy_id=str(OE_ID))}
    for term in _all_pages(client, TERMS, taxonomy_id=str(OURS)):
        link = term.get("open_eligibility")
        target = expected.get(uuid.UUID(term["id"]))
        if target is None:
            assert link is None, term["code"]
            continue
        oe = oe_terms[str(target)]
        assert link == {"taxonomy_term_id": oe["id"], "code": oe["code"], "name": oe["name"]}


def test_open_eligibility_terms_are_no_categories(
    client: TestClient, session: Session, taxonomy_loaded: None
) -> None:
    code = _seed_mappings()["Emergency Shelter"]["code"]
    with pytest.raises(InvalidInput):
        taxonomy.resolve_codes(session=session, codes=[code])
    with pytest.raises(InvalidInput):
        taxonomy.descendant_codes(session=session, codes=[code])
    assert code not in taxonomy.parent_map(session=session)
    assert taxonomy.count_terms(session=session) == len(SEED["terms"])
    for path in (
        f"/api/v1/services?category={code}",
        f"/api/v1/search?near=14.84,-91.52&category={code}",
        f"{TERMS}?parent_code={code}",
    ):
        _assert_problem(client.get(path), 422)


def test_records_filtered_by_an_open_eligibility_term(
    session: Session, taxonomy_loaded: None
) -> None:
    emergency, lgbtiq, health = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for link_id, code in [
        (emergency, "protection.shelter.emergency"),
        (lgbtiq, "protection.shelter.lgbtiq"),
        (health, "protection.health"),
    ]:
        taxonomy.set_categories(
            session=session, link_entity="service", link_id=link_id, codes=[code]
        )
    session.commit()

    def linked(name: str) -> set[uuid.UUID]:
        query = taxonomy.link_ids_with_term_id(
            session=session, link_entity="service", term_id=uuid.uuid5(OE_ID, name)
        )
        return set(session.exec(query).all())

    assert linked("Emergency Shelter") == {emergency}
    assert linked("Temporary Shelter") == {lgbtiq}  # through its parent's mapping
    assert linked("Medical Care") == set()  # protection.health itself maps onto nothing


# --- HSDS parameters -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/taxonomies", "/taxonomy_terms"])
def test_every_hsds_parameter_is_read(client: TestClient, taxonomy_loaded: None, path: str) -> None:
    values = {
        "search": "shelter",
        "page": "1",
        "per_page": "5",
        "format": "json",
        "taxonomy_id": str(OURS),
        "top_only": "false",
        "parent_id": str(uuid.uuid4()),
    }
    names = _openapi_parameters(path)
    assert names >= {"search", "page", "per_page", "format"}
    for name in sorted(names):
        response = client.get(f"/api/v1{path}", params={name: values[name]})
        assert response.status_code == 200, (name, response.text)


def test_taxonomies_search(client: TestClient, session: Session, taxonomy_loaded: None) -> None:
    for needle in ("eligibility", "TRATA", "anti-trafficking", "nothing-like-this"):
        expected = {
            str(t.id)
            for t in session.exec(select(Taxonomy))
            if any(_fold(needle) in _fold(text or "") for text in (t.name, t.description, t.uri))
        }
        served = {t["id"] for t in _all_pages(client, TAXONOMIES, search=needle)}
        assert served == expected, needle
    assert {t["id"] for t in _all_pages(client, TAXONOMIES, search="TRATA")} == {str(OURS)}


def test_terms_search(client: TestClient, session: Session, taxonomy_loaded: None) -> None:
    def texts(term: TaxonomyTerm) -> list[str]:
        labels = [v for label in (term.translations or {}).values() for v in label.values()]
        return [term.code or "", term.name, term.description, *labels]

    for needle in ("shelter", "ALBERGUE", "proteccion", "1135", "zzz"):
        expected = {
            str(t.id)
            for t in _stored_terms(session)
            if any(_fold(needle) in _fold(text) for text in texts(t))
        }
        assert {t["id"] for t in _all_pages(client, TERMS, search=needle)} == expected, needle


def test_pages_cover_the_list_once(
    client: TestClient, session: Session, taxonomy_loaded: None
) -> None:
    stored = _stored_terms(session)
    paged = _all_pages(client, TERMS)
    assert sorted(t["id"] for t in paged) == sorted(str(t.id) for t in stored)
    body = _get(client, TERMS, per_page=7, page=2).json()
    assert (body["page_number"], body["size"], body["total_items"]) == (2, 7, len(stored))
    assert body["total_pages"] == -(-len(stored) // 7)
    beyond = _get(client, TERMS, per_page=7, page=body["total_pages"] + 1).json()
    assert beyond["empty"] is True
    assert beyond["contents"] == []


@pytest.mark.parametrize("path", [TAXONOMIES, TERMS])
def test_ndjson_streams_every_record_without_pages(
    client: TestClient, taxonomy_loaded: None, path: str
) -> None:
    stream = _get(client, path, format="ndjson", search="shelter")
    assert stream.headers["content-type"].startswith("application/x-ndjson")
    assert stream.text.endswith("\n") or stream.text == ""
    lines = [json.loads(line) for line in stream.text.splitlines()]
    assert lines == _all_pages(client, path, search="shelter")
    for params in ({"page": 1}, {"per_page": 5}):
        _assert_problem(client.get(path, params={"format": "ndjson", **params}), 400)
    _assert_problem(client.get(path, params={"format": "xml"}), 422)


def test_terms_taxonomy_id(client: TestClient, session: Session, taxonomy_loaded: None) -> None:
    for taxonomy_id in (OURS, OE_ID):
        expected = {
            str(t.id)
            for t in session.exec(
                select(TaxonomyTerm).where(col(TaxonomyTerm.taxonomy_id) == taxonomy_id)
            )
        }
        served = _all_pages(client, TERMS, taxonomy_id=str(taxonomy_id))
        assert {t["id"] for t in served} == expected
        assert expected
    assert _all_pages(client, TERMS, taxonomy_id=str(uuid.uuid4())) == []
    _assert_problem(client.get(TERMS, params={"taxonomy_id": "nope"}), 422)


def test_terms_top_only(client: TestClient, session: Session, taxonomy_loaded: None) -> None:
    stored = _stored_terms(session)
    roots = {str(t.id) for t in stored if t.parent_id is None}
    assert {t["id"] for t in _all_pages(client, TERMS, top_only="true")} == roots
    assert {t["id"] for t in _all_pages(client, TERMS, top_only="false")} == {
        str(t.id) for t in stored
    }
    # top_level is ours: true as top_only=true, false for the terms that have a parent.
    assert {t["id"] for t in _all_pages(client, TERMS, top_level="true")} == roots
    assert {t["id"] for t in _all_pages(client, TERMS, top_level="false")} == {
        str(t.id) for t in stored if t.parent_id is not None
    }
    ours_roots = _all_pages(client, TERMS, top_only="true", taxonomy_id=str(OURS))
    assert sorted(t["code"] for t in ours_roots) == [
        t["code"] for t in sorted(SEED["terms"], key=lambda t: t["code"]) if not t["parent_code"]
    ]
    parent = next(t for t in stored if t.parent_id is None and t.taxonomy_id == OURS)
    for params in (
        {"top_only": "true", "top_level": "true"},
        {"top_only": "false", "top_level": "false"},
        {"top_only": "true", "parent_id": str(parent.id)},
        {"top_level": "true", "parent_code": parent.code},
    ):
        _assert_problem(client.get(TERMS, params=params), 400)


def _children(stored: list[TaxonomyTerm]) -> Iterator[tuple[uuid.UUID, set[str]]]:
    for parent in stored:
        yield parent.id, {str(t.id) for t in stored if t.parent_id == parent.id}


def test_terms_parent_id(client: TestClient, session: Session, taxonomy_loaded: None) -> None:
    stored = _stored_terms(session)
    with_children = 0
    for parent_id, children in _children(stored):
        served = _all_pages(client, TERMS, parent_id=str(parent_id))
        assert {t["id"] for t in served} == children
        assert all(t["parent_id"] == str(parent_id) for t in served)
        with_children += bool(children)
    assert with_children >= 4
    assert _all_pages(client, TERMS, parent_id=str(uuid.uuid4())) == []
    _assert_problem(client.get(TERMS, params={"parent_id": "nope"}), 422)
