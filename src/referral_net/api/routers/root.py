"""The HSDS API root, ``GET /api/v1/``: the HSDS version, the profile's URI and the OpenAPI URL.

HSDS 3.0's ``openapi.json`` requires this document at the root of an HSDS API, so a consumer can
learn which version and profile it speaks before reading any record.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from referral_net.api.params import KnownQueryOnly
from referral_net.hsds import HSDS_VERSION, profile_url

router = APIRouter(prefix="/api/v1", tags=["hsds"])


class ApiRoot(BaseModel):
    """What the HSDS API root tells a consumer."""

    version: str = Field(description="The HSDS version of this API.", examples=["3.0"])
    profile: str = Field(
        description="URL of the HSDS profile this API conforms to (its README, schemas and"
        " datapackage are served below it).",
        examples=["https://directory.example.org/profile/"],
    )
    openapi_url: str = Field(
        description="URL of this API's OpenAPI document.",
        examples=["https://directory.example.org/openapi.json"],
    )


@router.get("/", summary="The HSDS API root", response_model=ApiRoot, dependencies=[KnownQueryOnly])
def api_root(request: Request) -> ApiRoot:
    """The HSDS version, the profile URI and the OpenAPI URL, absolute (behind a proxy too:
    ``request.base_url`` carries the configured root path)."""
    base = str(request.base_url)
    openapi_path = (request.app.openapi_url or "/openapi.json").lstrip("/")
    return ApiRoot(version=HSDS_VERSION, profile=profile_url(base), openapi_url=base + openapi_path)
