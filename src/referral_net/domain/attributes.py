"""Writing a record's categories: as codes (the profile's ``categories``) or as HSDS ``attribute``
records, each attribute keeping its id.

A record's categories are ``attribute`` rows linking it to terms of our taxonomy (see
``taxonomy``). A write may give them as category codes, as HSDS attributes, or both (then both
must name the same terms). Attributes pointing at Open Eligibility terms are derived on read from
the categories (``nested.attributes``): a write may send them back as they would be derived, and
a 422 names any other. Everything is checked by :func:`plan`, before the write begins; then
:func:`write` stores the plan.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session, col, select

from referral_net.db.models import Attribute, TaxonomyTerm
from referral_net.domain import taxonomy
from referral_net.domain.common import CHOSEN_ID_MESSAGE, field_error, same_as_served
from referral_net.errors import Conflict
from referral_net.schemas.directory import AttributeIn, CategoryIn
from referral_net.schemas.nested import AttributeTermRead
from referral_net.vocab import LOCALES

_FIELD = "body.attributes"


@dataclass(frozen=True)
class CategoryLink:
    """One category of a record, as its ``attribute`` row will hold it."""

    attribute_id: uuid.UUID
    term: TaxonomyTerm
    value: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class _Derived:
    """An Open Eligibility attribute of the request: checked against the derivation."""

    index: int
    item: AttributeIn
    term: TaxonomyTerm


def derived_attribute_id(link_id: uuid.UUID, term_id: uuid.UUID) -> uuid.UUID:
    """The id of the Open Eligibility attribute derived for a record (as ``nested`` makes it)."""
    return uuid.uuid5(link_id, f"open-eligibility:{term_id}")


def _current(session: Session, link_entity: str, link_id: uuid.UUID) -> list[Attribute]:
    return list(
        session.exec(
            select(Attribute).where(
                col(Attribute.link_entity) == link_entity,
                col(Attribute.link_id) == link_id,
                col(Attribute.link_type) == taxonomy.CATEGORY_LINK_TYPE,
            )
        )
    )


def _from_categories(
    session: Session, categories: Sequence[CategoryIn], current: Sequence[Attribute]
) -> list[CategoryLink]:
    """Links for category codes: a term the record already has keeps its attribute."""
    terms = taxonomy.resolve_codes(session=session, codes=[item.code for item in categories])
    by_code = {term.code: term for term in terms}
    for index, item in enumerate(categories):
        labels = {taxonomy.term_label(by_code[item.code], locale)[0] for locale in LOCALES}
        if item.name is not None and item.name not in labels:
            raise field_error(
                f"body.categories.{index}.name",
                "not this category's name; it is a label of the code: leave it out",
            )
    kept = {attribute.taxonomy_term_id: attribute for attribute in current}
    return [
        CategoryLink(
            attribute_id=kept[term.id].id if term.id in kept else uuid.uuid4(),
            term=term,
            value=kept[term.id].value if term.id in kept else None,
            label=kept[term.id].label if term.id in kept else None,
        )
        for term in terms
    ]


def _check_restated(item: AttributeIn, where: str, link_id: uuid.UUID, term: TaxonomyTerm) -> None:
    """The read-only parts of an attribute: its record and its term, as served."""
    if item.link_id is not None and item.link_id != link_id:
        raise field_error(f"{where}.link_id", "an attribute of this record links to its id")
    if "taxonomy_term" in item.model_fields_set and not same_as_served(
        AttributeTermRead,
        item.taxonomy_term,
        AttributeTermRead.model_validate(term, from_attributes=True),
    ):
        raise field_error(
            f"{where}.taxonomy_term", "read-only: send the term as GET serves it, or leave it out"
        )


def _named_ids(ours: Sequence[tuple[int, AttributeIn]]) -> set[uuid.UUID]:
    """The attribute ids the request names for our own terms; one named twice is a 422."""
    named: set[uuid.UUID] = set()
    for index, item in ours:
        if item.id is None:
            continue
        if item.id in named:
            raise field_error(f"{_FIELD}.{index}.id", "the same id is given twice")
        named.add(item.id)
    return named


def _terms(session: Session, attributes: Sequence[AttributeIn]) -> dict[uuid.UUID, TaxonomyTerm]:
    wanted = {item.taxonomy_term_id for item in attributes}
    found = session.exec(select(TaxonomyTerm).where(col(TaxonomyTerm.id).in_(wanted)))
    terms = {term.id: term for term in found}
    for index, item in enumerate(attributes):
        if item.taxonomy_term_id not in terms:
            raise field_error(f"{_FIELD}.{index}.taxonomy_term_id", "no such taxonomy term")
    return terms


def _from_attributes(
    session: Session,
    link_id: uuid.UUID,
    attributes: Sequence[AttributeIn],
    current: Sequence[Attribute],
    *,
    may_choose_ids: bool,
) -> tuple[list[CategoryLink], list[_Derived]]:
    """Links for HSDS attributes (ours), and the Open Eligibility ones to check."""
    terms = _terms(session, attributes)
    current_ids = {attribute.id for attribute in current}
    by_term = {attribute.taxonomy_term_id: attribute.id for attribute in current}
    ours = [
        (index, item)
        for index, item in enumerate(attributes)
        if terms[item.taxonomy_term_id].taxonomy_id != taxonomy.OPEN_ELIGIBILITY_TAXONOMY_ID
    ]
    named = _named_ids(ours)
    links: list[CategoryLink] = []
    derived: list[_Derived] = []
    seen: set[uuid.UUID] = set()
    for index, item in enumerate(attributes):
        term = terms[item.taxonomy_term_id]
        _check_restated(item, f"{_FIELD}.{index}", link_id, term)
        if term.taxonomy_id == taxonomy.OPEN_ELIGIBILITY_TAXONOMY_ID:
            derived.append(_Derived(index=index, item=item, term=term))
            continue
        if term.id in seen:
            continue  # the first of a repeated term counts, as for repeated codes
        seen.add(term.id)
        if item.id is not None and item.id not in current_ids and not may_choose_ids:
            raise field_error(f"{_FIELD}.{index}.id", CHOSEN_ID_MESSAGE)
        reused = by_term.get(term.id)
        attribute_id = item.id or (
            reused if reused is not None and reused not in named else uuid.uuid4()
        )
        named.add(attribute_id)
        links.append(CategoryLink(attribute_id, term, item.value, item.label))
    _refuse_taken(
        session, [link.attribute_id for link in links if link.attribute_id not in current_ids]
    )
    return links, derived


def _refuse_taken(session: Session, new_ids: Sequence[uuid.UUID]) -> None:
    """409 for a chosen attribute id that another record's attribute holds (never a move)."""
    if not new_ids:
        return
    taken = session.exec(select(col(Attribute.id)).where(col(Attribute.id).in_(new_ids))).first()
    if taken is not None:
        raise Conflict(
            f"Ids already used by other records in: {_FIELD}",
            errors=[
                {
                    "field": _FIELD,
                    "location": "body",
                    "message": "an attribute id belongs to another record's attribute",
                    "type": "conflict",
                }
            ],
        )


def _check_derived(
    session: Session, link_id: uuid.UUID, links: Sequence[CategoryLink], given: Sequence[_Derived]
) -> None:
    """Open Eligibility attributes are derived from the categories: each one given must be one
    that would be derived, with the derived id, value (its source category's) and no label."""
    if not given:
        return
    twins = taxonomy.open_eligibility_terms(session, [link.term.id for link in links])
    # As ``nested`` derives them: the first category (by code, then attribute id) per twin.
    sources: dict[uuid.UUID, CategoryLink] = {}
    for link in sorted(links, key=lambda link: (link.term.code or "", link.attribute_id.hex)):
        twin = twins.get(link.term.id)
        if twin is not None:
            sources.setdefault(twin.id, link)
    for derived in given:
        where = f"{_FIELD}.{derived.index}"
        source = sources.get(derived.term.id)
        if source is None:
            raise field_error(
                f"{where}.taxonomy_term_id",
                "Open Eligibility attributes are derived from the categories; not this one",
            )
        if derived.item.id is not None and derived.item.id != derived_attribute_id(
            link_id, derived.term.id
        ):
            raise field_error(f"{where}.id", "a derived attribute keeps its derived id")
        if derived.item.value != source.value or derived.item.label is not None:
            raise field_error(
                f"{where}.value", "a derived attribute repeats its category's value, no label"
            )


def plan(
    *,
    session: Session,
    link_entity: str,
    link_id: uuid.UUID,
    categories: Sequence[CategoryIn] | None,
    attributes: Sequence[AttributeIn] | None,
    may_choose_ids: bool,
) -> list[CategoryLink] | None:
    """The category links a write asks for, all checked (422, 409) before anything is written;
    None when the write leaves the categories alone."""
    if categories is None and attributes is None:
        return None
    current = _current(session, link_entity, link_id)
    from_codes = None if categories is None else _from_categories(session, categories, current)
    if attributes is None:
        return from_codes
    links, derived = _from_attributes(
        session, link_id, attributes, current, may_choose_ids=may_choose_ids
    )
    if from_codes is not None and {link.term.id for link in from_codes} != {
        link.term.id for link in links
    }:
        raise field_error(_FIELD, "attributes and categories name different categories")
    _check_derived(session, link_id, links, derived)
    return links


def write(
    *, session: Session, link_entity: str, link_id: uuid.UUID, links: Sequence[CategoryLink]
) -> None:
    """Make ``links`` the record's category attributes: rows kept by id, others deleted. Does not
    commit (the caller's write does)."""
    current = {attribute.id: attribute for attribute in _current(session, link_entity, link_id)}
    wanted = {link.attribute_id for link in links}
    for attribute_id, attribute in current.items():
        if attribute_id not in wanted:
            session.delete(attribute)
    for link in links:
        row = current.get(link.attribute_id)
        if row is None:
            row = Attribute(
                id=link.attribute_id,
                link_id=link_id,
                link_entity=link_entity,
                link_type=taxonomy.CATEGORY_LINK_TYPE,
                taxonomy_term_id=link.term.id,
            )
        row.taxonomy_term_id = link.term.id
        row.value = link.value
        row.label = link.label
        session.add(row)
