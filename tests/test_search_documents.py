"""Search answers are written from documents, not models: the bytes must be the models' own.

``domain.search.shape`` builds each result as a JSON-ready dict and ``schemas.search.page_json``
writes the page with orjson (docs/performance.md: building and dumping the models was a quarter
of a search's Python). The contract: for every page, ``page_json(page)`` is byte for byte what
``SearchPage.model_validate(page).model_dump_json()`` writes. A document with a field out of the
model's order, a value of another type (an int where the model holds a float, a date string the
model would rewrite) or a missing or extra field breaks it.

Checked two ways: random entries shaped without a database (hypothesis: any text, coordinates,
ages, capacity instants in any UTC offset, schedules, audiences and visibilities), and real
answers of ``GET /api/v1/search`` over the sample network on both backends, for every audience
and several modes (what jsonb's key order and each engine's types give).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection
from sqlmodel import Session

from referral_net.domain import places
from referral_net.domain.search import shape
from referral_net.domain.search.entry import Entry
from referral_net.domain.search.query import SearchQuery
from referral_net.domain.search_model import to_compact
from referral_net.opening_hours import WeeklySchedule
from referral_net.schemas.features import service_feature
from referral_net.schemas.search import SearchLocation, SearchPage, SearchResult, page_json
from referral_net.security.roles import Principal, Role
from referral_net.vocab import Visibility
from tests.conftest import savepoint_per_test
from tests.factories import bearer, make_user

# --- documents shaped without a database ---------------------------------------------------------

_TEXT = st.text(max_size=12)
_MAYBE_TEXT = st.none() | _TEXT
_COORDINATE = st.floats(min_value=-180, max_value=180, allow_nan=False)
_AGE = st.none() | st.integers(min_value=0, max_value=120)
_SCHEDULES = [
    [],
    [WeeklySchedule(byday="MO,TU,WE,TH,FR", opens_at=time(8), closes_at=time(16, 30))],
    [
        WeeklySchedule(byday="SA", opens_at=time(8), closes_at=time(12)),
        WeeklySchedule(byday="SU", opens_at=time(22), closes_at=time(6)),
    ],
    [WeeklySchedule(byday="MO,TU,WE,TH,FR,SA,SU", opens_at=time(0), closes_at=time(0))],
]
_OFFSETS = st.sampled_from(
    [UTC, timezone(timedelta(hours=-6)), timezone(timedelta(hours=5, minutes=30))]
)
_INSTANT = st.builds(
    lambda day, seconds, micro, tz: (
        datetime.combine(day, time(), tz) + timedelta(seconds=seconds, microseconds=micro)
    ),
    st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
    st.integers(min_value=0, max_value=86_399),
    st.sampled_from([0, 1, 500_000, 999_999]),
    _OFFSETS,
)
_LABELLED = st.lists(st.fixed_dictionaries({"code": _TEXT, "name": _TEXT}), max_size=3)
_LANGUAGES = st.lists(st.fixed_dictionaries({"code": _TEXT, "name": _MAYBE_TEXT}), max_size=3)
_PHONES = st.lists(st.sampled_from(["+50277610000", "+50255550101", "1545"]), max_size=2)


@st.composite
def entries(draw: st.DrawFn) -> Entry:
    """One read-model entry as ``search_model`` renders it (any content)."""
    capacity = draw(
        st.lists(
            st.builds(
                lambda unit, available, maximum, description, updated: {
                    "unit": unit,
                    "available": available,
                    "maximum": maximum,
                    "description": description,
                    "updated": updated.isoformat(),
                },
                _TEXT,
                st.integers(min_value=0, max_value=500),
                st.none() | st.integers(min_value=0, max_value=500),
                _MAYBE_TEXT,
                _INSTANT,
            ),
            max_size=2,
        )
    )
    doc: dict[str, Any] = {
        "service": {
            "id": str(draw(st.uuids())),
            "name": draw(_TEXT),
            "organization_id": str(draw(st.uuids())),
            "organization_name": draw(_TEXT),
            "minimum_age": draw(_AGE),
            "maximum_age": draw(_AGE),
            "genders_served": draw(st.none() | st.lists(_TEXT, max_size=2)),
            "lgbtiq_affirming": draw(st.booleans()),
            "accepts_accompanying_children": draw(st.booleans()),
        },
        "location": {
            "id": str(draw(st.uuids())),
            "name": draw(_MAYBE_TEXT),
            "latitude": draw(_COORDINATE),
            "longitude": draw(_COORDINATE),
            "department_code": draw(st.none() | st.just("09")),
            "municipality_code": draw(st.none() | st.just("0901")),
            "intake_phone": draw(st.none() | st.just("+50277619999")),
            "intake_description": draw(_MAYBE_TEXT),
            "geocoding_precision": draw(st.sampled_from([None, "given", "town", "municipality"])),
        },
        "categories": {"es": draw(_LABELLED), "en": draw(_LABELLED)},
        "languages": {"es": draw(_LANGUAGES), "en": draw(_LANGUAGES)},
        "capacity": capacity,
        "schedules": to_compact(draw(st.sampled_from(_SCHEDULES))),
        "last_verified": draw(st.none() | st.dates().map(date.isoformat)),
        "phones": {"link": draw(_PHONES), "location": draw(_PHONES), "service": draw(_PHONES)},
    }
    coarse = draw(st.none() | st.tuples(_COORDINATE, _COORDINATE))
    return Entry(
        link_id=draw(st.uuids()),
        service_id=uuid.UUID(doc["service"]["id"]),
        location_id=uuid.UUID(doc["location"]["id"]),
        distance_m=draw(st.none() | st.floats(min_value=0, max_value=2_000_000)),
        visibility=draw(st.sampled_from([v.value for v in Visibility])),
        location_organization_id=draw(st.none() | st.uuids()),
        public_latitude=None if coarse is None else coarse[0],
        public_longitude=None if coarse is None else coarse[1],
        doc=doc,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    page=st.lists(entries(), max_size=4, unique_by=lambda entry: entry.location_id),
    role=st.sampled_from(list(Role)),
    locale=st.sampled_from(["es", "en"]),
    evaluated_at=_INSTANT,
    total=st.integers(min_value=0, max_value=10_000),
    lower_bound=st.booleans(),
)
def test_page_json_writes_what_the_models_would(
    page: list[Entry],
    role: Role,
    locale: str,
    evaluated_at: datetime,
    total: int,
    lower_bound: bool,
) -> None:
    principal = Principal(role=role, subject="documents")
    query = SearchQuery(mode="near", locale=locale, evaluated_at=evaluated_at)  # type: ignore[arg-type]
    audience = places.Audience(principal)
    contents = shape.results(audience, query, page)
    document = {
        "mode": "near",
        "total_items": total,
        "total_is_lower_bound": lower_bound,
        "page_number": 1,
        "limit": 10,
        "size": len(contents),
        "contents": contents,
    }
    model = SearchPage.model_validate(document)
    assert page_json(document) == model.model_dump_json().encode()
    assert list(document) == list(SearchPage.model_fields)
    for result in contents:
        assert list(result) == list(SearchResult.model_fields)
        assert list(result["location"]) == list(SearchLocation.model_fields)
    # The GeoJSON form reads the same documents; from the model it is the same Feature.
    for result, validated in zip(contents, model.contents, strict=True):
        assert service_feature(result) == service_feature(validated.model_dump())


def test_locations_and_the_models_place_a_site_alike() -> None:
    """``Audience.place`` (the models, for matching and tiles) is ``locations`` validated."""
    site = places.Site(
        id=uuid.uuid4(),
        name="Sede",
        latitude=14.84,
        longitude=-91.52,
        visibility=Visibility.RESTRICTED.value,
        organization_id=None,
        department_code="09",
        municipality_code="0901",
        intake_phone="+50277619999",
        intake_description=None,
        geocoding_precision="town",
        coarse_latitude=14.83,
        coarse_longitude=-91.51,
    )
    for role in Role:
        principal = Principal(role=role, subject="documents")
        placed = places.Audience(principal).place([site])[site.id]
        document = places.Audience(principal).locations([site])[site.id]
        assert placed == SearchLocation.model_validate(document)
        # docs/access.md: caseworkers, justice and stewards see every site exactly.
        expected_exact = role in {Role.STEWARD, Role.CASEWORKER, Role.JUSTICE}
        assert (placed.precision == "exact") == expected_exact, role
        assert (placed.latitude, placed.longitude) == (
            (14.84, -91.52) if expected_exact else (14.83, -91.51)
        )


# --- real answers, both backends -----------------------------------------------------------------


@pytest.fixture
def connection(sample_network_connection: Connection) -> Iterator[Connection]:
    """The sample network, loaded once for this module; each test in a rolled-back SAVEPOINT."""
    yield from savepoint_per_test(sample_network_connection)


QUERIES = [
    "near=14.84,-91.52&limit=20",
    "near=14.84,-91.52&category=protection.shelter&limit=10",
    "near=15.3,-91.47&radius_m=60000&limit=50",
    "bbox=-92.3,14.0,-90.5,16.0&limit=50",
    "department=09&limit=50",
    "municipality=0901&limit=50",
    "covers=14.84,-91.52&limit=50",
    "near=14.84,-91.52&open_now=true&limit=20",
    "near=14.84,-91.52&has_capacity=true&limit=20",
]


@pytest.mark.db
@pytest.mark.parametrize("audience", ["public", "caseworker"])
def test_search_answers_are_the_models_own_bytes(
    client: TestClient, app: FastAPI, session: Session, audience: str
) -> None:
    headers: dict[str, str] = {}
    if audience == "caseworker":
        headers = bearer(app, make_user(session, Role.CASEWORKER))
    shown = {"results": 0, "capacity": 0, "hours": 0, "municipality": 0}
    for query in QUERIES:
        for locale in ("es", "en"):
            response = client.get(
                f"/api/v1/search?{query}", headers={**headers, "Accept-Language": locale}
            )
            assert response.status_code == 200, (query, response.text)
            model = SearchPage.model_validate_json(response.content)
            assert response.content == model.model_dump_json().encode(), query
            shown["results"] += len(model.contents)
            shown["capacity"] += sum(1 for result in model.contents if result.capacity)
            shown["hours"] += sum(1 for result in model.contents if result.hours)
            shown["municipality"] += sum(
                1 for result in model.contents if result.location.precision == "municipality"
            )
    # The answers held what the documents shape: capacity, hours, and (for the public) sites at
    # their municipality's point.
    assert shown["results"] > 0, shown
    assert shown["capacity"] > 0, shown
    assert shown["hours"] > 0, shown
    assert (shown["municipality"] > 0) == (audience == "public"), shown
