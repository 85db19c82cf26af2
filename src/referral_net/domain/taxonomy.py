"""The anti-trafficking taxonomy: loading it, labelling its terms, and linking records to it.

The taxonomy is small (tens of terms), so hierarchy questions (descendants, ancestors) are
answered in Python over one query of all terms: recursive SQL would need one dialect per backend
and buy nothing at this size.

Records are linked to terms through HSDS ``attribute`` rows with ``link_type = "category"``;
``link_entity`` names the kind of record (``"service"``, ...).
"""

from __future__ import annotations

import unicodedata
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import ColumnElement, delete, func
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from referral_net.db.models import Attribute, Taxonomy, TaxonomyTerm
from referral_net.errors import InvalidInput, NotFound, validation_errors
from referral_net.resources import resource_path
from referral_net.vocab import Locale

CATEGORY_LINK_TYPE = "category"
SEED_RELATIVE_PATH = "seed/taxonomy.json"


# --- the seed file ---------------------------------------------------------------------------


class _Localized(BaseModel):
    model_config = ConfigDict(extra="forbid")

    es: str = Field(min_length=1)
    en: str = Field(min_length=1)


class _TermIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    code: str = Field(min_length=1, max_length=200)
    parent_code: str | None = None
    name: _Localized
    description: _Localized
    open_eligibility: dict[str, Any] | None = None


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


def load_taxonomy(*, session: Session, path: Path | None = None) -> int:
    """Insert or update the taxonomy and its terms from a JSON file; returns the term count."""
    data = _read_file(path or default_taxonomy_path())
    levels = _by_depth(data.terms)

    spec = data.taxonomy
    taxonomy = session.get(Taxonomy, spec.id) or Taxonomy(id=spec.id, name=spec.name)
    taxonomy.name = spec.name
    taxonomy.description = spec.description
    taxonomy.uri = spec.uri
    taxonomy.version = spec.version
    session.add(taxonomy)
    session.flush()

    stored = list(
        session.exec(select(TaxonomyTerm).where(col(TaxonomyTerm.taxonomy_id) == taxonomy.id))
    )
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
            term.taxonomy_id = taxonomy.id
            term.language = "es"
            term.term_uri = f"{base_uri}/{item.code}" if base_uri else None
            term.translations = {"en": {"name": item.name.en, "description": item.description.en}}
            term.open_eligibility = item.open_eligibility
            session.add(term)
            ids_by_code[item.code] = term.id
        # One flush per level: PostgreSQL checks parent_id at once, and the unit of work would
        # otherwise be free to emit updates of existing children before inserts of new parents.
        session.flush()
    session.commit()
    return len(data.terms)


def count_terms(*, session: Session) -> int:
    """How many taxonomy terms are stored."""
    return int(session.exec(select(func.count()).select_from(TaxonomyTerm)).one())


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


# --- codes and the hierarchy -----------------------------------------------------------------


@dataclass(frozen=True)
class _Hierarchy:
    id_by_code: dict[str, uuid.UUID]
    code_by_id: dict[uuid.UUID, str]
    children: dict[uuid.UUID, list[uuid.UUID]]


def _hierarchy(session: Session) -> _Hierarchy:
    rows = session.exec(
        select(col(TaxonomyTerm.id), col(TaxonomyTerm.code), col(TaxonomyTerm.parent_id))
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
        for term in session.exec(select(TaxonomyTerm).where(col(TaxonomyTerm.code).in_(wanted)))
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
    if not grouped:
        return grouped
    rows = session.exec(
        select(col(Attribute.link_id), TaxonomyTerm)
        .join(TaxonomyTerm, col(TaxonomyTerm.id) == col(Attribute.taxonomy_term_id))
        .where(*_category_links_of(link_entity, list(grouped)))
        .order_by(col(TaxonomyTerm.code), col(Attribute.link_id))
    )
    for link_id, term in rows:
        grouped[link_id].append(term)
    return grouped


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
    """A subquery of the ids of records linked to a term (by id) or to one of its descendants."""
    hierarchy = _hierarchy(session)
    if term_id not in hierarchy.code_by_id:
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
    return _linked_to(link_entity, _subtree_ids(hierarchy, [term_id]))


# --- reading the taxonomy --------------------------------------------------------------------


def list_taxonomies(*, session: Session, offset: int, limit: int) -> tuple[list[Taxonomy], int]:
    """One page of taxonomies ordered by name, and the total."""
    total = int(session.exec(select(func.count()).select_from(Taxonomy)).one())
    rows = session.exec(
        select(Taxonomy).order_by(col(Taxonomy.name), col(Taxonomy.id)).offset(offset).limit(limit)
    ).all()
    return list(rows), total


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


def _fold(text: str) -> str:
    """Case- and accent-insensitive form, so that "proteccion" finds "Protección"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def _matches(term: TaxonomyTerm, needle: str) -> bool:
    texts = [term.code or "", term.name, term.description]
    for translation in (term.translations or {}).values():
        if isinstance(translation, dict):
            texts.extend(str(v) for v in translation.values() if isinstance(v, str))
    return any(needle in _fold(text) for text in texts)


def list_terms(
    *,
    session: Session,
    offset: int,
    limit: int,
    taxonomy_id: uuid.UUID | None = None,
    parent_id: uuid.UUID | None = None,
    parent_code: str | None = None,
    top_level: bool | None = None,
    search: str | None = None,
) -> tuple[list[TaxonomyTerm], int]:
    """One page of terms ordered by code, filtered, and the total.

    ``parent_id``/``parent_code`` give the direct children of one term; ``top_level`` true gives
    the roots, false every other term. ``search`` looks in codes, names and descriptions in every
    language, ignoring case and accents.
    """
    query = select(TaxonomyTerm)
    if taxonomy_id is not None:
        query = query.where(col(TaxonomyTerm.taxonomy_id) == taxonomy_id)
    if parent_code is not None:
        parent = session.exec(
            select(TaxonomyTerm).where(col(TaxonomyTerm.code) == parent_code)
        ).first()
        if parent is None:
            raise _unknown_codes([parent_code], [parent_code], field="parent_code")
        query = query.where(col(TaxonomyTerm.parent_id) == parent.id)
    if parent_id is not None:
        query = query.where(col(TaxonomyTerm.parent_id) == parent_id)
    if top_level is True:
        query = query.where(col(TaxonomyTerm.parent_id).is_(None))
    elif top_level is False:
        query = query.where(col(TaxonomyTerm.parent_id).is_not(None))
    query = query.order_by(col(TaxonomyTerm.code), col(TaxonomyTerm.id))
    if search:
        # Accent folding is not portable SQL (SQLite has no unaccent); the taxonomy is small
        # enough to filter in Python before paginating.
        needle = _fold(search.strip())
        matching = [term for term in session.exec(query) if _matches(term, needle)]
        return matching[offset : offset + limit], len(matching)
    total = int(session.exec(select(func.count()).select_from(query.subquery())).one())
    return list(session.exec(query.offset(offset).limit(limit)).all()), total


def parent_codes(*, session: Session, terms: Sequence[TaxonomyTerm]) -> dict[uuid.UUID, str]:
    """The codes of the given terms' parents, by parent id, in one query."""
    ids = {term.parent_id for term in terms if term.parent_id is not None}
    if not ids:
        return {}
    rows = session.exec(
        select(col(TaxonomyTerm.id), col(TaxonomyTerm.code)).where(col(TaxonomyTerm.id).in_(ids))
    )
    return {term_id: code for term_id, code in rows if code is not None}
