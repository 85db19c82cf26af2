"""Load the illustrative Western Highlands sample network (seed/sample_network.json).

Every record goes through the same validation and domain services as an API write, made by a
system steward, so the sample can never hold what the API would refuse. A real deployment loads
its directory through import instead; the sample is for trying the product and for tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from referral_net.db.models import Organization, Service
from referral_net.domain import areas, locations, organizations, service_at_locations, services
from referral_net.domain import taxonomy as taxonomy_domain
from referral_net.geo.convert import to_geojson
from referral_net.resources import resource_path
from referral_net.schemas.directory import (
    CapacityIn,
    LocationCreate,
    OrganizationCreate,
    ServiceAtLocationCreate,
    ServiceCreate,
)
from referral_net.security.roles import Principal, Role

SEED_PRINCIPAL = Principal(role=Role.STEWARD, subject="system:seed")


@dataclass(frozen=True)
class SeedReport:
    """How many records the sample load wrote."""

    organizations: int
    locations: int
    services: int
    service_at_locations: int


def default_path() -> Path:
    """The sample network file: the copy shipped in the wheel, else the source checkout's."""
    return resource_path("seed/sample_network.json")


def is_loaded(*, session: Session) -> bool:
    """True when the directory already holds organizations."""
    return int(session.exec(select(func.count()).select_from(Organization)).one()) > 0


def _location(raw: dict[str, Any]) -> LocationCreate:
    intake = raw.get("intake_contact") or {}
    return LocationCreate(
        id=raw["id"],
        organization_id=raw["organization_id"],
        name=raw["name"],
        description=raw.get("description"),
        latitude=raw["latitude"],
        longitude=raw["longitude"],
        visibility=raw["visibility"],
        addresses=[raw["address"]] if raw.get("address") else [],
        phones=raw.get("phones", []),
        languages=raw.get("languages", []),
        accessibility=raw.get("accessibility", []),
        intake_phone=intake.get("phone"),
        intake_description=intake.get("description"),
    )


def _service_areas(session: Session, raw_areas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for area in raw_areas:
        codes = area.get("municipality_codes") or area.get("department_codes") or ["GT"]
        geometry = areas.union_geometry(session=session, codes=codes)
        out.append(
            {
                "name": area.get("name"),
                "description": area.get("description"),
                "extent": to_geojson(geometry),
            }
        )
    return out


def _service(session: Session, raw: dict[str, Any]) -> ServiceCreate:
    return ServiceCreate(
        id=raw["id"],
        organization_id=raw["organization_id"],
        name=raw["name"],
        alternate_name=raw.get("alternate_name"),
        description=raw.get("description"),
        url=raw.get("url"),
        email=raw.get("email"),
        status=raw.get("status", "active"),
        interpretation_services=raw.get("interpretation_services"),
        categories=raw.get("categories", []),
        languages=raw.get("languages", []),
        eligibility={
            key: raw.get(key)
            for key in (
                "minimum_age",
                "maximum_age",
                "genders_served",
                "trans_inclusive",
                "lgbtiq_affirming",
                "accepts_accompanying_children",
                "minors_only",
            )
            if raw.get(key) is not None
        },
        phones=raw.get("phones", []),
        schedules=raw.get("schedules", []),
        cost_options=raw.get("cost_options", []),
        required_documents=raw.get("required_documents", []),
        service_areas=_service_areas(session, raw.get("service_areas", [])),
    )


def load_sample(
    *, session: Session, path: Path | None = None, now: datetime | None = None
) -> SeedReport:
    """Load the taxonomy and the sample network through the domain services."""
    now = now or datetime.now(UTC)
    data = json.loads((path or default_path()).read_text(encoding="utf-8"))
    taxonomy_domain.load_taxonomy(session=session)
    for raw in data["organizations"]:
        organizations.create(
            session=session,
            principal=SEED_PRINCIPAL,
            data=OrganizationCreate.model_validate({k: v for k, v in raw.items() if v is not None}),
        )
    for raw in data["locations"]:
        locations.create(session=session, principal=SEED_PRINCIPAL, data=_location(raw))
    for raw in data["services"]:
        service = services.create(
            session=session, principal=SEED_PRINCIPAL, data=_service(session, raw)
        )
        _capacity_and_verification(session, service, raw, now)
    for raw in data["service_at_locations"]:
        service_at_locations.create(
            session=session,
            principal=SEED_PRINCIPAL,
            data=ServiceAtLocationCreate.model_validate(raw),
        )
    return SeedReport(
        organizations=len(data["organizations"]),
        locations=len(data["locations"]),
        services=len(data["services"]),
        service_at_locations=len(data["service_at_locations"]),
    )


def _capacity_and_verification(
    session: Session, service: Service, raw: dict[str, Any], now: datetime
) -> None:
    for row in raw.get("capacity", []):
        services.set_capacity(
            session=session,
            principal=SEED_PRINCIPAL,
            service=service,
            rows=[
                CapacityIn(unit=row["unit"], available=row["available"], maximum=row.get("maximum"))
            ],
            when=now - timedelta(hours=float(row.get("updated_hours_ago", 0))),
        )
    days = raw.get("assured_days_ago")
    if days is not None:
        services.verify(
            session=session,
            principal=SEED_PRINCIPAL,
            service=service,
            assured=(now - timedelta(days=int(days))).date(),
        )
