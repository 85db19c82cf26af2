"""Imports submitted over HTTP, run as background jobs by a worker thread of the application.

``POST /api/v1/imports`` calls :func:`submit`: the uploaded file (``import_upload``) and the job
(``import_job``, state ``queued``) are committed together, in the database rather than a spool
folder, so that any worker process on any host can run the job and a restart loses nothing. The
:class:`ImportWorker` of every process then:

- claims a queued job with ``UPDATE ... WHERE state = 'queued'`` (one statement: of several
  workers that try, exactly one changes the row; the others see no row changed and move on);
- runs it through the importer (``exchange.sources.open_source`` or the spreadsheet reader, then
  ``exchange.importer.run_import``), counting progress and beating a heartbeat meanwhile;
- stores the report (``ImportReport.as_json()``), the final state, and deletes the upload (it
  may name hidden sites; the report never holds their details);
- marks failed a running job whose heartbeat is older than ``import_job_stale_seconds``: its
  worker died (a crash, a killed process). A reader sees such a job as failed at once
  (:func:`view`); the worker persists it at start-up and whenever a reader wakes it.

On SpatiaLite the whole import is one write transaction and SQLite has one write lock: while a
job runs, the heartbeat cannot be written and other writes of the API wait (503 past the busy
timeout). The worker's own process knows the job is alive; another process may take it for
stale once ``import_job_stale_seconds`` pass, so set that above the longest import there. The
job's outcome is written by the worker that claimed it whatever a reaper wrote meanwhile.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import Engine, delete, func, update
from sqlmodel import Session, col, select

from referral_net.db.engine import write_bind
from referral_net.db.models import ImportJob, ImportUpload
from referral_net.errors import BadRequest, ReferralNetError
from referral_net.exchange.importer import run_import
from referral_net.exchange.records import (
    EXIT_ALL_IMPORTED,
    EXIT_PARTLY_IMPORTED,
    ImportOptions,
    ImportReport,
    Problem,
    SourceRecord,
)
from referral_net.exchange.sheet import read_sheet
from referral_net.exchange.sources import open_source
from referral_net.settings import Settings
from referral_net.vocab import Visibility

logger = logging.getLogger("referral_net.import_jobs")


class JobState(StrEnum):
    """Where a job is: waiting, running, or one of its four endings."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTLY_IMPORTED = "partly_imported"
    REFUSED = "refused"
    FAILED = "failed"


FINISHED_STATES = frozenset(
    {JobState.SUCCEEDED, JobState.PARTLY_IMPORTED, JobState.REFUSED, JobState.FAILED}
)


class ImportFormat(StrEnum):
    """What the upload is: HSDS (nested JSON, NDJSON, a zipped datapackage) or the template."""

    HSDS = "hsds"
    SHEET = "sheet"


# The file suffixes each format reads (the readers decide by suffix), and the suffix a raw body
# of each media type is stored under.
SUFFIXES: dict[ImportFormat, tuple[str, ...]] = {
    ImportFormat.HSDS: (".json", ".ndjson", ".jsonl", ".zip"),
    ImportFormat.SHEET: (".xlsx", ".csv"),
}
SUFFIX_OF_MEDIA_TYPE: dict[str, str] = {
    "application/json": ".json",
    "application/x-ndjson": ".ndjson",
    "application/jsonl": ".ndjson",
    "application/zip": ".zip",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "text/csv": ".csv",
}
_NAME_MAX = 255
# How often a worker looks for jobs nobody woke it for (left queued by a process that stopped).
POLL_SECONDS = 30.0


def _now() -> datetime:
    return datetime.now(UTC)


def source_file_name(
    name: str | None, *, import_format: ImportFormat, media_type: str | None
) -> str:
    """The name a job keeps for its upload: the file name only (no folders), with a suffix its
    format reads, taken from the name or else from the media type. A 400 when neither says."""
    bare = PurePosixPath((name or "").replace("\\", "/")).name.strip()
    bare = "".join(ch for ch in bare if ch.isprintable())[-_NAME_MAX:]
    allowed = SUFFIXES[import_format]
    if bare and PurePosixPath(bare).suffix.lower() in allowed:
        return bare
    suffix = SUFFIX_OF_MEDIA_TYPE.get((media_type or "").split(";")[0].strip().lower())
    if suffix in allowed:
        stem = PurePosixPath(bare).stem if bare else "upload"
        return f"{stem or 'upload'}{suffix}"[-_NAME_MAX:]
    raise BadRequest(
        f"A {import_format.value} import takes a file ending in {', '.join(allowed)}; name the "
        "file so, or send a raw body with a matching Content-Type."
    )


def submit(
    *,
    session: Session,
    content: bytes,
    source_name: str,
    import_format: ImportFormat,
    visibility: Visibility,
    skip_invalid: bool,
    dry_run: bool,
    submitted_by: str,
) -> ImportJob:
    """Queue an import: the upload and the job, committed together. An empty upload is a 400."""
    if not content:
        raise BadRequest("The upload is empty.")
    job = ImportJob(
        state=JobState.QUEUED,
        source_name=source_name,
        format=import_format,
        options={
            "visibility": visibility.value,
            "skip_invalid": skip_invalid,
            "dry_run": dry_run,
        },
        submitted_by=submitted_by,
        created_at=_now(),
    )
    session.add(job)
    session.flush()
    session.add(ImportUpload(job_id=job.id, content=content))
    session.commit()
    return job


# --- what a reader sees -------------------------------------------------------------------------


@dataclass
class _Live:
    """A job running in this process: its progress, fresher than the database's."""

    progress: int = 0


_live: dict[uuid.UUID, _Live] = {}
_live_lock = threading.Lock()


def _live_progress(job_id: uuid.UUID) -> int | None:
    with _live_lock:
        live = _live.get(job_id)
        return None if live is None else live.progress


def _live_ids() -> list[uuid.UUID]:
    with _live_lock:
        return list(_live)


@dataclass(frozen=True)
class JobView:
    """A job as a reader sees it: a silent running job is already failed, progress is live."""

    job: ImportJob
    state: JobState
    progress: int
    report: dict[str, Any] | None
    stale: bool


def is_stale(job: ImportJob, *, stale_seconds: int, now: datetime | None = None) -> bool:
    """Whether a running job's worker has been silent too long (and it runs in no thread here)."""
    if job.state != JobState.RUNNING or _live_progress(job.id) is not None:
        return False
    beat = job.heartbeat_at or job.started_at or job.created_at
    return beat < (now or _now()) - timedelta(seconds=stale_seconds)


def _stale_report(job: ImportJob, stale_seconds: int) -> dict[str, Any]:
    report = ImportReport(
        source=job.source_name,
        dry_run=bool(job.options.get("dry_run")),
        skip_invalid=bool(job.options.get("skip_invalid")),
    )
    report.errors.append(
        Problem(
            table="",
            row=job.source_name,
            field="",
            message=(
                f"The worker running this import stopped (no sign of life for over "
                f"{stale_seconds} s); the import did not finish. Submit the file again."
            ),
        )
    )
    return report.as_json()


def view(job: ImportJob, *, stale_seconds: int, now: datetime | None = None) -> JobView:
    """What a reader is told about ``job``."""
    if is_stale(job, stale_seconds=stale_seconds, now=now):
        return JobView(
            job, JobState.FAILED, job.progress, _stale_report(job, stale_seconds), stale=True
        )
    live = _live_progress(job.id)
    progress = job.progress if live is None else max(live, job.progress)
    return JobView(job, JobState(job.state), progress, job.report, stale=False)


def get_job(*, session: Session, job_id: uuid.UUID) -> ImportJob | None:
    """One job by id, or None."""
    return session.get(ImportJob, job_id)


def list_jobs(*, session: Session, offset: int, limit: int) -> tuple[list[ImportJob], int]:
    """Jobs, newest first, one page of them and the total."""
    total = session.exec(select(func.count()).select_from(ImportJob)).one()
    rows = session.exec(
        select(ImportJob)
        .order_by(col(ImportJob.created_at).desc(), col(ImportJob.id))
        .offset(offset)
        .limit(limit)
    ).all()
    return list(rows), int(total)


# --- what a worker does -------------------------------------------------------------------------


def reap_stale(engine: Engine, *, stale_seconds: int, now: datetime | None = None) -> int:
    """Mark failed every running job whose heartbeat is too old (not one running here).

    Reads first and writes only when there is something to mark, so that an idle worker never
    asks SQLite for its write lock. Returns how many were marked.
    """
    moment = now or _now()
    cutoff = moment - timedelta(seconds=stale_seconds)
    alive_here = _live_ids()
    with Session(engine) as session:
        candidates = [
            job
            for job in session.exec(
                select(ImportJob).where(col(ImportJob.state) == JobState.RUNNING)
            ).all()
            if job.id not in alive_here and is_stale(job, stale_seconds=stale_seconds, now=moment)
        ]
        session.expunge_all()
    marked = 0
    for job in candidates:
        with write_bind(engine).begin() as connection:
            result = connection.execute(
                update(ImportJob)
                .where(
                    col(ImportJob.id) == job.id,
                    col(ImportJob.state) == JobState.RUNNING,
                    # Re-checked in the statement: a beat since the read keeps the job alive.
                    col(ImportJob.heartbeat_at) < cutoff,
                )
                .values(
                    state=JobState.FAILED,
                    finished_at=moment,
                    report=_stale_report(job, stale_seconds),
                )
            )
            if result.rowcount == 1:
                connection.execute(delete(ImportUpload).where(col(ImportUpload.job_id) == job.id))
                marked += 1
    if marked:
        logger.warning("import jobs marked failed after their worker stopped: %d", marked)
    return marked


def claim_next(engine: Engine, *, worker: str, now: datetime | None = None) -> uuid.UUID | None:
    """Claim the oldest queued job for ``worker``; None when there is none left to claim.

    The claim is ``UPDATE ... WHERE id = :id AND state = 'queued'``: when workers race for a
    job, the database lets one change the row; the others change none and try the next.
    """
    with Session(engine) as session:
        candidates = list(
            session.exec(
                select(ImportJob.id)
                .where(col(ImportJob.state) == JobState.QUEUED)
                .order_by(col(ImportJob.created_at), col(ImportJob.id))
                .limit(10)
            ).all()
        )
    for job_id in candidates:
        moment = now or _now()
        with write_bind(engine).begin() as connection:
            result = connection.execute(
                update(ImportJob)
                .where(col(ImportJob.id) == job_id, col(ImportJob.state) == JobState.QUEUED)
                .values(
                    state=JobState.RUNNING, worker=worker, started_at=moment, heartbeat_at=moment
                )
            )
        if result.rowcount == 1:
            return job_id
    return None


def state_of(report: ImportReport) -> JobState:
    """The ending a report means: all imported, partly imported, or refused."""
    if report.exit_code == EXIT_ALL_IMPORTED:
        return JobState.SUCCEEDED
    if report.exit_code == EXIT_PARTLY_IMPORTED:
        return JobState.PARTLY_IMPORTED
    return JobState.REFUSED


def _options_of(job: ImportJob) -> ImportOptions:
    return ImportOptions(
        visibility=Visibility(job.options.get("visibility", Visibility.RESTRICTED)),
        # The template's visibility column is the operator's own word, as with `import sheet`.
        visibility_from_source=job.format == ImportFormat.SHEET,
        skip_invalid=bool(job.options.get("skip_invalid")),
        dry_run=bool(job.options.get("dry_run")),
        source_name=job.source_name,
    )


@contextmanager
def _records_of(
    path: Path, import_format: ImportFormat, max_bytes: int
) -> Iterator[Iterator[SourceRecord]]:
    """The records of an uploaded file, through the reader its format names."""
    if import_format is ImportFormat.SHEET:
        yield read_sheet(path)
        return
    with open_source(path, max_bytes=max_bytes) as source:
        yield source.records()


def _refusal(job: ImportJob, options: ImportOptions, message: str) -> ImportReport:
    """The report of a file that could not be read at all: one error, nothing written."""
    report = ImportReport(
        source=job.source_name, dry_run=options.dry_run, skip_invalid=options.skip_invalid
    )
    report.errors.append(Problem(table="", row=job.source_name, field="", message=message))
    return report


class _Heartbeat(AbstractContextManager["_Heartbeat"]):
    """Writes a running job's heartbeat and progress every ``interval`` seconds, meanwhile."""

    def __init__(
        self, engine: Engine, job_id: uuid.UUID, worker: str, live: _Live, interval: float
    ) -> None:
        self._engine = engine
        self._job_id = job_id
        self._worker = worker
        self._live = live
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"import-heartbeat-{job_id}", daemon=True
        )

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                with write_bind(self._engine).begin() as connection:
                    connection.execute(
                        update(ImportJob)
                        .where(
                            col(ImportJob.id) == self._job_id,
                            col(ImportJob.worker) == self._worker,
                            col(ImportJob.state) == JobState.RUNNING,
                        )
                        .values(heartbeat_at=_now(), progress=self._live.progress)
                    )
            except Exception as exc:  # noqa: BLE001 - a missed beat is no reason to stop the job
                # SpatiaLite: the import holds the one write lock; its own process knows it is
                # alive (the module's docstring).
                logger.debug("import job heartbeat not written: %s", type(exc).__name__)


def run_job(
    engine: Engine,
    job_id: uuid.UUID,
    *,
    worker: str,
    settings: Settings,
    importer: Callable[..., ImportReport] | None = None,
) -> JobState:
    """Run a job this worker claimed, and store its outcome; returns the final state.

    ``importer`` is ``exchange.importer.run_import`` unless a caller hands another. An
    unreadable file is a refusal with its reason; an unexpected error fails the job with a
    message that names no data (the server log has its class).
    """
    importer = importer or run_import
    with Session(engine) as session:
        job = session.get(ImportJob, job_id)
        upload = session.get(ImportUpload, job_id)
        if job is None or job.worker != worker:
            return JobState.FAILED
        session.expunge_all()
    options = _options_of(job)
    live = _Live()
    with _live_lock:
        _live[job_id] = live
    try:
        report, completed = _import(
            job,
            upload=upload,
            options=options,
            live=live,
            engine=engine,
            settings=settings,
            importer=importer,
        )
    finally:
        with _live_lock:
            _live.pop(job_id, None)
    state = state_of(report) if completed else JobState.FAILED
    with write_bind(engine).begin() as connection:
        # The claiming worker's outcome stands, whatever a reaper wrote while SQLite's lock
        # kept the heartbeat out (the module's docstring).
        connection.execute(
            update(ImportJob)
            .where(col(ImportJob.id) == job_id, col(ImportJob.worker) == worker)
            .values(
                state=state,
                finished_at=_now(),
                heartbeat_at=_now(),
                progress=live.progress,
                report=report.as_json(),
            )
        )
        connection.execute(delete(ImportUpload).where(col(ImportUpload.job_id) == job_id))
    logger.info("import job %s ended %s", job_id, state.value)
    return state


_UNEXPECTED = "The import stopped on an unexpected error; the server log has its kind."


def _import(
    job: ImportJob,
    *,
    upload: ImportUpload | None,
    options: ImportOptions,
    live: _Live,
    engine: Engine,
    settings: Settings,
    importer: Callable[..., ImportReport],
) -> tuple[ImportReport, bool]:
    """The job's report, and whether the import ran to its end (False: an unexpected error)."""
    if upload is None:
        return _refusal(job, options, "The uploaded file is gone (the job ran before?)."), True

    def on_progress(handled: int) -> None:
        live.progress = handled

    interval = max(1.0, settings.import_job_stale_seconds / 4)
    with (
        tempfile.TemporaryDirectory(prefix="referral-net-job-") as folder,
        _Heartbeat(engine, job.id, job.worker or "", live, interval),
    ):
        path = Path(folder) / job.source_name
        path.write_bytes(upload.content)
        del upload
        try:
            with _records_of(path, ImportFormat(job.format), settings.import_max_bytes) as records:
                report = importer(
                    engine=engine,
                    records=records,
                    options=options,
                    on_progress=on_progress,
                    actor=job.submitted_by,
                    audit_key=settings.audit_key,
                )
                return report, True
        except ReferralNetError as exc:  # the file cannot be read at all (SourceError, ...)
            return _refusal(job, options, exc.detail), True
        except Exception as exc:  # noqa: BLE001 - a job ends with a report, never a dead thread
            # The class only: a driver's message may hold SQL and the values of hidden sites.
            logger.error("import job %s failed: %s", job.id, type(exc).__name__)
            return _refusal(job, options, _UNEXPECTED), False


def worker_name() -> str:
    """This process's name as a claiming worker: host, process id and a random tag."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class ImportWorker:
    """The application's background thread that runs import jobs (started in its lifespan)."""

    def __init__(
        self, engine: Engine, settings: Settings, *, poll_seconds: float = POLL_SECONDS
    ) -> None:
        """Prepare a worker over ``engine``; nothing runs before :meth:`start`."""
        self.engine = engine
        self.settings = settings
        self.name = worker_name()
        self._poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread: it first marks stale jobs failed and runs what is queued."""
        self._thread = threading.Thread(target=self._loop, name="import-jobs", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look for work now (a job was submitted, or a reader saw a stale one)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to end after its current job, and wait up to ``timeout`` seconds.

        A job still running then dies with the process; another worker marks it failed.
        """
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.run_pending()
            except Exception as exc:  # noqa: BLE001 - the thread must outlive a bad moment
                logger.error("import worker: %s", type(exc).__name__)
            self._wake.wait(self._poll_seconds)

    def run_pending(self) -> int:
        """Mark stale jobs failed, then run queued jobs until none is left; how many ran."""
        reap_stale(self.engine, stale_seconds=self.settings.import_job_stale_seconds)
        ran = 0
        while not self._stop.is_set():
            job_id = claim_next(self.engine, worker=self.name)
            if job_id is None:
                break
            run_job(self.engine, job_id, worker=self.name, settings=self.settings)
            ran += 1
        return ran


def start_import_worker(engine: Engine, settings: Settings) -> ImportWorker | None:
    """The started worker of this process, or None where ``settings.import_worker`` is off."""
    if not settings.import_worker:
        return None
    worker = ImportWorker(engine, settings)
    worker.start()
    return worker
