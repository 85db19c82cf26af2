"""The taxonomy and its terms, read-only: thin HTTP layer over ``domain.taxonomy``."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Query

from referral_net.api.deps import SessionDep
from referral_net.api.i18n import ContentLocaleDep
from referral_net.api.pagination import PageDep
from referral_net.api.params import KnownQueryOnly
from referral_net.db.models import TaxonomyTerm
from referral_net.domain import taxonomy
from referral_net.errors import BadRequest
from referral_net.schemas.common import Page
from referral_net.schemas.taxonomy import TaxonomyRead, TaxonomyTermRead
from referral_net.vocab import Locale

router = APIRouter(prefix="/api/v1", tags=["taxonomy"])


def _term_read(
    term: TaxonomyTerm, parents: Mapping[uuid.UUID, str], locale: Locale
) -> TaxonomyTermRead:
    name, description = taxonomy.term_label(term, locale)
    return TaxonomyTermRead(
        id=term.id,
        code=term.code,
        name=name,
        description=description,
        parent_id=term.parent_id,
        parent_code=parents.get(term.parent_id) if term.parent_id else None,
        taxonomy=term.taxonomy,
        taxonomy_id=term.taxonomy_id,
        language=locale,
        term_uri=term.term_uri,
        open_eligibility=term.open_eligibility,
    )


@router.get(
    "/taxonomies",
    summary="List taxonomies",
    response_model=Page[TaxonomyRead],
    dependencies=[KnownQueryOnly],
)
def list_taxonomies(session: SessionDep, page: PageDep) -> Page[TaxonomyRead]:
    """Taxonomies ordered by name, paginated (HSDS envelope)."""
    rows, total = taxonomy.list_taxonomies(session=session, offset=page.offset, limit=page.per_page)
    items = [TaxonomyRead.model_validate(row, from_attributes=True) for row in rows]
    return Page[TaxonomyRead].build(items, total=total, page=page.page, per_page=page.per_page)


@router.get("/taxonomies/{taxonomy_id}", summary="Read a taxonomy", response_model=TaxonomyRead)
def read_taxonomy(taxonomy_id: uuid.UUID, session: SessionDep) -> TaxonomyRead:
    """One taxonomy."""
    row = taxonomy.get_taxonomy(session=session, taxonomy_id=taxonomy_id)
    return TaxonomyRead.model_validate(row, from_attributes=True)


@router.get(
    "/taxonomy_terms",
    summary="List taxonomy terms",
    response_model=Page[TaxonomyTermRead],
    dependencies=[KnownQueryOnly],
)
def list_taxonomy_terms(
    session: SessionDep,
    locale: ContentLocaleDep,
    page: PageDep,
    taxonomy_id: uuid.UUID | None = None,
    parent_id: Annotated[
        uuid.UUID | None, Query(description="Only the direct children of this term.")
    ] = None,
    parent_code: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Only the direct children of the term with this code.",
            examples=["protection"],
        ),
    ] = None,
    top_level: Annotated[
        bool | None, Query(description="true: only top-level terms; false: only the others.")
    ] = None,
    search: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Text in the code, name or description (any language, accents ignored).",
        ),
    ] = None,
) -> Page[TaxonomyTermRead]:
    """Taxonomy terms ordered by code, paginated, labelled in the negotiated language."""
    if parent_id is not None and parent_code is not None:
        raise BadRequest("Give parent_id or parent_code, not both.")
    if top_level is True and (parent_id is not None or parent_code is not None):
        raise BadRequest("top_level=true cannot be combined with a parent.")
    rows, total = taxonomy.list_terms(
        session=session,
        offset=page.offset,
        limit=page.per_page,
        taxonomy_id=taxonomy_id,
        parent_id=parent_id,
        parent_code=parent_code,
        top_level=top_level,
        search=search,
    )
    parents = taxonomy.parent_codes(session=session, terms=rows)
    items = [_term_read(row, parents, locale) for row in rows]
    return Page[TaxonomyTermRead].build(items, total=total, page=page.page, per_page=page.per_page)


@router.get(
    "/taxonomy_terms/{term_id}", summary="Read a taxonomy term", response_model=TaxonomyTermRead
)
def read_taxonomy_term(
    term_id: uuid.UUID, session: SessionDep, locale: ContentLocaleDep
) -> TaxonomyTermRead:
    """One taxonomy term, labelled in the negotiated language."""
    term = taxonomy.get_term(session=session, term_id=term_id)
    parents = taxonomy.parent_codes(session=session, terms=[term])
    return _term_read(term, parents, locale)
