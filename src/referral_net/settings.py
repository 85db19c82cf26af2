"""Service settings, read from the environment with the prefix ``REFERRAL_NET_``.

The database URL alone picks the backend: ``sqlite:///...`` runs on embedded SpatiaLite,
``postgresql+psycopg://...`` on PostGIS.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Backend(StrEnum):
    """The two supported spatial database engines."""

    SPATIALITE = "spatialite"
    POSTGIS = "postgis"


DEFAULT_DATABASE_URL = "sqlite:///referral-net.db"


class Settings(BaseSettings):
    """All runtime configuration of referral-net, one object passed to ``create_app``."""

    model_config = SettingsConfigDict(env_prefix="REFERRAL_NET_", env_file=None, extra="ignore")

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL: sqlite:///file.db (SpatiaLite) or postgresql+psycopg://...",
    )
    spatialite_library: str = Field(
        default="mod_spatialite",
        description="Name or path of the SpatiaLite loadable extension.",
    )
    sql_echo: bool = False
    capacity_stale_hours: float = Field(default=72.0, gt=0)
    verification_period_days: int = Field(default=180, gt=0)
    max_radius_m: float = Field(default=500_000.0, gt=0)
    max_page_size: int = Field(default=100, ge=1, le=1000)
    # How deep a search may page (offset + limit): each nearest-first page is exact from the
    # first row, so page 100,000 of 100 would make the engine walk ten million rows.
    max_result_window: int = Field(default=10_000, ge=1, le=1_000_000)
    redis_url: str | None = None
    secret_key: SecretStr | None = Field(
        default=None,
        description=(
            "Key that signs bearer tokens. Unset: a random key per process, so tokens die with "
            "the process and several workers cannot share them; set it in production."
        ),
    )
    access_token_minutes: int = Field(default=15, ge=1, le=240)
    refresh_token_days: int = Field(default=7, ge=1, le=90)
    # Rate limits (api/ratelimit.py). The "per minute" counts are per window; the window is 60 s
    # unless changed, which only tests have a reason to do.
    rate_limits_enabled: bool = True
    rate_limit_public_per_minute: int = Field(default=120, ge=1)
    rate_limit_partner_per_minute: int = Field(default=600, ge=1)
    rate_limit_login_per_minute: int = Field(
        default=5, ge=1, description="Failed log-ins per window, per client IP and per username."
    )
    rate_limit_window_seconds: int = Field(default=60, ge=1, le=3600)

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        """Reject URLs for engines referral-net does not support, at start-up."""
        if value.startswith("postgres://"):
            # Heroku-style URLs: normalise to the psycopg 3 driver we ship.
            value = "postgresql+psycopg://" + value.removeprefix("postgres://")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        if not (value.startswith("sqlite:///") or value.startswith("postgresql+psycopg://")):
            raise ValueError("database_url must start with sqlite:/// or postgresql+psycopg://")
        return value

    @property
    def backend(self) -> Backend:
        """The spatial engine the database URL points at."""
        if self.database_url.startswith("sqlite"):
            return Backend.SPATIALITE
        return Backend.POSTGIS


def get_settings() -> Settings:
    """Read settings from the environment (called at start-up, never at import time)."""
    return Settings()
