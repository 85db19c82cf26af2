"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from referral_net.api.deps import EngineDep, SettingsDep
from referral_net.db.engine import spatial_version
from referral_net.errors import ServiceUnavailable

router = APIRouter(tags=["health"])


class Liveness(BaseModel):
    """The process is up."""

    status: Literal["ok"] = Field(default="ok", examples=["ok"])


class Readiness(BaseModel):
    """The service can reach its database and the spatial extension."""

    status: Literal["ready"] = "ready"
    database: Literal["reachable"] = "reachable"
    backend: str = Field(examples=["spatialite"])
    spatial_extension: str = Field(examples=["SpatiaLite 5.0.1"])


@router.get("/health", summary="Liveness probe", response_model=Liveness)
def health() -> Liveness:
    """Answer 200 while the process runs; touches no dependency."""
    return Liveness()


@router.get(
    "/ready",
    summary="Readiness probe: database and spatial extension",
    response_model=Readiness,
    responses={503: {"description": "The database is unreachable"}},
)
def ready(request: Request, engine: EngineDep, settings: SettingsDep) -> Readiness:
    """Answer 200 with the spatial extension's version, or 503 when the database is down.

    With a read replica, both must answer: reads go to one, writes to the other, and a worker
    that can serve only half of its requests should leave the load balancer's rotation.
    """
    try:
        version = spatial_version(engine)
    except SQLAlchemyError as exc:
        raise ServiceUnavailable(
            "The database is not reachable.", headers={"Retry-After": "5"}
        ) from exc
    replica: Engine | None = getattr(request.app.state, "read_engine", None)
    if replica is not None:
        try:
            spatial_version(replica)
        except SQLAlchemyError as exc:
            raise ServiceUnavailable(
                "The read replica is not reachable.", headers={"Retry-After": "5"}
            ) from exc
    label = "SpatiaLite" if settings.backend == "spatialite" else "PostGIS"
    return Readiness(backend=settings.backend.value, spatial_extension=f"{label} {version}")
