"""Settings: the URL picks the backend; unsupported URLs are rejected at start-up."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from referral_net.settings import Backend, Settings


def test_default_is_embedded_spatialite_in_working_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REFERRAL_NET_DATABASE_URL", raising=False)
    settings = Settings()
    assert settings.backend is Backend.SPATIALITE
    assert settings.database_url == "sqlite:///referral-net.db"


def test_env_prefix_selects_postgis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFERRAL_NET_DATABASE_URL", "postgresql://u@h:5432/db")
    settings = Settings()
    assert settings.backend is Backend.POSTGIS
    assert settings.database_url == "postgresql+psycopg://u@h:5432/db"


def test_unsupported_url_is_rejected() -> None:
    with pytest.raises(ValidationError):
        Settings(database_url="mysql://root@localhost/x")
