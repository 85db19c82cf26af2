"""Search's gender filter agrees with matching's rule (``gender_served``), case by case.

Search filters the read model in the database (``search_entry.served_genders`` through the
dialect's ``entry_serves``); matching decides in Python. This test writes the whole truth table
through the real write path (so the session hooks fill the read model) and runs every person
gender through search's filter on each backend: against a service open to all (null) and against
every subset of the served genders (the empty list included), each with every combination of the
two flags the rule looks at (trans-inclusive, LGBTIQ+-affirming). The expected answer is always
matching's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from itertools import combinations

import pytest
from sqlalchemy import literal
from sqlmodel import Session, col, select

from referral_net.db import dialect
from referral_net.db.models import Location, SearchEntry, Service, ServiceAtLocation
from referral_net.matching.eligibility import gender_served
from referral_net.matching.model import Candidate, Need, NeedProfile
from referral_net.vocab import GENDERS, SERVED_GENDERS, Gender
from tests.factories import make_organization

pytestmark = pytest.mark.db


@dataclass(frozen=True)
class ServiceCase:
    """One row of the truth table's service side."""

    genders_served: frozenset[str] | None
    trans_inclusive: bool
    lgbtiq_affirming: bool

    def label(self) -> str:
        """A readable name for failure messages."""
        served = "all" if self.genders_served is None else sorted(self.genders_served)
        return (
            f"genders_served={served} trans_inclusive={self.trans_inclusive}"
            f" lgbtiq_affirming={self.lgbtiq_affirming}"
        )


def _served_options() -> list[frozenset[str] | None]:
    served = sorted(SERVED_GENDERS)
    sizes = range(len(served) + 1)
    return [None, *(frozenset(subset) for size in sizes for subset in combinations(served, size))]


SERVICE_CASES = [
    ServiceCase(genders_served=served, trans_inclusive=trans, lgbtiq_affirming=affirming)
    for served in _served_options()
    for trans in (False, True)
    for affirming in (False, True)
]


def _matching_admits(gender: Gender, case: ServiceCase) -> bool:
    profile = NeedProfile(needs=(Need("protection"),), gender=gender)
    candidate = Candidate(
        service_id="s",
        location_id="l",
        organization_id="o",
        service_name="s",
        organization_name="o",
        categories=frozenset({"protection"}),
        distance_m=0.0,
        genders_served=case.genders_served,
        trans_inclusive=case.trans_inclusive,
        lgbtiq_affirming=case.lgbtiq_affirming,
    )
    return gender_served(profile, candidate)


def _insert_services(session: Session) -> tuple[uuid.UUID, dict[uuid.UUID, ServiceCase]]:
    organization = make_organization(session, "Gender truth table (ejemplo)")
    location = Location(
        organization_id=organization.id, name="Truth table site", latitude=14.83, longitude=-91.52
    )
    session.add(location)
    by_id: dict[uuid.UUID, ServiceCase] = {}
    for number, case in enumerate(SERVICE_CASES):
        service = Service(
            organization_id=organization.id,
            name=f"Case {number}",
            genders_served=None if case.genders_served is None else sorted(case.genders_served),
            trans_inclusive=case.trans_inclusive,
            lgbtiq_affirming=case.lgbtiq_affirming,
        )
        session.add(service)
        session.add(ServiceAtLocation(service_id=service.id, location_id=location.id))
        by_id[service.id] = case
    session.commit()
    return organization.id, by_id


def test_truth_table_covers_every_served_subset_and_flag() -> None:
    """The table is exhaustive: null plus all 2^5 subsets, times the 4 flag combinations."""
    assert len(SERVICE_CASES) == (1 + 2 ** len(SERVED_GENDERS)) * 4
    assert {"undisclosed", "trans_woman", "trans_man"} <= set(GENDERS)


def test_search_gender_filter_agrees_with_matching_for_every_case(session: Session) -> None:
    """For every person gender and every service case, search admits exactly what matching does."""
    organization_id, by_id = _insert_services(session)
    sql = dialect.dialect_for(session)
    disagreements: list[str] = []
    for gender in GENDERS:
        statement = select(col(SearchEntry.service_id)).where(
            col(SearchEntry.organization_id) == organization_id,
            sql.entry_serves(literal(gender)),
        )
        admitted_by_sql = set(session.exec(statement))
        for service_id, case in by_id.items():
            expected = _matching_admits(gender, case)
            if (service_id in admitted_by_sql) != expected:
                disagreements.append(
                    f"{gender} at {case.label()}: matching says {expected}, SQL says {not expected}"
                )
        # Both sides must really decide: each gender is admitted somewhere and refused somewhere.
        assert admitted_by_sql, gender
        assert admitted_by_sql != set(by_id), gender
    assert not disagreements, "\n".join(disagreements)
