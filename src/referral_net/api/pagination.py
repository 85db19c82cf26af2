"""Pagination parameters (HSDS ``page`` and ``per_page``) with a capped page size."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query

from referral_net.api.deps import SettingsDep
from referral_net.errors import BadRequest


@dataclass(frozen=True)
class PageParams:
    """Which page the caller asked for."""

    page: int
    per_page: int

    @property
    def offset(self) -> int:
        """Rows to skip."""
        return (self.page - 1) * self.per_page


def page_params(
    settings: SettingsDep,
    page: Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1.")] = 1,
    per_page: Annotated[int, Query(ge=1, description="Items per page (capped).")] = 20,
) -> PageParams:
    """Read and cap the pagination parameters."""
    if per_page > settings.max_page_size:
        raise BadRequest(f"per_page may be at most {settings.max_page_size}.")
    return PageParams(page=page, per_page=per_page)


PageDep = Annotated[PageParams, Depends(page_params)]
