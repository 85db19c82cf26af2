"""Language display names for the ISO 639-3 codes the field uses most."""

from __future__ import annotations

import pycountry

# Mayan languages and Garifuna, as their speakers write them (pycountry's English names differ).
_LOCAL_NAMES = {
    "spa": "Español",
    "eng": "English",
    "quc": "K'iche'",
    "mam": "Mam",
    "kek": "Q'eqchi'",
    "cak": "Kaqchikel",
    "tzj": "Tz'utujil",
    "poc": "Poqomam",
    "ixl": "Ixil",
    "kjb": "Q'anjob'al",
    "knj": "Akateko",
    "jac": "Popti'",
    "cac": "Chuj",
    "acr": "Achi",
    "cab": "Garifuna",
}


def language_name(code: str) -> str:
    """The display name of an ISO 639-3 code (the code itself when unknown)."""
    if code in _LOCAL_NAMES:
        return _LOCAL_NAMES[code]
    found = pycountry.languages.get(alpha_3=code)
    return str(found.name) if found is not None else code
