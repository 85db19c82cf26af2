"""How many results a search has, counted up to a cap (and saying when it stopped there)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, literal, select
from sqlmodel import Session

from referral_net.domain.search.plan import Plan, connection, within
from referral_net.domain.search.query import SearchQuery

# Counting every match would cost a scan at a million rows; counts stop here and say so
# (``total_is_lower_bound``). Near mode, with or without a radius, counts rows in distance
# order's window (the whole country, or a dense city's 10 km), so its cap is lower: the count
# was the largest statement of a radius search at 1M rows.
COUNT_CAP = 1_000
NEAREST_COUNT_CAP = 200


@dataclass(frozen=True)
class Total:
    """How many results there are; at least that many when ``is_lower_bound``."""

    items: int
    is_lower_bound: bool


NOT_COUNTED = Total(items=-1, is_lower_bound=True)


def count_rows(session: Session, statement: Select[Any], cap: int) -> Total:
    """The statement's rows, counted up to ``cap``."""
    # Count rows, not distances: the select list is replaced so nothing is computed per row.
    inner = statement.with_only_columns(literal(1)).order_by(None).limit(cap + 1)
    counted = int(
        connection(session).execute(select(func.count()).select_from(inner.subquery())).scalar_one()
    )
    if counted > cap:
        return Total(items=cap, is_lower_bound=True)
    return Total(items=counted, is_lower_bound=False)


def total(session: Session, plan: Plan, query: SearchQuery) -> Total:
    """The search's results, counted up to the cap of its mode."""
    if query.mode == "near" and query.radius_m is not None:
        return count_rows(session, within(session, plan, query, query.radius_m), NEAREST_COUNT_CAP)
    if query.mode == "near":
        return count_rows(session, plan.statement, NEAREST_COUNT_CAP)
    return count_rows(session, plan.statement, COUNT_CAP)
