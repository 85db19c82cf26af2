"""A capacity write now beside the same write at the commit before the search read model.

The search read model is kept in step inside every write's transaction (issue #13), so a write
now does more than it did. This measures how much more: ``PUT /api/v1/services/{id}/capacity``
(the API's capacity update), one request at a time, against two servers running side by side in
the same run:

- **before**: the tree of a baseline commit (``--baseline-commit``; by default the parent of the
  commit that added the read model's migration, or HEAD while that migration is not committed),
  exported with ``git archive`` to ``--before-dir`` (no git state changes) and served by this
  checkout's virtualenv with ``PYTHONPATH`` pointing at its ``src``;
- **now**: this checkout.

Each gets its own database with the same content: migrations, areas and the sample network by its
own CLI, then N synthetic services at locations (search_bench's generator and bulk loaders, same
seed, so the same ids), the read model rebuilt on the "now" side, ANALYZE, and a steward. Both
servers run ``serve --workers 2``. Requests alternate between them (before, now, now, before, ...)
over the same services, so drift on this shared machine hits both alike. The figure is the ratio
of the p50s (target: at most 2x).

    .venv/bin/python bench/write_bench.py --backends postgis,spatialite --sizes 10000
    scripts/bench write --baseline-commit <commit>

Results go to bench/results/write-<stamp>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx2 as httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from search_bench import (  # noqa: E402
    CLI,
    PG_BASE,
    RESULTS,
    Figures,
    analyze,
    bench_env,
    figures,
    load_postgis,
    load_spatialite,
    server,
    verdict,
)
from sqlalchemy import create_engine, text  # noqa: E402

from referral_net.db.engine import make_engine  # noqa: E402
from referral_net.settings import Settings  # noqa: E402

PASSWORD = "bench steward password 42"
# Runs the CLI of whatever ``referral_net`` is first on the path (the baseline's, via PYTHONPATH).
CLI_FROM_PATH = "import sys; from referral_net.cli import app; sys.argv[0] = 'referral-net'; app()"


@dataclass(frozen=True)
class Side:
    """One code version under test: how to run its CLI and what its database is called."""

    name: str
    command: list[str]
    extra_env: dict[str, str]
    has_read_model: bool


@dataclass
class WriteRun:
    """The write figures of one backend and size, before and now."""

    backend: str
    size: int
    baseline_commit: str
    services_written: int
    before: Figures
    now: Figures
    now_over_before_p50: float


def git(*arguments: str) -> str:
    """A git command's output in this checkout (read-only commands only)."""
    done = subprocess.run(
        ["git", "-C", str(ROOT), *arguments], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def default_baseline() -> str:
    """The parent of the commit that added the read model's migration, or HEAD before it lands."""
    added = []
    for migration in sorted((ROOT / "migrations" / "versions").glob("*.py")):
        if "search_entry" not in migration.read_text(encoding="utf-8"):
            continue
        relative = str(migration.relative_to(ROOT))
        commits = git("log", "--diff-filter=A", "--format=%H %ct", "--", relative).splitlines()
        if commits:
            commit, stamp = commits[-1].split()
            added.append((int(stamp), commit))
    if not added:
        return git("rev-parse", "HEAD")
    return git("rev-parse", f"{min(added)[1]}^")


def export_tree(commit: str, directory: Path) -> None:
    """The files of ``commit`` in ``directory`` (``git archive``; kept when already there)."""
    marker = directory / ".bench-commit"
    if marker.exists() and marker.read_text().strip() == commit:
        return
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    archive = subprocess.Popen(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit], stdout=subprocess.PIPE
    )
    subprocess.run(["tar", "-x", "-C", str(directory)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise SystemExit(f"git archive {commit} failed")
    marker.write_text(commit + "\n")


def sides(before_dir: Path) -> list[Side]:
    """The baseline tree's CLI (this virtualenv, its sources first on the path) and this one's."""
    python = str(ROOT / ".venv" / "bin" / "python")
    before = Side(
        name="before",
        command=[python, "-c", CLI_FROM_PATH],
        extra_env={"PYTHONPATH": str(before_dir / "src")},
        has_read_model=False,
    )
    now = Side(name="now", command=[str(CLI)], extra_env={}, has_read_model=True)
    found = subprocess.run(
        [python, "-c", "import referral_net; print(referral_net.__file__)"],
        env={**os.environ, **before.extra_env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if not found.startswith(str(before_dir)):
        raise SystemExit(f"the baseline's package is not first on the path: {found}")
    return [before, now]


def database_url(backend: str, side: Side, size: int) -> str:
    """The database of one side (PostGIS database or SpatiaLite file under bench/results)."""
    if backend == "postgis":
        return f"{PG_BASE}/referral_net_write_{side.name}_{size}"
    return f"sqlite:///{RESULTS / f'write_{side.name}_{size}.db'}"


def run_cli(side: Side, settings: Settings, *arguments: str, stdin: str | None = None) -> None:
    """One command of a side's CLI against its database; stop the benchmark if it fails."""
    done = subprocess.run(
        [*side.command, *arguments],
        env={**bench_env(settings), **side.extra_env},
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{side.name}: referral-net {' '.join(arguments)}:\n{done.stderr[-3000:]}")


def fresh_database(backend: str, side: Side, size: int) -> Settings:
    """A database built by the side's own code, with N synthetic rows and a steward."""
    url = database_url(backend, side, size)
    if backend == "postgis":
        name = url.rsplit("/", 1)[1]
        admin = create_engine(f"{PG_BASE}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("CREATE EXTENSION postgis"))
        engine.dispose()
    else:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = url.removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    settings = Settings(database_url=url)
    for command in (["db", "upgrade"], ["areas", "load"], ["seed", "load"]):
        run_cli(side, settings, *command)
    if size:
        (load_postgis if backend == "postgis" else load_spatialite)(settings, size)
    if side.has_read_model:  # the bulk rows bypass the hooks that keep the model in step
        run_cli(side, settings, "search", "rebuild")
    analyze(settings)
    run_cli(
        side,
        settings,
        *("users", "create", "bench-steward", "--role", "steward", "--password-stdin"),
        stdin=PASSWORD + "\n",
    )
    return settings


def service_ids(settings: Settings, count: int) -> list[str]:
    """The first ``count`` services by id (the same on both sides: same data, same seed)."""
    engine = make_engine(settings)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id FROM service ORDER BY id LIMIT :n"), {"n": count}
        ).scalars()
        ids = [str(value) for value in rows]
    engine.dispose()
    # SQLite stores UUIDs as 32 hex digits; the API wants the canonical form.
    return [str(uuid.UUID(value)) for value in ids]


def measure(
    bases: dict[str, str], services: list[str], requests: int, warmup: int
) -> dict[str, Figures]:
    """Sequential capacity PUTs, alternating between the servers; durations per side."""
    samples: dict[str, list[float]] = {name: [] for name in bases}
    with httpx.Client(timeout=120) as client:
        headers = {}
        for name, base in bases.items():
            answer = client.post(
                f"{base}/api/v1/auth/token",
                data={"username": "bench-steward", "password": PASSWORD},
            )
            answer.raise_for_status()
            headers[name] = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        order = list(bases)
        for step in range(warmup + requests):
            service = services[step % len(services)]
            body = {"capacity": [{"unit": "bed", "available": step % 90, "maximum": 90}]}
            for name in order if step % 2 == 0 else reversed(order):
                started = time.perf_counter()
                answer = client.put(
                    f"{bases[name]}/api/v1/services/{service}/capacity",
                    json=body,
                    headers=headers[name],
                )
                elapsed = time.perf_counter() - started
                if answer.status_code != 200:
                    raise RuntimeError(f"{name}: {answer.status_code} {answer.text[:500]}")
                if step >= warmup:
                    samples[name].append(elapsed)
    return {name: figures(values) for name, values in samples.items()}


def run_one(
    backend: str, size: int, baseline: str, versions: list[Side], args: argparse.Namespace
) -> WriteRun:
    """Build both databases, serve both versions side by side, measure the writes."""
    settings = {}
    for side in versions:
        started = time.perf_counter()
        settings[side.name] = fresh_database(backend, side, size)
        print(
            f"{backend} {size} {side.name}: built in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    services = service_ids(settings["now"], args.services)
    with ExitStack() as stack:
        bases = {
            side.name: stack.enter_context(
                server(
                    settings[side.name],
                    args.workers,
                    command=side.command,
                    extra_env=side.extra_env,
                    name=f"write-{side.name}",
                )
            )
            for side in versions
        }
        measured = measure(bases, services, args.requests, args.warmup)
    before, now = measured["before"], measured["now"]
    return WriteRun(
        backend=backend,
        size=size,
        baseline_commit=baseline,
        services_written=len(services),
        before=before,
        now=now,
        now_over_before_p50=round(now.p50_ms / before.p50_ms, 2),
    )


def markdown(runs: list[WriteRun], now_commit: str) -> str:
    """The table for docs/performance.md, with the target's verdict."""
    lines = [
        f"`PUT /api/v1/services/{{id}}/capacity`, one request at a time, alternating between the"
        f" two servers; p50 / p95 in ms. Now: `{now_commit}`.",
        "",
        "| backend | N | before (commit) | now | now / before p50 | target: <= 2x |",
        "|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r.backend} | {r.size:,} | {r.before.p50_ms:.2f} / {r.before.p95_ms:.2f}"
            f" (`{r.baseline_commit[:7]}`) | {r.now.p50_ms:.2f} / {r.now.p95_ms:.2f}"
            f" | {r.now_over_before_p50:.2f}x"
            f" | {verdict(r.now_over_before_p50, 2.0, at_least=False)} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    """Parse the arguments, measure every backend and size, print and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="postgis,spatialite")
    parser.add_argument("--sizes", default="10000", help="synthetic rows on top of the sample")
    parser.add_argument(
        "--baseline-commit",
        help="the code before the read model (default: the parent of the commit that added its"
        " migration, or HEAD while that is not committed)",
    )
    parser.add_argument("--before-dir", type=Path, default=Path("/tmp/rn-before"))
    parser.add_argument("--requests", type=int, default=300, help="measured PUTs per side")
    parser.add_argument("--warmup", type=int, default=30, help="unmeasured PUTs per side first")
    parser.add_argument("--services", type=int, default=64, help="services written in turn")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers per server")
    args = parser.parse_args()
    baseline = git("rev-parse", args.baseline_commit or default_baseline())
    print(f"baseline (before): {baseline}", file=sys.stderr, flush=True)
    export_tree(baseline, args.before_dir)
    versions = sides(args.before_dir)
    dirty = git("status", "--porcelain", "--untracked-files=no")
    now_commit = git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")
    runs = []
    for size in [int(s) for s in args.sizes.split(",")]:
        for backend in args.backends.split(","):
            runs.append(run_one(backend, size, baseline, versions, args))
            print(json.dumps(asdict(runs[-1])), file=sys.stderr, flush=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = RESULTS / f"write-{stamp}.json"
    out.write_text(json.dumps([asdict(r) for r in runs], indent=1))
    report = markdown(runs, now_commit)
    out.with_suffix(".md").write_text(report)
    print(report)
    print(f"saved {out} and .md", file=sys.stderr)


if __name__ == "__main__":
    main()
