"""ETags: optimistic concurrency for writers, and one tag per representation for caches.

A route tags a record with its *record tag*: ``"<id>-<version>"`` (``etag_for``) or a content
hash for records without a version (``content_etag``). The tag a GET actually sends is the
*representation tag* ``"<record tag>.<hash of the body sent>"``, appended by
``api/caching.CachingMiddleware``: the public's coarse copy of a location and a caseworker's exact
copy (or the es and en labels) are different bytes, so they never share an ETag, and no cache
can answer one audience's conditional request with the other's copy.

``If-Match`` compares record tags: the representation hash is dropped from each offered tag
first. A writer may send back the tag of its GET, or of its last write (write responses carry
the bare record tag), and gets a 412 only when the record's version moved on.
"""

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


REPRESENTATION_SEPARATOR = "."
"""Joins a record tag and the body hash (neither uuid hex, versions nor hashes contain it)."""


def representation_etag(body: bytes, record_tag: str | None = None) -> str:
    """The strong ETag of the bytes sent: the record tag (if any) plus a hash of ``body``."""
    digest = hashlib.sha256(body).hexdigest()[:32]
    if record_tag is None:
        return f'"{digest}"'
    return f'"{record_tag_of(record_tag)[1:-1]}{REPRESENTATION_SEPARATOR}{digest}"'


def record_tag_of(tag: str) -> str:
    """The record tag inside an offered ETag: without ``W/`` and any representation hash."""
    tag = tag.strip().removeprefix("W/")
    inner = tag[1:-1] if len(tag) >= 2 and tag[0] == tag[-1] == '"' else tag
    return f'"{inner.split(REPRESENTATION_SEPARATOR, 1)[0]}"'


def check_if_match_tag(request: Request, current: str) -> None:
    """Refuse a write whose If-Match does not name the current record tag (412)."""
    header = request.headers.get("if-match")
    if header is None:
        return
    offered = {tag.strip() for tag in header.split(",")}
    if "*" in offered or current in {record_tag_of(tag) for tag in offered}:
        return
    raise PreconditionFailed(
        "The record has changed since you read it; read it again and reapply your change.",
        headers={"ETag": current},
    )
