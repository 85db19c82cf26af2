"""The ``referral-net`` command line: serve, migrate, and load reference and sample data."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import Session

from referral_net.db import migrate
from referral_net.db.engine import make_engine
from referral_net.settings import Settings, get_settings

app = typer.Typer(
    help="referral-net: referral directory and needs-matching API.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema migrations (Alembic).", no_args_is_help=True)
areas_app = typer.Typer(help="Guatemala's departments and municipalities.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(areas_app, name="areas")
users_app = typer.Typer(help="Staff user accounts.", no_args_is_help=True)
app.add_typer(users_app, name="users")
seed_app = typer.Typer(help="The illustrative sample network.", no_args_is_help=True)
app.add_typer(seed_app, name="seed")
taxonomy_app = typer.Typer(help="The anti-trafficking taxonomy.", no_args_is_help=True)
app.add_typer(taxonomy_app, name="taxonomy")
keys_app = typer.Typer(help="Partner API keys (hashed; shown once).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


def _settings() -> Settings:
    return get_settings()


@contextmanager
def _session() -> Iterator[Session]:
    """A session on the configured database, disposed after; a refusal exits with code 2."""
    from referral_net.errors import ReferralNetError

    engine = make_engine(_settings())
    try:
        with Session(engine) as session:
            yield session
    except ReferralNetError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(code=2) from None
    finally:
        engine.dispose()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Serve the API with uvicorn (OpenAPI docs at /docs)."""
    import logging

    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    uvicorn.run(
        "referral_net.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # Access logs carry query strings, which can hold a person's location: ours log paths only.
        access_log=False,
    )


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Migrate the database up (to the latest revision by default)."""
    migrate.upgrade(_settings(), revision)
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
        raise typer.BadParameter(f"unknown role {role!r}", param_hint="--role") from None
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
            organization_id=uuid.UUID(organization_id) if organization_id else None,
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


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the audit trail's hash chain; exit 1 naming the first edited or deleted entry."""
    from referral_net.domain import audit

    with _session() as session:
        report = audit.verify(session=session)
    if not report.ok:
        typer.echo(
            f"audit chain broken at entry {report.first_bad_seq}: {report.reason} "
            f"({report.entries} entries intact before it)",
            err=True,
        )
        raise typer.Exit(code=1)
    typer.echo(f"audit chain intact: {report.entries} entries (head {report.head_hash})")
