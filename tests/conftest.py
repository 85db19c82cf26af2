"""Test fixtures: every DB and API test runs on SpatiaLite and on PostGIS through the migrations.

Each backend is migrated once per session; each test runs inside an outer transaction that is
rolled back, with the session joining it through SAVEPOINTs so that code under test may commit.
A backend that cannot be reached is skipped on a laptop but fails the run under CI (``CI=true``)
or with ``--require-all-backends``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from referral_net.db import migrate
from referral_net.db.engine import make_engine
from referral_net.domain import areas, seed
from referral_net.main import create_app
from referral_net.settings import Settings

BACKENDS = ("spatialite", "postgis")
DEFAULT_POSTGIS_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/referral_net_test"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the option that turns a missing backend into a failure."""
    parser.addoption(
        "--require-all-backends",
        action="store_true",
        default=os.environ.get("CI", "").lower() in {"1", "true", "yes"},
        help="fail (instead of skip) when a database backend is unavailable; on under CI",
    )


# One suffix per test run, so that two runs against one PostgreSQL never share (or drop) each
# other's databases; every database a run creates is dropped when the run ends.
RUN_SUFFIX = f"_{os.getpid()}_{uuid.uuid4().hex[:6]}"
_created_databases: list[str] = []


def postgis_url() -> str:
    """The PostGIS test database URL of this run (created fresh, dropped at the end)."""
    return os.environ.get("REFERRAL_NET_TEST_POSTGIS_URL", DEFAULT_POSTGIS_URL) + RUN_SUFFIX


def _admin_engine(url: str) -> Engine:
    return create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")


def _fresh_postgis_database(url: str) -> None:
    target = make_url(url)
    if url not in _created_databases:
        _created_databases.append(url)
    admin = _admin_engine(url)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    finally:
        admin.dispose()
    engine = create_engine(target, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    finally:
        engine.dispose()


def make_backend_settings(backend: str, tmp_dir: Path, *, suffix: str = "") -> Settings:
    """Settings for a fresh, empty database of the given backend."""
    if backend == "spatialite":
        return Settings(database_url=f"sqlite:///{tmp_dir / f'referral-net-test{suffix}.db'}")
    url = postgis_url() + suffix
    _fresh_postgis_database(url)
    return Settings(database_url=url)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Drop every PostGIS database this run created (a leftover would clash with nothing, but
    would fill the server)."""
    for url in _created_databases:
        admin = _admin_engine(url)
        try:
            with admin.connect() as conn:
                name = make_url(url).database
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        except SQLAlchemyError as exc:  # the run's result stands; say what was left behind
            print(f"could not drop test database {url}: {type(exc).__name__}")
        finally:
            admin.dispose()


# The files that take longest (CI durations, summed per file, longest first). They are collected
# first, and scripts/test keeps the collection order (--no-loadscope-reorder), so that each
# worker starts on one of them and the short files fill in behind: xdist's default order (most
# tests first) left the two fuzz files, with two tests each, to the end, one after the other.
LONGEST_FILES = (
    "tests/test_api_fuzz_postgis.py",
    "tests/test_api_fuzz_spatialite.py",
    "tests/test_exchange_round_trip.py",
    "tests/test_hsds_conformance.py",
    "tests/test_hsds_parameters.py",
    "tests/test_backup.py",
    "tests/test_wheel.py",
    "tests/test_embed_browser_postgis.py",
    "tests/test_embed_browser_spatialite.py",
    "tests/test_ogc_clients.py",
    "tests/test_graceful_shutdown.py",
    "tests/test_search_parity.py",
)


def _longest_first(item: pytest.Item) -> int:
    path = item.nodeid.partition("::")[0]
    return LONGEST_FILES.index(path) if path in LONGEST_FILES else len(LONGEST_FILES)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the other backend's items of a file marked ``only_backend`` (its twin file runs
    them; see tests/api_fuzz.py), so that each backend's half can go to its own worker; then put
    the longest files first (``LONGEST_FILES``)."""
    items.sort(key=_longest_first)  # stable: each file keeps its own order
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        only = item.get_closest_marker("only_backend")
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec is not None else None
        if only is not None and backend is not None and backend != only.args[0]:
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def unavailable(request: pytest.FixtureRequest, backend: str, exc: BaseException) -> None:
    """Skip on a laptop, fail under CI, when a backend cannot be set up."""
    message = f"{backend} backend unavailable: {type(exc).__name__}: {exc}"
    if request.config.getoption("--require-all-backends"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend under test."""
    return str(request.param)


@pytest.fixture(scope="session")
def settings(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """Settings pointing at a migrated database with the administrative areas loaded."""
    try:
        settings = make_backend_settings(backend, tmp_path_factory.mktemp(backend))
        migrate.upgrade(settings)
    except Exception as exc:
        unavailable(request, backend, exc)
        raise
    engine = make_engine(settings)
    with Session(engine) as session:
        areas.load_areas(session=session)
    engine.dispose()
    return settings


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    """The engine of the migrated test database."""
    engine = make_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside an outer transaction that is rolled back after the test."""
    with engine.connect() as conn:
        outer = conn.begin()
        try:
            yield conn
        finally:
            outer.rollback()


def joined_session(connection: Connection) -> Session:
    """A session on ``connection`` whose commits become SAVEPOINT releases inside the
    connection's transaction, which the caller rolls back."""
    return Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture(scope="module")
def sample_network_connection(engine: Engine) -> Iterator[Connection]:
    """A connection holding the sample network, loaded once for a module and rolled back after it.

    Loading the sample through the domain takes 15-30 s; a module whose every test reads it
    overrides ``connection`` with :func:`savepoint_per_test` over this one, and each test then
    runs in a SAVEPOINT rolled back after it, on top of the one load.
    """
    with engine.connect() as conn:
        outer = conn.begin()
        try:
            with joined_session(conn) as loading:
                seed.load_sample(session=loading)
            yield conn
        finally:
            outer.rollback()


def savepoint_per_test(conn: Connection) -> Iterator[Connection]:
    """The module's connection inside a SAVEPOINT that is rolled back after the test."""
    nested = conn.begin_nested()
    try:
        yield conn
    finally:
        if nested.is_active:
            nested.rollback()


@pytest.fixture
def session(connection: Connection) -> Iterator[Session]:
    """A session whose commits become SAVEPOINT releases inside the test's transaction."""
    with joined_session(connection) as session:
        yield session


@pytest.fixture
def app(settings: Settings, engine: Engine, connection: Connection) -> FastAPI:
    """The application wired to the test's transaction."""
    # Limits off: the fuzz test alone makes hundreds of requests (test_rate_limits opts in).
    # No import worker thread: it would poll the shared engine beside every test
    # (tests/test_import_jobs.py serves the app with its worker).
    application = create_app(
        settings.model_copy(
            update={
                "rate_limits_enabled": False,
                "import_worker": False,
                "referral_webhook_worker": False,  # tests/test_referrals_webhooks.py runs it
            }
        )
    )
    application.state.engine = engine
    join_transaction(application, connection)
    return application


def join_transaction(application: FastAPI, connection: Connection) -> None:
    """Serve every request of ``application`` inside the test's transaction (``connection``):
    each request's session commits into SAVEPOINTs that the test's rollback undoes."""
    application.state.session_source = partial(joined_session, connection)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """An HTTP client for the test application; server errors come back as 500 responses."""
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def unique() -> str:
    """A short unique marker for names created by one test."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def taxonomy_loaded(session: Session) -> None:
    """Load the anti-trafficking taxonomy inside the test's transaction."""
    from referral_net.domain import taxonomy

    taxonomy.load_taxonomy(session=session)


@pytest.fixture
def steward_headers(app: FastAPI, session: Session) -> dict[str, str]:
    """Bearer headers of a steward."""
    from referral_net.security.roles import Role
    from tests.factories import bearer, make_user

    return bearer(app, make_user(session, Role.STEWARD))
