"""Partner API keys: hashed storage, the partner role, revocation, rotation, CORS and the CLI."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session
from typer.testing import CliRunner

from referral_net.cli import app as cli_app
from referral_net.db.engine import make_engine
from referral_net.db.models import ApiKey
from referral_net.domain import keys
from referral_net.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from referral_net.security.roles import Role
from referral_net.settings import Settings
from tests.conftest import make_backend_settings, unavailable
from tests.factories import organization_body

pytestmark = pytest.mark.db

ORGS = "/api/v1/organizations"
PARTNER_SITE = "https://partner.example.org"
OTHER_SITE = "https://elsewhere.example.net"


def _key(
    session: Session,
    name: str,
    *,
    scopes: list[str] | None = None,
    allowed_origins: list[str] | None = None,
    requests_per_minute: int | None = None,
) -> tuple[ApiKey, str]:
    return keys.create_key(
        session=session,
        name=name,
        scopes=scopes,
        allowed_origins=allowed_origins,
        requests_per_minute=requests_per_minute,
    )


def _problem(response: Any) -> None:
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith(":unauthenticated")


# --- the key and its storage -------------------------------------------------------------------


def test_key_format_and_only_the_hash_is_stored(session: Session, unique: str) -> None:
    key, raw = _key(session, f"site-{unique}")
    assert raw.startswith(f"rn_{key.prefix}_")
    assert len(key.prefix) == keys.PREFIX_LENGTH
    secret = raw[len(f"rn_{key.prefix}_") :]
    assert len(secret) >= 43  # 32 random bytes, url-safe base64
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest()

    # Scan every column of the stored row: neither the key nor its secret appears in clear.
    row = session.connection().execute(
        text("SELECT * FROM api_key WHERE prefix = :prefix"), {"prefix": key.prefix}
    )
    stored = " ".join(str(value) for value in row.one())
    assert raw not in stored
    assert secret not in stored
    assert key.prefix in stored  # the prefix is in clear on purpose


def test_list_never_shows_hashes_or_secrets(session: Session, unique: str) -> None:
    key, raw = _key(session, f"site-{unique}", allowed_origins=[PARTNER_SITE], scopes=["embed"])
    info = next(i for i in keys.list_keys(session=session) if i.id == key.id)
    assert not hasattr(info, "key_hash")
    shown = repr(info)
    assert raw not in shown
    assert raw[len(f"rn_{key.prefix}_") :] not in shown
    assert key.key_hash not in shown
    assert info.scopes == ("embed", "read")
    assert info.allowed_origins == (PARTNER_SITE,)
    assert info.active


def test_validation_of_scopes_origins_names_and_limits(session: Session, unique: str) -> None:
    for origins in (["*"], ["https://*.example.org"], ["https://a.example.org/path"]):
        with pytest.raises(InvalidInput):
            _key(session, f"bad-{unique}", allowed_origins=origins)
    with pytest.raises(InvalidInput):  # plain http only for localhost
        _key(session, f"bad-{unique}", allowed_origins=["http://partner.example.org"])
    with pytest.raises(InvalidInput):
        _key(session, f"bad-{unique}", scopes=["write"])
    with pytest.raises(InvalidInput):  # an embed key sits in a public page: it needs origins
        _key(session, f"bad-{unique}", scopes=["embed"])
    with pytest.raises(InvalidInput):
        _key(session, f"bad-{unique}", requests_per_minute=0)
    with pytest.raises(InvalidInput):
        _key(session, "   ")

    key, _ = _key(
        session,
        f"ok-{unique}",
        allowed_origins=["HTTPS://Partner.Example.org:443", "http://localhost:5173"],
    )
    assert key.allowed_origins == ["http://localhost:5173", PARTNER_SITE]
    assert key.scopes == ["read"]
    with pytest.raises(Conflict):  # names are unique among active keys
        _key(session, f"ok-{unique}")


def test_authenticate_rejects_unknown_malformed_and_revoked(session: Session, unique: str) -> None:
    key, raw = _key(session, f"site-{unique}")
    assert keys.authenticate_key(session=session, raw=raw).id == key.id
    tampered = raw[:-1] + ("A" if raw[-1] != "A" else "B")
    for bad in ("", "garbage", "rn_", tampered, f"rn_{key.prefix}_", raw + "!"):
        with pytest.raises(Unauthenticated):
            keys.authenticate_key(session=session, raw=bad)
    keys.revoke_key(session=session, name_or_id=f"site-{unique}")
    with pytest.raises(Unauthenticated):
        keys.authenticate_key(session=session, raw=raw)
    with pytest.raises(NotFound):  # by name, only active keys are found
        keys.revoke_key(session=session, name_or_id=f"site-{unique}")
    assert keys.revoke_key(session=session, name_or_id=str(key.id)).revoked_at is not None


# --- the API --------------------------------------------------------------------------------------


def test_partner_key_reads_public_data_but_does_not_write(
    client: TestClient, session: Session, unique: str
) -> None:
    key, raw = _key(session, f"site-{unique}")
    principal = keys.principal_for_key(key)
    assert principal.role is Role.PARTNER
    assert principal.subject == f"key:site-{unique}"
    assert principal.api_key_id == key.id

    headers = {"X-API-Key": raw}
    assert client.get(ORGS, headers=headers).status_code == 200
    write = client.post(ORGS, json=organization_body(), headers=headers)
    assert write.status_code == 403  # a known caller (not 401), whose role may not write
    assert write.headers["content-type"] == "application/problem+json"


def test_wrong_key_is_401_problem_not_anonymous(client: TestClient, session: Session) -> None:
    _problem(client.get(ORGS, headers={"X-API-Key": "rn_AAAAAAAA_not-a-real-secret"}))
    _problem(client.get(ORGS, headers={"X-API-Key": "garbage"}))
    assert client.get(ORGS).status_code == 200  # without a key: the public


def test_revoked_key_is_401(client: TestClient, session: Session, unique: str) -> None:
    _, raw = _key(session, f"site-{unique}")
    assert client.get(ORGS, headers={"X-API-Key": raw}).status_code == 200
    keys.revoke_key(session=session, name_or_id=f"site-{unique}")
    _problem(client.get(ORGS, headers={"X-API-Key": raw}))


def test_rotation_old_key_401_new_key_200(
    client: TestClient, session: Session, unique: str
) -> None:
    old, old_raw = _key(
        session,
        f"site-{unique}",
        scopes=["embed"],
        allowed_origins=[PARTNER_SITE],
        requests_per_minute=900,
    )
    new, new_raw = keys.rotate_key(session=session, name_or_id=f"site-{unique}")
    assert new_raw != old_raw
    assert new.id != old.id
    assert old.revoked_at is not None
    assert old.replaced_by_id == new.id
    assert (new.name, new.scopes, new.allowed_origins, new.requests_per_minute) == (
        old.name,
        old.scopes,
        old.allowed_origins,
        old.requests_per_minute,
    )
    _problem(client.get(ORGS, headers={"X-API-Key": old_raw}))
    assert client.get(ORGS, headers={"X-API-Key": new_raw}).status_code == 200
    with pytest.raises(Conflict):  # a revoked key cannot be rotated again
        keys.rotate_key(session=session, name_or_id=str(old.id))


# --- CORS ---------------------------------------------------------------------------------------


def _preflight(client: TestClient, origin: str, method: str = "GET") -> Any:
    return client.options(
        ORGS,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "x-api-key",
        },
    )


def test_preflight_only_for_bound_origins(
    client: TestClient, session: Session, unique: str
) -> None:
    _key(session, f"site-{unique}", scopes=["embed"], allowed_origins=[PARTNER_SITE])

    allowed = _preflight(client, PARTNER_SITE)
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == PARTNER_SITE
    assert "access-control-allow-credentials" not in allowed.headers
    assert "x-api-key" in allowed.headers["access-control-allow-headers"].lower()
    assert "Origin" in allowed.headers["vary"]

    for refused in (_preflight(client, OTHER_SITE), _preflight(client, PARTNER_SITE, "POST")):
        assert refused.status_code == 403
        assert "access-control-allow-origin" not in refused.headers

    keys.revoke_key(session=session, name_or_id=f"site-{unique}")
    gone = _preflight(client, PARTNER_SITE)
    assert "access-control-allow-origin" not in gone.headers


def test_actual_request_gets_cors_only_from_the_keys_own_origin(
    client: TestClient, session: Session, unique: str
) -> None:
    _, raw = _key(session, f"site-{unique}", scopes=["embed"], allowed_origins=[PARTNER_SITE])
    _key(session, f"other-{unique}", allowed_origins=[OTHER_SITE])

    bound = client.get(ORGS, headers={"X-API-Key": raw, "Origin": PARTNER_SITE})
    assert bound.status_code == 200
    assert bound.headers["access-control-allow-origin"] == PARTNER_SITE
    assert "access-control-allow-credentials" not in bound.headers
    assert "Origin" in bound.headers["vary"]

    # The origin is bound to *a* key, but not to this one: the response is not shared with it.
    stranger = client.get(ORGS, headers={"X-API-Key": raw, "Origin": OTHER_SITE})
    assert stranger.status_code == 200
    assert "access-control-allow-origin" not in stranger.headers
    assert "Origin" in stranger.headers["vary"]

    # Anonymous cross-origin reads get no CORS headers at all; nor does a bad key.
    anonymous = client.get(ORGS, headers={"Origin": PARTNER_SITE})
    assert anonymous.status_code == 200
    assert "access-control-allow-origin" not in anonymous.headers
    bad = client.get(ORGS, headers={"X-API-Key": "rn_AAAAAAAA_nope", "Origin": PARTNER_SITE})
    assert bad.status_code == 401
    assert "access-control-allow-origin" not in bad.headers


def test_origin_normalisation_helper() -> None:
    assert keys.normalize_origin("https://Example.org") == "https://example.org"
    assert keys.normalize_origin("https://example.org:8443") == "https://example.org:8443"
    assert keys.normalize_origin("http://127.0.0.1:8000") == "http://127.0.0.1:8000"
    for bad in ("*", "null", "example.org", "ftp://example.org", "https://u:p@example.org"):
        with pytest.raises(InvalidInput):
            keys.normalize_origin(bad)


# --- the command line -------------------------------------------------------------------------


@pytest.fixture(params=["spatialite", "postgis"])
def cli_settings(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """A fresh, migrated database of each backend, named in the CLI's environment."""
    backend = str(request.param)
    try:
        settings = make_backend_settings(backend, tmp_path, suffix="_keys_cli")
    except Exception as exc:
        unavailable(request, backend, exc)
        raise
    monkeypatch.setenv("REFERRAL_NET_DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(cli_app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    return settings


def test_keys_cli_create_list_rotate_revoke(cli_settings: Settings) -> None:
    runner = CliRunner()
    created = runner.invoke(
        cli_app,
        [
            *("keys", "create", "web-partner"),
            *("--scope", "embed", "--origin", PARTNER_SITE, "--per-minute", "300"),
        ],
    )
    assert created.exit_code == 0, created.output
    raw = created.stdout.strip()
    assert raw.startswith("rn_")
    assert "shown once" in created.stderr

    engine = make_engine(cli_settings)
    try:
        with Session(engine) as session:
            key = keys.authenticate_key(session=session, raw=raw)
            assert (key.scopes, key.allowed_origins) == (["embed", "read"], [PARTNER_SITE])
            assert key.requests_per_minute == 300
    finally:
        engine.dispose()

    listed = runner.invoke(cli_app, ["keys", "list"])
    assert listed.exit_code == 0, listed.output
    assert "web-partner" in listed.output
    assert key.prefix in listed.output
    assert PARTNER_SITE in listed.output
    assert raw not in listed.output
    assert raw[len(f"rn_{key.prefix}_") :] not in listed.output

    duplicate = runner.invoke(cli_app, ["keys", "create", "web-partner"])
    assert duplicate.exit_code == 2
    wildcard = runner.invoke(cli_app, ["keys", "create", "other", "--origin", "*"])
    assert wildcard.exit_code == 2
    assert "wildcard" in wildcard.stderr

    rotated = runner.invoke(cli_app, ["keys", "rotate", "web-partner"])
    assert rotated.exit_code == 0, rotated.output
    new_raw = rotated.stdout.strip()
    assert new_raw.startswith("rn_")
    assert new_raw != raw

    revoked = runner.invoke(cli_app, ["keys", "revoke", "web-partner"])
    assert revoked.exit_code == 0, revoked.output
    missing = runner.invoke(cli_app, ["keys", "revoke", "web-partner"])
    assert missing.exit_code == 2

    engine = make_engine(cli_settings)
    try:
        with Session(engine) as session:
            for dead in (raw, new_raw):
                with pytest.raises(Unauthenticated):
                    keys.authenticate_key(session=session, raw=dead)
    finally:
        engine.dispose()
    active = runner.invoke(cli_app, ["keys", "list", "--active"])
    assert active.exit_code == 0
    assert active.output.strip() == "no keys"
