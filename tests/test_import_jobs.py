"""Imports over HTTP as background jobs (POST/GET /api/v1/imports), on both backends.

The job runs in the application's worker thread, with its own sessions, so these tests cannot use
the rolled-back test transaction of tests/conftest.py (a thread outside it would see nothing):
like tests/test_concurrent_writers.py they use a fresh migrated database per backend and the
application as it runs in production (its engine made in the lifespan, its worker started). The
expected counts come from the uploaded files themselves.
"""

from __future__ import annotations

import csv
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from referral_net.db import migrate
from referral_net.db.engine import make_engine
from referral_net.db.models import ImportJob, ImportUpload, Organization, Service
from referral_net.domain import areas
from referral_net.exchange import jobs
from referral_net.exchange.sheet import HEADERS, write_template
from referral_net.main import create_app
from referral_net.security.roles import Role
from referral_net.settings import Settings
from referral_net.vocab import Visibility
from tests.conftest import make_backend_settings, unavailable
from tests.factories import bearer, make_user

pytestmark = pytest.mark.db

EXAMPLE = Path(__file__).resolve().parents[1] / "specs" / "hsds-3.0" / "examples"
IMPORT_CAP = 3 * 1024 * 1024  # above the global 1 MiB body cap, so the two can be told apart
FINISHED = {"succeeded", "partly_imported", "refused", "failed"}


@pytest.fixture(scope="module", params=["spatialite", "postgis"])
def job_settings(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """A fresh migrated database of each backend, with the administrative areas loaded."""
    backend = str(request.param)
    try:
        settings = make_backend_settings(
            backend, tmp_path_factory.mktemp(f"jobs-{backend}"), suffix="_import_jobs"
        )
        migrate.upgrade(settings)
    except Exception as exc:
        unavailable(request, backend, exc)
        raise
    engine = make_engine(settings)
    with Session(engine) as session:
        areas.load_areas(session=session)
    engine.dispose()
    return settings.model_copy(
        update={"rate_limits_enabled": False, "import_max_bytes": IMPORT_CAP}
    )


@pytest.fixture
def engine(job_settings: Settings) -> Iterator[Engine]:
    """An engine of the tests' own, beside the application's."""
    engine = make_engine(job_settings)
    yield engine
    engine.dispose()


@pytest.fixture
def client(job_settings: Settings) -> Iterator[TestClient]:
    """The application as served: its lifespan makes the engine and starts the import worker."""
    with TestClient(create_app(job_settings), raise_server_exceptions=False) as test_client:
        yield test_client


def _headers(client: TestClient, engine: Engine, role: Role) -> dict[str, str]:
    with Session(engine, expire_on_commit=False) as session:
        return bearer(client.app, make_user(session, role))  # type: ignore[arg-type]


@pytest.fixture
def steward(client: TestClient, engine: Engine) -> dict[str, str]:
    """Bearer headers of a steward."""
    return _headers(client, engine, Role.STEWARD)


def _wait(client: TestClient, location: str, headers: dict[str, str]) -> dict[str, Any]:
    """Poll the job until it has ended; its last answer."""
    deadline = time.monotonic() + 120
    while True:
        response = client.get(location, headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["state"] in FINISHED:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def _submit(
    client: TestClient, headers: dict[str, str], name: str, content: bytes, **options: str
) -> tuple[str, dict[str, Any]]:
    response = client.post(
        "/api/v1/imports",
        files={"file": (name, content, "application/octet-stream")},
        data=options,
        headers=headers,
    )
    assert response.status_code == 202, response.text
    return response.headers["location"], response.json()


def _records_in_file(service: dict[str, Any]) -> dict[str, list[str]]:
    """The ids of each table's records in the nested service example, as often as the file
    holds them (its location comes twice: under the organization and under the link)."""
    organization = service.get("organization") or {}
    links = service.get("service_at_locations") or []
    return {
        "service": [service["id"]],
        "organization": [organization["id"]] if organization else [],
        "service_at_location": [link["id"] for link in links],
        "location": [location["id"] for location in organization.get("locations") or []]
        + [link["location"]["id"] for link in links if link.get("location")],
    }


def test_a_steward_imports_the_official_nested_example(
    client: TestClient, engine: Engine, steward: dict[str, str]
) -> None:
    raw = (EXAMPLE / "service_full.json").read_bytes()
    service = json.loads(raw)
    location, queued = _submit(client, steward, "service_full.json", raw)
    assert queued["state"] in {"queued", "running", *FINISHED}
    assert location == f"/api/v1/imports/{queued['id']}"
    assert queued["source_name"] == "service_full.json"
    assert queued["options"] == {
        "visibility": "restricted",
        "skip_invalid": False,
        "dry_run": False,
    }

    done = _wait(client, location, steward)
    assert done["state"] == "succeeded", done["report"]
    report = done["report"]
    assert report["written"] is True
    assert report["errors"] == []
    assert done["progress"] >= 1
    assert done["started_at"]
    assert done["finished_at"]
    # A fresh database: each distinct record is created once; a repeat of one in the same file
    # is the importer's to count as unchanged or to merge, never to create again or refuse.
    for table, ids in _records_in_file(service).items():
        counts = report["counts"][table]
        handled = counts["created"] + counts["updated"] + counts["unchanged"]
        assert counts["created"] == len(set(ids)), (table, counts)
        assert counts["refused"] == 0, (table, counts)
        assert len(set(ids)) <= handled <= len(ids), (table, counts)
    with Session(engine) as session:
        stored = session.get(Service, uuid.UUID(service["id"]))
        assert stored is not None
        assert stored.name == service["name"]
        # The upload is gone once the job has run: it may have named hidden sites.
        assert session.get(ImportUpload, uuid.UUID(done["id"])) is None

    listed = client.get("/api/v1/imports", headers=steward)
    assert listed.status_code == 200
    assert done["id"] in {item["id"] for item in listed.json()["contents"]}


def test_a_bad_file_is_refused_with_its_errors_and_nothing_is_written(
    client: TestClient, engine: Engine, steward: dict[str, str]
) -> None:
    good, bad = uuid.uuid4(), uuid.uuid4()
    records = [
        {"id": str(good), "name": "Organización válida", "description": "Buena."},
        {"id": str(bad), "name": "Sin nombre válido", "year_incorporated": "no es un año"},
    ]
    location, _ = _submit(client, steward, "red.json", json.dumps(records).encode())
    done = _wait(client, location, steward)
    assert done["state"] == "refused", done["report"]
    report = done["report"]
    assert report["written"] is False
    assert report["exit_code"] == 1
    assert any(
        error["record_id"] == str(bad) or str(bad) in error["row"] or error["field"]
        for error in report["errors"]
    ), report["errors"]
    with Session(engine) as session:
        assert session.get(Organization, good) is None
        assert session.get(Organization, bad) is None


def test_a_steward_imports_the_spreadsheet_template(
    client: TestClient, engine: Engine, steward: dict[str, str], tmp_path: Path
) -> None:
    service_name = f"Asesoría legal {uuid.uuid4().hex[:6]}"
    cells = dict.fromkeys(HEADERS, "")
    cells.update(
        {
            "organización": "Asociación de prueba (ejemplo)",
            "servicio": service_name,
            "departamento": "Quetzaltenango",
            "municipio": "Cantel",
            "horario": "lunes a viernes 8:00-16:30",
        }
    )
    template = write_template(tmp_path / "plantilla.csv")
    with template.open("a", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerow([cells[header] for header in HEADERS])
    location, queued = _submit(
        client, steward, "plantilla.csv", template.read_bytes(), format="sheet"
    )
    assert queued["format"] == "sheet"
    done = _wait(client, location, steward)
    assert done["state"] == "succeeded", done["report"]
    assert done["report"]["counts"]["service"]["created"] == 1  # the template's one row
    with Session(engine) as session:
        assert session.exec(select(Service).where(Service.name == service_name)).one()


def test_an_unreadable_file_is_refused_with_one_clear_error(
    client: TestClient, steward: dict[str, str]
) -> None:
    location, _ = _submit(client, steward, "roto.json", b"{ this is not json")
    done = _wait(client, location, steward)
    assert done["state"] == "refused"
    [error] = done["report"]["errors"]
    assert "roto.json" in error["message"]


def test_a_raw_body_with_its_content_type_is_imported(
    client: TestClient, engine: Engine, steward: dict[str, str]
) -> None:
    organization = {"id": str(uuid.uuid4()), "name": "Red por cuerpo", "description": "x"}
    response = client.post(
        "/api/v1/imports?dry_run=true",
        content=json.dumps(organization).encode(),
        headers={**steward, "Content-Type": "application/json"},
    )
    assert response.status_code == 202, response.text
    assert response.json()["source_name"] == "upload.json"
    done = _wait(client, response.headers["location"], steward)
    assert done["state"] == "succeeded", done["report"]
    assert done["report"]["dry_run"] is True
    assert done["report"]["written"] is False
    with Session(engine) as session:  # a dry run writes nothing
        assert session.get(Organization, uuid.UUID(organization["id"])) is None


def test_the_upload_has_its_own_body_cap(client: TestClient, steward: dict[str, str]) -> None:
    # Over the import cap: 413 before the body is read.
    too_large = client.post(
        "/api/v1/imports",
        content=b" " * (IMPORT_CAP + 1),
        headers={**steward, "Content-Type": "application/json"},
    )
    assert too_large.status_code == 413
    assert too_large.headers["content-type"] == "application/problem+json"
    # Over the global cap (1 MiB) but under the import cap: accepted here, refused elsewhere.
    padding = "x" * (1024 * 1024 + 10)
    body = json.dumps({"id": str(uuid.uuid4()), "name": "Grande", "description": padding})
    accepted = client.post(
        "/api/v1/imports?dry_run=true",
        content=body.encode(),
        headers={**steward, "Content-Type": "application/json"},
    )
    assert accepted.status_code == 202, accepted.text
    _wait(client, accepted.headers["location"], steward)
    elsewhere = client.post(
        "/api/v1/organizations",
        content=body.encode(),
        headers={**steward, "Content-Type": "application/json"},
    )
    assert elsewhere.status_code == 413


def test_only_stewards_see_or_submit_imports(client: TestClient, engine: Engine) -> None:
    caseworker = _headers(client, engine, Role.CASEWORKER)
    job_url = f"/api/v1/imports/{uuid.uuid4()}"
    for headers, status in (({}, 401), (caseworker, 403)):
        submitted = client.post(
            "/api/v1/imports",
            files={"file": ("a.json", b"{}", "application/json")},
            headers=headers,
        )
        assert submitted.status_code == status, submitted.text
        assert client.get("/api/v1/imports", headers=headers).status_code == status
        assert client.get(job_url, headers=headers).status_code == status
        assert submitted.headers["content-type"] == "application/problem+json"


def test_unknown_job_404_and_bad_options_4xx(client: TestClient, steward: dict[str, str]) -> None:
    missing = client.get(f"/api/v1/imports/{uuid.uuid4()}", headers=steward)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    for options, status in (
        ({"format": "xml"}, 422),
        ({"visibility": "everyone"}, 422),
        ({"dry_run": "maybe"}, 422),
    ):
        response = client.post(
            "/api/v1/imports",
            files={"file": ("a.json", b"{}", "application/json")},
            data=options,
            headers=steward,
        )
        assert response.status_code == status, (options, response.text)
    wrong_kind = client.post(
        "/api/v1/imports?format=sheet",
        files={"file": ("red.json", b"{}", "application/json")},
        headers=steward,
    )
    assert wrong_kind.status_code == 400
    empty = client.post(
        "/api/v1/imports", files={"file": ("a.json", b"", "application/json")}, headers=steward
    )
    assert empty.status_code == 400


def _running_job(engine: Engine, heartbeat: datetime) -> uuid.UUID:
    """A job a worker elsewhere claimed and last beat for at ``heartbeat``."""
    with Session(engine) as session:
        job = ImportJob(
            state="running",
            source_name="red.json",
            format="hsds",
            options={"visibility": "restricted", "skip_invalid": False, "dry_run": False},
            submitted_by="user:someone",
            created_at=heartbeat,
            started_at=heartbeat,
            heartbeat_at=heartbeat,
            worker="another-host:1:dead",
        )
        session.add(job)
        session.flush()
        session.add(ImportUpload(job_id=job.id, content=b"[]"))
        session.commit()
        return job.id


def test_a_job_whose_worker_stopped_is_marked_failed(
    client: TestClient, engine: Engine, job_settings: Settings, steward: dict[str, str]
) -> None:
    silent = datetime.now(UTC) - timedelta(seconds=job_settings.import_job_stale_seconds + 60)
    stale_id = _running_job(engine, silent)
    alive_id = _running_job(engine, datetime.now(UTC))

    seen = client.get(f"/api/v1/imports/{stale_id}", headers=steward).json()
    assert seen["state"] == "failed"
    assert "stopped" in seen["report"]["errors"][0]["message"]
    assert client.get(f"/api/v1/imports/{alive_id}", headers=steward).json()["state"] == "running"

    # The reader woke the worker, which writes the failure down (and drops the upload).
    deadline = time.monotonic() + 30
    while True:
        with Session(engine) as session:
            stored = session.get(ImportJob, stale_id)
            assert stored is not None
            if stored.state == "failed":
                assert stored.finished_at is not None
                assert session.get(ImportUpload, stale_id) is None
                break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with Session(engine) as session:
        alive = session.get(ImportJob, alive_id)
        assert alive is not None
        assert alive.state == "running"
        for job_id in (stale_id, alive_id):  # leave no running job to the next test
            session.delete(session.get(ImportJob, job_id))
        session.commit()


def test_stale_jobs_are_marked_failed_at_start_up(engine: Engine, job_settings: Settings) -> None:
    silent = datetime.now(UTC) - timedelta(seconds=job_settings.import_job_stale_seconds + 1)
    stale_id = _running_job(engine, silent)
    assert jobs.reap_stale(engine, stale_seconds=job_settings.import_job_stale_seconds) >= 1
    with Session(engine) as session:
        stored = session.get(ImportJob, stale_id)
        assert stored is not None
        assert stored.state == "failed"
        assert stored.report is not None
        assert stored.report["errors"]
        session.delete(stored)
        session.commit()


def test_workers_racing_for_a_job_claim_it_once(engine: Engine) -> None:
    with Session(engine) as session:
        job = jobs.submit(
            session=session,
            content=b"[]",
            source_name="red.json",
            import_format=jobs.ImportFormat.HSDS,
            visibility=Visibility.RESTRICTED,
            skip_invalid=False,
            dry_run=False,
            submitted_by="user:tester",
        )
        job_id = job.id
    claims: list[uuid.UUID | None] = []
    start = threading.Barrier(6)

    def claim(worker: str) -> None:
        start.wait()
        claims.append(jobs.claim_next(engine, worker=worker))

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(claims) == len(threads)
    assert claims.count(job_id) == 1, claims
    with Session(engine) as session:
        stored = session.get(ImportJob, job_id)
        assert stored is not None
        assert stored.state == "running"
        assert stored.worker
        remaining = session.exec(select(ImportJob).where(ImportJob.state == "queued")).all()
        assert job_id not in {r.id for r in remaining}
        session.delete(stored)
        session.commit()


def test_a_process_without_the_worker_queues_and_a_process_with_it_runs_the_job(
    job_settings: Settings, engine: Engine
) -> None:
    raw = (EXAMPLE / "service_full.json").read_bytes()
    quiet = create_app(
        job_settings.model_copy(update={"import_worker": False, "referral_webhook_worker": False})
    )
    with TestClient(quiet, raise_server_exceptions=False) as replica:
        assert replica.app.state.import_worker is None  # type: ignore[attr-defined]
        headers = _headers(replica, engine, Role.STEWARD)
        location, queued = _submit(replica, headers, "service_full.json", raw, dry_run="true")
        time.sleep(0.3)  # time a worker would have had to claim it, were one running
        still = replica.get(location, headers=headers).json()
        assert still["state"] == "queued"
        assert still["started_at"] is None
    with TestClient(create_app(job_settings), raise_server_exceptions=False) as serving:
        done = _wait(serving, location, _headers(serving, engine, Role.STEWARD))
    assert done["id"] == queued["id"]
    assert done["state"] == "succeeded", done["report"]
    assert done["report"]["written"] is False  # a dry run
