"""Response models of the taxonomy (HSDS ``taxonomy`` and ``taxonomy_term``).

The HSDS fields of a term are the term's own: ``name``, ``description`` and ``language`` as
stored (Spanish for the anti-trafficking taxonomy, English for Open Eligibility), whatever the
request's ``Accept-Language``. The profile adds ``localized`` (the label in the negotiated
language, where the term has one), ``translations``, ``parent_code`` and ``open_eligibility``.
Absent fields are left out of the response, never ``null``.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

_TAXONOMY_ID = "2f3d352f-fb2e-598d-be50-2c86c9005172"
_TERM_ID = "acae7f32-fdaf-59d6-88de-4e149e16e3b1"
_PARENT_ID = "e97f0e35-f195-5691-ac4a-894cb3aad76f"
_OPEN_ELIGIBILITY_TERM_ID = "09b9a374-db7b-5e81-a1b1-14fd2530ec0a"


class TaxonomyRead(BaseModel):
    """A taxonomy (HSDS ``taxonomy``)."""

    id: uuid.UUID = Field(examples=[_TAXONOMY_ID])
    name: str = Field(examples=["referral-net anti-trafficking taxonomy"])
    description: str = Field(
        examples=["Taxonomía bilingüe (es/en) de servicios contra la trata de personas."]
    )
    uri: str | None = Field(
        default=None, examples=["https://referral-net.org/taxonomy/anti-trafficking"]
    )
    version: str | None = Field(default=None, examples=["1.0"])


class TermLabel(BaseModel):
    """A term's name and description in one language (profile extension)."""

    name: str = Field(examples=["Emergency shelter"])
    description: str = Field(
        examples=["Immediate short-stay accommodation (days or weeks), available at any hour."]
    )


class LocalizedTermLabel(TermLabel):
    """The term's label in the negotiated language, where it has one, else its own (profile
    extension); ``language`` says which it is."""

    language: str | None = Field(default=None, examples=["en"])


class OpenEligibilityLink(BaseModel):
    """The Open Eligibility term a term maps onto (profile extension)."""

    taxonomy_term_id: uuid.UUID = Field(
        description="The Open Eligibility term's id (a term of the Open Eligibility taxonomy).",
        examples=[_OPEN_ELIGIBILITY_TERM_ID],
    )
    code: str = Field(
        description="Its Open Eligibility 2.0 id, or its name for terms of later editions.",
        examples=["1135"],
    )
    name: str = Field(examples=["Emergency Shelter"])


class TaxonomyTermRead(BaseModel):
    """A taxonomy term (HSDS ``taxonomy_term``) in its own language, with profile extensions."""

    id: uuid.UUID = Field(examples=[_TERM_ID])
    code: str | None = Field(default=None, examples=["protection.shelter.emergency"])
    name: str = Field(
        description="The term's own name, in ``language`` (not the negotiated language).",
        examples=["Albergue de emergencia"],
    )
    description: str = Field(
        description="The term's own description, in ``language``.",
        examples=[
            "Acogida inmediata de corta estancia (días o semanas), disponible a cualquier hora."
        ],
    )
    parent_id: uuid.UUID | None = Field(default=None, examples=[_PARENT_ID])
    taxonomy: str | None = Field(
        default=None,
        description="The taxonomy's name (HSDS).",
        examples=["referral-net anti-trafficking taxonomy"],
    )
    taxonomy_id: uuid.UUID | None = Field(default=None, examples=[_TAXONOMY_ID])
    language: str | None = Field(
        default=None,
        description="The language the term's name and description are stored in.",
        examples=["es"],
    )
    term_uri: str | None = Field(
        default=None,
        examples=[
            "https://referral-net.org/taxonomy/anti-trafficking/protection.shelter.emergency"
        ],
    )
    parent_code: str | None = Field(
        default=None, description="The parent's code (profile extension).", examples=["protection"]
    )
    localized: LocalizedTermLabel = Field(
        description=(
            "The label in the negotiated language (Content-Language) where the term has one, "
            "else its own (profile extension)."
        )
    )
    translations: dict[str, TermLabel] | None = Field(
        default=None,
        description="The term's labels in other languages, by language (profile extension).",
    )
    open_eligibility: OpenEligibilityLink | None = Field(
        default=None,
        description=(
            "The Open Eligibility term this term maps onto: its own mapping, else its nearest "
            "ancestor's (profile extension)."
        ),
    )
