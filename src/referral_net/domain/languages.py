"""Language display names in the response's language (Spanish or English), by ISO 639-3 code.

A name is a label, like a category's: it follows ``Accept-Language``, so a Spanish reader sees
"inglés" and an English reader "English". The languages of the Western Highlands network come
from matching/explain.py's table (their speakers' spelling, shared with the match
explanations); any other code is named by pycountry's ISO 639-3 data and its Spanish catalogue.
"""

from __future__ import annotations

import gettext
from functools import cache

import pycountry

from referral_net.matching.explain import LANGUAGE_NAMES
from referral_net.vocab import Locale


@cache
def _spanish() -> gettext.NullTranslations:
    return gettext.translation("iso639-3", pycountry.LOCALES_DIR, languages=["es"], fallback=True)


def language_name(code: str, locale: Locale = "es", *, stored: str | None = None) -> str:
    """The display name of an ISO 639-3 code in ``locale``.

    ``stored`` (the record's own name) is used only for a code neither source knows; the code
    itself when there is none.
    """
    known = LANGUAGE_NAMES.get(code)
    if known is not None:
        return known[locale]
    found = pycountry.languages.get(alpha_3=code)
    if found is None:
        return stored or code
    english = str(found.name)
    if locale == "en":
        return english
    # Spanish writes language names in lower case ("francés"), as the table above does.
    spanish = _spanish().gettext(english)
    return spanish[:1].lower() + spanish[1:]
