"""The anti-trafficking taxonomy: loading it, labelling its terms, and linking records to it.

The taxonomy is small (tens of terms), so hierarchy questions (descendants, ancestors) are
answered in Python over one query of all terms: recursive SQL would need one dialect per backend
and buy nothing at this size.

Records are linked to terms through HSDS ``attribute`` rows with ``link_type = "category"``;
``link_entity`` names the kind of record (``"service"``, ...).

A second taxonomy, Open Eligibility, holds the Open Eligibility terms our terms map onto (the
``open_eligibility`` of each seed term); the same loader stores it. Its terms are never
categories: category codes, filters and hierarchy questions read our own terms only, and no
``attribute`` row links a record to an Open Eligibility term. ``open_eligibility_term_ids`` says
which Open Eligibility term each of our terms corresponds to, for output that derives them.

A term's HSDS ``name``, ``description`` and ``language`` are its own, as stored: Spanish (``es``)
for our terms, English for Open Eligibility's. The English labels of our terms are in
``translations``; ``localized_term`` picks the label for a requested language.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import ColumnElement, delete, func, or_
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from referral_net.db.models import Attribute, Taxonomy, TaxonomyTerm
from referral_net.domain import common
from referral_net.errors import InvalidInput, NotFound, validation_errors
from referral_net.resources import resource_path
from referral_net.vocab import Locale

CATEGORY_LINK_TYPE = "category"
SEED_RELATIVE_PATH = "seed/taxonomy.json"

# Our own taxonomy (seed/taxonomy.json): its id is uuid5 of its URI, which the file states; the
# loader refuses a file with another id, so category codes always mean this taxonomy's terms.
OWN_TAXONOMY_URI = "https://referral-net.org/taxonomy/anti-trafficking"
OWN_TAXONOMY_ID = uuid.uuid5(uuid.NAMESPACE_URL, OWN_TAXONOMY_URI)
OPEN_ELIGIBILITY_NAME = "Open Eligibility"
OPEN_ELIGIBILITY_URI = "https://openeligibility.org"
# As for our own taxonomy, the id is uuid5 of the URI; a term's is uuid5 of its name within it.
OPEN_ELIGIBILITY_TAXONOMY_ID = uuid.uuid5(uuid.NAMESPACE_URL, OPEN_ELIGIBILITY_URI)
OPEN_ELIGIBILITY_VERSION = "2.0"
OPEN_ELIGIBILITY_LANGUAGE = "en"
OPEN_ELIGIBILITY_DESCRIPTION = (
    "The Open Eligibility human-services taxonomy (the Open Eligibility Project, Aunt Bertha, "
    "CC BY-SA 3.0): only the terms the referral-net anti-trafficking taxonomy maps onto, without "
    "their hierarchy (each term's description gives its place). Codes are the term ids of "
    "Open Eligibility 2.0; terms added in later editions, which publish no codes, use their name."
)


def open_eligibility_term_id(name: str) -> uuid.UUID:
    """The stable id of the Open Eligibility term with this name."""
    return uuid.uuid5(OPEN_ELIGIBILITY_TAXONOMY_ID, name)


def own_terms() -> ColumnElement[bool]:
    """A filter for our own taxonomy's terms: category codes and the hierarchy are theirs alone.

    An Open Eligibility code is no category code, and neither is a code of a taxonomy an HSDS
    import brought (its terms are linked as plain attributes): "own" is the anti-trafficking
    taxonomy's id, not "anything but Open Eligibility".
    """
    taxonomy_id = col(TaxonomyTerm.taxonomy_id)
    return or_(taxonomy_id.is_(None), taxonomy_id == OWN_TAXONOMY_ID)


# --- the seed file ---------------------------------------------------------------------------


class _Localized(BaseModel):
    model_config = ConfigDict(extra="forbid")

    es: str = Field(min_length=1)
    en: str = Field(min_length=1)


class _OpenEligibilityIn(BaseModel):
    """The Open Eligibility term a seed term maps onto."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=500)
    path: str = Field(min_length=1, description="Where the term sits in Open Eligibility.")


class _TermIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    code: str = Field(min_length=1, max_length=200)
    parent_code: str | None = None
    name: _Localized
    description: _Localized
    open_eligibility: _OpenEligibilityIn | None = None


class _TaxonomyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    name: str = Field(min_length=1, max_length=500)
    description: str = ""
    uri: str | None = Field(default=None, max_length=2000)
    version: str | None = Field(default=None, max_length=100)


class _TaxonomyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    taxonomy: _TaxonomyIn
    terms: list[_TermIn]


def default_taxonomy_path() -> Path:
    """The seed taxonomy: the copy shipped in the wheel, else the source checkout's."""
    return resource_path(SEED_RELATIVE_PATH)


def _read_file(path: Path) -> _TaxonomyFile:
    try:
        return _TaxonomyFile.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise InvalidInput(
            f"{path.name} is not a valid taxonomy file.", errors=validation_errors(exc.errors())
        ) from None


def _by_depth(terms: Sequence[_TermIn]) -> list[list[_TermIn]]:
    """Group terms by depth (roots first) so that every parent is written before its children."""
    by_code: dict[str, _TermIn] = {}
    for term in terms:
        if term.code in by_code:
            raise InvalidInput(f"duplicate taxonomy code: {term.code}")
        by_code[term.code] = term
    depths: dict[str, int] = {}
    for term in terms:
        chain: list[str] = []
        code: str | None = term.code
        while code is not None and code not in depths:
            if code in chain:
                raise InvalidInput(f"taxonomy codes form a cycle at {code}")
            if code not in by_code:
                raise InvalidInput(f"unknown parent_code: {code}")
            chain.append(code)
            code = by_code[code].parent_code
        depth = -1 if code is None else depths[code]
        for known in reversed(chain):
            depth += 1
            depths[known] = depth
    levels: list[list[_TermIn]] = [[] for _ in range(max(depths.values(), default=-1) + 1)]
    for term in terms:
        levels[depths[term.code]].append(term)
    return levels


def _open_eligibility_mappings(terms: Sequence[_TermIn]) -> list[_OpenEligibilityIn]:
    """The Open Eligibility terms the seed terms map onto, each once. A name given two codes or
    places, or a code given to two names, is refused: the file would say two things."""
    by_name: dict[str, _OpenEligibilityIn] = {}
    for term in terms:
        mapping = term.open_eligibility
        if mapping is not None and by_name.setdefault(mapping.name, mapping) != mapping:
            raise InvalidInput(f"Open Eligibility term {mapping.name!r} has two codes or paths")
    repeated = [code for code, n in Counter(m.code for m in by_name.values()).items() if n > 1]
    if repeated:
        raise InvalidInput(f"Open Eligibility code {repeated[0]!r} is given to two terms")
    return list(by_name.values())


def _store_taxonomy(session: Session, spec: _TaxonomyIn) -> Taxonomy:
    taxonomy = session.get(Taxonomy, spec.id) or Taxonomy(id=spec.id, name=spec.name)
    taxonomy.name = spec.name
    taxonomy.description = spec.description
    taxonomy.uri = spec.uri
    taxonomy.version = spec.version
    session.add(taxonomy)
    session.flush()
    return taxonomy


def _stored_terms(session: Session, taxonomy_id: uuid.UUID) -> list[TaxonomyTerm]:
    return list(
        session.exec(select(TaxonomyTerm).where(col(TaxonomyTerm.taxonomy_id) == taxonomy_id))
    )


def _store_own_terms(session: Session, spec: _TaxonomyIn, levels: list[list[_TermIn]]) -> None:
    stored = _stored_terms(session, spec.id)
    # Match by id first so that a renamed code keeps its term (and the records linked to it),
    # then by code so that terms loaded under other ids are updated, not duplicated.
    stored_by_id = {term.id: term for term in stored}
    stored_by_code = {term.code: term for term in stored}
    ids_by_code: dict[str, uuid.UUID] = {}
    base_uri = (spec.uri or "").rstrip("/")
    for level in levels:
        for item in level:
            term = stored_by_id.get(item.id) or stored_by_code.get(item.code)
            if term is None:
                term = TaxonomyTerm(id=item.id, name=item.name.es)
            term.code = item.code
            term.name = item.name.es
            term.description = item.description.es
            term.parent_id = ids_by_code[item.parent_code] if item.parent_code else None
            term.taxonomy = spec.name
            term.taxonomy_id = spec.id
            term.language = "es"
            term.term_uri = f"{base_uri}/{item.code}" if base_uri else None
            term.translations = {"en": {"name": item.name.en, "description": item.description.en}}
            mapping = item.open_eligibility
            term.open_eligibility = mapping.model_dump() if mapping is not None else None
            session.add(term)
            ids_by_code[item.code] = term.id
        # One flush per level: PostgreSQL checks parent_id at once, and the unit of work would
        # otherwise be free to emit updates of existing children before inserts of new parents.
        session.flush()


def _drop_unlinked(session: Session, terms: Sequence[TaxonomyTerm]) -> None:
    """Delete the terms no attribute links to (a linked one stays rather than break the link)."""
    if not terms:
        return
    linked = set(
        session.exec(
            select(col(Attribute.taxonomy_term_id)).where(
                col(Attribute.taxonomy_term_id).in_([term.id for term in terms])
            )
        )
    )
    for term in terms:
        if term.id not in linked:
            session.delete(term)
    session.flush()


def _store_open_eligibility(session: Session, mappings: Sequence[_OpenEligibilityIn]) -> None:
    """The Open Eligibility taxonomy with exactly the terms mapped onto (others are dropped)."""
    _store_taxonomy(
        session,
        _TaxonomyIn(
            id=OPEN_ELIGIBILITY_TAXONOMY_ID,
            name=OPEN_ELIGIBILITY_NAME,
            description=OPEN_ELIGIBILITY_DESCRIPTION,
            uri=OPEN_ELIGIBILITY_URI,
            version=OPEN_ELIGIBILITY_VERSION,
        ),
    )
    stored = _stored_terms(session, OPEN_ELIGIBILITY_TAXONOMY_ID)
    stored_by_id = {term.id: term for term in stored}
    stored_by_code = {term.code: term for term in stored}
    matched = {
        mapping: stored_by_id.get(open_eligibility_term_id(mapping.name))
        or stored_by_code.get(mapping.code)
        for mapping in mappings
    }
    kept = {term.id for term in matched.values() if term is not None}
    # Stale terms go first, so that a code they held is free for the term that now has it.
    _drop_unlinked(session, [term for term in stored if term.id not in kept])
    for mapping, found in matched.items():
        term = found or TaxonomyTerm(id=open_eligibility_term_id(mapping.name), name=mapping.name)
        term.code = mapping.code
        term.name = mapping.name
        term.description = mapping.path
        term.parent_id = None
        term.taxonomy = OPEN_ELIGIBILITY_NAME
        term.taxonomy_id = OPEN_ELIGIBILITY_TAXONOMY_ID
        term.language = OPEN_ELIGIBILITY_LANGUAGE
        term.term_uri = None
        term.translations = None
        term.open_eligibility = None
        session.add(term)
    session.flush()


def load_taxonomy(*, session: Session, path: Path | None = None) -> int:
    """Insert or update the taxonomy and its terms from a JSON file, and the Open Eligibility
    taxonomy with the terms they map onto; returns the count of the file's own terms.

    Idempotent: ids are the file's (and, for Open Eligibility, derived from names), so a second
    load changes nothing.
    """
    data = _read_file(path or default_taxonomy_path())
    if data.taxonomy.id != OWN_TAXONOMY_ID:
        raise InvalidInput(
            f"The taxonomy file must keep the anti-trafficking taxonomy's id ({OWN_TAXONOMY_ID},"
            f" uuid5 of {OWN_TAXONOMY_URI}): its terms are the category codes. Other taxonomies"
            " come in through `referral-net import hsds`."
        )
    levels = _by_depth(data.terms)
    mappings = _open_eligibility_mappings(data.terms)
    _store_taxonomy(session, data.taxonomy)
    _store_own_terms(session, data.taxonomy, levels)
    _store_open_eligibility(session, mappings)
    session.commit()
    return len(data.terms)


def count_terms(*, session: Session) -> int:
    """How many terms our own taxonomy has (Open Eligibility's are not counted)."""
    return int(
        session.exec(select(func.count()).select_from(TaxonomyTerm).where(own_terms())).one()
    )


# --- labels ----------------------------------------------------------------------------------


def term_label(term: TaxonomyTerm, locale: Locale) -> tuple[str, str]:
    """The term's (name, description) in the locale, falling back to Spanish field by field."""
    return localized_label(term.name, term.description, term.translations, locale)


def localized_label(
    name: str, description: str, translations: dict[str, Any] | None, locale: Locale
) -> tuple[str, str]:
    """A (name, description) pair in the locale from stored columns, falling back to Spanish."""
    if locale != "es":
        translation = (translations or {}).get(locale)
        if isinstance(translation, dict):
            translated_name = translation.get("name")
            translated_description = translation.get("description")
            return (
                translated_name if isinstance(translated_name, str) and translated_name else name,
                translated_description
                if isinstance(translated_description, str) and translated_description
                else description,
            )
    return name, description


@dataclass(frozen=True)
class LocalizedTerm:
    """A term's label in one language, and which language that is."""

    language: str | None
    name: str
    description: str


def localized_term(term: TaxonomyTerm, locale: Locale) -> LocalizedTerm:
    """The term's label in the locale where it has one (a translation, description falling back
    to the stored one), else its own label in its own language."""
    translation = (term.translations or {}).get(locale) if locale != term.language else None
    if isinstance(translation, dict) and translation.get("name"):
        name, description = localized_label(term.name, term.description, term.translations, locale)
        return LocalizedTerm(language=locale, name=name, description=description)
    return LocalizedTerm(language=term.language, name=term.name, description=term.description)


# --- codes and the hierarchy -----------------------------------------------------------------


@dataclass(frozen=True)
class _Hierarchy:
    id_by_code: dict[str, uuid.UUID]
    code_by_id: dict[uuid.UUID, str]
    children: dict[uuid.UUID, list[uuid.UUID]]


def _hierarchy(session: Session) -> _Hierarchy:
    rows = session.exec(
        select(col(TaxonomyTerm.id), col(TaxonomyTerm.code), col(TaxonomyTerm.parent_id)).where(
            own_terms()
        )
    ).all()
    children: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    id_by_code: dict[str, uuid.UUID] = {}
    code_by_id: dict[uuid.UUID, str] = {}
    for term_id, code, parent_id in rows:
        if code is not None:
            id_by_code[code] = term_id
            code_by_id[term_id] = code
        if parent_id is not None:
            children[parent_id].append(term_id)
    return _Hierarchy(id_by_code=id_by_code, code_by_id=code_by_id, children=children)


def _unknown_codes(given: Sequence[str], missing: Sequence[str], *, field: str) -> InvalidInput:
    """A 422 naming the field and the positions of the unknown codes, never the codes: rejected
    values are not echoed back (README, "Errors")."""
    unknown = set(missing)
    positions = [i for i, code in enumerate(given) if code in unknown and code not in given[:i]]
    return InvalidInput(
        f"{len(unknown)} unknown category code(s) in {field}: the codes are listed by "
        "GET /api/v1/taxonomy_terms",
        errors=[
            {
                "field": field,
                "message": f"item {position + 1}: not a known category code",
                "type": "unknown_code",
            }
            for position in positions
        ],
    )


def _subtree_ids(hierarchy: _Hierarchy, roots: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    seen: set[uuid.UUID] = set()
    stack = list(roots)
    while stack:
        term_id = stack.pop()
        if term_id in seen:  # guards against a cycle in hand-edited data
            continue
        seen.add(term_id)
        stack.extend(hierarchy.children.get(term_id, ()))
    return seen


def _descendant_ids(hierarchy: _Hierarchy, codes: Sequence[str]) -> set[uuid.UUID]:
    missing = [code for code in dict.fromkeys(codes) if code not in hierarchy.id_by_code]
    if missing:  # only the query filters come here: their parameter is `category`
        raise _unknown_codes(codes, missing, field="category")
    return _subtree_ids(hierarchy, [hierarchy.id_by_code[code] for code in codes])


def resolve_codes(
    *, session: Session, codes: Sequence[str], field: str = "categories"
) -> list[TaxonomyTerm]:
    """The terms with these codes, in the order given without repeats; unknown codes are a 422
    naming ``field``."""
    wanted = list(dict.fromkeys(codes))
    if not wanted:
        return []
    found = {
        term.code: term
        for term in session.exec(
            select(TaxonomyTerm).where(col(TaxonomyTerm.code).in_(wanted), own_terms())
        )
    }
    missing = [code for code in wanted if code not in found]
    if missing:
        raise _unknown_codes(codes, missing, field=field)
    return [found[code] for code in wanted]


def descendant_codes(*, session: Session, codes: Sequence[str]) -> frozenset[str]:
    """The codes together with the codes of all their descendants; unknown codes are 422."""
    hierarchy = _hierarchy(session)
    return frozenset(hierarchy.code_by_id[i] for i in _descendant_ids(hierarchy, codes))


def parent_map(*, session: Session) -> dict[str, str | None]:
    """Every term code mapped to its parent's code (None for a top-level term)."""
    hierarchy = _hierarchy(session)
    parents: dict[str, str | None] = dict.fromkeys(hierarchy.id_by_code)
    for parent_id, child_ids in hierarchy.children.items():
        for child_id in child_ids:
            child = hierarchy.code_by_id.get(child_id)
            if child is not None:
                parents[child] = hierarchy.code_by_id.get(parent_id)
    return parents


def ancestor_codes(code: str, parents: Mapping[str, str | None]) -> list[str]:
    """The ancestors of a code, nearest first (the code itself excluded)."""
    ancestors: list[str] = []
    current = parents.get(code)
    while current is not None and current != code and current not in ancestors:
        ancestors.append(current)
        current = parents.get(current)
    return ancestors


# --- records linked to categories ------------------------------------------------------------


def set_categories(
    *, session: Session, link_entity: str, link_id: uuid.UUID, codes: Sequence[str]
) -> None:
    """Replace the categories of one record; does not commit (the caller's write does)."""
    terms = resolve_codes(session=session, codes=codes)
    session.execute(
        delete(Attribute).where(
            col(Attribute.link_entity) == link_entity,
            col(Attribute.link_id) == link_id,
            col(Attribute.link_type) == CATEGORY_LINK_TYPE,
        )
    )
    for term in terms:
        session.add(
            Attribute(
                link_id=link_id,
                link_entity=link_entity,
                link_type=CATEGORY_LINK_TYPE,
                taxonomy_term_id=term.id,
            )
        )


def _category_links_of(link_entity: str, link_ids: list[uuid.UUID]) -> list[ColumnElement[bool]]:
    return [
        col(Attribute.link_entity) == link_entity,
        col(Attribute.link_type) == CATEGORY_LINK_TYPE,
        col(Attribute.link_id).in_(link_ids),
    ]


def categories_for(
    *, session: Session, link_entity: str, link_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[TaxonomyTerm]]:
    """The category terms of many records in one query, by record id, ordered by code."""
    grouped: dict[uuid.UUID, list[TaxonomyTerm]] = {link_id: [] for link_id in link_ids}
    stored = [
        link_id
        for link_id in grouped
        if not _fresh_categories(session, link_entity, link_id, grouped)
    ]
    if not stored:
        return grouped
    rows = session.exec(
        select(col(Attribute.link_id), TaxonomyTerm)
        .join(TaxonomyTerm, col(TaxonomyTerm.id) == col(Attribute.taxonomy_term_id))
        .where(*_category_links_of(link_entity, stored))
        .order_by(col(TaxonomyTerm.code), col(Attribute.link_id))
    )
    for link_id, term in rows:
        grouped[link_id].append(term)
    return grouped


def _fresh_categories(
    session: Session,
    link_entity: str,
    link_id: uuid.UUID,
    grouped: dict[uuid.UUID, list[TaxonomyTerm]],
) -> bool:
    """Fill ``grouped[link_id]`` from the session when the record is one it created fresh
    (``common.fresh_children``: its category links are the ones it added); False otherwise."""
    attributes = common.fresh_children(session, Attribute, "link_id", link_id)
    if attributes is None:
        return False
    terms = [
        session.get_one(TaxonomyTerm, attribute.taxonomy_term_id)
        for attribute in attributes
        if attribute.link_entity == link_entity and attribute.link_type == CATEGORY_LINK_TYPE
    ]
    grouped[link_id] = sorted(terms, key=lambda term: term.code or "")
    return True


def category_labels_for(
    *, session: Session, link_entity: str, link_ids: Sequence[uuid.UUID], locale: Locale
) -> dict[uuid.UUID, list[tuple[str, str]]]:
    """The (code, name) of the categories of many records in one query, ordered by code.

    The lean form of ``categories_for`` for result lists: four columns, no ORM objects.
    """
    grouped: dict[uuid.UUID, list[tuple[str, str]]] = {link_id: [] for link_id in link_ids}
    if not grouped:
        return grouped
    rows = session.execute(
        select(
            col(Attribute.link_id),
            col(TaxonomyTerm.code),
            col(TaxonomyTerm.name),
            col(TaxonomyTerm.translations),
        )
        .join(TaxonomyTerm, col(TaxonomyTerm.id) == col(Attribute.taxonomy_term_id))
        .where(*_category_links_of(link_entity, list(grouped)))
        .order_by(col(TaxonomyTerm.code), col(Attribute.link_id))
    )
    for link_id, code, name, translations in rows:
        label, _ = localized_label(name, "", translations, locale)
        grouped[link_id].append((code or "", label))
    return grouped


def _linked_to(link_entity: str, term_ids: set[uuid.UUID]) -> SelectOfScalar[uuid.UUID]:
    return (
        select(col(Attribute.link_id))
        .where(
            col(Attribute.link_entity) == link_entity,
            col(Attribute.link_type) == CATEGORY_LINK_TYPE,
            col(Attribute.taxonomy_term_id).in_(term_ids),
        )
        .distinct()
    )


def link_ids_with_categories(
    *, session: Session, link_entity: str, codes: Sequence[str]
) -> SelectOfScalar[uuid.UUID]:
    """A subquery of the ids of records in any of the categories or their descendants."""
    return _linked_to(link_entity, _descendant_ids(_hierarchy(session), codes))


def link_ids_with_term_id(
    *, session: Session, link_entity: str, term_id: uuid.UUID
) -> SelectOfScalar[uuid.UUID]:
    """A subquery of the ids of records linked to a term (by id) or to one of its descendants.

    For an Open Eligibility term: the records linked to one of our terms that maps onto it (as
    ``open_eligibility_term_ids`` says), so that the filter agrees with attributes derived from it.
    """
    hierarchy = _hierarchy(session)
    if term_id in hierarchy.code_by_id:
        return _linked_to(link_entity, _subtree_ids(hierarchy, [term_id]))
    term = session.get(TaxonomyTerm, term_id)
    if term is not None and term.taxonomy_id == OPEN_ELIGIBILITY_TAXONOMY_ID:
        mapped = open_eligibility_term_ids(session, list(hierarchy.code_by_id))
        return _linked_to(
            link_entity, {ours for ours, theirs in mapped.items() if theirs == term_id}
        )
    raise InvalidInput(
        "unknown taxonomy_term_id",
        errors=[
            {
                "field": "taxonomy_term_id",
                "message": "no such taxonomy term",
                "type": "unknown_term",
            }
        ],
    )


# --- Open Eligibility ------------------------------------------------------------------------


def _mapped_codes(session: Session) -> dict[uuid.UUID, str]:
    """Each of our terms with the Open Eligibility code it maps onto: its own mapping, else its
    nearest ancestor's (a narrower term lies within what its parent maps onto)."""
    rows = session.exec(
        select(
            col(TaxonomyTerm.id), col(TaxonomyTerm.parent_id), col(TaxonomyTerm.open_eligibility)
        ).where(own_terms())
    ).all()
    parents = {term_id: parent_id for term_id, parent_id, _ in rows}
    own = {
        term_id: mapping["code"]
        for term_id, _, mapping in rows
        if isinstance(mapping, dict) and isinstance(mapping.get("code"), str)
    }
    mapped: dict[uuid.UUID, str] = {}
    for term_id in parents:
        current: uuid.UUID | None = term_id
        seen: set[uuid.UUID] = set()
        while current is not None and current not in own and current not in seen:
            seen.add(current)  # guards against a cycle in hand-edited data
            current = parents.get(current)
        if current is not None and current in own:
            mapped[term_id] = own[current]
    return mapped


def open_eligibility_terms(
    session: Session, term_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, TaxonomyTerm]:
    """Our term id -> the Open Eligibility term it maps onto (its own mapping, else its nearest
    ancestor's). Ids that map onto none, or are not our terms, are left out. Two queries."""
    wanted = set(term_ids)
    if not wanted:
        return {}
    codes = {term_id: code for term_id, code in _mapped_codes(session).items() if term_id in wanted}
    if not codes:
        return {}
    targets = {
        term.code: term
        for term in session.exec(
            select(TaxonomyTerm).where(
                col(TaxonomyTerm.taxonomy_id) == OPEN_ELIGIBILITY_TAXONOMY_ID,
                col(TaxonomyTerm.code).in_(set(codes.values())),
            )
        )
    }
    return {term_id: targets[code] for term_id, code in codes.items() if code in targets}


def open_eligibility_term_ids(
    session: Session, term_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    """Our term id -> the id of the Open Eligibility term it maps onto (its own mapping, else its
    nearest ancestor's); ids that map onto none, or are not our terms, are left out.

    Several of our terms may map onto one Open Eligibility term: deduplicate the values when
    deriving one attribute per Open Eligibility term.
    """
    return {ours: term.id for ours, term in open_eligibility_terms(session, term_ids).items()}


# --- reading the taxonomy --------------------------------------------------------------------


def _fold(text: str) -> str:
    """Case- and accent-insensitive form, so that "proteccion" finds "Protección"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


_Row = TypeVar("_Row", Taxonomy, TaxonomyTerm)


def _page_of(
    session: Session,
    query: SelectOfScalar[_Row],
    *,
    offset: int,
    limit: int | None,
    keep: Callable[[_Row], bool] | None = None,
) -> tuple[list[_Row], int]:
    """One window of the query's rows (all from ``offset`` when ``limit`` is None) and the total,
    after ``keep`` where one is given."""
    if keep is not None:
        # Accent folding is not portable SQL (SQLite has no unaccent); taxonomies are small
        # enough to filter in Python before paginating.
        matching = [row for row in session.exec(query) if keep(row)]
        return matching[offset : None if limit is None else offset + limit], len(matching)
    total = int(session.exec(select(func.count()).select_from(query.subquery())).one())
    return list(session.exec(query.offset(offset).limit(limit)).all()), total


def _text_matcher(
    search: str | None, texts: Callable[[_Row], Iterable[str]]
) -> Callable[[_Row], bool] | None:
    """A row filter for ``search`` over the row's texts, ignoring case and accents; None for no
    search."""
    if not search:
        return None
    needle = _fold(search.strip())
    return lambda row: any(needle in _fold(text) for text in texts(row))


def _taxonomy_texts(taxonomy: Taxonomy) -> list[str]:
    return [taxonomy.name, taxonomy.description, taxonomy.uri or ""]


def _term_texts(term: TaxonomyTerm) -> list[str]:
    texts = [term.code or "", term.name, term.description]
    for translation in (term.translations or {}).values():
        if isinstance(translation, dict):
            texts.extend(str(v) for v in translation.values() if isinstance(v, str))
    return texts


def list_taxonomies(
    *, session: Session, offset: int = 0, limit: int | None = None, search: str | None = None
) -> tuple[list[Taxonomy], int]:
    """Taxonomies ordered by name (one page, or all when ``limit`` is None), and the total.

    ``search`` looks in names, descriptions and URIs, ignoring case and accents.
    """
    query = select(Taxonomy).order_by(col(Taxonomy.name), col(Taxonomy.id))
    return _page_of(
        session, query, offset=offset, limit=limit, keep=_text_matcher(search, _taxonomy_texts)
    )


def get_taxonomy(*, session: Session, taxonomy_id: uuid.UUID) -> Taxonomy:
    """One taxonomy, or NotFound."""
    taxonomy = session.get(Taxonomy, taxonomy_id)
    if taxonomy is None:
        raise NotFound("No such taxonomy.")
    return taxonomy


def get_term(*, session: Session, term_id: uuid.UUID) -> TaxonomyTerm:
    """One taxonomy term, or NotFound."""
    term = session.get(TaxonomyTerm, term_id)
    if term is None:
        raise NotFound("No such taxonomy term.")
    return term


def _term_filters(
    session: Session,
    *,
    taxonomy_id: uuid.UUID | None,
    parent_id: uuid.UUID | None,
    parent_code: str | None,
    top_level: bool | None,
) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    if taxonomy_id is not None:
        filters.append(col(TaxonomyTerm.taxonomy_id) == taxonomy_id)
    if parent_code is not None:
        parent = session.exec(
            select(TaxonomyTerm).where(col(TaxonomyTerm.code) == parent_code, own_terms())
        ).first()
        if parent is None:
            raise _unknown_codes([parent_code], [parent_code], field="parent_code")
        filters.append(col(TaxonomyTerm.parent_id) == parent.id)
    if parent_id is not None:
        filters.append(col(TaxonomyTerm.parent_id) == parent_id)
    if top_level is not None:
        parent_column = col(TaxonomyTerm.parent_id)
        filters.append(parent_column.is_(None) if top_level else parent_column.is_not(None))
    return filters


def list_terms(
    *,
    session: Session,
    offset: int = 0,
    limit: int | None = None,
    taxonomy_id: uuid.UUID | None = None,
    parent_id: uuid.UUID | None = None,
    parent_code: str | None = None,
    top_level: bool | None = None,
    search: str | None = None,
) -> tuple[list[TaxonomyTerm], int]:
    """Terms of every taxonomy ordered by code (one page, or all when ``limit`` is None),
    filtered, and the total.

    ``parent_id``/``parent_code`` give the direct children of one term (the code is one of ours);
    ``top_level`` true gives the roots, false every other term. ``search`` looks in codes, names
    and descriptions in every language, ignoring case and accents.
    """
    filters = _term_filters(
        session,
        taxonomy_id=taxonomy_id,
        parent_id=parent_id,
        parent_code=parent_code,
        top_level=top_level,
    )
    query = (
        select(TaxonomyTerm).where(*filters).order_by(col(TaxonomyTerm.code), col(TaxonomyTerm.id))
    )
    return _page_of(
        session, query, offset=offset, limit=limit, keep=_text_matcher(search, _term_texts)
    )


def parent_codes(*, session: Session, terms: Sequence[TaxonomyTerm]) -> dict[uuid.UUID, str]:
    """The codes of the given terms' parents, by parent id, in one query."""
    ids = {term.parent_id for term in terms if term.parent_id is not None}
    if not ids:
        return {}
    rows = session.exec(
        select(col(TaxonomyTerm.id), col(TaxonomyTerm.code)).where(col(TaxonomyTerm.id).in_(ids))
    )
    return {term_id: code for term_id, code in rows if code is not None}


def link_ids_with_taxonomy_id(
    *, session: Session, link_entity: str, taxonomy_id: uuid.UUID
) -> SelectOfScalar[uuid.UUID]:
    """A subquery of the ids of records with any term of this taxonomy (HSDS ``taxonomy_id``).

    Records are linked to our own terms; for the Open Eligibility taxonomy, a record counts when
    one of its terms maps onto an Open Eligibility term (the attributes derived from it). An
    unknown taxonomy is a 422, like an unknown term.
    """
    if session.get(Taxonomy, taxonomy_id) is None:
        raise InvalidInput(
            "unknown taxonomy_id",
            errors=[{"field": "taxonomy_id", "message": "no such taxonomy", "type": "unknown"}],
        )
    own = set(
        session.exec(
            select(col(TaxonomyTerm.id)).where(col(TaxonomyTerm.taxonomy_id) == taxonomy_id)
        )
    )
    if taxonomy_id == OPEN_ELIGIBILITY_TAXONOMY_ID:
        mapped = open_eligibility_term_ids(session, list(_hierarchy(session).code_by_id))
        own = {ours for ours, theirs in mapped.items() if theirs in own}
    return _linked_to(link_entity, own)
