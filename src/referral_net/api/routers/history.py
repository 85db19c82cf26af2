"""The change history (HSDS ``metadata``) of one record, for stewards."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from referral_net.api.deps import SessionDep, require_roles
from referral_net.api.params import KnownQueryOnly
from referral_net.domain import history
from referral_net.security.roles import Principal, Role

router = APIRouter(prefix="/api/v1/metadata", tags=["history"])
Steward = Annotated[Principal, Depends(require_roles(Role.STEWARD))]


class MetadataRead(BaseModel):
    """One changed field of one record."""

    id: uuid.UUID
    resource_id: uuid.UUID
    resource_type: str = Field(examples=["service"])
    last_action_date: datetime
    last_action_type: str = Field(examples=["update"])
    field_name: str = Field(examples=["name"])
    previous_value: str = Field(examples=["Albergue (ejemplo)"])
    replacement_value: str = Field(examples=["Albergue temporal (ejemplo)"])
    updated_by: str = Field(examples=["user:steward1"])


@router.get(
    "",
    summary="Change history of a record (stewards)",
    response_model=list[MetadataRead],
    dependencies=[KnownQueryOnly],
)
def record_history(
    session: SessionDep,
    principal: Steward,
    resource_id: Annotated[uuid.UUID, Query(description="The record's id.")],
) -> list[MetadataRead]:
    """Every recorded field change of the record, oldest first."""
    rows = history.history_of(session=session, resource_id=resource_id)
    return [MetadataRead.model_validate(r, from_attributes=True) for r in rows]
