"""Optimistic concurrency: ETags from row versions, and the If-Match check."""

from __future__ import annotations

import hashlib
import uuid

from fastapi import Request, Response

from referral_net.errors import PreconditionFailed


def etag_for(resource_id: uuid.UUID, version: int) -> str:
    """The strong ETag of one version of one record."""
    return f'"{resource_id.hex}-{version}"'


def set_etag(response: Response, resource_id: uuid.UUID, version: int) -> None:
    """Put the record's ETag on the response."""
    response.headers["ETag"] = etag_for(resource_id, version)


def check_if_match(request: Request, resource_id: uuid.UUID, version: int) -> None:
    """Refuse a write whose If-Match names another version (412); absent If-Match passes."""
    check_if_match_tag(request, etag_for(resource_id, version))


def content_etag(*parts: object) -> str:
    """A strong ETag from a record's content, for records that carry no version column."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]
    return f'"{digest}"'


def check_if_match_tag(request: Request, current: str) -> None:
    """Refuse a write whose If-Match does not name the current content ETag (412)."""
    header = request.headers.get("if-match")
    if header is None:
        return
    offered = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    if "*" in offered or current in offered:
        return
    raise PreconditionFailed(
        "The record has changed since you read it; read it again and reapply your change.",
        headers={"ETag": current},
    )
