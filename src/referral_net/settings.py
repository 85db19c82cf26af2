"""Service settings, read from the environment with the prefix ``REFERRAL_NET_``.

The database URL alone picks the backend: ``sqlite:///...`` runs on embedded SpatiaLite,
``postgresql+psycopg://...`` on PostGIS.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Backend(StrEnum):
    """The two supported spatial database engines."""

    SPATIALITE = "spatialite"
    POSTGIS = "postgis"


DEFAULT_DATABASE_URL = "sqlite:///referral-net.db"
# Shortest signing or audit key accepted: 256 bits, the output size of SHA-256 (RFC 7518 §3.2).
MIN_KEY_BYTES = 32


class WeakKeyError(ValueError):
    """A key setting is shorter than :data:`MIN_KEY_BYTES`; the message never holds the key."""

    def __init__(self, minimum: int) -> None:
        """Name the ``minimum`` length in bytes and a command that generates a key that long."""
        super().__init__(
            f"must be at least {minimum} bytes; generate one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )


class Settings(BaseSettings):
    """All runtime configuration of referral-net, one object passed to ``create_app``."""

    # hide_input_in_errors: a rejected key or a database URL with a password must never be
    # echoed into a log or a terminal by the validation error.
    model_config = SettingsConfigDict(
        env_prefix="REFERRAL_NET_", env_file=None, extra="ignore", hide_input_in_errors=True
    )

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL: sqlite:///file.db (SpatiaLite) or postgresql+psycopg://...",
    )
    spatialite_library: str = Field(
        default="mod_spatialite",
        description="Name or path of the SpatiaLite loadable extension.",
    )
    sql_echo: bool = False
    # The connection pool of each worker process (SQLAlchemy's QueuePool).
    database_pool_size: int = Field(
        default=10, ge=1, le=1_000, description="Connections each worker keeps open."
    )
    database_max_overflow: int | None = Field(
        default=None,
        ge=0,
        le=1_000,
        description="Extra connections a worker may open under load (unset: 10 on PostGIS, 20 on"
        " SpatiaLite, whose readers run side by side under WAL).",
    )
    database_pool_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="How long a request waits for a free connection."
    )
    database_pool_pre_ping: bool = Field(
        default=True,
        description="PostGIS: test each connection as it leaves the pool, so a server restart"
        " or a dropped connection costs a reconnect, not a failed request (no round trip: a"
        " connection the server closed or wrote to while it was idle is replaced).",
    )
    # Scale-out on PostgreSQL's streaming replication (docs/deploy-replicas.md): reads (search,
    # match, OGC, tiles, HSDS, exports) go to a replica, writes to the primary (DATABASE_URL).
    database_read_url: str | None = Field(
        default=None,
        description="PostGIS: URL of a streaming replica that serves reads; unset: all on one.",
    )
    database_read_wait_seconds: float = Field(
        default=1.0,
        ge=0,
        le=30,
        description="How long a read after the caller's own write waits for the replica to"
        " replay it; then the primary answers it.",
    )
    # SpatiaLite under concurrent writers (docs/performance.md, "Concurrent writers"): how long a
    # write waits for SQLite's single write lock before the request gets a 503 with Retry-After.
    sqlite_busy_timeout_ms: int = Field(default=10_000, ge=100, le=120_000)
    # FULL: under WAL every acknowledged write survives a power loss (NORMAL could lose the
    # last commits, though never corrupt). A referral directory favours the lost write over speed.
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "FULL"
    # SQLite reads the database file through a memory map up to this size (0: through read()
    # calls into its small page cache). A search reads rows scattered over the file; mapped,
    # they cost no system call and no copy (docs/performance.md, "SpatiaLite beside PostGIS").
    # Address space only: the pages are the kernel's file cache, shared by every connection.
    sqlite_mmap_size_mb: int = Field(default=1024, ge=0, le=1_048_576)
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
    # Audit anchoring (domain/audit.py): a key the database does not hold, so that a database
    # administrator who rewrites the trail cannot recompute its MACs.
    audit_key: SecretStr | None = Field(
        default=None,
        description="HMAC key (>= 32 bytes) that anchors new audit entries; keep it off the DB.",
    )
    audit_checkpoint_file: str | None = Field(
        default=None,
        description="File that `audit checkpoint` appends to and `audit verify` checks against.",
    )
    # Proxy headers (cli.py serve): trusted only from these addresses, e.g. "10.0.0.5".
    forwarded_allow_ips: str | None = Field(
        default=None,
        description="Proxy addresses whose X-Forwarded-For/-Proto are trusted; unset: none.",
    )
    # Rate limits (api/ratelimit.py). The "per minute" counts are per window; the window is 60 s
    # unless changed, which only tests have a reason to do.
    rate_limits_enabled: bool = True
    rate_limit_public_per_minute: int = Field(default=120, ge=1)
    rate_limit_partner_per_minute: int = Field(default=600, ge=1)
    rate_limit_login_per_minute: int = Field(
        default=5, ge=1, description="Failed log-ins per window, per client IP and per username."
    )
    rate_limit_window_seconds: int = Field(default=60, ge=1, le=3600)
    # Vector tiles have their own budget: one view of the embedded map loads a few dozen tiles
    # (three base layers), so the API's public budget would throttle a person panning the map.
    rate_limit_tiles_per_minute: int = Field(default=1_800, ge=1)
    # The embeddable map (/embed, api/routers/embed.py, docs/embed.md).
    embed_exit_url: str = Field(
        default="https://www.google.com/search?q=clima",
        pattern=r"^https?://",
        description="Where the quick-exit button and Escape x3 send the reader (a neutral page).",
    )
    embed_basemap_url: str | None = Field(
        default=None,
        pattern=r"^https://[^/]+/.*\{z\}.*\{x\}.*\{y\}",
        description=(
            "Optional third-party raster base map, https://host/{z}/{x}/{y}.png; off by default "
            "(the map then contacts no one but this service), named on the map when on."
        ),
    )
    embed_basemap_attribution: str | None = Field(default=None, max_length=300)
    embed_max_markers: int = Field(default=2_000, ge=100, le=10_000)
    # HTTP hardening (api/body_limit.py, api/caching.py, api/request_middleware.py).
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1,
        description="Largest request body accepted (bytes), checked before parsing; else 413.",
    )
    public_cache_max_age_seconds: int = Field(
        default=60,
        ge=0,
        le=86_400,
        description="max-age of anonymous /api/v1 GET answers; credentialed ones are never stored.",
    )
    debug_tracebacks: bool = Field(
        default=False,
        description="Log the full traceback of unexpected errors (it may hold SQL and values).",
    )
    # Operations (logging_config.py, api/metrics.py, server.py, docs/deploy.md).
    # JSON by default: `serve` is what runs in production, where a log collector must parse every
    # line, and a JSON line cannot be split or forged by a newline in a message. Text is for a
    # terminal: REFERRAL_NET_LOG_FORMAT=text.
    log_format: Literal["json", "text"] = Field(
        default="json", description="`serve`'s log lines: json (one object per line) or text."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token (>= 32 bytes) that GET /metrics requires; unset: no /metrics.",
    )
    graceful_shutdown_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="After SIGTERM, how long in-flight requests may take before they are cut.",
    )
    # Imports over HTTP (exchange/jobs.py, api/routers/imports.py, docs/import-jobs.md).
    import_max_bytes: int = Field(
        default=50 * 1024 * 1024,
        ge=1,
        description="Largest upload POST /api/v1/imports accepts (bytes); its own body cap.",
    )
    import_job_stale_seconds: int = Field(
        default=300,
        ge=1,
        le=86_400,
        description="A running import job silent this long is marked failed (a crashed worker).",
    )
    import_worker: bool = Field(
        default=True,
        description=(
            "Run queued HTTP imports in a thread of this process. Off: jobs wait for a process "
            "of the same database where it is on (e.g. keep it on in one process of many)."
        ),
    )

    # Referrals (issue 17; domain/referrals.py, docs/referrals.md).
    referral_note_key: SecretStr | None = Field(
        default=None,
        description=(
            "Fernet key(s) that encrypt referral notes, comma-separated: the first encrypts, "
            "all decrypt (rotation). Unset: referrals carrying a note are refused (422)."
        ),
    )
    referral_ack_hours: float = Field(
        default=24.0, gt=0, description="A referral still 'sent' after this long is overdue."
    )
    referral_ack_emergency_hours: float = Field(
        default=2.0, gt=0, description="The same for an emergency referral."
    )
    referral_retention_days: int = Field(
        default=180,
        ge=1,
        description="Finished referrals lose their note and traits after this many days (purge).",
    )
    referral_report_min_cell: int = Field(
        default=5, ge=1, description="Report cells counting fewer referrals are suppressed."
    )
    referral_webhook_worker: bool = Field(
        default=True, description="Deliver queued referral webhooks in a thread of this process."
    )
    referral_webhook_max_attempts: int = Field(default=8, ge=1, le=50)
    referral_webhook_backoff_seconds: float = Field(
        default=30.0, gt=0, description="Wait before the 2nd attempt; doubles after each failure."
    )
    referral_webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    @field_validator("referral_note_key")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        """Refuse a note key that is not a list of Fernet keys, at start-up (never echoed)."""
        if value is None:
            return None
        parts = [part.strip() for part in value.get_secret_value().split(",") if part.strip()]
        if not parts:
            raise ValueError("must hold at least one Fernet key")
        for part in parts:
            try:
                Fernet(part)
            except ValueError as exc:
                raise ValueError(
                    "must be Fernet keys (32 url-safe base64-encoded bytes each); generate one "
                    "with: python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'"
                ) from exc
        return value

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

    @field_validator("secret_key", "audit_key", "metrics_token")
    @classmethod
    def _strong_key(cls, value: SecretStr | None) -> SecretStr | None:
        """Refuse keys shorter than 32 bytes: HS256 and HMAC-SHA256 want 256 bits of key."""
        if value is not None and len(value.get_secret_value().encode("utf-8")) < MIN_KEY_BYTES:
            raise WeakKeyError(MIN_KEY_BYTES)
        return value

    @model_validator(mode="after")
    def _replica_needs_postgis(self) -> Settings:
        """A read replica is PostgreSQL's streaming replication: refuse one for SpatiaLite."""
        url = (self.database_read_url or "").strip()
        if not url:
            self.database_read_url = None
            return self
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                url = "postgresql+psycopg://" + url.removeprefix(prefix)
        if self.backend is not Backend.POSTGIS or not url.startswith("postgresql+psycopg://"):
            raise ValueError(
                "database_read_url needs PostGIS on both sides (postgresql+psycopg:// URLs): "
                "SpatiaLite has no read replicas; unset REFERRAL_NET_DATABASE_READ_URL"
            )
        self.database_read_url = url
        return self

    @property
    def backend(self) -> Backend:
        """The spatial engine the database URL points at."""
        if self.database_url.startswith("sqlite"):
            return Backend.SPATIALITE
        return Backend.POSTGIS


def get_settings() -> Settings:
    """Read settings from the environment (called at start-up, never at import time)."""
    return Settings()
