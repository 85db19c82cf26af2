"""The plumbing of the ``referral-net`` command: one error line instead of a traceback.

Every command runs inside :class:`ReportingGroup`, which turns the errors an operator can cause
(a mistyped database path, an unmigrated database, a bad argument, an unknown revision, a
refusal of the domain) into a single ``error: ...`` line on standard error and exit code 2. A
real bug still ends in a traceback: only the exceptions listed here are translated.

The opening checks live here too, so that no command creates a SpatiaLite file by opening a
path that does not exist (SQLite creates it on connect), and no command runs on a schema that
is missing or behind.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

# Typer vendors its own Click; its UsageError is the base of every bad-argument error.
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperArgument, TyperCommand, TyperGroup

from referral_net.db import migrate
from referral_net.errors import ReferralNetError
from referral_net.settings import Backend, Settings

UPGRADE_HINT = "run `.venv/bin/referral-net db upgrade`"


class CliError(Exception):
    """A refusal meant for the operator: its message is printed as ``error: <message>``."""


class ReportingGroup(TyperGroup):
    """A command group that reports the operator's errors in one line and exits with code 2."""

    def invoke(self, ctx: Any) -> Any:
        """Run the subcommand; translate the errors listed in :func:`describe_error`."""
        try:
            return super().invoke(ctx)
        except Exception as exc:
            message = describe_error(exc)
            if message is None:
                raise
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(code=2) from None


def describe_error(exc: BaseException) -> str | None:  # noqa: C901, PLR0911 - a dispatch on the error type
    """One line for an error the operator can act on, or None for a bug (left to propagate)."""
    if isinstance(exc, NoArgsIsHelpError):
        return None  # a group called bare: Typer prints its help, as it should
    if isinstance(exc, UsageError):
        path = exc.ctx.command_path if exc.ctx is not None else "referral-net"
        return f"{_first_line(exc.format_message())} (see `{path} --help`)"
    if isinstance(exc, CliError):
        return str(exc)
    if isinstance(exc, ReferralNetError):
        return exc.detail
    if isinstance(exc, CommandError):
        if "locate revision" in str(exc):
            # Not echoed: a revision is head, base, a revision id or a step such as -1.
            return "unknown revision: give head, base, a revision id or a step such as -1"
        return _first_line(str(exc))
    if isinstance(exc, ValidationError):
        fields = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'settings'}: {error['msg']}"
            for error in exc.errors()
        )
        return f"invalid settings: {fields}"
    if isinstance(exc, DBAPIError):
        # The driver's own first line (e.g. 'database "x" does not exist'); never the statement
        # or its parameters, which SQLAlchemy's message carries.
        return f"database: {_first_line(str(exc.orig)) or type(exc.orig).__name__}"
    if isinstance(exc, SQLAlchemyError):
        return f"database: {type(exc).__name__}"
    if isinstance(exc, OSError):
        return _first_line(str(exc))
    return None


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


class ClassicUsageCommand(TyperCommand):
    """A command whose usage line names arguments as ``USERNAME`` / ``[REVISION]``.

    Typer writes a required argument as ``{username}``, which reads like a literal to type.
    """

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """The usage line's pieces: options, then each argument in upper case."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.metavar or (param.name or "argument").upper()
                if not param.required:
                    name = f"[{name}]"
                pieces.append(name + ("..." if param.nargs != 1 else ""))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


class CliTyper(typer.Typer):
    """A Typer whose commands default to :class:`ClassicUsageCommand`."""

    def command(
        self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs: Any
    ) -> Callable[[Any], Any]:
        """Register a command (see ``typer.Typer.command``)."""
        return super().command(name, cls=cls or ClassicUsageCommand, **kwargs)


def require_existing_database(settings: Settings) -> None:
    """Refuse a SpatiaLite path that does not exist: opening it would create an empty file."""
    if settings.backend is not Backend.SPATIALITE:
        return
    database = make_url(settings.database_url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    if not Path(database).is_file():
        raise CliError(
            f"no database file at {database}: check REFERRAL_NET_DATABASE_URL, "
            f"or create it with `.venv/bin/referral-net db upgrade`"
        )


def require_current_schema(engine: Engine, settings: Settings) -> None:
    """Refuse a database whose schema is missing or not at the latest revision."""
    current = migrate.current_revision(engine)
    head = ScriptDirectory.from_config(migrate.alembic_config(settings)).get_current_head()
    if current is None:
        raise CliError(f"the database has no schema yet: {UPGRADE_HINT} first")
    if current != head:
        raise CliError(
            f"the database is at revision {current}, this version needs {head}: {UPGRADE_HINT}"
        )
