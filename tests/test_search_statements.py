"""How many SQL statements one search and one match send, on both backends (issue 13).

A search reads the read model in one statement per page, plus one that counts (and checks the
query's codes); on PostGIS a nearest search counts in its page statement. A match gathers its
candidates with the same statement. The statements are counted with a ``before_cursor_execute``
listener around one HTTP request; the assertions count those that read (not BEGIN, SAVEPOINT or
the caller's account).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, event
from sqlmodel import Session

from referral_net.domain import locations, service_at_locations, services
from referral_net.domain import match as match_domain
from referral_net.schemas.directory import (
    CapacityIn,
    LocationCreate,
    ServiceAtLocationCreate,
    ServiceCreate,
)
from referral_net.security.roles import Principal, Role
from tests.factories import bearer, make_organization, make_user

pytestmark = pytest.mark.db
STEWARD = Principal(role=Role.STEWARD, subject="user:test")
XELA = (14.8347, -91.5181)
NEEDS = ("protection.shelter", "protection.legal_aid", "protection.health")
CATEGORIES = ("protection.shelter.emergency", "protection.legal_aid", "protection.health.medical")


@pytest.fixture
def cluster(session: Session, taxonomy_loaded: None) -> None:
    """Thirty public sites on a 6 x 5 grid about 200 m apart around Xela, each a shelter and
    one of three kinds of service, with capacity: every page asked for below lies in
    SpatiaLite's first index window (1 km)."""
    org = make_organization(session, "Red de conteo (ejemplo)")
    for i in range(30):
        lat, lon = XELA[0] - 0.0036 + (i // 6) * 0.0018, XELA[1] - 0.0047 + (i % 6) * 0.0019
        location = locations.create(
            session=session,
            principal=STEWARD,
            data=LocationCreate(
                organization_id=org.id, name=f"Sede {i}", latitude=lat, longitude=lon
            ),
        )
        service = services.create(
            session=session,
            principal=STEWARD,
            data=ServiceCreate(
                organization_id=org.id,
                name=f"Servicio {i}",
                categories=list(dict.fromkeys(["protection.shelter.women", CATEGORIES[i % 3]])),
                capacity=[CapacityIn(unit="bed", available=i % 4, maximum=4)],
            ),
        )
        service_at_locations.create(
            session=session,
            principal=STEWARD,
            data=ServiceAtLocationCreate(service_id=service.id, location_id=location.id),
        )


@contextmanager
def recorded(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The statements sent on the engine while the block runs, each with its parameters."""
    sent: list[tuple[str, Any]] = []

    def record(*args: Any) -> None:
        sent.append((str(args[2]), args[3]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _reads(sent: list[tuple[str, Any]]) -> list[str]:
    """The statements that read the directory (not BEGIN, SAVEPOINT, the caller's account)."""
    return [
        s
        for s, _ in sent
        if s.lstrip().upper().startswith(("SELECT", "WITH")) and "user_account" not in s
    ]


NEAR = f"{XELA[0]},{XELA[1]}"
SEARCHES: dict[str, dict[str, Any]] = {
    "nearest-10 + category": {"near": NEAR, "category": "protection.shelter", "limit": 10},
    "10 km radius": {"near": NEAR, "radius_m": 10_000, "limit": 10},
    "bbox": {"bbox": "-91.53,14.82,-91.50,14.85", "limit": 10},
    "municipality": {"municipality": "0901", "limit": 10},
}


@pytest.mark.parametrize("name", sorted(SEARCHES))
def test_a_search_reads_with_one_statement_and_counts_with_one_more(
    client: TestClient, engine: Engine, cluster: None, name: str
) -> None:
    with recorded(engine) as sent:
        response = client.get("/api/v1/search", params=SEARCHES[name])
    assert response.status_code == 200, response.text
    assert response.json()["size"] == 10
    reads = _reads(sent)
    print(f"\n{engine.dialect.name} {name}: {len(sent)} statements, {len(reads)} reads")
    one_statement = engine.dialect.name == "postgresql" and "near" in SEARCHES[name]
    assert len(reads) == (1 if one_statement else 2), reads


def test_a_match_with_three_needs_gathers_with_the_search_statement(
    app: FastAPI,
    client: TestClient,
    engine: Engine,
    session: Session,
    cluster: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fewer candidates than the 60 a match gathers, so that they lie in SpatiaLite's first
    # window here too (beyond it, SpatiaLite widens the window: one statement per step).
    monkeypatch.setattr(match_domain, "GATHER_LIMIT", 12)
    caseworker = bearer(app, make_user(session, Role.CASEWORKER))
    body = {
        "location": {"latitude": XELA[0], "longitude": XELA[1]},
        "needs": [{"code": code} for code in NEEDS],
    }
    with recorded(engine) as sent:
        response = client.post("/api/v1/match", json=body, headers=caseworker)
    assert response.status_code == 200, response.text
    assert all(need["proposals"] for need in response.json()["needs"])
    reads = _reads(sent)
    print(f"\n{engine.dialect.name} match: {len(sent)} statements, {len(reads)} reads")
    # The nearest candidates (the need codes checked in the same statement) and those whose
    # area covers the place.
    assert len(reads) == 2, reads


@pytest.mark.parametrize("category", [None, "protection.shelter"])
@pytest.mark.parametrize("audience", ["public", "exact"])
def test_a_radius_count_reads_its_spatial_index_alone(
    app: FastAPI,
    client: TestClient,
    engine: Engine,
    connection: Connection,
    session: Session,
    cluster: None,
    audience: str,
    category: str | None,
) -> None:
    """The count of a radius (with categories or none) is answered from the spatial index of
    the audience's point column. PostGIS: the count's own partial GiST index, which carries
    each listed point and its codes (an index-only scan, no heap row per candidate; the planner
    is steered off the alternatives, which a 30-site table would otherwise prefer), and the
    whole statement still runs so steered (its KNN part never reads that index). SpatiaLite:
    the R*Tree window, then each candidate by rowid."""
    params: dict[str, Any] = {"near": NEAR, "radius_m": 10_000, "limit": 10}
    if category is not None:
        params["category"] = category
    # A caseworker is shown exact points (``exact_geom``); an anonymous caller public ones.
    headers = bearer(app, make_user(session, Role.CASEWORKER)) if audience == "exact" else {}
    with recorded(engine) as sent:
        response = client.get("/api/v1/search", params=params, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["total_items"] == 30
    [(statement, values)] = [(s, v) for s, v in sent if " AS total" in s]
    if engine.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        connection.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
        plan = "\n".join(r[0] for r in connection.exec_driver_sql("EXPLAIN " + statement, values))
        page = [r for r in connection.exec_driver_sql(statement, values) if r.link_id is not None]
        connection.exec_driver_sql("RESET enable_seqscan")
        connection.exec_driver_sql("RESET enable_bitmapscan")
        assert f"Index Only Scan using ix_search_entry_{audience}_count_window" in plan, plan
        assert len(page) == response.json()["size"]
    else:
        rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, values).all()
        plan = "\n".join(str(r[-1]) for r in rows)
        assert "SCAN SpatialIndex VIRTUAL TABLE" in plan, plan
        assert "SEARCH search_entry USING INTEGER PRIMARY KEY" in plan, plan
        assert "SCAN search_entry" not in plan, plan


@pytest.mark.parametrize("query", ["nearest-10 + category", "10 km radius"])
@pytest.mark.parametrize("audience", ["public", "exact"])
def test_a_nearest_search_takes_its_candidates_from_an_index_alone(
    app: FastAPI,
    client: TestClient,
    engine: Engine,
    connection: Connection,
    session: Session,
    cluster: None,
    audience: str,
    query: str,
) -> None:
    """Nearest-first pages read their candidates, and test their category, from the spatial
    index alone. PostGIS: an index-only KNN scan of the audience's ``*_nearest`` index
    (PostgreSQL's exact ``point`` distance; the planner is steered off the other scans, which a
    30-site table not yet vacuumed would prefer), then the page's rows by id; a radius's window
    bounds that scan (an index condition: as a filter, a window with fewer rows than the scan
    fetches made it pass every entry). SpatiaLite: the R*Tree window, then each candidate by
    rowid."""
    params = SEARCHES[query]
    headers = bearer(app, make_user(session, Role.CASEWORKER)) if audience == "exact" else {}
    with recorded(engine) as sent:
        response = client.get("/api/v1/search", params=params, headers=headers)
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["size"] == 10
    [(statement, values)] = [(s, v) for s, v in sent if "WITH near" in s]
    if engine.dialect.name == "postgresql":
        steered = ("enable_seqscan", "enable_bitmapscan", "enable_indexscan")
        for setting in steered:
            connection.exec_driver_sql(f"SET LOCAL {setting} = off")
        plan = "\n".join(r[0] for r in connection.exec_driver_sql("EXPLAIN " + statement, values))
        rows = [r for r in connection.exec_driver_sql(statement, values) if r.link_id is not None]
        for setting in steered:
            connection.exec_driver_sql(f"RESET {setting}")
        assert f"Index Only Scan using ix_search_entry_{audience}_nearest" in plan, plan
        # KNN: the index hands the candidates over nearest first; nothing sorts them all.
        assert "Order By: ((point(st_x(" in plan, plan
        if "radius_m" in params:
            assert "Index Cond: ((point(st_x(" in plan, plan
            assert "<@" in plan, plan
        # The same page, in the same order, as the search answered.
        assert [str(r.link_id) for r in rows] == [
            result["service_at_location_id"] for result in page["contents"]
        ]
    else:
        rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, values).all()
        plan = "\n".join(str(r[-1]) for r in rows)
        assert "SCAN SpatialIndex VIRTUAL TABLE" in plan, plan
        assert "SCAN search_entry" not in plan, plan
