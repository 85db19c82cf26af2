"""Choosing a representation by ``f`` and by ``Accept`` with quality values (RFC 9110 12.5.1)."""

from __future__ import annotations

import pytest

from referral_net.api.negotiation import choose

OFFERED = {"json": "application/json", "geojson": "application/geo+json", "html": "text/html"}


@pytest.mark.parametrize(
    ("f", "accept", "expected"),
    [
        ("html", "application/geo+json", "html"),  # f wins over Accept
        (None, None, "json"),
        (None, "", "json"),
        (None, "*/*", "json"),  # a tie keeps the default
        (None, "application/geo+json", "geojson"),
        (None, "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "html"),
        (None, "application/json;q=0.4, application/geo+json;q=0.9", "geojson"),
        (None, "application/geo+json;q=0.1, application/*", "json"),
        (None, "application/*;q=0.5, application/geo+json;q=0", "json"),  # q=0: not wanted
        (None, "image/png", "json"),  # nothing offered is wanted: the default
        (None, "application/geo+json;q=abc, application/json;q=0.1", "json"),  # unreadable q
        (None, " , ;q=1, text/html ;Q=1", "html"),  # empty ranges skipped, Q case-insensitive
    ],
)
def test_choose(f: str | None, accept: str | None, expected: str) -> None:
    assert choose(OFFERED, f=f, accept=accept, default="json") == expected
