"""Backups of the whole database, each engine with its own tool (issue 18).

SpatiaLite: SQLite's online backup API (``sqlite3.Connection.backup``), which copies a
consistent snapshot page by page while the service keeps running, WAL included; a restore runs the
same API the other way, into the live file, under SQLite's write lock. PostGIS: ``pg_dump
--format=custom`` and ``pg_restore --clean --if-exists --single-transaction``, PostgreSQL's own
tools (they know every object type, the PostGIS extension included); the restore is one
transaction, so a failed restore leaves the database as it was.

A backup records nothing about who made it and holds what the database holds: the directory,
hidden sites included, staff accounts and the audit trail. Keep it where the database is kept.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import sqlean
from sqlalchemy.engine import URL, make_url

from referral_net.settings import Backend, Settings


class BackupError(Exception):
    """A backup or restore that could not be made; the message says why, with no secret."""


@dataclass(frozen=True)
class BackupResult:
    """What a backup or restore did: the file and its size in bytes."""

    path: Path
    size: int


def _sqlite_path(settings: Settings) -> Path:
    database = make_url(settings.database_url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SpatiaLite database has nothing to back up")
    return Path(database)


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq connection string for the PostgreSQL tools, and the environment carrying the
    password (never on the command line, where any user of the host could read it)."""
    environment = dict(os.environ)
    if url.password is not None:
        environment["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), environment


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed (Debian: postgresql-client)")
    return found


def _run(command: list[str], environment: dict[str, str]) -> None:
    # The program is found by shutil.which and every argument is a path or our own URL; no shell.
    done = subprocess.run(  # noqa: S603
        command, env=environment, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        # The tools' own message (a connection failure, a version mismatch); never the password,
        # which travels in the environment only.
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise BackupError(f"{Path(command[0]).name} failed: {' '.join(detail[-3:])}")


def backup(settings: Settings, target: Path) -> BackupResult:
    """Write a consistent copy of the whole database to ``target`` (replaced if it exists)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    if settings.backend is Backend.SPATIALITE:
        source_path = _sqlite_path(settings)
        if not source_path.is_file():
            raise BackupError(f"no database file at {source_path}")
        source = sqlean.connect(str(source_path))
        copy = sqlean.connect(str(partial))
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
    else:
        dsn, environment = _libpq(make_url(settings.database_url))
        _run(
            [
                _tool("pg_dump"),
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                "--file",
                str(partial),
                dsn,
            ],
            environment,
        )
    # Renamed once complete: a backup that stopped half-way never looks like a good one.
    partial.replace(target)
    return BackupResult(target, target.stat().st_size)


def restore(settings: Settings, source: Path) -> BackupResult:
    """Replace the whole database with the backup at ``source``."""
    if not source.is_file():
        raise BackupError(f"no backup file at {source}")
    if settings.backend is Backend.SPATIALITE:
        target_path = _sqlite_path(settings)
        try:
            backup_file = sqlean.connect(f"file:{source}?mode=ro", uri=True)
            backup_file.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlean.DatabaseError as exc:
            raise BackupError(f"{source} is not a SpatiaLite backup ({exc})") from None
        live = sqlean.connect(str(target_path))
        try:
            backup_file.backup(live)
        finally:
            live.close()
            backup_file.close()
    else:
        dsn, environment = _libpq(make_url(settings.database_url))
        _run(
            [
                _tool("pg_restore"),
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                "--exit-on-error",
                "--dbname",
                dsn,
                str(source),
            ],
            environment,
        )
    return BackupResult(source, source.stat().st_size)
