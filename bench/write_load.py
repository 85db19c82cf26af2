"""Concurrent writers and readers against a served referral-net, on both backends side by side.

For each backend it builds a fresh database with the sample network, starts
``referral-net serve --workers 2`` and, for each writer count (16 and 32 by default), runs that many
writers plus 16 readers for 60 s over loopback:

- a writer alternates ``POST /api/v1/organizations`` and ``PUT /api/v1/services/{id}/capacity`` on
  a service of its own (so "the last acknowledged capacity" is well defined);
- a reader alternates nearest-10 searches at random points (half with the shelter category) and
  ``GET /api/v1/organizations``.

It reports answers by status, acknowledged writes per second, reader p50/p99 and the acknowledged
writes missing afterwards (every created organization by id, and each writer's last capacity),
then a crash round: writers run, the server's whole process group gets SIGKILL mid-write, and the
database is checked (SQLite ``PRAGMA integrity_check``, every acknowledged write re-read, the audit
chain verified). The load generator is one asyncio process on the same 2 cores as the server, for
both backends alike: compare the backends' figures within one run, not across runs.

    scripts/bench-writes                       # both backends, 16 and 32 writers, 60 s
    scripts/bench-writes --seconds 20 --writers 16 --backends spatialite
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx2 as httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlmodel import Session, col, select  # noqa: E402

from referral_net.db.engine import make_engine  # noqa: E402
from referral_net.db.models import Organization, Service, ServiceCapacity  # noqa: E402
from referral_net.domain import audit, users  # noqa: E402
from referral_net.security.roles import Role  # noqa: E402
from referral_net.settings import Settings  # noqa: E402

CLI = ROOT / ".venv" / "bin" / "referral-net"
RESULTS = ROOT / "bench" / "results"
SECRET = "bench-only-not-a-secret-0123456789abcdef"
PASSWORD = "bench steward password 42"
# The populated box of the Western Highlands and the capital (lat, lon).
BOX = (14.0, 16.5, -92.2, -89.0)


@dataclass
class Round:
    """The outcome of one load round."""

    backend: str
    writers: int
    readers: int
    seconds: float
    statuses: dict[str, int] = field(default_factory=dict)
    writes_acknowledged: int = 0
    writes_per_second: float = 0.0
    reader_p50_ms: float = 0.0
    reader_p99_ms: float = 0.0
    reader_max_ms: float = 0.0
    writer_p50_ms: float = 0.0
    writer_p99_ms: float = 0.0
    transport_errors: int = 0
    lost_acknowledged_writes: int = 0


@dataclass
class CrashRound:
    """The outcome of a kill -9 in the middle of writes."""

    backend: str
    acknowledged_before_kill: int
    lost_acknowledged_writes: int
    integrity_check: str
    audit_chain_ok: bool


@dataclass
class Load:
    """What the clients saw during one round."""

    statuses: Counter[int] = field(default_factory=Counter)
    created: list[uuid.UUID] = field(default_factory=list)
    last_capacity: dict[uuid.UUID, int] = field(default_factory=dict)
    # Values sent after the last acknowledged one: a write cut off by a crash may have landed.
    unanswered_capacity: dict[uuid.UUID, set[int]] = field(default_factory=dict)
    reader_ms: list[float] = field(default_factory=list)
    writer_ms: list[float] = field(default_factory=list)
    writes_acknowledged: int = 0
    transport_errors: int = 0


def database_url(backend: str, postgis_base: str) -> str:
    """The bench database of a backend."""
    if backend == "spatialite":
        return f"sqlite:///{RESULTS / 'write_load.db'}"
    return f"{postgis_base}/referral_net_write_load"


def fresh_database(backend: str, url: str) -> None:
    """Create an empty database, migrate it and load the areas and the sample network."""
    if backend == "spatialite":
        for suffix in ("", "-wal", "-shm"):
            Path(make_url(url).database + suffix).unlink(missing_ok=True)  # type: ignore[operator]
    else:
        target = make_url(url)
        admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
        admin.dispose()
        engine = create_engine(target, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        engine.dispose()
    env = {**os.environ, "REFERRAL_NET_DATABASE_URL": url}
    for command in (["db", "upgrade"], ["areas", "load"], ["seed", "load"]):
        done = subprocess.run(
            [str(CLI), *command], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise SystemExit(f"referral-net {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    engine = make_engine(Settings(database_url=url))
    with Session(engine) as session:
        users.create_user(
            session=session, username="bench-steward", password=PASSWORD, role=Role.STEWARD
        )
    engine.dispose()


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(url: str, workers: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``referral-net serve`` in its own process group; return it and its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "REFERRAL_NET_DATABASE_URL": url,
        "REFERRAL_NET_SECRET_KEY": SECRET,
        "REFERRAL_NET_RATE_LIMITS_ENABLED": "false",
    }
    process = subprocess.Popen(
        [str(CLI), "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"server did not start; see {log}")


def stop_server(process: subprocess.Popen[bytes], *, crash: bool = False) -> None:
    """Stop the server and its workers: SIGTERM, or SIGKILL to the whole group for a crash."""
    os.killpg(process.pid, signal.SIGKILL if crash else signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def service_ids(url: str) -> list[uuid.UUID]:
    """The sample network's service ids, in a fixed order."""
    engine = make_engine(Settings(database_url=url))
    with Session(engine) as session:
        ids = list(session.exec(select(Service.id).order_by(col(Service.id))))
    engine.dispose()
    return ids


async def run_load(
    base: str, *, writers: int, readers: int, seconds: float, services: list[uuid.UUID]
) -> Load:
    """Drive writers and readers for ``seconds``; every writer owns one service."""
    load = Load()
    limits = httpx.Limits(max_connections=writers + readers + 4)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        answer = await client.post(
            "/api/v1/auth/token", data={"username": "bench-steward", "password": PASSWORD}
        )
        auth = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        stop_at = time.monotonic() + seconds

        async def writer(number: int) -> None:
            own_service = services[number % len(services)]
            step = 0
            while time.monotonic() < stop_at:
                step += 1
                started = time.perf_counter()
                try:
                    if step % 2:
                        body = {"name": f"Carga {number}-{step} (ejemplo)"}
                        answer = await client.post("/api/v1/organizations", json=body, headers=auth)
                    else:
                        value = step % 90
                        load.unanswered_capacity.setdefault(own_service, set()).add(value)
                        body2 = {"capacity": [{"unit": "bed", "available": value, "maximum": 90}]}
                        answer = await client.put(
                            f"/api/v1/services/{own_service}/capacity", json=body2, headers=auth
                        )
                except httpx.HTTPError:
                    load.transport_errors += 1
                    continue
                load.writer_ms.append((time.perf_counter() - started) * 1000)
                load.statuses[answer.status_code] += 1
                if answer.is_success:
                    load.writes_acknowledged += 1
                if answer.status_code == 201:
                    load.created.append(uuid.UUID(answer.json()["id"]))
                elif answer.status_code == 200 and step % 2 == 0:
                    load.last_capacity[own_service] = value
                    load.unanswered_capacity[own_service] = set()

        async def reader(number: int) -> None:
            rng = random.Random(number)
            step = 0
            while time.monotonic() < stop_at:
                step += 1
                lat, lon = rng.uniform(*BOX[:2]), rng.uniform(*BOX[2:])
                if step % 3 == 0:
                    path = "/api/v1/organizations?per_page=10"
                elif step % 3 == 1:
                    path = f"/api/v1/search?near={lat:.5f},{lon:.5f}&limit=10"
                else:
                    path = f"/api/v1/search?near={lat:.5f},{lon:.5f}&category=protection.shelter"
                started = time.perf_counter()
                try:
                    answer = await client.get(path)
                except httpx.HTTPError:
                    load.transport_errors += 1
                    continue
                load.reader_ms.append((time.perf_counter() - started) * 1000)
                load.statuses[answer.status_code] += 1

        await asyncio.gather(
            *(writer(n) for n in range(writers)), *(reader(n) for n in range(readers))
        )
    return load


def lost_writes(url: str, load: Load) -> int:
    """Acknowledged writes not in the database: created organizations, last capacities."""
    engine = make_engine(Settings(database_url=url))
    lost = 0
    with Session(engine) as session:
        for start in range(0, len(load.created), 500):
            batch = load.created[start : start + 500]
            found = set(
                session.exec(select(Organization.id).where(col(Organization.id).in_(batch)))
            )
            lost += len(set(batch) - found)
        for service_id, value in load.last_capacity.items():
            stored = session.exec(
                select(ServiceCapacity.available).where(ServiceCapacity.service_id == service_id)
            ).all()
            if not set(stored) & ({value} | load.unanswered_capacity.get(service_id, set())):
                lost += 1
    engine.dispose()
    return lost


def integrity(url: str) -> tuple[str, bool]:
    """SQLite's integrity check (PostgreSQL: 'n/a') and whether the audit chain verifies."""
    engine = make_engine(Settings(database_url=url))
    result = "n/a (PostgreSQL WAL recovery)"
    with Session(engine) as session:
        if url.startswith("sqlite"):
            result = str(session.execute(text("PRAGMA integrity_check")).scalar_one())
        chain_ok = audit.verify(session=session).ok
    engine.dispose()
    return result, chain_ok


def percentile(values: list[float], share: float) -> float:
    """The value below which ``share`` of the values fall (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def load_round(
    backend: str, url: str, *, writers: int, readers: int, seconds: float, workers: int
) -> Round:
    """One measured round on a running server."""
    log = RESULTS / f"write_load_{backend}.log"
    process, base = start_server(url, workers, log)
    try:
        load = asyncio.run(
            run_load(
                base, writers=writers, readers=readers, seconds=seconds, services=service_ids(url)
            )
        )
    finally:
        stop_server(process)
    acknowledged = load.writes_acknowledged
    return Round(
        backend=backend,
        writers=writers,
        readers=readers,
        seconds=seconds,
        statuses={str(k): v for k, v in sorted(load.statuses.items())},
        writes_acknowledged=acknowledged,
        writes_per_second=round(acknowledged / seconds, 1),
        reader_p50_ms=round(statistics.median(load.reader_ms), 1) if load.reader_ms else 0.0,
        reader_p99_ms=round(percentile(load.reader_ms, 0.99), 1),
        reader_max_ms=round(max(load.reader_ms, default=0.0), 1),
        writer_p50_ms=round(statistics.median(load.writer_ms), 1) if load.writer_ms else 0.0,
        writer_p99_ms=round(percentile(load.writer_ms, 0.99), 1),
        transport_errors=load.transport_errors,
        lost_acknowledged_writes=lost_writes(url, load),
    )


def crash_round(backend: str, url: str, *, writers: int, workers: int) -> CrashRound:
    """Writers run; the server's process group is killed with SIGKILL mid-write; then check."""
    log = RESULTS / f"write_load_{backend}.log"
    process, base = start_server(url, workers, log)
    services = service_ids(url)

    async def load_then_kill() -> Load:
        task = asyncio.create_task(
            run_load(base, writers=writers, readers=0, seconds=30, services=services)
        )
        await asyncio.sleep(6)
        stop_server(process, crash=True)
        return await task

    load = asyncio.run(load_then_kill())
    check, chain_ok = integrity(url)
    return CrashRound(
        backend=backend,
        acknowledged_before_kill=load.writes_acknowledged,
        lost_acknowledged_writes=lost_writes(url, load),
        integrity_check=check,
        audit_chain_ok=chain_ok,
    )


def main() -> None:
    """Parse the arguments, run every round, print and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="spatialite,postgis")
    parser.add_argument("--writers", default="16,32")
    parser.add_argument("--readers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-crash", action="store_true", help="skip the kill -9 round")
    args = parser.parse_args()
    postgis_base = os.environ.get("BENCH_POSTGIS_BASE", "postgresql+psycopg://postgres@127.0.0.1")
    RESULTS.mkdir(parents=True, exist_ok=True)
    rounds: list[Round] = []
    crashes: list[CrashRound] = []
    for backend in args.backends.split(","):
        url = database_url(backend, postgis_base)
        fresh_database(backend, url)
        for writers in (int(n) for n in args.writers.split(",")):
            measured = load_round(
                backend,
                url,
                writers=writers,
                readers=args.readers,
                seconds=args.seconds,
                workers=args.workers,
            )
            print(json.dumps(asdict(measured)), flush=True)
            rounds.append(measured)
        if not args.no_crash:
            crashed = crash_round(backend, url, writers=16, workers=args.workers)
            print(json.dumps(asdict(crashed)), flush=True)
            crashes.append(crashed)
    print_report(rounds, crashes)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = RESULTS / f"write-load-{stamp}.json"
    out.write_text(
        json.dumps(
            {"rounds": [asdict(r) for r in rounds], "crash": [asdict(c) for c in crashes]},
            indent=2,
        )
    )
    print(f"saved {out}")


def print_report(rounds: list[Round], crashes: list[CrashRound]) -> None:
    """A Markdown table of the rounds, with SpatiaLite's write rate as a share of PostGIS's."""
    print(
        "\n| backend | writers + readers | answers by status | writes/s | reader p50 / p99 "
        "/ max ms | writer p50 / p99 ms | lost acknowledged |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rounds:
        print(
            f"| {r.backend} | {r.writers} + {r.readers} | {r.statuses} | {r.writes_per_second} "
            f"| {r.reader_p50_ms} / {r.reader_p99_ms} / {r.reader_max_ms} "
            f"| {r.writer_p50_ms} / {r.writer_p99_ms} | {r.lost_acknowledged_writes} |"
        )
    by_key = {(r.backend, r.writers): r for r in rounds}
    for (backend, writers), r in by_key.items():
        peer = by_key.get(("postgis", writers))
        if backend == "spatialite" and peer and peer.writes_per_second:
            share = r.writes_per_second / peer.writes_per_second
            print(f"SpatiaLite/PostGIS write throughput at {writers} writers: {share:.2f}x")
    for c in crashes:
        print(
            f"crash round {c.backend}: {c.acknowledged_before_kill} acknowledged before kill -9, "
            f"{c.lost_acknowledged_writes} lost, integrity_check {c.integrity_check}, "
            f"audit chain {'ok' if c.audit_chain_ok else 'BROKEN'}"
        )


if __name__ == "__main__":
    main()
