"""Importing a CSV datapackage beside loading the same rows with the database's bulk path.

Issue 15 asks that importing N services (with their locations and schedules) from an HSDS CSV
datapackage take no more than 10x the time of loading the same rows with the engine's bulk path:
``COPY`` on PostGIS, ``executemany`` in one transaction on SpatiaLite. Both run in the same
process of this script, one after the other, per backend and size, each into its own fresh
database (migrations, areas and the taxonomy loaded first, untimed):

- **bulk**: the datapackage's CSV rows streamed into ``organization``, ``location``, ``service``,
  ``service_at_location`` and ``schedule`` (points as EWKT on PostGIS, ``MakePoint`` on
  SpatiaLite), one transaction, then the search read model rebuilt (the bulk path bypasses the
  hooks that keep it in step, and an import keeps it in step itself, so the rebuild belongs to the
  comparison). Timed in-process.
- **import**: ``referral-net import hsds DIR --visibility public`` as a whole command (the
  importer validates every record through the domain's use cases, keeps the read model in step,
  writes the history rows and one audit event). Timed as a process.

The datapackage: one organization per 50 services; per service one location (over Guatemala,
search_bench's generator and seed), one service_at_location and one weekly schedule
(Monday-Friday 08:00-16:30). Written once per size under bench/results/import-<N>/.

    .venv/bin/python bench/import_bench.py --backends postgis,spatialite --sizes 2000,10000
    scripts/bench import --sizes 100000

Results go to bench/results/import-<stamp>.json and .md.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from search_bench import (  # noqa: E402
    CLI,
    PG_BASE,
    RESULTS,
    _pg_dsn,
    _spatialite,
    bench_env,
    generate_rows,
    git_commit,
    rebuild_read_model,
)
from sqlalchemy import create_engine, text  # noqa: E402
from sqlmodel import Session  # noqa: E402

from referral_net.db import migrate  # noqa: E402
from referral_net.db.engine import make_engine  # noqa: E402
from referral_net.domain import areas, taxonomy  # noqa: E402
from referral_net.geo.country import point_in_guatemala  # noqa: E402
from referral_net.settings import Settings  # noqa: E402

TARGET_RATIO = 10.0
SERVICES_PER_ORGANIZATION = 50
WEEKDAYS = "MO,TU,WE,TH,FR"
OPENS, CLOSES = "08:00:00", "16:30:00"

# The official HSDS 3.0 tabular names (specs/hsds-3.0/examples/csv) and the columns written.
TABLES: dict[str, tuple[str, list[str]]] = {
    "organization": ("organizations.csv", ["id", "name", "description"]),
    "location": (
        "locations.csv",
        ["id", "location_type", "organization_id", "name", "latitude", "longitude"],
    ),
    "service": ("services.csv", ["id", "organization_id", "name", "status", "minimum_age"]),
    "service_at_location": ("service_at_location.csv", ["id", "service_id", "location_id"]),
    "schedule": (
        "schedules.csv",
        ["id", "service_id", "freq", "byday", "opens_at", "closes_at", "description"],
    ),
}

FIELD_TYPES = {
    "latitude": "number",
    "longitude": "number",
    "minimum_age": "integer",
    "opens_at": "time",
    "closes_at": "time",
}


@dataclass
class Run:
    """One backend and size: seconds of each side and their ratio."""

    backend: str
    size: int
    bulk_load_seconds: float
    read_model_rebuild_seconds: float
    import_seconds: float
    import_exit_code: int
    ratio: float
    met: bool
    services_imported: int


def _schedule_id(service_id: str) -> str:
    """A schedule id derived from its service's (uuid5 would do too; fixed and unique suffices)."""
    return service_id[:-12] + "5c4ed01e0000"


def write_datapackage(size: int) -> Path:
    """Write (once) the CSV datapackage of ``size`` services and return its folder."""
    folder = RESULTS / f"import-{size}"
    marker = folder / ".complete"
    if marker.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        name: (folder / file).open("w", newline="", encoding="utf-8")
        for name, (file, _) in TABLES.items()
    }
    writers = {name: csv.writer(handle) for name, handle in files.items()}
    for name, (_, columns) in TABLES.items():
        writers[name].writerow(columns)
    organizations: set[str] = set()
    for row in _rows(size):
        org = str(row["org"])
        if org not in organizations:
            organizations.add(org)
            writers["organization"].writerow([org, f"Org {org[:6]} (sintética)", ""])
        service, location = str(row["service"]), str(row["location"])
        writers["location"].writerow(
            [location, "physical", org, row["name"], row["lat"], row["lon"]]
        )
        age = "" if row["min_age"] is None else row["min_age"]
        writers["service"].writerow([service, org, row["name"], "active", age])
        writers["service_at_location"].writerow([str(row["link"]), service, location])
        writers["schedule"].writerow(
            [_schedule_id(service), service, "WEEKLY", WEEKDAYS, OPENS, CLOSES, "lunes a viernes"]
        )
    for handle in files.values():
        handle.close()
    package = {
        "name": f"referral-net-import-bench-{size}",
        "profile": "tabular-data-package",
        "resources": [
            {
                "name": name,
                "path": file,
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "schema": {
                    "fields": [
                        {"name": column, "type": FIELD_TYPES.get(column, "string")}
                        for column in columns
                    ]
                },
            }
            for name, (file, columns) in TABLES.items()
        ],
    }
    (folder / "datapackage.json").write_text(json.dumps(package, indent=2), encoding="utf-8")
    marker.touch()
    return folder


def _rows(size: int) -> Iterator[dict[str, Any]]:
    """search_bench's synthetic services at locations inside Guatemala (the importer refuses a
    point outside the country, as the API does; search_bench's uniform 20 % reach into Mexico,
    Belize, Honduras and El Salvador). Categories are not part of this bench."""
    # generate_rows picks a category term per row from the ids it is given; none is written.
    inside = (
        row
        for row in generate_rows(size * 2, defaultdict(str))
        if point_in_guatemala(row["lat"], row["lon"])
    )
    yield from itertools.islice(inside, size)


def fresh_database(backend: str, size: int, side: str) -> Settings:
    """An empty, migrated database for one side, with areas and the taxonomy (untimed)."""
    name = f"referral_net_import_{side}_{size}"
    if backend == "postgis":
        admin = create_engine(f"{PG_BASE}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        engine = create_engine(f"{PG_BASE}/{name}", isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("CREATE EXTENSION postgis"))
        engine.dispose()
        settings = Settings(database_url=f"{PG_BASE}/{name}")
    else:
        path = RESULTS / f"{name}.db"
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        settings = Settings(database_url=f"sqlite:///{path}")
    migrate.upgrade(settings)
    engine = make_engine(settings)
    with Session(engine) as session:
        areas.load_areas(session=session)
        taxonomy.load_taxonomy(session=session)
        session.commit()
    engine.dispose()
    return settings


def _csv_rows(folder: Path, table: str) -> Iterator[list[str]]:
    file, _ = TABLES[table]
    with (folder / file).open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        yield from reader


def bulk_postgis(settings: Settings, folder: Path) -> None:
    """COPY the datapackage's rows into the tables, one transaction."""
    with psycopg.connect(_pg_dsn(settings)) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY organization (id, name, description, status, version) FROM STDIN"
        ) as cp:
            for org, name, description in _csv_rows(folder, "organization"):
                cp.write_row((org, name, description, "active", 1))
        with cur.copy(
            "COPY location (id, location_type, organization_id, name, latitude, longitude, geom,"
            " public_geom, visibility, outside_country, status, version) FROM STDIN"
        ) as cp:
            for lid, kind, org, name, lat, lon in _csv_rows(folder, "location"):
                point = f"SRID=4326;POINT({lon} {lat})"
                cp.write_row(
                    (lid, kind, org, name, lat, lon, point, point, "public", False, "active", 1)
                )
        with cur.copy(
            "COPY service (id, organization_id, name, status, minimum_age, trans_inclusive,"
            " lgbtiq_affirming, accepts_accompanying_children, minors_only, version, search_text)"
            " FROM STDIN"
        ) as cp:
            for sid, org, name, status, age in _csv_rows(folder, "service"):
                cp.write_row(
                    (
                        sid,
                        org,
                        name,
                        status,
                        age or None,
                        False,
                        False,
                        True,
                        False,
                        1,
                        name.lower(),
                    )
                )
        with cur.copy("COPY service_at_location (id, service_id, location_id) FROM STDIN") as cp:
            for row in _csv_rows(folder, "service_at_location"):
                cp.write_row(row)
        with cur.copy(
            "COPY schedule (id, service_id, freq, byday, opens_at, closes_at, description)"
            " FROM STDIN"
        ) as cp:
            for row in _csv_rows(folder, "schedule"):
                cp.write_row(row)
        conn.commit()


def bulk_spatialite(settings: Settings, folder: Path) -> None:
    """executemany the datapackage's rows in one transaction (SpatiaLite keeps its R*Trees)."""
    conn = _spatialite(settings.database_url.removeprefix("sqlite:///"))
    conn.isolation_level = None

    def hexed(value: str) -> str:
        return value.replace("-", "")

    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO organization (id, name, description, status, version)"
        " VALUES (?, ?, ?, 'active', 1)",
        ((hexed(o), n, d) for o, n, d in _csv_rows(folder, "organization")),
    )
    conn.executemany(
        "INSERT INTO location (id, location_type, organization_id, name, latitude, longitude,"
        " geom, public_geom, visibility, outside_country, status, version) VALUES"
        " (?, ?, ?, ?, ?, ?, MakePoint(?, ?, 4326), MakePoint(?, ?, 4326), 'public', 0,"
        " 'active', 1)",
        (
            (
                hexed(i),
                k,
                hexed(o),
                n,
                float(la),
                float(lo),
                float(lo),
                float(la),
                float(lo),
                float(la),
            )
            for i, k, o, n, la, lo in _csv_rows(folder, "location")
        ),
    )
    conn.executemany(
        "INSERT INTO service (id, organization_id, name, status, minimum_age, trans_inclusive,"
        " lgbtiq_affirming, accepts_accompanying_children, minors_only, version, search_text)"
        " VALUES (?, ?, ?, ?, ?, 0, 0, 1, 0, 1, ?)",
        (
            (hexed(i), hexed(o), n, s, int(a) if a else None, n.lower())
            for i, o, n, s, a in _csv_rows(folder, "service")
        ),
    )
    conn.executemany(
        "INSERT INTO service_at_location (id, service_id, location_id) VALUES (?, ?, ?)",
        (
            (hexed(i), hexed(s), hexed(loc))
            for i, s, loc in _csv_rows(folder, "service_at_location")
        ),
    )
    conn.executemany(
        "INSERT INTO schedule (id, service_id, freq, byday, opens_at, closes_at, description)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            (hexed(i), hexed(s), f, b, o, c, d)
            for i, s, f, b, o, c, d in _csv_rows(folder, "schedule")
        ),
    )
    conn.execute("COMMIT")
    conn.close()


def count_services(settings: Settings) -> int:
    """Services in a database (the import's own check that it wrote them all)."""
    engine = make_engine(settings)
    with engine.connect() as conn:
        count = int(conn.execute(text("SELECT count(*) FROM service")).scalar_one())
    engine.dispose()
    return count


def run_one(backend: str, size: int) -> Run:
    """Bulk path and importer for one backend and size, side by side."""
    folder = write_datapackage(size)
    bulk_settings = fresh_database(backend, size, "bulk")
    started = time.perf_counter()
    (bulk_postgis if backend == "postgis" else bulk_spatialite)(bulk_settings, folder)
    bulk_seconds = time.perf_counter() - started
    rebuild_seconds = rebuild_read_model(bulk_settings)
    import_settings = fresh_database(backend, size, "import")
    started = time.perf_counter()
    finished = subprocess.run(
        [str(CLI), "import", "hsds", str(folder), "--visibility", "public"],
        env=bench_env(import_settings),
        capture_output=True,
        text=True,
        check=False,
    )
    import_seconds = time.perf_counter() - started
    if finished.returncode != 0:
        print(finished.stdout[-4000:], finished.stderr[-4000:], file=sys.stderr)
    imported = count_services(import_settings)
    ratio = import_seconds / (bulk_seconds + rebuild_seconds)
    return Run(
        backend=backend,
        size=size,
        bulk_load_seconds=round(bulk_seconds, 2),
        read_model_rebuild_seconds=rebuild_seconds,
        import_seconds=round(import_seconds, 2),
        import_exit_code=finished.returncode,
        ratio=round(ratio, 2),
        met=ratio <= TARGET_RATIO and finished.returncode == 0 and imported == size,
        services_imported=imported,
    )


def report(runs: list[Run], command: str) -> str:
    """The runs as a Markdown table."""
    lines = [
        f"Command: `{command}` (commit {git_commit()})",
        "",
        "| backend | services | bulk load s | read model rebuild s | import s | import / bulk | "
        f"target <= {TARGET_RATIO:g}x | exit | services imported |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        lines.append(
            f"| {run.backend} | {run.size:,} | {run.bulk_load_seconds} |"
            f" {run.read_model_rebuild_seconds} | {run.import_seconds} | {run.ratio}x |"
            f" {'met' if run.met else 'missed'} | {run.import_exit_code} |"
            f" {run.services_imported:,} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    """Parse the options, run every backend and size, write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="postgis,spatialite")
    parser.add_argument("--sizes", default="100000")
    args = parser.parse_args()
    runs = [
        run_one(backend, int(size))
        for size in args.sizes.split(",")
        for backend in args.backends.split(",")
    ]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(parents=True, exist_ok=True)
    command = " ".join(["bench/import_bench.py", *sys.argv[1:]])
    (RESULTS / f"import-{stamp}.json").write_text(
        json.dumps([asdict(run) for run in runs], indent=2), encoding="utf-8"
    )
    markdown = report(runs, command)
    (RESULTS / f"import-{stamp}.md").write_text(markdown, encoding="utf-8")
    print(markdown)


if __name__ == "__main__":
    main()
