"""Throwaway PostgreSQL clusters for tests that stop, restart or replicate a server.

The machine's own PostgreSQL (the one ``REFERRAL_NET_TEST_POSTGIS_URL`` names) is shared by every
other test and must never be stopped; tests that need to restart a server, or to stream from a
primary to a replica, make their own clusters here instead:

- the binaries are the installed ones of the running server's major version (asked over SQL),
  else of the newest installed major; PostGIS for that major is installed by ``scripts/test``;
- a cluster runs as the ``postgres`` OS user when the tests run as root (PostgreSQL refuses to
  run as root), from a data directory under a fresh temporary directory that user owns;
- it listens on a free loopback port only (no Unix socket), and its ``pg_hba.conf`` trusts
  127.0.0.1, replication included: nothing else can reach it, and it is deleted at the end.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.conftest import DEFAULT_POSTGIS_URL
from tests.served import free_port

POSTGRES_USER = "postgres"
PG_LIB = Path("/usr/lib/postgresql")
# Server settings of every throwaway cluster: small, loopback only, ready to stream a replica.
# fsync is off for speed: the tests stop and restart the server cleanly ("fast" or "smart"
# modes write a checkpoint), and the operating system keeps the files; no test cuts power.
CLUSTER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "max_connections": "120",
    "shared_buffers": "32MB",
    "wal_level": "replica",
    "max_wal_senders": "4",
    "hot_standby": "on",
    "fsync": "off",
    "full_page_writes": "off",
    "log_min_messages": "warning",
    "logging_collector": "off",
}
HBA = """\
# Throwaway test cluster: loopback only, no passwords.
host all all 127.0.0.1/32 trust
host replication all 127.0.0.1/32 trust
"""


def _server_major() -> int | None:
    """The major version of the running test server, or None if none answers."""
    url = os.environ.get("REFERRAL_NET_TEST_POSTGIS_URL", DEFAULT_POSTGIS_URL)
    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1).rsplit("/", 1)[0]
    try:
        with psycopg.connect(f"{conninfo}/postgres", connect_timeout=5) as conn:
            row = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
    except psycopg.Error:
        return None
    return None if row is None else int(row[0]) // 10000


def _installed_majors() -> list[int]:
    if not PG_LIB.is_dir():
        return []
    return sorted(
        int(entry.name)
        for entry in PG_LIB.iterdir()
        if entry.name.isdigit() and (entry / "bin" / "initdb").exists()
    )


def postgres_bindir() -> Path:
    """The directory of ``initdb``, ``pg_ctl`` and ``pg_basebackup`` to make clusters with.

    The running server's major version when its binaries are installed (its PostGIS package is
    then installed too), else the newest installed major.
    """
    majors = _installed_majors()
    if not majors:
        raise RuntimeError(f"no PostgreSQL server binaries under {PG_LIB}")
    major = _server_major()
    chosen = major if major in majors else majors[-1]
    return PG_LIB / str(chosen) / "bin"


def _as_postgres(argv: Sequence[str]) -> list[str]:
    """The command run as the ``postgres`` user when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return list(argv)
    return ["runuser", "-u", POSTGRES_USER, "--", *argv]


def _run(argv: Sequence[str], *, timeout: float = 120) -> None:
    result = subprocess.run(
        _as_postgres(argv), capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}")


def _own(path: Path) -> None:
    """Hand a path to the ``postgres`` user (when we are root), with owner-only access."""
    if os.geteuid() == 0:
        entry = pwd.getpwnam(POSTGRES_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(0o700)


@dataclass
class Cluster:
    """One throwaway PostgreSQL cluster: its binaries, data directory, port and server log."""

    bindir: Path
    datadir: Path
    port: int
    log: Path

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of a database of this cluster."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def conninfo(self, database: str = "postgres") -> str:
        """The libpq connection string of a database of this cluster."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def _pg_ctl(self, *args: str, timeout: float = 120) -> None:
        _run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.log), *args],
            timeout=timeout,
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._pg_ctl("-w", "-t", "60", "-o", f"-p {self.port}", "start")
        self.wait_until_up()

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``smart``, ``fast`` or ``immediate``) and wait until it is down."""
        self._pg_ctl("-w", "-t", "60", "-m", mode, "stop")

    def restart(self, mode: str = "fast") -> None:
        """``pg_ctl restart``: stop (in ``mode``), start again, wait until it accepts."""
        self._pg_ctl("-w", "-t", "60", "-m", mode, "-o", f"-p {self.port}", "restart")
        self.wait_until_up()

    def is_up(self) -> bool:
        """Whether the server accepts a connection right now."""
        try:
            with psycopg.connect(self.conninfo(), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def wait_until_up(self, seconds: float = 60) -> None:
        """Wait until the server accepts connections (a standby, too: it runs hot)."""
        deadline = time.monotonic() + seconds
        while not self.is_up():
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster on port {self.port} did not come up:\n{self.tail()}")
            time.sleep(0.1)

    def execute(self, sql: str, *, database: str = "postgres") -> list[tuple[object, ...]]:
        """Run one statement in autocommit and return its rows (none for a command)."""
        with psycopg.connect(self.conninfo(database), autocommit=True, connect_timeout=10) as conn:
            cursor = conn.execute(sql.encode("utf-8"))
            return list(cursor.fetchall()) if cursor.description else []

    def create_database(self, name: str, *, postgis: bool = True) -> str:
        """Create a database (with PostGIS by default) and return its SQLAlchemy URL."""
        self.execute(f'CREATE DATABASE "{name}"')
        if postgis:
            self.execute("CREATE EXTENSION postgis", database=name)
        return self.url(name)

    def tail(self, characters: int = 3000) -> str:
        """The end of the server log (for failure messages)."""
        with suppress(OSError):
            return self.log.read_text(errors="replace")[-characters:]
        return "(no server log)"


def _configure(datadir: Path) -> None:
    settings = "".join(f"{name} = {value}\n" for name, value in CLUSTER_SETTINGS.items())
    _append_as_postgres(datadir / "postgresql.auto.conf", settings)
    _write_as_postgres(datadir / "pg_hba.conf", HBA)


def _write_as_postgres(path: Path, text: str) -> None:
    path.write_text(text)
    if os.geteuid() == 0:
        entry = pwd.getpwnam(POSTGRES_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _append_as_postgres(path: Path, text: str) -> None:
    existing = path.read_text() if path.exists() else ""
    _write_as_postgres(path, existing + text)


@contextmanager
def cluster_root() -> Iterator[Path]:
    """A fresh directory the ``postgres`` user owns, for data directories; deleted at the end.

    Under the system temporary directory, not pytest's ``tmp_path``: that one lies below a
    directory only its (root) owner may enter, where the ``postgres`` user could not reach.
    """
    root = Path(tempfile.mkdtemp(prefix="referral-net-pg-"))
    try:
        _own(root)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def init_primary(root: Path, *, bindir: Path | None = None) -> Cluster:
    """``initdb`` a new cluster under ``root`` (not started), ready to serve a replica."""
    bindir = bindir or postgres_bindir()
    datadir = root / "primary"
    _run(
        [
            str(bindir / "initdb"),
            "-D",
            str(datadir),
            "-U",
            POSTGRES_USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]
    )
    _configure(datadir)
    return Cluster(bindir=bindir, datadir=datadir, port=free_port(), log=root / "primary.log")


def start_primary(root: Path, database: str) -> tuple[Cluster, str]:
    """``initdb`` and start a primary under ``root`` with a PostGIS ``database``; return the
    cluster and the database's URL. A cluster that started but failed later is stopped again."""
    primary = init_primary(root)
    primary.start()
    try:
        return primary, primary.create_database(database)
    except BaseException:
        with suppress(RuntimeError, subprocess.TimeoutExpired):
            primary.stop("immediate")
        raise


def base_backup_replica(primary: Cluster, root: Path, *, name: str = "replica") -> Cluster:
    """A streaming replica of a running primary: ``pg_basebackup -R`` on another port (not
    started). ``-R`` writes ``standby.signal`` and the ``primary_conninfo`` to stream from."""
    datadir = root / name
    _run(
        [
            str(primary.bindir / "pg_basebackup"),
            "-h",
            "127.0.0.1",
            "-p",
            str(primary.port),
            "-U",
            POSTGRES_USER,
            "-D",
            str(datadir),
            "-R",
            "-X",
            "stream",
            "--checkpoint=fast",
            "--no-sync",
        ]
    )
    return Cluster(
        bindir=primary.bindir, datadir=datadir, port=free_port(), log=root / f"{name}.log"
    )


@contextmanager
def running(cluster: Cluster, *, started: bool = False) -> Iterator[Cluster]:
    """Start a cluster for the block (unless ``started``); stop it at the end (``immediate``:
    it is thrown away)."""
    if not started:
        cluster.start()
    try:
        yield cluster
    finally:
        with suppress(RuntimeError, subprocess.TimeoutExpired):
            cluster.stop("immediate")


def wait_for_replay(primary: Cluster, replica: Cluster, *, seconds: float = 30) -> None:
    """Wait until the replica has replayed everything the primary has written so far."""
    (target,) = primary.execute("SELECT pg_current_wal_insert_lsn()::text")[0]
    deadline = time.monotonic() + seconds
    while True:
        rows = replica.execute(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")
        if rows and rows[0][0]:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"replica did not replay up to {target}:\n{replica.tail()}")
        time.sleep(0.05)
