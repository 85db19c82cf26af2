"""Soak test (issue 18, item 5): ten minutes of steady mixed load on PostGIS with two workers.

Not a test and not in CI: run it by hand on a quiet machine, from the repository root:

    .venv/bin/python bench/soak_bench.py                        # 20 req/s, 30 s warm-up + 600 s
    .venv/bin/python bench/soak_bench.py --seconds 30 --rate 5  # a quick check that it runs

It reuses the PostGIS bench database ``referral_net_bench_<size>`` (100k by default) or builds it
the way bench/search_bench.py does, creates the actors it needs (organization A with a
caseworker; organization B, one of the synthetic organizations, with a provider; a steward),
starts ``referral-net serve --workers 2`` (rate limits off, a note key set so referrals carry an
encrypted note) and drives an **open-loop** mix at a fixed total rate from a thread pool: a
request is sent at its scheduled time whether or not earlier ones have answered, so a slow server
shows up as latency, not as a lower rate. The mix (weights out of 100):

- 30 ``GET /api/v1/search`` nearest-10 (half with the shelter category) at a random point;
- 12 ``POST /api/v1/match`` (three needs) at a random point, as the caseworker;
- 15 ``GET /ogc/collections/services/items?bbox=<10 km box>&limit=50`` around a town;
- 15 ``GET /tiles/services/12/x/y.mvt`` and 5 ``GET /tiles/departments/z/x/y.mvt`` (z 6-9);
- 5 ``POST /api/v1/organizations`` (steward) and 5 ``PATCH /api/v1/services/{id}`` (the
  provider, a service of organization B not being patched at that moment);
- 13 referral steps: send a referral from A to a service at a location of B (with consent and
  a note), or move an open one on (received, accepted, in_progress, completed by the provider);
  each referral is moved by one request at a time.

Every request's status and latency are recorded (latency from the moment it was sent; the delay
between its scheduled time and its sending is recorded too, and stays near zero while the pool
keeps up). Any 5xx, unexpected 4xx or transport error counts as an error and is listed. The
workers' resident memory (VmRSS of the serve process's children) is read after the warm-up,
every 30 s, and at the end. Writes bench/results/soak-<stamp>.json and .md.

The soak writes into the bench database (organizations, referrals, users, service
descriptions) but adds no service at location, so the search benchmark's ``--reuse`` still
recognises it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import search_bench  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlmodel import Session  # noqa: E402

from referral_net.db.engine import make_engine  # noqa: E402
from referral_net.domain import organizations, users  # noqa: E402
from referral_net.schemas.directory import OrganizationCreate  # noqa: E402
from referral_net.security import tokens  # noqa: E402
from referral_net.security.roles import Principal, Role  # noqa: E402
from referral_net.settings import Settings  # noqa: E402

RESULTS = ROOT / "bench" / "results"
CLI = ROOT / ".venv" / "bin" / "referral-net"
SECRET = search_bench.SECRET
LAT_RANGE, LON_RANGE = search_bench.LAT_RANGE, search_bench.LON_RANGE
# Request kinds, their weight in the mix and the statuses that count as success.
MIX: dict[str, int] = {
    "search": 30,
    "match": 12,
    "ogc_items": 15,
    "tile_services": 15,
    "tile_departments": 5,
    "org_create": 5,
    "service_patch": 5,
    "referral": 13,
}
EXPECTED: dict[str, set[int]] = {
    "search": {200},
    "match": {200},
    "ogc_items": {200},
    "tile_services": {200, 204},
    "tile_departments": {200, 204},
    "org_create": {201},
    "service_patch": {200},
    "referral_create": {201},
    "referral_move": {200},
}
# The referral path the provider walks after the caseworker has sent it.
MOVES = ("received", "accepted", "in_progress", "completed")
NEEDS = ["protection.legal_aid", "protection.health.mental_psychosocial"]
MATCH_NEEDS = [
    {"code": "protection.shelter", "urgency": "emergency"},
    {"code": "protection.health.medical", "urgency": "soon"},
    {"code": "protection.legal_aid"},
]


@dataclass
class Sample:
    """One request as the client saw it (status 0: transport error)."""

    kind: str
    phase: str
    at_s: float
    ms: float
    lag_ms: float
    status: int
    detail: str = ""


@dataclass
class Actors:
    """The accounts and targets the load uses."""

    caseworker: dict[str, str]
    provider: dict[str, str]
    steward: dict[str, str]
    org_a: str
    org_b: str
    links: list[str]
    services: list[str]


@dataclass
class State:
    """What the load shares between threads: open referrals, services being patched, samples."""

    open_referrals: deque[tuple[str, int]] = field(default_factory=deque)
    patching: set[str] = field(default_factory=set)
    samples: list[Sample] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    completed: int = 0


# --- set-up --------------------------------------------------------------------------------------


def _bearer(user_id: uuid.UUID, token_version: int) -> dict[str, str]:
    token = tokens.issue_token(
        secret=SECRET,
        user_id=user_id,
        kind="access",
        token_version=token_version,
        lifetime=timedelta(hours=3),
    )
    return {"Authorization": f"Bearer {token}"}


def make_actors(settings: Settings, stamp: str) -> Actors:
    """Create organization A, the three users, and pick organization B with its sites."""
    engine = make_engine(settings)
    steward = Principal(role=Role.STEWARD, subject="user:soak-bench")
    with Session(engine) as session:
        org_b = session.execute(
            text(
                "SELECT s.organization_id FROM service s JOIN service_at_location l"
                " ON l.service_id = s.id GROUP BY s.organization_id"
                " ORDER BY count(*) DESC, s.organization_id LIMIT 1"
            )
        ).scalar_one()
        rows = session.execute(
            text(
                "SELECT l.id, s.id FROM service_at_location l JOIN service s ON s.id = l.service_id"
                " WHERE s.organization_id = :org ORDER BY l.id"
            ),
            {"org": org_b},
        ).all()
        org_a = organizations.create(
            session=session,
            principal=steward,
            data=OrganizationCreate(name=f"Defensoría soak {stamp} (sintética)"),
        )
        session.commit()
        made = {}
        for name, role, org in (
            ("caseworker", Role.CASEWORKER, org_a.id),
            ("provider", Role.PROVIDER, org_b),
            ("steward", Role.STEWARD, None),
        ):
            user = users.create_user(
                session=session,
                username=f"soak-{stamp}-{name}",
                password="bench only, never a real account",
                role=role,
                organization_id=org,
            )
            session.commit()
            made[name] = _bearer(user.id, user.token_version)
        actors = Actors(
            caseworker=made["caseworker"],
            provider=made["provider"],
            steward=made["steward"],
            org_a=str(org_a.id),
            org_b=str(org_b),
            links=[str(link) for link, _ in rows],
            services=sorted({str(service) for _, service in rows}),
        )
    engine.dispose()
    return actors


def start_server(
    settings: Settings, workers: int, log: Path, note_key: str
) -> tuple[subprocess.Popen[bytes], str]:
    """``referral-net serve`` in its own process group on a free port; the process and its URL."""
    port = _free_port()
    env = {
        **search_bench.bench_env(settings),
        "REFERRAL_NET_REFERRAL_NOTE_KEY": note_key,
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
        if process.poll() is not None:
            raise RuntimeError(f"server exited early; see {log}")
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_server(process)
    raise RuntimeError(f"server not ready in 180 s; see {log}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group (supervisor and workers), SIGKILL if it lingers."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


# --- memory --------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def worker_pids(server_pid: int) -> list[int]:
    """The uvicorn workers: children of the serve process started by multiprocessing spawn (the
    resource tracker, if any, is a child too but not a worker)."""
    children = _children(server_pid)
    workers = [
        pid
        for pid in children
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    ]
    return sorted(workers or children)


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB (VmRSS), 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


# --- the load ------------------------------------------------------------------------------------


def tile_of(lat: float, lon: float, z: int) -> tuple[int, int]:
    """The XYZ (Web Mercator) tile holding a point."""
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    rad = math.radians(lat)
    y = int((1.0 - math.asinh(math.tan(rad)) / math.pi) / 2.0 * n)
    return x, y


class Load:
    """Builds and sends each kind of request; records what came back."""

    def __init__(self, base: str, actors: Actors, state: State, seed: int) -> None:
        """Keep the target, the actors, the shared state and a town list for realistic boxes."""
        self.base = base
        self.actors = actors
        self.state = state
        self.towns = [(lat, lon) for lat, lon, _w, _d in search_bench.towns()]
        self.local = threading.local()
        self.clients: list[httpx.Client] = []
        self.seed = seed

    def client(self) -> httpx.Client:
        """One HTTP client (keep-alive connection pool) per thread."""
        found = getattr(self.local, "client", None)
        if found is None:
            found = httpx.Client(base_url=self.base, timeout=60)
            self.local.client = found
            with self.state.lock:
                self.clients.append(found)
        return found

    def close(self) -> None:
        """Close every thread's client."""
        for one in self.clients:
            one.close()

    def run(self, kind: str, phase: str, due: float, t0: float, rng_seed: int) -> None:
        """Send one request of ``kind`` (scheduled at ``due``) and record it."""
        rng = random.Random(rng_seed)
        started = time.monotonic()
        lag_ms = (started - due) * 1000
        try:
            real_kind, status, detail = getattr(self, f"_{kind}")(rng)
        except httpx.HTTPError as exc:
            real_kind, status, detail = kind, 0, type(exc).__name__
        elapsed = (time.monotonic() - started) * 1000
        sample = Sample(real_kind, phase, round(due - t0, 3), elapsed, lag_ms, status, detail)
        with self.state.lock:
            self.state.samples.append(sample)

    def _point(self, rng: random.Random) -> tuple[float, float]:
        return rng.uniform(*LAT_RANGE), rng.uniform(*LON_RANGE)

    def _near_town(self, rng: random.Random) -> tuple[float, float]:
        lat, lon = rng.choice(self.towns)
        return lat + rng.gauss(0, 0.03), lon + rng.gauss(0, 0.03)

    @staticmethod
    def _answer(kind: str, response: httpx.Response) -> tuple[str, int, str]:
        detail = "" if response.status_code in EXPECTED[kind] else response.text[:300]
        return kind, response.status_code, detail

    def _search(self, rng: random.Random) -> tuple[str, int, str]:
        lat, lon = self._point(rng)
        params = {"near": f"{lat:.5f},{lon:.5f}", "limit": "10"}
        if rng.random() < 0.5:
            params["category"] = "protection.shelter"
        return self._answer("search", self.client().get("/api/v1/search", params=params))

    def _match(self, rng: random.Random) -> tuple[str, int, str]:
        lat, lon = self._point(rng)
        body = {
            # The box reaches into Mexico and Belize: declare the place (as match_requests.lua).
            "location": {"latitude": lat, "longitude": lon, "outside_country": True},
            "age": rng.choice([16, 24, 35]),
            "gender": "woman",
            "languages": ["spa", rng.choice(["mam", "quc", "kek"])],
            "needs": MATCH_NEEDS,
        }
        answer = self.client().post("/api/v1/match", json=body, headers=self.actors.caseworker)
        return self._answer("match", answer)

    def _ogc_items(self, rng: random.Random) -> tuple[str, int, str]:
        lat, lon = self._near_town(rng)
        # About 10 km square (0.09 degrees of latitude, a little more of longitude).
        box = f"{lon - 0.0465:.5f},{lat - 0.045:.5f},{lon + 0.0465:.5f},{lat + 0.045:.5f}"
        answer = self.client().get(
            "/ogc/collections/services/items", params={"bbox": box, "limit": "50"}
        )
        return self._answer("ogc_items", answer)

    def _tile_services(self, rng: random.Random) -> tuple[str, int, str]:
        x, y = tile_of(*self._near_town(rng), 12)
        return self._answer("tile_services", self.client().get(f"/tiles/services/12/{x}/{y}.mvt"))

    def _tile_departments(self, rng: random.Random) -> tuple[str, int, str]:
        z = rng.randint(6, 9)
        x, y = tile_of(*self._near_town(rng), z)
        answer = self.client().get(f"/tiles/departments/{z}/{x}/{y}.mvt")
        return self._answer("tile_departments", answer)

    def _org_create(self, rng: random.Random) -> tuple[str, int, str]:
        body = {
            "name": f"Organización soak {uuid.UUID(int=rng.getrandbits(128)).hex[:10]} (sintética)",
            "description": "Creada por bench/soak_bench.py.",
        }
        answer = self.client().post("/api/v1/organizations", json=body, headers=self.actors.steward)
        return self._answer("org_create", answer)

    def _service_patch(self, rng: random.Random) -> tuple[str, int, str]:
        # One patch per service at a time: two at once would race on its version (a 409 that
        # says nothing about the server's health).
        with self.state.lock:
            free = [s for s in self.actors.services if s not in self.state.patching]
            service = rng.choice(free)
            self.state.patching.add(service)
        try:
            body = {"description": f"Revisado por la prueba de carga ({rng.randrange(10**6)})."}
            answer = self.client().patch(
                f"/api/v1/services/{service}", json=body, headers=self.actors.provider
            )
        finally:
            with self.state.lock:
                self.state.patching.discard(service)
        return self._answer("service_patch", answer)

    def _referral(self, rng: random.Random) -> tuple[str, int, str]:
        # Move an open referral on about four times in five (each one needs four moves), else
        # send a new one; a referral being moved is out of the queue, so never moved twice at once.
        with self.state.lock:
            pending = self.state.open_referrals
            taken = pending.popleft() if pending and rng.random() < 0.8 else None
        if taken is None:
            return self._referral_create(rng)
        referral_id, step = taken
        answer = self.client().post(
            f"/api/v1/referrals/{referral_id}/transitions",
            json={"status": MOVES[step]},
            headers=self.actors.provider,
        )
        if answer.status_code == 200:
            with self.state.lock:
                if step + 1 < len(MOVES):
                    self.state.open_referrals.append((referral_id, step + 1))
                else:
                    self.state.completed += 1
        return self._answer("referral_move", answer)

    def _referral_create(self, rng: random.Random) -> tuple[str, int, str]:
        body = {
            "service_at_location_id": rng.choice(self.actors.links),
            "needs": [rng.choice(NEEDS)],
            "urgency": rng.choice(["routine", "soon"]),
            "traits": {"age": rng.randint(18, 60), "gender": "woman", "languages": ["spa"]},
            "consent": {
                "given": True,
                "scope": "referral",
                "given_on": datetime.now(UTC).date().isoformat(),
            },
            "note": "Nota sintética de la prueba de carga.",
        }
        answer = self.client().post("/api/v1/referrals", json=body, headers=self.actors.caseworker)
        if answer.status_code == 201:
            with self.state.lock:
                self.state.open_referrals.append((answer.json()["id"], 0))
        return self._answer("referral_create", answer)


def drive(
    load: Load,
    *,
    t_start: float,
    rate: float,
    warmup: float,
    seconds: float,
    threads: int,
    seed: int,
) -> float:
    """Send the mix open-loop at ``rate`` per second from ``t_start`` (monotonic) for
    ``warmup + seconds``; return when the last answer came."""
    rng = random.Random(seed)
    kinds, weights = list(MIX), list(MIX.values())
    t0 = t_start + warmup
    end = t0 + seconds
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="soak") as pool:
        index = 0
        while True:
            due = t_start + index / rate
            if due >= end:
                break
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            kind = rng.choices(kinds, weights)[0]
            phase = "warmup" if due < t0 else "measure"
            pool.submit(load.run, kind, phase, due, t0, rng.getrandbits(64))
            index += 1
    return time.monotonic()


class Sampler(threading.Thread):
    """Reads the workers' RSS at the start of the measured window, then every ``every`` seconds."""

    def __init__(self, workers: list[int], t0: float, every: float) -> None:
        """Remember the worker pids, when the window starts and how often to read."""
        super().__init__(daemon=True)
        self.workers, self.t0, self.every = workers, t0, every
        self.readings: list[dict[str, Any]] = []
        self.stop = threading.Event()

    def read(self, at: float) -> dict[str, Any]:
        """One reading: seconds into the window, each worker's RSS in KiB, the load average."""
        reading = {
            "at_s": round(at - self.t0, 1),
            "rss_kib": {str(pid): rss_kib(pid) for pid in self.workers},
            "loadavg": [round(x, 2) for x in os.getloadavg()],
        }
        self.readings.append(reading)
        return reading

    def run(self) -> None:
        """Sample until stopped, on a fixed grid from the window's start."""
        tick = 0
        while not self.stop.is_set():
            due = self.t0 + tick * self.every
            if self.stop.wait(max(0.0, due - time.monotonic())):
                return
            self.read(due)
            tick += 1


# --- figures -------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def is_error(sample: Sample) -> bool:
    """A transport error, a 5xx or any status the kind does not expect."""
    return sample.status == 0 or sample.status not in EXPECTED[sample.kind]


def summarize(
    samples: list[Sample], readings: list[dict[str, Any]], args: argparse.Namespace
) -> dict[str, Any]:
    """Per-minute and per-kind figures, the errors, the memory growth and the verdicts."""
    measured = [s for s in samples if s.phase == "measure"]
    warm = [s for s in samples if s.phase == "warmup"]
    errors = [s for s in samples if is_error(s)]
    minutes = []
    for minute in range(math.ceil(args.seconds / 60)):
        chunk = [s for s in measured if minute * 60 <= s.at_s < (minute + 1) * 60]
        ms = [s.ms for s in chunk]
        minutes.append(
            {
                "minute": minute + 1,
                "requests": len(chunk),
                "errors": sum(is_error(s) for s in chunk),
                "p50_ms": round(percentile(ms, 0.5), 1),
                "p99_ms": round(percentile(ms, 0.99), 1),
                "max_ms": round(max(ms, default=0.0), 1),
            }
        )
    kinds = []
    for kind in EXPECTED:
        chunk = [s for s in measured if s.kind == kind]
        ms = [s.ms for s in chunk]
        kinds.append(
            {
                "kind": kind,
                "requests": len(chunk),
                "statuses": dict(sorted(Counter(str(s.status) for s in chunk).items())),
                "p50_ms": round(percentile(ms, 0.5), 1),
                "p99_ms": round(percentile(ms, 0.99), 1),
                "max_ms": round(max(ms, default=0.0), 1),
            }
        )
    first, last = readings[0], readings[-1]
    memory = []
    for pid, start in first["rss_kib"].items():
        end = last["rss_kib"].get(pid, 0)
        growth = (end / start - 1) * 100 if start and end else None
        memory.append(
            {
                "pid": int(pid),
                "start_mib": round(start / 1024, 1),
                "end_mib": round(end / 1024, 1),
                "growth_pct": None if growth is None else round(growth, 1),
            }
        )
    total_start = sum(first["rss_kib"].values())
    total_end = sum(last["rss_kib"].values())
    all_ms = [s.ms for s in measured]
    lags = [s.lag_ms for s in samples]
    worst_growth = max((m["growth_pct"] for m in memory if m["growth_pct"] is not None), default=0)
    gone = any(m["end_mib"] == 0 for m in memory)
    return {
        "rate_per_s": args.rate,
        "warmup_s": args.warmup,
        "seconds": args.seconds,
        "workers": args.workers,
        "size": args.size,
        "requests_measured": len(measured),
        "requests_warmup": len(warm),
        "achieved_rate_per_s": round(len(measured) / args.seconds, 2),
        "errors_total": len(errors),
        "error_rate": round(len(errors) / len(samples), 6) if samples else 0.0,
        "errors": [asdict(s) for s in errors[:200]],
        "p50_ms": round(percentile(all_ms, 0.5), 1),
        "p99_ms": round(percentile(all_ms, 0.99), 1),
        "max_ms": round(max(all_ms, default=0.0), 1),
        "send_lag_p99_ms": round(percentile(lags, 0.99), 1),
        "send_lag_max_ms": round(max(lags, default=0.0), 1),
        "minutes": minutes,
        "kinds": kinds,
        "memory": memory,
        "memory_total_growth_pct": round((total_end / total_start - 1) * 100, 1)
        if total_start and total_end
        else None,
        "memory_readings": readings,
        "verdict_errors": "met" if not errors else f"missed: {len(errors)} errors",
        "verdict_memory": "missed: a worker was replaced or gone"
        if gone
        else ("met" if worst_growth < 10 else f"missed: {worst_growth:.1f} % growth"),
    }


def server_log_problems(log_text: str) -> int:
    """Lines of the server log at level ERROR or CRITICAL, or that start a traceback."""
    count = 0
    for line in log_text.splitlines():
        try:
            level = json.loads(line).get("level", "")
        except (ValueError, AttributeError):
            level = ""
        count += level in ("ERROR", "CRITICAL") or line.startswith("Traceback")
    return count


def markdown(result: dict[str, Any]) -> str:
    """The figures as markdown tables ready for docs/performance.md."""
    r = result
    lines = [
        f"Code: {r['commit']}. {r['started']} to {r['finished']} UTC. PostGIS, "
        f"{r['size']:,} service locations, `referral-net serve --workers {r['workers']}`; "
        f"open-loop {r['rate_per_s']} req/s for {r['seconds']} s after a {r['warmup_s']} s "
        f"warm-up; client and server on the same {os.cpu_count()} cores. Load average at the "
        f"start {r['loadavg_start']}, at the end {r['loadavg_end']}.",
        "",
        f"- requests measured: {r['requests_measured']:,} ({r['achieved_rate_per_s']} req/s), "
        f"plus {r['requests_warmup']:,} in the warm-up; referrals walked to completed: "
        f"{r['referrals_completed']}",
        f"- errors (5xx, unexpected 4xx, transport), warm-up included: {r['errors_total']} "
        f"(rate {r['error_rate']:.4%})",
        f"- latency, whole window: p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, max "
        f"{r['max_ms']} ms; send delay behind schedule p99 {r['send_lag_p99_ms']} ms, max "
        f"{r['send_lag_max_ms']} ms",
        "",
        "| minute | requests | errors | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|",
        *(
            f"| {m['minute']} | {m['requests']} | {m['errors']} | {m['p50_ms']} | {m['p99_ms']}"
            f" | {m['max_ms']} |"
            for m in r["minutes"]
        ),
        "",
        "| request | count | statuses | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|",
        *(
            f"| {k['kind']} | {k['requests']} | "
            + ", ".join(f"{code}: {n}" for code, n in k["statuses"].items())
            + f" | {k['p50_ms']} | {k['p99_ms']} | {k['max_ms']} |"
            for k in r["kinds"]
        ),
        "",
        "| worker pid | RSS after warm-up MiB | RSS at end MiB | growth |",
        "|---|---|---|---|",
        *(
            f"| {m['pid']} | {m['start_mib']} | {m['end_mib']} | {m['growth_pct']} % |"
            for m in r["memory"]
        ),
        "",
        "RSS over the window (MiB, per worker; 1-minute load average): "
        + "; ".join(
            f"{reading['at_s']:.0f} s: "
            + "/".join(f"{kib / 1024:.0f}" for kib in reading["rss_kib"].values())
            + f" (load {reading['loadavg'][0]})"
            for reading in r["memory_readings"]
        ),
        "",
        "| target (issue 18) | measured | verdict |",
        "|---|---|---|",
        f"| 0 errors | {r['errors_total']} | {r['verdict_errors']} |",
        "| worker memory growth < 10 % | "
        + ", ".join(f"{m['growth_pct']} %" for m in r["memory"])
        + f" | {r['verdict_memory']} |",
    ]
    if r["errors"]:
        lines += ["", "Errors (first 200):", ""]
        lines += [
            f"- {e['kind']} at {e['at_s']} s: {e['status']} {e['detail'][:160]}"
            for e in r["errors"]
        ]
    if r["server_log_problems"]:
        lines += ["", f"Server log lines with ERROR or Traceback: {r['server_log_problems']}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Prepare the database and actors, serve, drive the mix, and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=600, help="measured window")
    parser.add_argument("--warmup", type=int, default=30, help="load before the window")
    parser.add_argument("--rate", type=float, default=20.0, help="total requests per second")
    parser.add_argument("--size", type=int, default=100_000, help="bench database size")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers")
    parser.add_argument("--threads", type=int, default=64, help="client threads (open loop)")
    parser.add_argument("--sample-every", type=float, default=30.0, help="RSS reading period")
    parser.add_argument("--seed", type=int, default=18)
    args = parser.parse_args()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(parents=True, exist_ok=True)
    settings, _load_s, _rebuild_s = search_bench.prepared_database("postgis", args.size, reuse=True)
    actors = make_actors(settings, stamp)
    log = RESULTS / f"soak-{stamp}-server.log"
    note_key = Fernet.generate_key().decode("ascii")
    process, base = start_server(settings, args.workers, log, note_key)
    state = State()
    load = Load(base, actors, state, args.seed)
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    loadavg_start = [round(x, 2) for x in os.getloadavg()]
    try:
        workers = worker_pids(process.pid)
        print(f"serving {base}, workers {workers}", file=sys.stderr, flush=True)
        t_start = time.monotonic() + 0.5
        sampler = Sampler(workers, t_start + args.warmup, args.sample_every)
        sampler.start()
        drive(
            load,
            t_start=t_start,
            rate=args.rate,
            warmup=args.warmup,
            seconds=args.seconds,
            threads=args.threads,
            seed=args.seed,
        )
        sampler.stop.set()
        sampler.join()
        sampler.read(time.monotonic())
        workers_after = worker_pids(process.pid)
    finally:
        load.close()
        stop_server(process)
    log_text = log.read_text(errors="replace")
    result = summarize(state.samples, sampler.readings, args)
    result.update(
        {
            "commit": search_bench.git_commit(),
            "started": started,
            "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "loadavg_start": loadavg_start,
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
            "worker_pids_start": workers,
            "worker_pids_end": workers_after,
            "server_log_problems": server_log_problems(log_text),
            "referrals_completed": state.completed,
            "referrals_left_open": len(state.open_referrals),
        }
    )
    if workers_after != workers:
        result["verdict_memory"] = "missed: the worker set changed (a worker died)"
    (RESULTS / f"soak-{stamp}.json").write_text(json.dumps(result, indent=1))
    report = markdown(result)
    (RESULTS / f"soak-{stamp}.md").write_text(report)
    print(report)
    print(f"saved {RESULTS / f'soak-{stamp}.json'} and .md", file=sys.stderr)


if __name__ == "__main__":
    main()
