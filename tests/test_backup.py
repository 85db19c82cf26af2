"""`referral-net backup` and `referral-net restore` on both backends (issue 18, item 6).

The round trip: a database holding the sample network is backed up; data is then changed (a row
added, one updated, one deleted); the restore must give back every table exactly, row by row,
as it was when the backup was made. Refusals leave the database untouched.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, text
from sqlmodel import Session, SQLModel
from typer.testing import CliRunner

from referral_net.cli import app
from referral_net.db.engine import make_engine
from referral_net.db.models import Location, Organization, Phone
from referral_net.domain import seed
from referral_net.settings import Settings
from tests.databases import copy_of, migrated_template

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def template(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """A migrated database with the areas and the taxonomy (copied for each test)."""
    return migrated_template(backend, request, tmp_path_factory, name="bkp", with_taxonomy=True)


@pytest.fixture
def database(template: Settings, tmp_path: Path) -> Iterator[tuple[Settings, Engine]]:
    """A copy of the template with the sample network, and its engine."""
    settings = copy_of(template, tmp_path)
    engine = make_engine(settings)
    with Session(engine) as session:
        seed.load_sample(session=session)
        session.commit()
    yield settings, engine
    engine.dispose()


@pytest.fixture
def cli(database: tuple[Settings, Engine], monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A runner of the command line pointed at the test's database."""
    monkeypatch.setenv("REFERRAL_NET_DATABASE_URL", database[0].database_url)
    return CliRunner()


def _tables() -> list[str]:
    """Every table of ours (the engines' own catalogues and index tables are theirs)."""
    return [table.name for table in SQLModel.metadata.sorted_tables] + ["alembic_version"]


def _snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of ours, in a fixed order, as the engine returns it."""
    snapshot: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        present = set(inspect(connection).get_table_names())
        for table in _tables():
            assert table in present, table
            rows = connection.execute(text(f'SELECT * FROM "{table}"')).all()
            snapshot[table] = sorted((tuple(row) for row in rows), key=repr)
    return snapshot


def _change(engine: Engine) -> None:
    """A row added, one updated and one deleted, in different tables."""
    with Session(engine) as session:
        session.add(Organization(name="Organización después del respaldo (ejemplo)"))
        location = session.exec(SQLModel.metadata.tables["location"].select()).first()
        assert location is not None
        changed = session.get(Location, location.id)
        assert changed is not None
        changed.name = "Sede renombrada (ejemplo)"
        phone = session.exec(SQLModel.metadata.tables["phone"].select()).first()
        assert phone is not None
        gone = session.get(Phone, phone.id)
        assert gone is not None
        session.delete(gone)
        session.commit()


def test_backup_then_restore_gives_back_every_table(
    database: tuple[Settings, Engine], cli: CliRunner, tmp_path: Path
) -> None:
    _, engine = database
    before = _snapshot(engine)
    assert sum(len(rows) for rows in before.values()) > 500  # the sample network, not nothing
    target = tmp_path / "backups" / "referral-net.backup"

    made = cli.invoke(app, ["backup", str(target)])
    assert made.exit_code == 0, made.output
    assert target.is_file()
    assert f"backed up to {target}" in made.output
    assert not target.with_name(target.name + ".partial").exists()

    _change(engine)
    changed = _snapshot(engine)
    assert {t for t in before if before[t] != changed[t]} >= {"organization", "location", "phone"}

    engine.dispose()  # the restore replaces what open connections would see mid-way
    restored = cli.invoke(app, ["restore", str(target), "--yes"])
    assert restored.exit_code == 0, restored.output
    assert "schema revision" in restored.output
    after = _snapshot(engine)
    for table in _tables():
        assert after[table] == before[table], table


def test_restore_refuses_without_yes_and_a_file_that_is_no_backup(
    database: tuple[Settings, Engine], cli: CliRunner, tmp_path: Path
) -> None:
    _, engine = database
    before = _snapshot(engine)
    target = tmp_path / "good.backup"
    assert cli.invoke(app, ["backup", str(target)]).exit_code == 0

    unconfirmed = cli.invoke(app, ["restore", str(target)])
    assert unconfirmed.exit_code == 2
    assert "--yes" in unconfirmed.output

    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"not a backup " + uuid.uuid4().bytes * 64)
    refused = cli.invoke(app, ["restore", str(junk), "--yes"])
    assert refused.exit_code == 2, refused.output
    assert refused.output.startswith("error: ")

    missing = cli.invoke(app, ["restore", str(tmp_path / "absent.backup"), "--yes"])
    assert missing.exit_code == 2
    assert "no backup file" in missing.output

    engine.dispose()
    assert _snapshot(engine) == before  # nothing was touched
