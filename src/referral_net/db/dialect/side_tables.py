"""The rows of the read model's side tables, computed once for both engines from the entries
``insert_search_entries`` receives (engine-independent, so it lives beside the dialects)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def category_rows(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One ``search_entry_category`` row per code of each entry, with the conditions every match
    has (listed, and a point for the audience) that a count reads from the side table alone."""
    rows: list[dict[str, Any]] = []
    for entry in entries:
        listed = bool(entry["listed"])
        public = listed and entry["public_geom_x"] is not None
        exact = listed and entry["exact_geom_x"] is not None
        rows.extend(
            {
                "code": code,
                "service_at_location_id": entry["service_at_location_id"],
                "listed_with_public_point": public,
                "listed_with_exact_point": exact,
            }
            for code in dict.fromkeys(entry["category_codes"])
        )
    return rows


def language_rows(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One ``search_entry_language`` row per language code of each entry."""
    return [
        {"code": code, "service_at_location_id": entry["service_at_location_id"]}
        for entry in entries
        for code in dict.fromkeys(entry["language_codes"])
    ]
