"""The taxonomies and their terms, read-only: thin HTTP layer over ``domain.taxonomy``.

Every parameter the HSDS 3.0 ``openapi.json`` gives these paths is implemented: ``search``,
``page``, ``per_page`` and ``format`` on both lists, and ``taxonomy_id``, ``top_only`` and
``parent_id`` on ``/taxonomy_terms``. ``top_level`` and ``parent_code`` are ours. ``format=ndjson``
streams every matching record, one JSON object a line, without the page envelope (so ``page`` and
``per_page`` are refused beside it). Absent fields are left out, never ``null``, as HSDS wants.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlmodel import Session

from referral_net.api.deps import SessionDep
from referral_net.api.hsds import NDJSON_MEDIA_TYPE, check_ndjson_paging, ndjson_stream
from referral_net.api.i18n import ContentLocaleDep
from referral_net.api.pagination import PageDep
from referral_net.api.params import KnownQueryOnly
from referral_net.db.models import TaxonomyTerm
from referral_net.domain import taxonomy
from referral_net.errors import BadRequest
from referral_net.schemas.common import Page
from referral_net.schemas.taxonomy import (
    LocalizedTermLabel,
    OpenEligibilityLink,
    TaxonomyRead,
    TaxonomyTermRead,
    TermLabel,
)
from referral_net.vocab import Locale

router = APIRouter(prefix="/api/v1", tags=["taxonomy"])

ListFormat = Literal["json", "ndjson"]
FormatQuery = Annotated[
    ListFormat,
    Query(
        alias="format",
        description=(
            "json: one page in the HSDS envelope; ndjson: every matching record, one JSON object "
            "a line, without pagination."
        ),
    ),
]
_NDJSON_RESPONSE: dict[int | str, dict[str, object]] = {
    200: {
        "content": {NDJSON_MEDIA_TYPE: {"schema": {"type": "string"}, "example": '{"id": "..."}\n'}}
    }
}


def _streamed(
    records: Sequence[BaseModel], headers: Mapping[str, str] | None = None
) -> StreamingResponse:
    """The records as NDJSON (``api.hsds.ndjson_stream``; taxonomies are read whole)."""
    response = ndjson_stream(lambda offset, limit: records[offset : offset + limit])
    response.headers.update(headers or {})
    return response


# --- taxonomies ----------------------------------------------------------------------------------


@router.get(
    "/taxonomies",
    summary="List taxonomies",
    response_model=Page[TaxonomyRead],
    response_model_exclude_none=True,
    responses=_NDJSON_RESPONSE,
    dependencies=[KnownQueryOnly],
)
def list_taxonomies(
    request: Request,
    session: SessionDep,
    page: PageDep,
    search: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Text in the name, description or URI (case and accents ignored).",
            examples=["eligibility"],
        ),
    ] = None,
    output_format: FormatQuery = "json",
) -> Page[TaxonomyRead] | StreamingResponse:
    """Taxonomies ordered by name, paginated (HSDS envelope) or streamed as NDJSON."""
    if output_format == "ndjson":
        check_ndjson_paging(request)
    streamed = output_format == "ndjson"
    rows, total = taxonomy.list_taxonomies(
        session=session,
        offset=0 if streamed else page.offset,
        limit=None if streamed else page.per_page,
        search=search,
    )
    items = [TaxonomyRead.model_validate(row, from_attributes=True) for row in rows]
    if streamed:
        return _streamed(items)
    return Page[TaxonomyRead].build(items, total=total, page=page.page, per_page=page.per_page)


@router.get(
    "/taxonomies/{taxonomy_id}",
    summary="Read a taxonomy",
    response_model=TaxonomyRead,
    response_model_exclude_none=True,
)
def read_taxonomy(taxonomy_id: uuid.UUID, session: SessionDep) -> TaxonomyRead:
    """One taxonomy."""
    row = taxonomy.get_taxonomy(session=session, taxonomy_id=taxonomy_id)
    return TaxonomyRead.model_validate(row, from_attributes=True)


# --- terms ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TermFilters:
    """The filters of a term list, checked."""

    taxonomy_id: uuid.UUID | None
    parent_id: uuid.UUID | None
    parent_code: str | None
    top_level: bool | None
    search: str | None


def _top_level(top_only: bool | None, top_level: bool | None) -> bool | None:
    """HSDS ``top_only`` true asks for the roots, false for no restriction; our ``top_level``
    keeps its meaning (true the roots, false the others)."""
    if top_only is not None and top_level is not None:
        raise BadRequest("Give top_only or top_level, not both.")
    if top_only is not None:
        return True if top_only else None
    return top_level


def term_filters(
    taxonomy_id: Annotated[
        uuid.UUID | None, Query(description="Only the terms of this taxonomy (HSDS).")
    ] = None,
    parent_id: Annotated[
        uuid.UUID | None, Query(description="Only the direct children of this term (HSDS).")
    ] = None,
    parent_code: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Only the direct children of the term with this code.",
            examples=["protection"],
        ),
    ] = None,
    top_only: Annotated[
        bool | None,
        Query(description="HSDS: true gives only top-level terms (no parent); false, every term."),
    ] = None,
    top_level: Annotated[
        bool | None,
        Query(description="true: only top-level terms (as top_only=true); false: only the others."),
    ] = None,
    search: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Text in the code, name or description (any language, accents ignored).",
        ),
    ] = None,
) -> TermFilters:
    """The filters of ``/taxonomy_terms``; contradictory ones are a 400."""
    if parent_id is not None and parent_code is not None:
        raise BadRequest("Give parent_id or parent_code, not both.")
    roots = _top_level(top_only, top_level)
    if roots is True and (parent_id is not None or parent_code is not None):
        raise BadRequest("Top-level terms have no parent: top_only/top_level=true and a parent.")
    return TermFilters(
        taxonomy_id=taxonomy_id,
        parent_id=parent_id,
        parent_code=parent_code,
        top_level=roots,
        search=search,
    )


TermFiltersDep = Annotated[TermFilters, Depends(term_filters)]


def _term_reads(
    session: Session, terms: list[TaxonomyTerm], locale: Locale
) -> list[TaxonomyTermRead]:
    parents = taxonomy.parent_codes(session=session, terms=terms)
    mapped = taxonomy.open_eligibility_terms(session, [term.id for term in terms])
    return [_term_read(term, parents, mapped.get(term.id), locale) for term in terms]


def _term_read(
    term: TaxonomyTerm,
    parents: Mapping[uuid.UUID, str],
    open_eligibility: TaxonomyTerm | None,
    locale: Locale,
) -> TaxonomyTermRead:
    localized = taxonomy.localized_term(term, locale)
    return TaxonomyTermRead(
        id=term.id,
        code=term.code,
        name=term.name,
        description=term.description,
        parent_id=term.parent_id,
        taxonomy=term.taxonomy,
        taxonomy_id=term.taxonomy_id,
        language=term.language,
        term_uri=term.term_uri,
        parent_code=parents.get(term.parent_id) if term.parent_id else None,
        localized=LocalizedTermLabel(
            language=localized.language, name=localized.name, description=localized.description
        ),
        translations=_translations(term),
        open_eligibility=OpenEligibilityLink(
            taxonomy_term_id=open_eligibility.id,
            code=open_eligibility.code or open_eligibility.name,
            name=open_eligibility.name,
        )
        if open_eligibility is not None
        else None,
    )


def _translations(term: TaxonomyTerm) -> dict[str, TermLabel] | None:
    """The stored translations that are whole labels (hand-edited rows may hold less)."""
    labels = {
        language: TermLabel(name=label["name"], description=label.get("description") or "")
        for language, label in (term.translations or {}).items()
        if isinstance(label, dict) and isinstance(label.get("name"), str)
    }
    return labels or None


@router.get(
    "/taxonomy_terms",
    summary="List taxonomy terms",
    response_model=Page[TaxonomyTermRead],
    response_model_exclude_none=True,
    responses=_NDJSON_RESPONSE,
    dependencies=[KnownQueryOnly],
)
def list_taxonomy_terms(
    request: Request,
    session: SessionDep,
    locale: ContentLocaleDep,
    page: PageDep,
    filters: TermFiltersDep,
    output_format: FormatQuery = "json",
) -> Page[TaxonomyTermRead] | StreamingResponse:
    """Terms of every taxonomy ordered by code, paginated (HSDS envelope) or streamed as NDJSON;
    each in its own language, with its label in the negotiated one as ``localized``."""
    if output_format == "ndjson":
        check_ndjson_paging(request)
    streamed = output_format == "ndjson"
    rows, total = taxonomy.list_terms(
        session=session,
        offset=0 if streamed else page.offset,
        limit=None if streamed else page.per_page,
        taxonomy_id=filters.taxonomy_id,
        parent_id=filters.parent_id,
        parent_code=filters.parent_code,
        top_level=filters.top_level,
        search=filters.search,
    )
    items = _term_reads(session, rows, locale)
    if streamed:
        return _streamed(items, headers={"Content-Language": locale})
    return Page[TaxonomyTermRead].build(items, total=total, page=page.page, per_page=page.per_page)


@router.get(
    "/taxonomy_terms/{term_id}",
    summary="Read a taxonomy term",
    response_model=TaxonomyTermRead,
    response_model_exclude_none=True,
)
def read_taxonomy_term(
    term_id: uuid.UUID, session: SessionDep, locale: ContentLocaleDep
) -> TaxonomyTermRead:
    """One taxonomy term in its own language, with its label in the negotiated one."""
    term = taxonomy.get_term(session=session, term_id=term_id)
    return _term_reads(session, [term], locale)[0]
