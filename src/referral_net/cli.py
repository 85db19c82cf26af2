"""The ``referral-net`` command line: serve, migrate, and load reference and sample data."""

from __future__ import annotations

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


def _settings() -> Settings:
    return get_settings()


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

    engine = make_engine(_settings())
    try:
        with Session(engine) as session:
            if if_empty and areas.count_areas(session=session)["municipality"] > 0:
                typer.echo("areas already loaded")
                return
            report = areas.load_areas(session=session, data_dir=data_dir)
    finally:
        engine.dispose()
    typer.echo(
        f"loaded {report.departments} departments and {report.municipalities} municipalities"
    )
