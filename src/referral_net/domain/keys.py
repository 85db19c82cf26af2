"""Partner API keys: creation (shown once), authentication, rotation, revocation and listing.

A key looks like ``rn_<prefix>_<secret>``: ``rn_`` marks it as ours (secret scanners and people
recognise it), the 8-character prefix is stored in clear to find the row with one indexed
lookup, and the secret carries 256 bits from :func:`secrets.token_urlsafe`. Only the SHA-256 of
the whole key is stored; the plaintext is returned once, by :func:`create_key` and
:func:`rotate_key`, and cannot be recovered afterwards.

Scopes (:data:`SCOPES`):

``read``
    read public data over the API. Every key has it (it is added when not given); partner keys
    never write, whatever their scopes.
``embed``
    the key is meant to sit in a partner's public web page (the embeddable map, served later):
    it is visible to anyone who reads the page, so it must be bound to ``allowed_origins`` and
    is kept to public data like every partner key.

Allowed origins bind a key to the web sites whose browsers may use it (CORS, see
``api/cors.py``): ``https://host[:port]`` only, no path, no wildcard; plain ``http`` only for
``localhost`` while developing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from referral_net.db.models import ApiKey
from referral_net.domain import audit
from referral_net.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from referral_net.security.roles import Principal, Role

KEY_MARKER = "rn_"
PREFIX_LENGTH = 8
SECRET_BYTES = 32
SCOPES = frozenset({"read", "embed"})
DEFAULT_SCOPES = ("read",)
MAX_REQUESTS_PER_MINUTE = 100_000
MAX_ORIGINS = 20
_DEV_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
_DEFAULT_PORTS = {"https": 443, "http": 80}
_URLSAFE = re.compile(r"^[A-Za-z0-9_-]+$")
_INVALID_KEY = "Invalid or revoked API key."
_KEY_CHALLENGE = {"WWW-Authenticate": 'ApiKey header="X-API-Key"'}


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key: never its hash, never its secret."""

    id: uuid.UUID
    name: str
    prefix: str
    scopes: tuple[str, ...]
    allowed_origins: tuple[str, ...]
    requests_per_minute: int | None
    created_at: datetime
    revoked_at: datetime | None
    replaced_by_id: uuid.UUID | None

    @property
    def active(self) -> bool:
        """True while the key has not been revoked (or rotated away)."""
        return self.revoked_at is None


def hash_key(raw: str) -> str:
    """The stored form of a key: hex SHA-256.

    A fast, unsalted hash is right here and would be wrong for passwords. Passwords are short
    and chosen by people, so an attacker holding the table can guess them by the billion; argon2
    makes each guess expensive. A key's secret is 256 random bits: no guessing order beats
    brute force, which stays out of reach however fast the hash, and a salt adds nothing when
    every input is already unique. A slow hash would only cost CPU on every partner request.
    """
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def normalize_origin(origin: str) -> str:
    """Check one allowed origin and return it as browsers send it in ``Origin``.

    Raises InvalidInput for wildcards, paths, queries, credentials, unknown schemes and for
    plain ``http`` outside localhost.
    """
    value = origin.strip()
    if not value or "*" in value:
        raise InvalidInput(f"origin {origin!r}: wildcards are not allowed; list each origin")
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise InvalidInput(f"origin {origin!r}: expected https://host[:port]")
    if parts.path or parts.query or parts.fragment or "?" in value or "#" in value:
        raise InvalidInput(f"origin {origin!r}: an origin has no path, query or fragment")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(f"origin {origin!r}: an origin carries no credentials")
    try:
        port = parts.port
    except ValueError:
        raise InvalidInput(f"origin {origin!r}: invalid port") from None
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literals keep their brackets in an origin
        host = f"[{host}]"
    if scheme == "http" and host not in _DEV_HOSTS:
        # A page served over plain http can be rewritten in transit, key included.
        raise InvalidInput(f"origin {origin!r}: use https (plain http only for localhost)")
    # Browsers leave the default port out of Origin; store it the same way so that the
    # comparison at request time is a plain string equality.
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _check_scopes(scopes: Iterable[str] | None) -> list[str]:
    # "read" is what every partner key is for, so it is always granted; other scopes add to it.
    chosen = sorted({scope.strip().lower() for scope in (scopes or ())} | set(DEFAULT_SCOPES))
    unknown = [scope for scope in chosen if scope not in SCOPES]
    if unknown:
        raise InvalidInput(
            f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(sorted(SCOPES))}"
        )
    return chosen


def _check_origins(origins: Iterable[str] | None, scopes: Sequence[str]) -> list[str]:
    normalized = sorted({normalize_origin(origin) for origin in (origins or ())})
    if len(normalized) > MAX_ORIGINS:
        raise InvalidInput(f"at most {MAX_ORIGINS} origins per key")
    if "embed" in scopes and not normalized:
        raise InvalidInput("an embed key must be bound to at least one origin")
    return normalized


def _check_rate(requests_per_minute: int | None) -> int | None:
    if requests_per_minute is None:
        return None
    if not 1 <= requests_per_minute <= MAX_REQUESTS_PER_MINUTE:
        raise InvalidInput(f"requests per minute must be 1 to {MAX_REQUESTS_PER_MINUTE}")
    return requests_per_minute


def _check_name(name: str) -> str:
    value = name.strip()
    if not value or len(value) > 200 or not value.isprintable():
        raise InvalidInput("a key name is 1 to 200 printable characters, e.g. the partner's site")
    return value


def _new_prefix(session: Session) -> str:
    # 48 random bits: a clash is unlikely but the column is unique, so check rather than fail.
    for _ in range(5):
        prefix = secrets.token_urlsafe(6)
        if session.exec(select(ApiKey.id).where(ApiKey.prefix == prefix)).first() is None:
            return prefix
    raise Conflict("Could not allocate a key prefix; try again.")


def _active_named(session: Session, name: str) -> ApiKey | None:
    return session.exec(
        select(ApiKey).where(ApiKey.name == name, col(ApiKey.revoked_at).is_(None))
    ).first()


def _issue(
    *,
    session: Session,
    name: str,
    scopes: list[str],
    allowed_origins: list[str],
    requests_per_minute: int | None,
) -> tuple[ApiKey, str]:
    prefix = _new_prefix(session)
    raw = f"{KEY_MARKER}{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    key = ApiKey(
        name=name,
        prefix=prefix,
        key_hash=hash_key(raw),
        scopes=scopes,
        allowed_origins=allowed_origins,
        requests_per_minute=requests_per_minute,
        created_at=datetime.now(UTC),
    )
    session.add(key)
    session.flush()
    # Key management is a write like any other: it goes in the audit trail (no secret, no hash).
    audit.record_write(
        session=session,
        actor="cli",
        action="create",
        resource_type="api_key",
        resource_id=key.id,
        fields=("name", "scopes", "allowed_origins", "requests_per_minute"),
    )
    return key, raw


def create_key(
    *,
    session: Session,
    name: str,
    scopes: Iterable[str] | None = None,
    allowed_origins: Iterable[str] | None = None,
    requests_per_minute: int | None = None,
) -> tuple[ApiKey, str]:
    """Create a partner key and return it with its plaintext, which is never available again.

    Names are unique among active keys, so that ``key:<name>`` in the audit trail and the
    command line's NAME arguments point at one key.
    """
    clean_name = _check_name(name)
    chosen_scopes = _check_scopes(scopes)
    origins = _check_origins(allowed_origins, chosen_scopes)
    rate = _check_rate(requests_per_minute)
    if _active_named(session, clean_name) is not None:
        raise Conflict("An active key already has that name.")
    key, raw = _issue(
        session=session,
        name=clean_name,
        scopes=chosen_scopes,
        allowed_origins=origins,
        requests_per_minute=rate,
    )
    session.commit()
    return key, raw


def _split(raw: str) -> tuple[str, str] | None:
    # rn_ + 8-character prefix + _ + secret; the prefix and secret may themselves hold "_",
    # so split by position, not by separator.
    head = len(KEY_MARKER)
    if len(raw) < head + PREFIX_LENGTH + 2 or len(raw) > 200 or not raw.startswith(KEY_MARKER):
        return None
    end = head + PREFIX_LENGTH
    prefix, sep, secret = raw[head:end], raw[end : end + 1], raw[end + 1 :]
    if sep != "_" or not _URLSAFE.match(prefix) or not _URLSAFE.match(secret):
        return None
    return prefix, secret


def authenticate_key(*, session: Session, raw: str) -> ApiKey:
    """Return the active key for this plaintext, or raise Unauthenticated.

    Unknown, revoked and malformed keys get the same answer. The row is found by its clear
    prefix; the hashes are compared in constant time, so response timing says nothing about
    how much of a guessed secret was right.
    """
    parts = _split(raw.strip())
    if parts is None:
        raise Unauthenticated(_INVALID_KEY, headers=_KEY_CHALLENGE)
    presented = hash_key(raw.strip())
    key = session.exec(select(ApiKey).where(ApiKey.prefix == parts[0])).first()
    stored = key.key_hash if key is not None else hash_key("")
    if not hmac.compare_digest(presented, stored) or key is None or key.revoked_at is not None:
        raise Unauthenticated(_INVALID_KEY, headers=_KEY_CHALLENGE)
    return key


def principal_for_key(key: ApiKey) -> Principal:
    """The principal a partner key acts as: the partner role, named ``key:<name>`` for audit."""
    return Principal(
        role=Role.PARTNER,
        subject=f"key:{key.name}",
        api_key_id=key.id,
        allowed_origins=tuple(key.allowed_origins),
        scopes=frozenset(key.scopes),
        requests_per_minute=key.requests_per_minute,
    )


def find_key(*, session: Session, name_or_id: str) -> ApiKey:
    """The key with this id or prefix, else the active key with this name (NotFound if none)."""
    try:
        key_id = uuid.UUID(name_or_id)
    except ValueError:
        key_id = None
    if key_id is not None:
        by_id = session.get(ApiKey, key_id)
        if by_id is not None:
            return by_id
    by_prefix = session.exec(select(ApiKey).where(ApiKey.prefix == name_or_id)).first()
    if by_prefix is not None:
        return by_prefix
    by_name = _active_named(session, name_or_id.strip())
    if by_name is None:
        raise NotFound("No such active key.")
    return by_name


def revoke_key(*, session: Session, name_or_id: str) -> ApiKey:
    """Revoke a key at once; revoking an already revoked key is a no-op."""
    key = find_key(session=session, name_or_id=name_or_id)
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        session.add(key)
        audit.record_write(
            session=session,
            actor="cli",
            action="update",
            resource_type="api_key",
            resource_id=key.id,
            fields=("revoked_at",),
        )
        session.commit()
    return key


def rotate_key(*, session: Session, name_or_id: str) -> tuple[ApiKey, str]:
    """Replace a key by a new one with the same name and settings; the old one stops working.

    Returns the new key and its plaintext (shown once). The old row keeps ``replaced_by_id``
    so the chain of a partner's keys can be followed.
    """
    old = find_key(session=session, name_or_id=name_or_id)
    if old.revoked_at is not None:
        raise Conflict("That key is revoked; create a new one instead.")
    old.revoked_at = datetime.now(UTC)
    session.add(old)
    session.flush()  # the name is free for the new key before it is inserted
    new, raw = _issue(
        session=session,
        name=old.name,
        scopes=list(old.scopes),
        allowed_origins=list(old.allowed_origins),
        requests_per_minute=old.requests_per_minute,
    )
    session.flush()
    old.replaced_by_id = new.id
    session.add(old)
    audit.record_write(
        session=session,
        actor="cli",
        action="update",
        resource_type="api_key",
        resource_id=old.id,
        fields=("revoked_at", "replaced_by_id"),
    )
    session.commit()
    return new, raw


def key_info(key: ApiKey) -> KeyInfo:
    """The displayable facts of a key."""
    return KeyInfo(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        scopes=tuple(key.scopes),
        allowed_origins=tuple(key.allowed_origins),
        requests_per_minute=key.requests_per_minute,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
        replaced_by_id=key.replaced_by_id,
    )


def list_keys(*, session: Session, include_revoked: bool = True) -> list[KeyInfo]:
    """All keys, oldest first, as :class:`KeyInfo` (no hashes, no secrets)."""
    query = select(ApiKey).order_by(col(ApiKey.created_at), col(ApiKey.name))
    if not include_revoked:
        query = query.where(col(ApiKey.revoked_at).is_(None))
    return [key_info(key) for key in session.exec(query)]


def origin_is_bound(*, session: Session, origin: str) -> bool:
    """True when some active key lists this origin (answers CORS preflights).

    Keys are few (one or two per partner site), so the origins are compared in Python rather
    than with JSON operators that differ between SpatiaLite and PostgreSQL.
    """
    rows = session.exec(select(ApiKey.allowed_origins).where(col(ApiKey.revoked_at).is_(None)))
    return any(origin in (origins or ()) for origins in rows)
