"""Response models of the taxonomy (HSDS ``taxonomy`` and ``taxonomy_term``), localized."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, Field

_TAXONOMY_ID = "2f3d352f-fb2e-598d-be50-2c86c9005172"
_TERM_ID = "acae7f32-fdaf-59d6-88de-4e149e16e3b1"
_PARENT_ID = "e97f0e35-f195-5691-ac4a-894cb3aad76f"


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


class TaxonomyTermRead(BaseModel):
    """A taxonomy term (HSDS ``taxonomy_term``) with its name and description in one language."""

    id: uuid.UUID = Field(examples=[_TERM_ID])
    code: str | None = Field(examples=["protection.shelter.emergency"])
    name: str = Field(
        description="In the served language (see Content-Language).",
        examples=["Albergue de emergencia"],
    )
    description: str = Field(
        description="In the served language (see Content-Language).",
        examples=[
            "Acogida inmediata de corta estancia (días o semanas), disponible a cualquier hora."
        ],
    )
    parent_id: uuid.UUID | None = Field(default=None, examples=[_PARENT_ID])
    parent_code: str | None = Field(default=None, examples=["protection.shelter"])
    taxonomy: str | None = Field(
        default=None,
        description="The taxonomy's name (HSDS).",
        examples=["referral-net anti-trafficking taxonomy"],
    )
    taxonomy_id: uuid.UUID | None = Field(default=None, examples=[_TAXONOMY_ID])
    language: str = Field(description="The language name and description are in.", examples=["es"])
    term_uri: str | None = Field(
        default=None,
        examples=[
            "https://referral-net.org/taxonomy/anti-trafficking/protection.shelter.emergency"
        ],
    )
    open_eligibility: dict[str, Any] | None = Field(
        default=None,
        description="The closest Open Eligibility term, where one exists (profile extension).",
        examples=[{"code": None, "name": "Emergency Shelter"}],
    )
