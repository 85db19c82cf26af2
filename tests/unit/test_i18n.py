"""Accept-Language negotiation: Spanish by default, English when the caller prefers it."""

from __future__ import annotations

import pytest

from referral_net.api.i18n import negotiate_locale


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "es"),
        ("", "es"),
        ("en", "en"),
        ("EN", "en"),
        ("en-US", "en"),
        ("en-GB,en;q=0.9", "en"),
        ("es-GT", "es"),
        ("fr", "es"),
        ("fr-FR,de;q=0.8", "es"),
        ("*", "es"),
        ("fr, en;q=0.5", "en"),
        ("es;q=0.5, en;q=0.8", "en"),
        ("en;q=0.5, es;q=0.8", "es"),
        ("en-US,en;q=0.9,es;q=0.8", "en"),
        ("es, en", "es"),
        ("en, es", "en"),
        ("en;q=0.7, es;q=0.7", "en"),
        ("en;q=0", "es"),
        ("en;q=0, es;q=0", "es"),
        ("en;q=abc", "es"),
        ("en;q=2", "es"),
        ("mam, en;q=0.3", "en"),
        (" en-us ; q=0.9 ", "en"),
        (";;,,", "es"),
        ("en;level=1", "en"),
    ],
)
def test_negotiate_locale(header: str | None, expected: str) -> None:
    assert negotiate_locale(header) == expected


def test_only_a_bounded_number_of_entries_is_read() -> None:
    # English listed after the cap is ignored rather than scanned.
    header = ",".join(["fr;q=0.1"] * 100 + ["en"])
    assert negotiate_locale(header) == "es"
