"""Shared schema pieces: the HSDS page envelope and pagination parameters."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """The HSDS 3.0 list envelope."""

    total_items: int = Field(examples=[42])
    total_pages: int = Field(examples=[3])
    page_number: int = Field(examples=[1])
    size: int = Field(description="Items on this page.", examples=[20])
    first_page: bool = Field(examples=[True])
    last_page: bool = Field(examples=[False])
    empty: bool = Field(examples=[False])
    contents: list[T]

    @classmethod
    def build(cls, items: Sequence[T], *, total: int, page: int, per_page: int) -> Page[T]:
        """Wrap one page of items with the HSDS counters."""
        pages = max(1, math.ceil(total / per_page)) if per_page else 1
        return cls(
            total_items=total,
            total_pages=pages,
            page_number=page,
            size=len(items),
            first_page=page == 1,
            last_page=page >= pages,
            empty=len(items) == 0,
            contents=list(items),
        )


def _find_nul(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _find_nul(item, f"{path}.{key}" if path else str(key))
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _find_nul(item, f"{path}.{index}" if path else str(index))
            if found:
                return found
    return None


class StrictModel(BaseModel):
    """Base of request bodies: unknown fields are an error, never silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, data: Any) -> Any:
        # PostgreSQL text cannot hold NUL and SQLite would store it silently: refuse it on both.
        where = _find_nul(data, "")
        if where is not None:
            raise ValueError(f"text may not contain NUL characters (at {where})")
        return data


class PatchModel(StrictModel):
    """Base of partial updates: a field may be left out, but required fields cannot be nulled."""

    not_nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_null_for_required(self) -> Self:
        nulled = sorted(
            name
            for name in self.model_fields_set & self.not_nullable
            if getattr(self, name) is None
        )
        if nulled:
            raise ValueError(f"may not be null: {', '.join(nulled)}")
        return self


class FieldError(BaseModel):
    """One failing field of a validation problem."""

    field: str = Field(examples=["body.latitude"])
    location: str | None = Field(default=None, examples=["body"])
    message: str = Field(examples=["Value error, latitude and longitude look swapped"])
    type: str = Field(examples=["value_error"])


class ProblemDetails(BaseModel):
    """An RFC 9457 problem: every error of this API has this shape."""

    type: str = Field(examples=["urn:referral-net:problem:validation-error"])
    title: str = Field(examples=["Invalid input"])
    status: int = Field(examples=[422])
    detail: str = Field(examples=["Invalid values in: body.latitude"])
    instance: str | None = Field(default=None, examples=["/api/v1/locations"])
    errors: list[FieldError] | None = None


def _problem(description: str) -> dict[str, object]:
    return {
        "model": ProblemDetails,
        "description": description,
        "content": {"application/problem+json": {}},
    }


PROBLEM_RESPONSES: dict[int | str, dict[str, object]] = {
    400: _problem("Bad request: a query that makes no sense"),
    401: _problem("Authentication required"),
    403: _problem("Not allowed for this role"),
    404: _problem("Not found, or not yours to know about"),
    422: _problem("Invalid input (the failing fields are listed)"),
    429: _problem("Too many requests"),
}
