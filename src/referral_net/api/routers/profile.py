"""The HSDS profile's files, served read-only under ``/profile/`` (the profile's URI).

``GET /profile/`` answers with the profile's README; the merge patches, the compiled schemas,
``datapackage.json`` and the licence are the files of ``profile/`` (see ``referral_net.hsds``).
Only the files the profile publishes are answered, looked up by name: any other path, ``../``
included, is a 404 problem.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from referral_net.errors import NotFound
from referral_net.hsds import PROFILE_PATH, profile_file

router = APIRouter(prefix="/" + PROFILE_PATH.rstrip("/"), tags=["profile"])

JSON = "application/json"
MARKDOWN = "text/markdown; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
# The files change only with a release of the service.
CACHE_CONTROL = "public, max-age=3600"


def _content(media_type: str, example: Any) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": "The file", "content": {media_type: {"example": example}}}}


_SCHEMA_EXAMPLE = {"name": "address", "type": "object", "properties": {}, "required": ["id"]}


def _file(relative: str, media_type: str) -> Response:
    """The profile file ``relative``, or a 404 problem when the profile has no such file."""
    try:
        path = profile_file(relative)
    except KeyError:
        raise NotFound(f"The profile has no file {relative}.") from None
    return Response(
        path.read_bytes(), media_type=media_type, headers={"Cache-Control": CACHE_CONTROL}
    )


@router.get(
    "/",
    summary="The HSDS profile: what it changes and where its files are",
    response_class=Response,
    responses=_content(MARKDOWN, "# The referral-net profile of HSDS 3.0\n"),
)
def readme() -> Response:
    """The profile's README (Markdown): its URI, its changes to HSDS 3.0 and its files."""
    return _file("README.md", MARKDOWN)


@router.get(
    "/LICENSE",
    summary="The profile's licence (CC BY-SA 4.0, as HSDS)",
    response_class=Response,
    responses=_content(TEXT, "Creative Commons Attribution-ShareAlike 4.0 ..."),
)
def licence() -> Response:
    """The licence of the profile's files, which derive from HSDS."""
    return _file("LICENSE", TEXT)


@router.get(
    "/datapackage.json",
    summary="The profile as a tabular data package",
    response_class=Response,
    responses=_content(JSON, {"profile": "tabular-data-package", "resources": []}),
)
def datapackage() -> Response:
    """The Frictionless tabular data package of the profile (CSV publication)."""
    return _file("datapackage.json", JSON)


@router.get(
    "/schema/compiled/{name}.json",
    summary="A compiled profile schema",
    response_class=Response,
    responses=_content(JSON, _SCHEMA_EXAMPLE),
)
def compiled_schema(name: str) -> Response:
    """A compiled profile schema (``service``, ``service_list``, ``location``, ...)."""
    return _file(f"schema/compiled/{name}.json", JSON)


@router.get(
    "/schema/{name}.json",
    summary="A merge patch of the profile, or a schema it adds",
    response_class=Response,
    responses=_content(JSON, {"required": ["id", "address_1"]}),
)
def patch(name: str) -> Response:
    """The profile's JSON Merge Patch of the HSDS schema ``name``, or a schema it adds."""
    return _file(f"schema/{name}.json", JSON)
