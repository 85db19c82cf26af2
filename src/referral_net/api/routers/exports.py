"""``GET /api/v1/export``: the public HSDS export, streamed, whoever asks.

It holds what the public may see, never more: the records are read as an anonymous caller
(``exchange/export.py``), whatever credentials the request carries, so the answer is the same
for everyone and nothing in it is audited. Formats:

- ``json``: one JSON document, ``{"organizations": [...], "services": [...], ...}``;
- ``ndjson``: one line per record, ``{"table": "services", "record": {...}}``;
- ``csv``: a zip of the tabular datapackage (``datapackage.json`` and one CSV per table).

docs/export.md tells the whole story (the command line exports for other audiences).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from referral_net.api.deps import SessionDep, SettingsDep
from referral_net.api.i18n import ContentLocaleDep
from referral_net.api.params import KnownQueryOnly
from referral_net.exchange import export

router = APIRouter(prefix="/api/v1/export", tags=["export"])

_MEDIA_TYPES = {
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "csv": "application/zip",
}
_FILE_NAMES = {
    "json": "hsds-export.json",
    "ndjson": "hsds-export.ndjson",
    "csv": "hsds-datapackage.zip",
}


def _zip_chunks(folder: Path, zip_path: Path) -> Iterator[bytes]:
    """The zip's bytes, then its temporary folder removed (also when the client goes away)."""
    try:
        yield from export.file_chunks(zip_path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@router.get(
    "",
    summary="Export the public directory as HSDS 3.0 (JSON, NDJSON or a CSV datapackage)",
    response_class=StreamingResponse,
    dependencies=[KnownQueryOnly],
    responses={
        200: {
            "description": "The public export, as an attachment.",
            "content": {
                "application/json": {"example": {"organizations": [], "services": []}},
                "application/x-ndjson": {"example": '{"table":"services","record":{}}\n'},
                "application/zip": {},
            },
        }
    },
)
def export_hsds(
    session: SessionDep,
    settings: SettingsDep,
    locale: ContentLocaleDep,
    export_format: Annotated[
        Literal["json", "ndjson", "csv"],
        Query(alias="format", description="json (default), ndjson or csv (a zipped datapackage)."),
    ] = "json",
) -> StreamingResponse:
    """Everything the public may see, streamed: the same records the directory's GETs answer an
    anonymous caller (restricted sites at their municipality's point, confidential ones left
    out)."""
    headers = {
        "Content-Disposition": f'attachment; filename="{_FILE_NAMES[export_format]}"',
        "Content-Language": locale,
    }
    media_type = _MEDIA_TYPES[export_format]
    if export_format == "csv":
        # The datapackage is written whole first: a zip's directory comes after its files.
        folder = Path(tempfile.mkdtemp(prefix="referral-net-export-"))
        try:
            zip_path = export.public_csv_zip(
                session,
                folder,
                locale=locale,
                capacity_stale_hours=settings.capacity_stale_hours,
            )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return StreamingResponse(
            _zip_chunks(folder, zip_path), media_type=media_type, headers=headers
        )
    stream = export.public_json_stream if export_format == "json" else export.public_ndjson_stream
    body = stream(session, locale=locale, capacity_stale_hours=settings.capacity_stale_hours)
    return StreamingResponse(body, media_type=media_type, headers=headers)
