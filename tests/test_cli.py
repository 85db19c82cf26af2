"""The ``referral-net`` command: db upgrade/downgrade/current and areas load, on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect
from typer.testing import CliRunner

from referral_net.cli import app
from referral_net.db.engine import make_engine
from referral_net.settings import Settings
from tests.conftest import make_backend_settings, unavailable

pytestmark = pytest.mark.db


@pytest.fixture(params=["spatialite", "postgis"])
def empty_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for an empty database of each backend."""
    backend = str(request.param)
    try:
        return make_backend_settings(backend, tmp_path, suffix="_cli")
    except Exception as exc:
        unavailable(request, backend, exc)
        raise


def test_db_upgrade_areas_load_downgrade(
    empty_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFERRAL_NET_DATABASE_URL", empty_settings.database_url)
    runner = CliRunner()

    result = runner.invoke(app, ["db", "current"])
    assert result.exit_code == 0, result.output
    assert "empty" in result.output

    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output

    result = runner.invoke(app, ["areas", "load"])
    assert result.exit_code == 0, result.output
    assert "22 departments and 340 municipalities" in result.output

    result = runner.invoke(app, ["areas", "load", "--if-empty"])
    assert result.exit_code == 0, result.output
    assert "already loaded" in result.output

    result = runner.invoke(app, ["db", "downgrade", "base"])
    assert result.exit_code == 0, result.output
    engine = make_engine(empty_settings)
    try:
        assert "location" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()
