"""The ``open_at`` filter: opening hours are evaluated in Python (``opening_hours``, pure), so
the matching rows are filtered before they are paginated."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row
from sqlmodel import Session

from referral_net.domain import services
from referral_net.domain.search.plan import Plan, connection, ordered, within
from referral_net.domain.search.query import SearchQuery
from referral_net.opening_hours import is_open


def open_rows(session: Session, plan: Plan, query: SearchQuery) -> list[Row[Any]]:
    """Every matching row whose service is open at ``query.open_at``, in result order.

    A nearest search without a radius is bounded here by the largest allowed radius.
    """
    if query.open_at is None:
        raise ValueError("the opening-hours filter needs open_at")
    statement = plan.statement
    if query.mode == "near":
        statement = within(session, plan, query, query.radius_m or query.max_radius_m)
    rows = list(connection(session).execute(ordered(plan, statement)))
    schedules = services.schedules_by_service(
        session=session, service_ids=list({row.service_id for row in rows})
    )
    return [
        row
        for row in rows
        if schedules.get(row.service_id) and is_open(schedules[row.service_id], query.open_at)
    ]
