"""Real OGC API - Features clients against a real server (issue 16 item 2), on both backends.

One served instance per backend (``referral-net serve``, one worker) over a database holding the
sample network; GDAL/OGR's OAPIF driver (``ogrinfo``, ``ogr2ogr`` from Debian's ``gdal-bin``)
and OWSLib's Features client read it as people's tools do.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest
from owslib.ogcapi.features import Features
from sqlmodel import Session, col, select

from referral_net.db.engine import make_engine
from referral_net.db.models import Location, ServiceAtLocation
from referral_net.domain import keys, seed
from referral_net.settings import Settings
from tests.databases import migrated_template
from tests.served import served

pytestmark = pytest.mark.db
GDAL_MISSING = shutil.which("ogrinfo") is None or shutil.which("ogr2ogr") is None


@dataclass(frozen=True)
class Served:
    """The /ogc URL of a server over the sample network, a partner key and the ids of the
    sample's confidential service-at-location links."""

    base: str
    partner_key: str
    confidential: frozenset[str]


@pytest.fixture(scope="module")
def server(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One server per backend over the sample network."""
    settings: Settings = migrated_template(
        backend, request, tmp_path_factory, name="ogcclients", with_taxonomy=False
    )
    engine = make_engine(settings)
    try:
        with Session(engine) as session:
            seed.load_sample(session=session)
            _, raw_key = keys.create_key(session=session, name="ogc-clients")
            session.commit()
            confidential = frozenset(
                str(link_id)
                for link_id in session.exec(
                    select(ServiceAtLocation.id)
                    .join(Location, col(Location.id) == col(ServiceAtLocation.location_id))
                    .where(col(Location.visibility) == "confidential")
                )
            )
    finally:
        engine.dispose()
    assert confidential  # the sample has safe houses
    log = tmp_path_factory.mktemp("ogc-server") / "server.log"
    env = {"REFERRAL_NET_IMPORT_WORKER": "false"}
    with served(settings.database_url, workers=1, env=env, log=log) as url:
        yield Served(f"{url}/ogc", raw_key, confidential)


@pytest.fixture(scope="module")
def base(server: Served) -> str:
    """The /ogc URL."""
    return server.base


def _run(*command: str) -> str:
    """Run a GDAL command; its standard output."""
    if GDAL_MISSING:
        pytest.fail("gdal-bin is not installed (scripts/test installs it)")
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _matched(base: str, headers: dict[str, str] | None = None) -> int:
    page = httpx.get(
        f"{base}/collections/services/items", params={"limit": 1}, headers=headers, timeout=30
    )
    assert page.status_code == 200, page.text
    return int(page.json()["numberMatched"])


def test_ogrinfo_lists_the_three_collections(base: str) -> None:
    listing = _run("ogrinfo", "-ro", "-so", f"OAPIF:{base}")
    for name in ("services", "departments", "municipalities"):
        assert name in listing
    summary = _run("ogrinfo", "-ro", "-so", f"OAPIF:{base}", "services")
    assert f"Feature Count: {_matched(base)}" in summary


@pytest.mark.parametrize("audience", ["public", "partner"])
def test_ogr2ogr_copies_every_visible_service(
    server: Served, tmp_path: Path, audience: str
) -> None:
    target = tmp_path / "services.gpkg"
    headers = {"X-API-Key": server.partner_key} if audience == "partner" else {}
    extra = ["--config", "GDAL_HTTP_HEADERS", f"X-API-Key: {server.partner_key}"] if headers else []
    source = f"OAPIF:{server.base}"
    _run("ogr2ogr", "-f", "GPKG", str(target), source, "services", "-oo", "PAGE_SIZE=50", *extra)
    with sqlite3.connect(target) as db:
        (copied,) = db.execute("SELECT count(*) FROM services").fetchone()
        (with_point,) = db.execute(
            "SELECT count(*) FROM services WHERE geom IS NOT NULL"
        ).fetchone()
        ids = {row[0] for row in db.execute("SELECT id FROM services")}
    matched = _matched(server.base, headers)
    assert matched > 50  # several pages
    assert copied == with_point == matched == len(ids)
    assert not ids & server.confidential


def test_owslib_lists_collections_and_reads_items(base: str) -> None:
    client = Features(base, timeout=30)
    ids = {c["id"] for c in client.collections()["collections"]}
    assert ids == {"services", "departments", "municipalities", "places"}
    assert (
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
        in (client.conformance()["conformsTo"])
    )
    shelters = client.collection_items("services", limit=100, category="protection.shelter")
    assert shelters["features"]
    assert all(
        any(code.startswith("protection.shelter") for code in f["properties"]["category_codes"])
        for f in shelters["features"]
    )
    page = client.collection_items("services", limit=5)
    assert page["type"] == "FeatureCollection"
    assert page["numberReturned"] == len(page["features"]) == 5
    assert page["numberMatched"] == _matched(base)
    first = page["features"][0]
    one = client.collection_item("services", first["id"])
    assert one["id"] == first["id"]
    municipalities = client.collection_items("municipalities", bbox=[-91.6, 14.8, -91.4, 14.9])
    assert municipalities["features"]
    assert "0901" in {f["id"] for f in municipalities["features"]}
