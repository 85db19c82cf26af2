"""Request and response models of needs matching.

The request is a need profile that identifies nobody: no name, document number, phone or
free-text story is accepted, and unknown fields are refused.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, model_validator

from referral_net.schemas.common import StrictModel
from referral_net.schemas.search import SearchLocation
from referral_net.validation import (
    LANGUAGE_CODE_CHARACTERS,
    check_place_in_country,
    normalize_language_code,
)
from referral_net.vocab import Gender

Urgency = Literal["emergency", "soon", "routine"]
GenderIdentity = Gender
MobilityNeed = Literal["wheelchair", "reduced_mobility"]
SensoryNeed = Literal["deaf", "hard_of_hearing", "blind", "low_vision"]
LanguageCode = Annotated[
    str,
    Field(
        min_length=2,
        max_length=3,
        examples=["mam"],
        json_schema_extra={"pattern": LANGUAGE_CODE_CHARACTERS},
    ),
    AfterValidator(normalize_language_code),
]


class NeedIn(StrictModel):
    """One need: a taxonomy code and how urgent it is."""

    code: str = Field(
        min_length=1, max_length=200, examples=["protection.shelter.children_adolescents"]
    )
    urgency: Urgency = Field(default="routine", examples=["emergency"])


class PersonLocation(StrictModel):
    """Where the person is: a point, or a municipality (its representative point).

    A point outside Guatemala is refused unless ``outside_country`` is true (as for locations).
    """

    latitude: float | None = Field(default=None, ge=-90, le=90, examples=[15.3197])
    longitude: float | None = Field(default=None, ge=-180, le=180, examples=[-91.4710])
    municipality: str | None = Field(default=None, pattern=r"^\d{4}$", examples=["1301"])
    outside_country: bool = Field(
        default=False,
        description="The point lies outside Guatemala on purpose (e.g. a person about to be "
        "returned); the answer then says so.",
    )

    @model_validator(mode="after")
    def _one_way(self) -> PersonLocation:
        has_point = self.latitude is not None or self.longitude is not None
        if has_point and (self.latitude is None or self.longitude is None):
            raise ValueError("latitude and longitude go together")
        if has_point == (self.municipality is not None):
            raise ValueError("give either latitude/longitude or municipality")
        if self.latitude is not None and self.longitude is not None:
            check_place_in_country(
                self.latitude, self.longitude, allow_outside_country=self.outside_country
            )
        return self


class MatchRequest(StrictModel):
    """A need profile: needs, optional traits and optional limits. Identifies nobody."""

    location: PersonLocation
    needs: list[NeedIn] = Field(min_length=1, max_length=8)
    age: int | None = Field(default=None, ge=0, le=120, examples=[16])
    is_minor: bool | None = Field(default=None, description="When the exact age is unknown.")
    gender: GenderIdentity | None = Field(default=None, examples=["woman"])
    lgbtiq: bool = False
    languages: list[LanguageCode] = Field(
        default_factory=list,
        max_length=5,
        description="ISO 639-3, preferred first.",
        examples=[["mam", "spa"]],
    )
    accompanying_children: int = Field(default=0, ge=0, le=20)
    mobility_needs: list[MobilityNeed] = Field(default_factory=list, max_length=2)
    sensory_needs: list[SensoryNeed] = Field(default_factory=list, max_length=4)
    migrant: bool | None = Field(default=None, description="Never excludes anyone.")
    max_distance_km: float | None = Field(default=None, gt=0, le=500, examples=[50])
    open_now: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> MatchRequest:
        codes = [need.code for need in self.needs]
        if len(set(codes)) != len(codes):
            raise ValueError("each need may appear only once")
        if self.age is not None and self.is_minor is not None and self.is_minor != (self.age < 18):
            raise ValueError("is_minor contradicts age")
        return self


class ExcludedCount(BaseModel):
    """How many services were left out for one reason."""

    reason: str = Field(examples=["minors_only"])
    count: int = Field(examples=[4])
    label: str = Field(examples=["4 excluidos: atiende solo a menores de edad"])


class Proposal(BaseModel):
    """One proposed service at one location, with its score and the reasons."""

    rank: int = Field(examples=[1])
    score: float = Field(examples=[0.82])
    components: dict[str, float] = Field(examples=[{"distance": 0.7, "language": 1.0}])
    reasons: list[str] = Field(examples=[["habla mam", "a 12 km", "abierto 24 h"]])
    cautions: list[str] = Field(default_factory=list)
    beyond_limit: bool = False
    covers_area: bool = Field(
        default=False, description="The service's area contains the person's place."
    )
    service_at_location_id: uuid.UUID | None = None
    service_id: uuid.UUID
    service_name: str = Field(examples=["Albergue para adolescentes (ejemplo)"])
    organization_id: uuid.UUID
    organization_name: str = Field(examples=["Refugio de la Niñez (ejemplo)"])
    distance_m: float = Field(examples=[12034.5])
    location: SearchLocation


class NeedMatch(BaseModel):
    """The ranking for one need."""

    code: str = Field(examples=["protection.shelter.children_adolescents"])
    urgency: Urgency
    status: Literal["in_range", "beyond_limit", "none_eligible"] = Field(examples=["in_range"])
    message: str | None = None
    eligible_count: int = Field(examples=[3])
    out_of_range_count: int = 0
    excluded: list[ExcludedCount] = Field(default_factory=list)
    proposals: list[Proposal] = Field(default_factory=list)


class PlanStep(BaseModel):
    """One place to go in the referral plan and the needs it covers."""

    organization_id: uuid.UUID
    organization_name: str = Field(examples=["Refugio de la Niñez (ejemplo)"])
    location_id: uuid.UUID
    distance_m: float = Field(examples=[12034.5])
    need_codes: list[str] = Field(examples=[["protection.shelter.children_adolescents"]])
    service_ids: list[uuid.UUID]


class Plan(BaseModel):
    """The smallest set of providers covering all needs."""

    steps: list[PlanStep]
    provider_count: int = Field(examples=[2])
    location_count: int = Field(examples=[2])
    total_distance_m: float = Field(examples=[20500.0])
    total_score: float = Field(examples=[3.4])
    uncovered: list[str] = Field(default_factory=list)
    summary: str = Field(examples=["2 proveedores cubren las 5 necesidades."])


class MatchResponse(BaseModel):
    """Rankings per need, the referral plan, and warnings about the profile."""

    needs: list[NeedMatch]
    plan: Plan
    warnings: list[str] = Field(default_factory=list)
    outside_country: bool = Field(
        default=False,
        description="The person's place lies outside Guatemala (allowed by "
        "location.outside_country); a warning says so too.",
    )
    evaluated_at: str = Field(examples=["2026-11-29T10:00:00+00:00"])
