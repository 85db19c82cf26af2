"""Text folding for search: lower case, no accents, single spaces. Pure."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable


def fold(text: str) -> str:
    """Fold text so that 'Psicológica' and 'psicologica' compare equal."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.split())


def search_document(parts: Iterable[str | None]) -> str:
    """The folded text a record is searched by."""
    return fold(" ".join(p for p in parts if p))
