"""The embeddable map's use cases: which sites may frame it, and what its filter panel offers.

The map itself reads the public API (search as GeoJSON, vector tiles) with the partner's key, so
what it shows is decided by the one visibility rule (``domain/access.py``) like every other
answer. This module decides only what the page around it needs:

- **who may frame it.** A page opened with an ``embed``-scoped key may be framed only by the
  key's ``allowed_origins`` (its ``frame-ancestors``); a key without that scope is refused,
  because a plain ``read`` key is a server's secret and must not sit in a public page. Without
  a key the page is the public map and any site may frame it (its data is the public's anyway).
- **what the filter panel offers:** the taxonomy's top two levels, the departments and the
  languages the network's services are known to use, each labelled in the page's language.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from referral_net.db.models import AdminArea, TaxonomyTerm
from referral_net.domain import keys
from referral_net.domain.languages import language_name
from referral_net.domain.taxonomy import own_terms, term_label
from referral_net.errors import Forbidden, InvalidInput
from referral_net.matching.explain import LANGUAGE_NAMES
from referral_net.vocab import Locale

EMBED_SCOPE = "embed"
TOP_CATEGORIES = ("protection", "prosecution", "prevention", "partnerships")
"""The four Ps: the taxonomy's roots, which colour the map's markers (in this order)."""


@dataclass(frozen=True)
class Choice:
    """One option of a filter: its code and its label in the page's language."""

    code: str
    label: str
    depth: int = 0


@dataclass(frozen=True)
class FilterChoices:
    """Everything the filter panel lists, labelled in one language."""

    categories: tuple[Choice, ...]
    top_categories: tuple[Choice, ...]
    departments: tuple[Choice, ...]
    languages: tuple[Choice, ...]


def frame_origins(*, session: Session, raw_key: str | None) -> tuple[str, ...] | None:
    """The origins that may frame the map opened with ``raw_key``; None (any site) without one.

    Unknown or revoked keys raise Unauthenticated (401) through ``keys.authenticate_key``; a
    key without the ``embed`` scope raises Forbidden (403).
    """
    if raw_key is None:
        return None
    key = keys.authenticate_key(session=session, raw=raw_key)
    if EMBED_SCOPE not in key.scopes:
        raise Forbidden(
            "This key may not be used in a web page: an embedded map needs a key with the "
            "embed scope, bound to the partner's sites (docs/embed.md)."
        )
    return tuple(key.allowed_origins)


def filter_choices(*, session: Session, locale: Locale) -> FilterChoices:
    """The filter panel's options in ``locale``: categories (roots and their children, in the
    taxonomy's order), departments (by name) and languages (by name)."""
    terms = session.exec(
        select(TaxonomyTerm).where(own_terms()).where(col(TaxonomyTerm.code).is_not(None))
    ).all()
    by_code = {term.code: term for term in terms if term.code}
    categories: list[Choice] = []
    tops: list[Choice] = []
    for root in TOP_CATEGORIES:
        term = by_code.get(root)
        if term is None:
            continue
        top = Choice(code=root, label=term_label(term, locale)[0])
        tops.append(top)
        categories.append(top)
        children = sorted(
            (t for t in terms if t.parent_id == term.id and t.code),
            key=lambda t: term_label(t, locale)[0].casefold(),
        )
        categories.extend(
            Choice(code=str(child.code), label=term_label(child, locale)[0], depth=1)
            for child in children
        )
    departments = session.exec(
        select(AdminArea.code, AdminArea.name).where(AdminArea.level == "department")
    ).all()
    return FilterChoices(
        categories=tuple(categories),
        top_categories=tuple(tops),
        departments=tuple(
            Choice(code=code, label=name) for code, name in sorted(departments, key=lambda d: d[1])
        ),
        languages=tuple(
            sorted(
                (Choice(code=code, label=language_name(code, locale)) for code in LANGUAGE_NAMES),
                key=lambda choice: choice.label.casefold(),
            )
        ),
    )


def check_choice(field: str, value: str | None, choices: tuple[Choice, ...]) -> str | None:
    """``value`` if it is one of ``choices`` (or None); else InvalidInput naming the field."""
    if value is None or any(choice.code == value for choice in choices):
        return value
    raise InvalidInput(f"{field}: unknown code {value!r}.")
