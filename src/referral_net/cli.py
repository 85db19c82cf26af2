"""The ``referral-net`` command line: serve, migrate, and load reference and sample data."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from sqlmodel import Session

from referral_net import cli_support
from referral_net.cli_support import CliTyper, ReportingGroup
from referral_net.db import migrate
from referral_net.db.engine import make_engine
from referral_net.exchange.records import ImportOptions, SourceRecord
from referral_net.settings import Settings, get_settings
from referral_net.vocab import Visibility

if TYPE_CHECKING:
    from referral_net.domain.audit import Checkpoint, VerifyReport

# ReportingGroup: an operator's error (bad path, unmigrated database, bad argument) is one
# `error: ...` line and exit code 2 for every command; CliTyper: usage lines say USERNAME.
app = CliTyper(
    cls=ReportingGroup,
    help="referral-net: referral directory and needs-matching API.",
    no_args_is_help=True,
)
db_app = CliTyper(help="Database schema migrations (Alembic).", no_args_is_help=True)
areas_app = CliTyper(help="Guatemala's departments and municipalities.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(areas_app, name="areas")
users_app = CliTyper(help="Staff user accounts.", no_args_is_help=True)
app.add_typer(users_app, name="users")
seed_app = CliTyper(help="The illustrative sample network.", no_args_is_help=True)
app.add_typer(seed_app, name="seed")
taxonomy_app = CliTyper(help="The anti-trafficking taxonomy.", no_args_is_help=True)
app.add_typer(taxonomy_app, name="taxonomy")
keys_app = CliTyper(help="Partner API keys (hashed; shown once).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
audit_app = CliTyper(help="The tamper-evident audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
search_app = CliTyper(help="The search read model.", no_args_is_help=True)
app.add_typer(search_app, name="search")
import_app = CliTyper(
    help="Import a directory: HSDS files or the spreadsheet template.", no_args_is_help=True
)
app.add_typer(import_app, name="import")
export_app = CliTyper(help="Export the directory as HSDS.", no_args_is_help=True)
app.add_typer(export_app, name="export")


def _settings(*, may_create_database: bool = False) -> Settings:
    """The settings; a SpatiaLite file that does not exist is refused unless the command may
    create the database (only ``db upgrade``): SQLite would create an empty file on connect."""
    settings = get_settings()
    if not may_create_database:
        cli_support.require_existing_database(settings)
    return settings


@contextmanager
def _session() -> Iterator[Session]:
    """A session on the existing, fully migrated database, disposed after.

    Refusals (and the domain's errors) become one ``error:`` line through ReportingGroup.
    """
    from referral_net.domain import audit

    settings = _settings()
    engine = make_engine(settings)
    try:
        cli_support.require_current_schema(engine, settings)
        with Session(engine) as session:
            # Audit entries of CLI writes are anchored with the audit key, like the API's.
            audit.use_key(session, settings.audit_key)
            yield session
    finally:
        engine.dispose()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="Proxy address(es) whose X-Forwarded-For/-Proto are trusted, comma-separated "
            "(default: REFERRAL_NET_FORWARDED_ALLOW_IPS; unset: none, not even loopback)."
        ),
    ] = None,
) -> None:
    """Serve the API with uvicorn (OpenAPI docs at /docs)."""
    import uvicorn

    from referral_net.server import exit_cleanly_on_sigterm, metrics_directory, uvicorn_options

    # Read (and so validate) the settings here: a bad setting, such as a short secret key,
    # stops the command before uvicorn starts, instead of failing inside every worker.
    settings = _settings()
    # The log format (uvicorn_options' log_config) is applied by uvicorn, in every process.
    with exit_cleanly_on_sigterm(), metrics_directory(settings, workers=workers):
        uvicorn.run(
            **uvicorn_options(
                host=host,
                port=port,
                workers=workers,
                forwarded_allow_ips=forwarded_allow_ips or settings.forwarded_allow_ips,
                settings=settings,
            )
        )


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Migrate the database up (to the latest revision by default)."""
    migrate.upgrade(_settings(may_create_database=True), revision)
    typer.echo(f"database at {revision}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, e.g. -1 or base.")] = "-1",
) -> None:
    """Migrate the database down (one revision by default)."""
    migrate.downgrade(_settings(), revision)
    typer.echo(f"database downgraded to {revision}")


@db_app.command("current")
def db_current() -> None:
    """Print the revision the database is at."""
    engine = make_engine(_settings())
    try:
        typer.echo(migrate.current_revision(engine) or "empty (no revision)")
    finally:
        engine.dispose()


@app.command("backup")
def backup_command(
    target: Annotated[Path, typer.Argument(help="The backup file to write (replaced).")],
) -> None:
    """Back up the whole database, online (SpatiaLite: SQLite's backup API; PostGIS: pg_dump)."""
    from referral_net.db import backup

    settings = _settings()
    try:
        made = backup.backup(settings, target)
    except backup.BackupError as exc:
        raise cli_support.CliError(str(exc)) from None
    typer.echo(f"backed up to {made.path} ({made.size:,} bytes)")


@app.command("restore")
def restore_command(
    source: Annotated[Path, typer.Argument(help="A file made by `referral-net backup`.")],
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: the whole database is replaced.")
    ] = False,
) -> None:
    """Replace the whole database with a backup (PostGIS: one transaction, all or nothing)."""
    from referral_net.db import backup

    if not yes:
        raise cli_support.CliError(
            "restore replaces the whole database with the backup; add --yes to go on"
        )
    settings = _settings(may_create_database=True)
    try:
        backup.restore(settings, source)
    except backup.BackupError as exc:
        raise cli_support.CliError(str(exc)) from None
    engine = make_engine(settings)
    try:
        revision = migrate.current_revision(engine) or "none"
    finally:
        engine.dispose()
    typer.echo(f"restored from {source}; schema revision {revision}")


@areas_app.command("load")
def areas_load(
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Folder with departments.geojson, municipalities.geojson and centroids."),
    ] = None,
    if_empty: Annotated[bool, typer.Option(help="Do nothing when areas are loaded.")] = False,
) -> None:
    """Load Guatemala's 22 departments and 340 municipalities (replaces what is there)."""
    from referral_net.domain import areas

    with _session() as session:
        if if_empty and areas.count_areas(session=session)["municipality"] > 0:
            typer.echo("areas already loaded")
            return
        report = areas.load_areas(session=session, data_dir=data_dir)
    typer.echo(
        f"loaded {report.departments} departments and {report.municipalities} municipalities"
    )


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Argument(help="Login name (not a personal e-mail).")],
    role: Annotated[str, typer.Option(help="caseworker, justice, provider, steward or admin.")],
    organization_id: Annotated[
        str | None, typer.Option(help="Organization id (required for providers).")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from standard input instead of a prompt.")
    ] = False,
) -> None:
    """Create a staff user. The first admin is created here; there is no default password."""
    import sys
    import uuid

    from referral_net.domain import users
    from referral_net.security.roles import Role

    try:
        role_value = Role(role)
    except ValueError:
        raise typer.BadParameter(
            "not a staff role (caseworker, justice, provider, steward or admin)",
            param_hint="--role",
        ) from None
    try:
        organization = uuid.UUID(organization_id) if organization_id else None
    except ValueError:
        raise typer.BadParameter("not a UUID", param_hint="--organization-id") from None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _session() as session:
        user = users.create_user(
            session=session,
            username=username,
            password=password,
            role=role_value,
            organization_id=organization,
        )
        typer.echo(f"created {user.role} {user.username} ({user.id})")


@users_app.command("disable")
def users_disable(username: Annotated[str, typer.Argument(help="Login name.")]) -> None:
    """Disable a staff user and revoke every token issued to them."""
    from referral_net.domain import users

    with _session() as session:
        users.disable_user(session=session, username=username)
        typer.echo(f"disabled {username}")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="The partner site, e.g. web-partner (no person).")],
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="read (always granted) or embed; repeat.")
    ] = None,
    origin: Annotated[
        list[str] | None,
        typer.Option("--origin", help="Web origin bound to the key, https://host[:port]; repeat."),
    ] = None,
    per_minute: Annotated[
        int | None, typer.Option("--per-minute", help="The key's own rate limit.")
    ] = None,
) -> None:
    """Create a partner API key and print it once; only its hash is stored."""
    from referral_net.domain import keys

    with _session() as session:
        key, raw = keys.create_key(
            session=session,
            name=name,
            scopes=scope,
            allowed_origins=origin,
            requests_per_minute=per_minute,
        )
        typer.echo(f"created key {key.name} (prefix {key.prefix}, id {key.id})", err=True)
        typer.echo("store this key now: it is shown once and cannot be recovered", err=True)
        typer.echo(raw)  # alone on stdout, so that scripts can capture it


@keys_app.command("revoke")
def keys_revoke(
    name_or_id: Annotated[str, typer.Argument(help="Active key name, key id or prefix.")],
) -> None:
    """Revoke a partner key; it stops working at once."""
    from referral_net.domain import keys

    with _session() as session:
        key = keys.revoke_key(session=session, name_or_id=name_or_id)
        typer.echo(f"revoked key {key.name} (prefix {key.prefix})")


@keys_app.command("rotate")
def keys_rotate(
    name_or_id: Annotated[str, typer.Argument(help="Active key name, key id or prefix.")],
) -> None:
    """Replace a key by a new one with the same settings; print the new key once."""
    from referral_net.domain import keys

    with _session() as session:
        key, raw = keys.rotate_key(session=session, name_or_id=name_or_id)
        typer.echo(f"rotated key {key.name}: new prefix {key.prefix}, id {key.id}", err=True)
        typer.echo("the old key no longer works; store this one now, shown once", err=True)
        typer.echo(raw)


KEY_LIST_COLUMNS = ("name", "prefix", "scopes", "origins", "per_minute", "created", "revoked", "id")


@keys_app.command("list")
def keys_list(
    active: Annotated[bool, typer.Option(help="Only keys that are not revoked.")] = False,
) -> None:
    """List partner keys: name, prefix, scopes, origins, limit, created, revoked (no secrets)."""
    from referral_net.domain import keys

    with _session() as session:
        infos = keys.list_keys(session=session, include_revoked=not active)
    if not infos:
        typer.echo("no keys")
        return
    typer.echo("\t".join(KEY_LIST_COLUMNS))
    for info in infos:
        typer.echo(
            "\t".join(
                [
                    info.name,
                    info.prefix,
                    ",".join(info.scopes),
                    ",".join(info.allowed_origins) or "-",
                    str(info.requests_per_minute or "default"),
                    info.created_at.isoformat(timespec="seconds"),
                    info.revoked_at.isoformat(timespec="seconds") if info.revoked_at else "active",
                    str(info.id),
                ]
            )
        )


@seed_app.command("load")
def seed_load(
    path: Annotated[Path | None, typer.Option(help="Sample network JSON file.")] = None,
    if_empty: Annotated[
        bool, typer.Option(help="Do nothing when the directory already has organizations.")
    ] = False,
) -> None:
    """Load the illustrative Western Highlands sample network (and the taxonomy)."""
    from referral_net.domain import seed

    with _session() as session:
        if if_empty and seed.is_loaded(session=session):
            typer.echo("directory not empty: sample not loaded")
            return
        report = seed.load_sample(session=session, path=path)
    typer.echo(
        f"loaded {report.organizations} organizations, {report.locations} locations, "
        f"{report.services} services, {report.service_at_locations} services at locations "
        "(illustrative data)"
    )


@taxonomy_app.command("load")
def taxonomy_load(
    path: Annotated[Path | None, typer.Option(help="Taxonomy JSON file.")] = None,
) -> None:
    """Load or refresh the anti-trafficking taxonomy (idempotent)."""
    from referral_net.domain import taxonomy

    with _session() as session:
        count = taxonomy.load_taxonomy(session=session, path=path)
        session.commit()
    typer.echo(f"loaded {count} taxonomy terms")


@search_app.command("rebuild")
def search_rebuild() -> None:
    """Recreate the search read model from the directory's tables (one transaction)."""
    from referral_net.domain import search_model

    with _session() as session:
        count = search_model.rebuild(session)
        session.commit()
    typer.echo(f"rebuilt {count} search entries")


referrals_app = CliTyper(help="Referrals: the retention purge.", no_args_is_help=True)
app.add_typer(referrals_app, name="referrals")


@referrals_app.command("purge")
def referrals_purge(
    days: Annotated[
        int | None,
        typer.Option(min=1, help="Retention in days (default: the retention setting)."),
    ] = None,
) -> None:
    """Erase note and traits of referrals finished longer ago than the retention (idempotent)."""
    from datetime import timedelta

    from referral_net.domain import referrals

    retention = timedelta(days=days or _settings().referral_retention_days)
    with _session() as session:
        count = referrals.purge(session=session, retention=retention)
    typer.echo(f"purged {count} referrals")


def _checkpoint_path(path: Path | None, settings: Settings) -> Path | None:
    if path is not None:
        return path
    return Path(settings.audit_checkpoint_file) if settings.audit_checkpoint_file else None


def _read_checkpoints(
    path: Path | None, settings: Settings, *, must_exist: bool
) -> list[Checkpoint]:
    """The checkpoints in a file (none if it does not exist and need not); bad lines exit 1."""
    from referral_net.domain import audit

    if path is None:
        return []
    if not path.exists():
        if must_exist:
            typer.echo(f"error: checkpoint file not found: {path}", err=True)
            raise typer.Exit(code=2)
        return []
    try:
        return audit.parse_checkpoints(text=path.read_text("utf-8"), key=settings.audit_key)
    except audit.CheckpointInvalid as exc:
        typer.echo(f"audit checkpoints rejected: {exc}", err=True)
        raise typer.Exit(code=1) from None


def _exit_if_broken(report: VerifyReport) -> None:
    if not report.ok:
        typer.echo(
            f"audit chain broken at entry {report.first_bad_seq}: {report.reason} "
            f"({report.entries} entries intact before it)",
            err=True,
        )
        raise typer.Exit(code=1)


@audit_app.command("verify")
def audit_verify(
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="Checkpoint file to check against (default: REFERRAL_NET_AUDIT_CHECKPOINT_FILE "
            "when that file exists)."
        ),
    ] = None,
) -> None:
    """Walk the audit trail's hash chain, MACs (with the audit key) and checkpoints.

    Exit 1 naming the first edited or deleted entry, a truncation or a rewrite.
    """
    from referral_net.domain import audit

    settings = _settings()
    marks = _read_checkpoints(
        _checkpoint_path(checkpoint, settings), settings, must_exist=checkpoint is not None
    )
    with _session() as session:
        report = audit.verify(session=session, key=settings.audit_key, checkpoints=marks)
    _exit_if_broken(report)
    typer.echo(f"audit chain intact: {report.entries} entries (head {report.head_hash})")
    if report.mac_checked:
        typer.echo(
            f"MACs checked; {report.unanchored} unanchored entries (written before the audit "
            "key was set)"
        )
    else:
        typer.echo("MACs not checked: REFERRAL_NET_AUDIT_KEY is not set")
    if marks:
        typer.echo(f"checkpoints matched: {report.checkpoints_checked} of {len(marks)}")
    else:
        typer.echo("no checkpoints: deleting the newest entries would not be detected")


@audit_app.command("checkpoint")
def audit_checkpoint(
    path: Annotated[
        Path | None,
        typer.Option(help="File to append to (default: REFERRAL_NET_AUDIT_CHECKPOINT_FILE)."),
    ] = None,
) -> None:
    """Verify the trail, then print its head (seq, hash, MAC, time) and append it to a file.

    Keep the file off the database host (ship it to a log service or WORM storage).
    """
    from referral_net.domain import audit

    settings = _settings()
    target = _checkpoint_path(path, settings)
    if target is None:
        typer.echo(
            "error: no checkpoint file: pass --path or set REFERRAL_NET_AUDIT_CHECKPOINT_FILE",
            err=True,
        )
        raise typer.Exit(code=2)
    marks = _read_checkpoints(target, settings, must_exist=False)
    with _session() as session:
        report = audit.verify(session=session, key=settings.audit_key, checkpoints=marks)
    _exit_if_broken(report)
    line = audit.make_checkpoint(report=report, key=settings.audit_key).to_line()
    try:
        with target.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    except OSError as exc:
        typer.echo(f"error: cannot append to {target}: {exc.strerror}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(line)


# --- import (issue 15): the options and the run that `import hsds` and `import sheet` share ------

VisibilityOption = Annotated[
    str,
    typer.Option(
        "--visibility",
        help="Visibility of imported locations: public, restricted or confidential (a record"
        " stating a more hidden one keeps it; an import never makes a site more visible).",
    ),
]
SkipInvalidOption = Annotated[
    bool,
    typer.Option(
        "--skip-invalid", help="Import the valid records and report the rest (exit code 3)."
    ),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Validate everything, write nothing.")
]
ReportOption = Annotated[
    Path | None,
    typer.Option("--report", help="Write the report (counts, errors, warnings) as JSON here."),
]
KeepLastModifiedOption = Annotated[
    bool,
    typer.Option(
        "--keep-last-modified",
        help="Keep the source's last_modified instead of the time of the import.",
    ),
]


def import_visibility(value: str) -> Visibility:
    """The --visibility value, or an operator's error naming the choices."""
    try:
        return Visibility(value)
    except ValueError:
        raise cli_support.CliError(
            "--visibility must be public, restricted or confidential"
        ) from None


def run_import_command(
    *,
    source_name: str,
    records: Iterable[SourceRecord],
    options: ImportOptions,
    report_path: Path | None,
) -> None:
    """Run an import with a progress bar, print the summary and the problems, write
    ``--report``, and exit with the report's code (0, 1 or 3; an operator's error is 2)."""
    from rich.console import Console

    from referral_net.exchange import report as import_report
    from referral_net.exchange.importer import run_import

    settings = _settings()
    engine = make_engine(settings)
    try:
        cli_support.require_current_schema(engine, settings)
        with import_report.import_progress(Console(stderr=True), source_name) as advance:
            report = run_import(
                engine=engine,
                records=records,
                options=options,
                on_progress=advance,
                actor="system:import",
                audit_key=settings.audit_key,
            )
    finally:
        engine.dispose()
    import_report.print_report(report, Console(soft_wrap=True))
    if report_path is not None:
        try:
            import_report.write_report_file(report, report_path)
        except OSError as exc:
            raise cli_support.CliError(
                f"cannot write the report to {report_path}: {exc.strerror}"
            ) from None
    raise typer.Exit(code=report.exit_code)


@import_app.command("hsds")
def import_hsds(
    path: Annotated[
        str,
        typer.Argument(
            help="A nested JSON or NDJSON file, a folder or .zip (CSV datapackage, or JSON /"
            " NDJSON files named by table), or an http(s) URL to any of these."
        ),
    ],
    *,
    visibility: VisibilityOption = "restricted",
    skip_invalid: SkipInvalidOption = False,
    dry_run: DryRunOption = False,
    report: ReportOption = None,
    keep_last_modified: KeepLastModifiedOption = False,
) -> None:
    """Import HSDS 3.0 records, upserted by id: all or nothing unless --skip-invalid."""
    from referral_net.exchange.sources import open_source

    chosen = import_visibility(visibility)
    _settings()  # the database must exist before a download starts
    with open_source(path) as source:
        run_import_command(
            source_name=source.name,
            records=source.records(),
            options=ImportOptions(
                visibility=chosen,
                skip_invalid=skip_invalid,
                dry_run=dry_run,
                source_name=source.name,
                keep_last_modified=keep_last_modified,
            ),
            report_path=report,
        )


# --- import sheet / import template (issue 15, the spreadsheet template) ----------------------


@import_app.command("template")
def import_template(
    path: Annotated[Path, typer.Argument(help="File to write (.xlsx or .csv).")],
    sheet_format: Annotated[
        str | None,
        typer.Option("--format", help="xlsx or csv (default: the file name's suffix)."),
    ] = None,
) -> None:
    """Write the empty spreadsheet template (the guide: docs/sheet-template.md)."""
    from referral_net.exchange import sheet

    if sheet_format not in {None, "xlsx", "csv"}:
        raise cli_support.CliError(f"--format must be xlsx or csv, not {sheet_format!r}")
    chosen: sheet.SheetFormat | None = (
        None if sheet_format is None else ("csv" if sheet_format == "csv" else "xlsx")
    )
    try:
        written = sheet.write_template(path, chosen)
    except OSError as exc:
        raise cli_support.CliError(f"cannot write {path}: {exc.strerror}") from None
    typer.echo(f"template written to {written}")


@import_app.command("sheet")
def import_sheet(
    path: Annotated[Path, typer.Argument(help="The filled template (.xlsx or .csv).")],
    visibility: VisibilityOption = "restricted",
    skip_invalid: SkipInvalidOption = False,
    dry_run: DryRunOption = False,
    report: ReportOption = None,
) -> None:
    """Import the spreadsheet template: hours parsed, rows placed offline (given, town or
    municipality); a row's visibilidad cell wins, --visibility fills the empty ones."""
    from referral_net.exchange import sheet

    chosen = import_visibility(visibility)
    if not path.is_file():
        raise cli_support.CliError(f"no such file: {path}")
    run_import_command(
        source_name=path.name,
        records=sheet.read_sheet(path),
        options=ImportOptions(
            visibility=chosen,
            # The sheet's visibilidad column is the operator's own word for each row.
            visibility_from_source=True,
            skip_invalid=skip_invalid,
            dry_run=dry_run,
            source_name=path.name,
        ),
        report_path=report,
    )


# --- export hsds (issue 15, export) ----------------------------------------------------------


@export_app.command("hsds")
def export_hsds(
    directory: Annotated[Path, typer.Argument(help="Folder to write into (created if missing).")],
    export_format: Annotated[
        str,
        typer.Option(
            "--format", help="json (one list per table), ndjson, or csv (a tabular datapackage)."
        ),
    ] = "json",
    audience: Annotated[
        str,
        typer.Option(help="public (default), caseworker or steward; any but public is audited."),
    ] = "public",
) -> None:
    """Export the directory as HSDS 3.0, as the audience may see it (docs/export.md)."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from referral_net.exchange import export

    if export_format not in export.FORMATS:
        raise cli_support.CliError(f"--format must be json, ndjson or csv, not {export_format!r}")
    if audience not in export.AUDIENCES:
        raise cli_support.CliError(
            f"--audience must be public, caseworker or steward, not {audience!r}"
        )
    if directory.exists() and not directory.is_dir():
        raise cli_support.CliError(f"not a folder: {directory}")
    settings = _settings()
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with _session() as session, Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task("exporting", total=None)
        done = {"count": 0}

        def advance(table: str) -> None:
            done["count"] += 1
            progress.update(task, description=f"{table}: {done['count']} records")

        try:
            summary = export.write_export(
                session=session,
                directory=directory,
                export_format=export_format,  # type: ignore[arg-type]  # checked above
                audience=audience,  # type: ignore[arg-type]  # checked above
                capacity_stale_hours=settings.capacity_stale_hours,
                on_record=advance,
            )
        except OSError as exc:
            raise cli_support.CliError(f"cannot write to {directory}: {exc.strerror}") from None
    table = Table(title=f"HSDS export ({summary.format}, {summary.audience}) into {directory}")
    table.add_column("table")
    table.add_column("records", justify="right")
    for name, _record_table in export.EXPORT_TABLES:
        table.add_row(name, str(summary.records.get(name, 0)))
    if summary.rows:
        table.add_section()
        for name, count in summary.rows.items():
            table.add_row(f"{name} (csv rows)", str(count))
    Console(soft_wrap=True).print(table)
