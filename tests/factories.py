"""Plain typed builders for test data, and bearer-token headers for each role."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from fastapi import FastAPI
from sqlmodel import Session

from referral_net.db.models import Organization, UserAccount
from referral_net.security import tokens
from referral_net.security.passwords import hash_password
from referral_net.security.roles import Role

# Points inside known municipalities (checked against the boundary files in test_areas).
QUETZALTENANGO = (14.8347, -91.5181)  # 0901
HUEHUETENANGO = (15.3197, -91.4710)  # 1303 (Chiantla, by the boundary files)
GUATEMALA_CITY = (14.6349, -90.5069)  # 0101


def make_organization(session: Session, name: str = "Org (ejemplo)") -> Organization:
    """Insert an organization directly."""
    organization = Organization(name=name, description="test organization")
    session.add(organization)
    session.commit()
    return organization


@cache
def _throwaway_hash() -> str:
    # Hashed once per run: argon2 is slow on purpose, and the matrix tests make many users.
    return hash_password("correct horse battery staple")


def make_user(
    session: Session, role: Role, organization_id: uuid.UUID | None = None
) -> UserAccount:
    """Insert a staff user with a throwaway password."""
    user = UserAccount(
        username=f"{role.value}-{uuid.uuid4().hex[:8]}",
        password_hash=_throwaway_hash(),
        role=role.value,
        organization_id=organization_id,
        created_at=datetime.now(UTC),
    )
    session.add(user)
    session.commit()
    return user


def bearer(app: FastAPI, user: UserAccount) -> dict[str, str]:
    """Authorization header with a fresh access token for the user."""
    token = tokens.issue_token(
        secret=app.state.signing_key,
        user_id=user.id,
        kind="access",
        token_version=user.token_version,
        lifetime=timedelta(minutes=5),
    )
    return {"Authorization": f"Bearer {token}"}


def organization_body(**overrides: Any) -> dict[str, Any]:
    """A valid organization create body."""
    body: dict[str, Any] = {
        "name": "Asociación de prueba (ejemplo)",
        "description": "Organización ficticia para pruebas.",
        "email": "info@example.org",
        "website": "https://example.org",
        "phones": [{"number": "5555-0101", "type": "voice"}],
    }
    body.update(overrides)
    return body


def location_body(organization_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    """A valid location create body in Quetzaltenango."""
    lat, lon = QUETZALTENANGO
    body: dict[str, Any] = {
        "organization_id": str(organization_id),
        "name": "Sede de prueba (ejemplo)",
        "latitude": lat,
        "longitude": lon,
        "addresses": [
            {
                "address_1": "4a Calle 10-20, Zona 1",
                "city": "Quetzaltenango",
                "state_province": "Quetzaltenango",
            }
        ],
        "phones": [{"number": "+502 5555 0102"}],
        "languages": ["es", "mam"],
        "accessibility": [{"description": "Rampa de acceso"}],
    }
    body.update(overrides)
    return body


def service_body(organization_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    """A valid service create body: a weekday legal-aid office."""
    body: dict[str, Any] = {
        "organization_id": str(organization_id),
        "name": "Asesoría legal (ejemplo)",
        "description": "Asistencia legal gratuita.",
        "categories": ["protection.legal_aid"],
        "languages": ["spa", "quc"],
        "eligibility": {"minimum_age": 0, "maximum_age": 120},
        "phones": [{"number": "5555-0103"}],
        "schedules": [
            {"freq": "WEEKLY", "byday": "MO,TU,WE,TH,FR", "opens_at": "08:00", "closes_at": "16:00"}
        ],
        "cost_options": [{"option": "Gratuito", "amount": 0, "currency": "GTQ"}],
        "required_documents": [{"document": "Ninguno"}],
    }
    body.update(overrides)
    return body


# --- referrals (issue 17) ---------------------------------------------------------------------


def make_referral_target(
    session: Session,
    organization: Organization,
    *,
    beds: int | None = None,
    maximum: int | None = 10,
    categories: tuple[str, ...] = ("protection.shelter.women",),
) -> uuid.UUID:
    """A service of ``organization`` at a site in Quetzaltenango (with ``beds`` free places if
    given; needs the taxonomy loaded); returns the service_at_location id a referral names."""
    from referral_net.domain import locations, service_at_locations, services
    from referral_net.schemas.directory import (
        CapacityIn,
        LocationCreate,
        ServiceAtLocationCreate,
        ServiceCreate,
    )
    from referral_net.security.roles import Principal

    steward = Principal(role=Role.STEWARD, subject="user:factory")
    lat, lon = QUETZALTENANGO
    site = locations.create(
        session=session,
        principal=steward,
        data=LocationCreate(
            organization_id=organization.id, name="Albergue (ejemplo)", latitude=lat, longitude=lon
        ),
    )
    service = services.create(
        session=session,
        principal=steward,
        data=ServiceCreate(
            organization_id=organization.id, name="Albergue (ejemplo)", categories=list(categories)
        ),
    )
    if beds is not None:
        services.set_capacity(
            session=session,
            principal=steward,
            service=service,
            rows=[CapacityIn(unit="bed", available=beds, maximum=maximum)],
        )
    link = service_at_locations.create(
        session=session,
        principal=steward,
        data=ServiceAtLocationCreate(service_id=service.id, location_id=site.id),
    )
    return link.id


def referral_body(link_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    """A valid referral create body with current consent."""
    body: dict[str, Any] = {
        "service_at_location_id": str(link_id),
        "needs": ["protection.shelter.women"],
        "urgency": "soon",
        "traits": {"age": 24, "gender": "woman", "languages": ["mam", "spa"]},
        "consent": {
            "given": True,
            "scope": "referral",
            "given_on": datetime.now(UTC).date().isoformat(),
        },
    }
    body.update(overrides)
    return body
