"""The ``referral-net`` command: db upgrade/downgrade/current and areas load, on both backends;
an operator's error is one ``error:`` line and exit code 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

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
    _sqlite_path(empty_settings).touch()  # an empty file: only `db upgrade` may create one

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


def _sqlite_path(settings: Settings) -> Path:
    """The database file of a SpatiaLite URL; a path nobody uses for a PostGIS one."""
    if settings.backend.value != "spatialite":
        return Path(os.devnull)
    return Path(str(make_url(settings.database_url).database))


def _mistyped(settings: Settings) -> str:
    """The same URL with a database name (or file) that does not exist."""
    url = make_url(settings.database_url)
    name = str(url.database)
    typo = name.replace(".db", "-typo.db") if name.endswith(".db") else name + "_typo"
    return url.set(database=typo).render_as_string(hide_password=False)


def _one_error_line(result: Result) -> str:
    """Assert the command failed the way an operator's mistake must: one line, exit code 2."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: "), result.output
    return lines[0]


def test_a_mistyped_database_is_an_error_line_and_creates_nothing(
    empty_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    mistyped = _mistyped(empty_settings)
    monkeypatch.setenv("REFERRAL_NET_DATABASE_URL", mistyped)
    runner = CliRunner()
    for command in (
        ["keys", "list"],
        ["db", "current"],
        ["db", "downgrade", "base"],
        ["seed", "load"],
        ["audit", "verify"],
    ):
        line = _one_error_line(runner.invoke(app, command))
        if empty_settings.backend.value == "spatialite":
            assert "no database file" in line
            assert not Path(str(make_url(mistyped).database)).exists(), command
        else:
            assert "does not exist" in line


def test_commands_on_an_unmigrated_database_say_to_upgrade(
    empty_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFERRAL_NET_DATABASE_URL", empty_settings.database_url)
    _sqlite_path(empty_settings).touch()
    runner = CliRunner()
    for command in (["keys", "list"], ["areas", "load"], ["audit", "verify"]):
        line = _one_error_line(runner.invoke(app, command))
        assert "db upgrade" in line, line


def test_bad_arguments_and_revisions_are_error_lines(
    empty_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFERRAL_NET_DATABASE_URL", empty_settings.database_url)
    runner = CliRunner()
    for command in (["db", "upgrade", "nonsense"], ["db", "upgrade", "a1b2c3d4e5f6"]):
        line = _one_error_line(runner.invoke(app, command))
        assert "unknown revision" in line
        assert "nonsense" not in line  # the rejected value is not echoed

    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    line = _one_error_line(runner.invoke(app, ["db", "downgrade", "nonsense"]))
    assert "unknown revision" in line
    line = _one_error_line(
        runner.invoke(
            app,
            ["users", "create", "intake1", "--role", "provider", "--organization-id", "not-a-uuid"],
            input="a long enough password\n",
        )
    )
    assert "--organization-id" in line
    assert "not-a-uuid" not in line


def test_the_installed_command_prints_no_traceback(tmp_path: Path) -> None:
    """The real entry point (Typer's exception printer included) on a mistyped path."""
    missing = tmp_path / "missing.db"
    env = {**os.environ, "REFERRAL_NET_DATABASE_URL": f"sqlite:///{missing}"}
    command = Path(sys.executable).with_name("referral-net")
    done = subprocess.run(
        [str(command), "users", "disable", "nobody"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("error: no database file at ")
    assert done.stderr.count("\n") == 1
    assert not missing.exists()


def test_keys_list_has_a_header(empty_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFERRAL_NET_DATABASE_URL", empty_settings.database_url)
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(app, ["keys", "create", "web-partner"]).exit_code == 0

    result = runner.invoke(app, ["keys", "list"])

    assert result.exit_code == 0, result.output
    header, row = result.stdout.splitlines()
    assert header.split("\t") == [
        "name",
        "prefix",
        "scopes",
        "origins",
        "per_minute",
        "created",
        "revoked",
        "id",
    ]
    assert row.split("\t")[0] == "web-partner"
    assert len(row.split("\t")) == len(header.split("\t"))


def test_usage_lines_name_arguments_in_capitals() -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["users", "create", "--help"], prog_name="referral-net", terminal_width=200
    )
    assert result.exit_code == 0
    usage = next(line for line in result.output.splitlines() if "Usage:" in line)
    assert usage.split()[-2:] == ["[OPTIONS]", "USERNAME"]
    result = runner.invoke(app, ["db", "upgrade", "--help"], terminal_width=200)
    usage = next(line for line in result.output.splitlines() if "Usage:" in line)
    assert usage.split()[-1] == "[REVISION]"
    assert "{" not in result.output


def test_a_bare_group_still_prints_its_help() -> None:
    result = CliRunner().invoke(app, ["db"])
    assert "error:" not in result.output
    assert "upgrade" in result.output
    assert "downgrade" in result.output
