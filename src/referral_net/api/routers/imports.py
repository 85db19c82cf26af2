"""Imports over HTTP, for stewards: upload a file, the import runs as a background job.

``POST /api/v1/imports`` takes the file (a multipart upload, or the raw body with its
``Content-Type``) under its own body cap (``REFERRAL_NET_IMPORT_MAX_BYTES``), queues the job and
answers 202 at once; ``GET /api/v1/imports/{id}`` shows its state, progress and report. The job
itself is ``exchange/jobs.py``; docs/import-jobs.md tells the whole story.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from referral_net.api.deps import SessionDep, SettingsDep, require_roles
from referral_net.api.pagination import PageDep
from referral_net.api.params import KnownQueryOnly, invalid
from referral_net.errors import BadRequest, ContentTooLarge, NotFound
from referral_net.exchange import jobs
from referral_net.exchange.jobs import ImportFormat, JobState
from referral_net.schemas.common import Page
from referral_net.security.roles import Principal, Role
from referral_net.vocab import Visibility

router = APIRouter(prefix="/api/v1/imports", tags=["imports"])
Steward = Annotated[Principal, Depends(require_roles(Role.STEWARD))]

_MULTIPART = "multipart/form-data"
_OPTION_NAMES = ("format", "visibility", "skip_invalid", "dry_run")
_FILE_FIELD = "file"
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})

_REPORT_EXAMPLE: dict[str, Any] = {
    "source": "service_full.json",
    "dry_run": False,
    "skip_invalid": False,
    "written": True,
    "exit_code": 0,
    "counts": {"service": {"created": 1, "updated": 0, "unchanged": 0, "refused": 0}},
    "errors": [],
    "warnings": [],
}


class ImportJobOptions(BaseModel):
    """How the job imports: the options it was submitted with."""

    visibility: Visibility = Field(
        description="Visibility of imported locations that state none (or a less hidden one).",
        examples=["restricted"],
    )
    skip_invalid: bool = Field(description="Import the good records, report the rest.")
    dry_run: bool = Field(description="Validate only; nothing is written.")


class ImportJobRead(BaseModel):
    """An import job: where it is, how far it got, and (once done) its report."""

    id: uuid.UUID = Field(examples=["0f8b8a9e-3a55-4b7e-9a4e-6f1d2c3b4a59"])
    state: JobState = Field(
        description=(
            "queued, running, or how it ended: succeeded, partly_imported (skip_invalid with "
            "refused records), refused (nothing written), failed (an unexpected error, or its "
            "worker stopped)."
        ),
        examples=["succeeded"],
    )
    source_name: str = Field(description="The uploaded file's name.", examples=["red.json"])
    format: ImportFormat = Field(examples=["hsds"])
    options: ImportJobOptions
    submitted_by: str = Field(description="Audit name of the steward.", examples=["user:ana"])
    created_at: datetime = Field(examples=["2026-12-03T08:00:00Z"])
    started_at: datetime | None = Field(default=None, examples=["2026-12-03T08:00:01Z"])
    finished_at: datetime | None = Field(default=None, examples=["2026-12-03T08:00:09Z"])
    heartbeat_at: datetime | None = Field(
        default=None, description="The running worker's last sign of life."
    )
    progress: int = Field(description="Source records handled so far.", examples=[120])
    report: dict[str, Any] | None = Field(
        default=None,
        description=(
            "Once finished: counts per table (created, updated, unchanged, refused) and every "
            "error and warning by table, row and field; the CLI's --report has the same shape."
        ),
        examples=[_REPORT_EXAMPLE],
    )


def _read(job_view: jobs.JobView) -> ImportJobRead:
    job = job_view.job
    return ImportJobRead(
        id=job.id,
        state=job_view.state,
        source_name=job.source_name,
        format=ImportFormat(job.format),
        options=ImportJobOptions.model_validate(job.options),
        submitted_by=job.submitted_by,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at if not job_view.stale else None,
        heartbeat_at=job.heartbeat_at,
        progress=job_view.progress,
        report=job_view.report,
    )


@dataclass
class _Upload:
    """The uploaded file and, for a multipart upload, the option fields sent with it."""

    content: bytes
    filename: str | None
    media_type: str | None
    form: dict[str, str] = field(default_factory=dict)


async def _read_upload(request: Request) -> _Upload:
    """The file: the ``file`` part of a multipart upload, else the whole body.

    ``async`` so that reading the body never takes a thread; the body cap (api/body_limit.py)
    has already bounded it.
    """
    media_type = request.headers.get("content-type")
    if not (media_type or "").lower().startswith(_MULTIPART):
        return _Upload(await request.body(), None, media_type)
    form = await request.form(max_files=1, max_fields=len(_OPTION_NAMES))
    try:
        upload: UploadFile | None = None
        options: dict[str, str] = {}
        for name, value in form.multi_items():
            if isinstance(value, str) and name in _OPTION_NAMES and name not in options:
                options[name] = value
            elif not isinstance(value, str) and name == _FILE_FIELD and upload is None:
                upload = value
            else:
                raise BadRequest(
                    f"Unexpected form field {name!r}: send one file as {_FILE_FIELD!r} and the "
                    f"options {', '.join(_OPTION_NAMES)} at most once each."
                )
        if upload is None:
            raise BadRequest(f"The multipart upload has no {_FILE_FIELD!r} part.")
        return _Upload(await upload.read(), upload.filename, upload.content_type, options)
    finally:
        await form.close()


UploadDep = Annotated[_Upload, Depends(_read_upload)]
_Choice = TypeVar("_Choice", ImportFormat, Visibility)


def _option(name: str, query_value: str | None, form: dict[str, str]) -> str | None:
    form_value = form.get(name)
    if query_value is not None and form_value is not None and query_value != form_value:
        raise BadRequest(f"{name} is given twice (query and form) with different values.")
    return query_value if query_value is not None else form_value


def _flag(name: str, raw: str | None) -> bool:
    if raw is None:
        return False
    if raw.strip().lower() in _TRUE:
        return True
    if raw.strip().lower() in _FALSE:
        return False
    raise invalid(name, "expected true or false")


def _choice(name: str, raw: str | None, kind: type[_Choice], default: _Choice) -> _Choice:
    if raw is None:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise invalid(name, f"expected one of {', '.join(v.value for v in kind)}") from None


_IMPORT_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        _MULTIPART: {
            "schema": {
                "type": "object",
                "required": [_FILE_FIELD],
                "properties": {
                    _FILE_FIELD: {"type": "string", "format": "binary"},
                    "format": {"type": "string", "enum": [f.value for f in ImportFormat]},
                    "visibility": {"type": "string", "enum": [v.value for v in Visibility]},
                    "skip_invalid": {"type": "boolean"},
                    "dry_run": {"type": "boolean"},
                },
            },
            "example": {_FILE_FIELD: "service_full.json", "format": "hsds"},
        },
        "application/json": {
            "schema": {
                "description": (
                    "The raw body: HSDS nested JSON (one record or a list). Other raw bodies are "
                    "taken by their Content-Type too: application/x-ndjson, application/zip, "
                    "text/csv and the .xlsx media type (docs/import-jobs.md)."
                )
            },
            "example": {"id": "ac148810-d857-441c-9675-5d3c5de1b4f2", "name": "Refugio"},
        },
    },
}


@router.post(
    "",
    status_code=202,
    summary="Import a file as a background job (stewards)",
    response_model=ImportJobRead,
    responses={202: {"headers": {"Location": {"description": "The job's URL."}}}},
    openapi_extra={"requestBody": _IMPORT_BODY},
)
def submit_import(
    request: Request,
    response: Response,
    principal: Steward,
    session: SessionDep,
    settings: SettingsDep,
    upload: UploadDep,
    import_format: Annotated[
        str | None,
        Query(alias="format", max_length=20, description="hsds (default) or sheet."),
    ] = None,
    visibility: Annotated[
        str | None,
        Query(max_length=20, description="Default visibility of imported locations."),
    ] = None,
    skip_invalid: Annotated[
        str | None, Query(max_length=5, description="true: import the good records.")
    ] = None,
    dry_run: Annotated[str | None, Query(max_length=5, description="true: validate only.")] = None,
) -> ImportJobRead:
    """Queue the upload for import and answer at once; poll the job's URL (``Location``).

    Options come in the query or, with a multipart upload, as form fields: ``format`` (hsds:
    nested JSON, NDJSON or a zipped CSV datapackage; sheet: the spreadsheet template, .xlsx or
    .csv), ``visibility`` (restricted unless stated), ``skip_invalid``, ``dry_run``. The file's
    name (or the body's ``Content-Type``) tells the reader what the file is.
    """
    if len(upload.content) > settings.import_max_bytes:
        raise ContentTooLarge(
            f"The file is larger than the {settings.import_max_bytes} bytes an import accepts."
        )
    chosen_format = _choice(
        "format", _option("format", import_format, upload.form), ImportFormat, ImportFormat.HSDS
    )
    job = jobs.submit(
        session=session,
        content=upload.content,
        source_name=jobs.source_file_name(
            upload.filename, import_format=chosen_format, media_type=upload.media_type
        ),
        import_format=chosen_format,
        visibility=_choice(
            "visibility",
            _option("visibility", visibility, upload.form),
            Visibility,
            Visibility.RESTRICTED,
        ),
        skip_invalid=_flag("skip_invalid", _option("skip_invalid", skip_invalid, upload.form)),
        dry_run=_flag("dry_run", _option("dry_run", dry_run, upload.form)),
        submitted_by=principal.audit_name,
    )
    _wake_worker(request)
    response.headers["Location"] = f"{router.prefix}/{job.id}"
    return _read(jobs.view(job, stale_seconds=settings.import_job_stale_seconds))


def _wake_worker(request: Request) -> None:
    worker: jobs.ImportWorker | None = getattr(request.app.state, "import_worker", None)
    if worker is not None:
        worker.wake()


@router.get(
    "",
    summary="List import jobs, newest first (stewards)",
    response_model=Page[ImportJobRead],
    dependencies=[KnownQueryOnly],
)
def list_imports(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Steward,
    page: PageDep,
) -> Page[ImportJobRead]:
    """Import jobs with their state and progress, paginated (HSDS envelope)."""
    rows, total = jobs.list_jobs(session=session, offset=page.offset, limit=page.per_page)
    views = [jobs.view(row, stale_seconds=settings.import_job_stale_seconds) for row in rows]
    if any(v.stale for v in views):
        _wake_worker(request)  # the worker writes down what the reader was just told
    items = [_read(v) for v in views]
    return Page[ImportJobRead].build(items, total=total, page=page.page, per_page=page.per_page)


@router.get("/{job_id}", summary="An import job: state, progress and report (stewards)")
def get_import(
    request: Request,
    job_id: uuid.UUID,
    session: SessionDep,
    settings: SettingsDep,
    principal: Steward,
) -> ImportJobRead:
    """The job's state and progress; once it has ended, its report."""
    job = jobs.get_job(session=session, job_id=job_id)
    if job is None:
        raise NotFound("No import job with this id.")
    job_view = jobs.view(job, stale_seconds=settings.import_job_stale_seconds)
    if job_view.stale:
        _wake_worker(request)
    return _read(job_view)
