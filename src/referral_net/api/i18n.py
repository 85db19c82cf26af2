"""Response language: Spanish by default, English on request through ``Accept-Language``.

``LocaleDep`` is the negotiated locale; ``ContentLocaleDep`` also sets ``Content-Language``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Response

from referral_net.vocab import DEFAULT_LOCALE, LOCALES, Locale

# A header is client-controlled: look at a bounded number of entries so that a hostile header
# cannot make negotiation expensive. Real browsers send fewer than ten.
_MAX_ENTRIES = 32


def _quality(params: list[str]) -> float | None:
    """The q-value among a range's parameters (1 when absent), or None when it is malformed."""
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() != "q":
            continue
        try:
            q = float(value.strip())
        except ValueError:
            return None
        # RFC 9110 allows 0..1; anything else is a broken header entry, not a preference.
        return q if 0.0 <= q <= 1.0 else None
    return 1.0


def negotiate_locale(accept_language: str | None) -> Locale:
    """Pick the supported locale the caller prefers most; Spanish when nothing matches."""
    if not accept_language:
        return DEFAULT_LOCALE
    best: Locale = DEFAULT_LOCALE
    best_q = 0.0
    for entry in accept_language.split(",")[:_MAX_ENTRIES]:
        tag, *params = entry.split(";")
        primary = tag.strip().lower().split("-", 1)[0]
        q = _quality(params)
        if q is None or q <= 0.0:
            continue
        if primary == "*":
            # "Anything" is satisfied by the default language.
            candidate: Locale = DEFAULT_LOCALE
        elif primary in LOCALES:
            candidate = "en" if primary == "en" else "es"
        else:
            continue
        # Strictly greater: on equal weights the range listed first wins, as clients intend.
        if q > best_q:
            best, best_q = candidate, q
    return best


_ACCEPT_LANGUAGE_DESCRIPTION = "Preferred language (es or en, with q-values); Spanish by default."
_ACCEPT_LANGUAGE_EXAMPLES = ["en-US,en;q=0.9,es;q=0.8"]


async def locale_dep(
    accept_language: Annotated[
        str | None,
        Header(description=_ACCEPT_LANGUAGE_DESCRIPTION, examples=_ACCEPT_LANGUAGE_EXAMPLES),
    ] = None,
) -> Locale:
    """The locale of the response, negotiated from the ``Accept-Language`` header."""
    return negotiate_locale(accept_language)


LocaleDep = Annotated[Locale, Depends(locale_dep)]


async def content_locale(response: Response, locale: LocaleDep) -> Locale:
    """The negotiated locale, also announced as the response's ``Content-Language``.

    For endpoints whose answer is labelled in that language; an error response carries no
    ``Content-Language`` (FastAPI copies a dependency's headers to successful responses only).
    """
    response.headers["Content-Language"] = locale
    return locale


ContentLocaleDep = Annotated[Locale, Depends(content_locale)]


def accept_language_parameter() -> dict[str, Any]:
    """The OpenAPI parameter ``LocaleDep`` declares, as FastAPI writes it, for a route that
    negotiates the locale itself (``negotiate_locale``) and so declares no dependency for it."""
    return {
        "name": "accept-language",
        "in": "header",
        "required": False,
        "schema": {
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "description": _ACCEPT_LANGUAGE_DESCRIPTION,
            "examples": _ACCEPT_LANGUAGE_EXAMPLES,
            "title": "Accept-Language",
        },
        "description": _ACCEPT_LANGUAGE_DESCRIPTION,
    }
