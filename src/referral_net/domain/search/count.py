"""How many results a search has, counted up to a cap (and saying when it stopped there), in the
same statement as the checks of the query's codes.

Near mode keeps its count, capped lower than the other modes, read from the read model: it
stops after ``NEAREST_COUNT_CAP + 1`` matching entries (the country, or a radius's window); on
SpatiaLite the category index leads it. Dropping it would take ``total_items`` from every nearest
search. The checks ride along because this statement always returns one row: an unknown category
code or area code is a 422. On PostGIS, near mode's count and checks are columns of the nearest
statement's summary row (``plan.Shape.counted``): one statement in all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from referral_net.db.dialect import ResultRow
from referral_net.domain import taxonomy
from referral_net.domain.search import plan
from referral_net.domain.search.query import SearchQuery
from referral_net.errors import InvalidInput

# Counting every match would cost a scan at a million rows; counts stop here and say so
# (``total_is_lower_bound``). Near mode counts rows in distance order's window (the whole
# country, or a dense city's 10 km), so its cap is lower.
COUNT_CAP = 1_000
NEAREST_COUNT_CAP = 200


@dataclass(frozen=True)
class Total:
    """How many results there are; at least that many when ``is_lower_bound``."""

    items: int
    is_lower_bound: bool


NOT_COUNTED = Total(items=-1, is_lower_bound=True)


def _cap(query: SearchQuery) -> int:
    # Read at call time: the tests lower the caps to cross them with a few rows.
    return NEAREST_COUNT_CAP if query.mode == "near" else COUNT_CAP


def cap_parameter(query: SearchQuery) -> dict[str, int]:
    """The count's bound parameter: one row past the cap of the query's mode."""
    return {"cap": _cap(query) + 1}


def of_row(session: Session, shape: plan.Shape, query: SearchQuery, row: ResultRow) -> Total:
    """The total a row of ``count``'s columns holds; refuses unknown codes first."""
    check(session, shape, query, row)
    cap, counted = _cap(query), int(row.total)
    if counted > cap:
        return Total(items=cap, is_lower_bound=True)
    return Total(items=counted, is_lower_bound=False)


def total(session: Session, shape: plan.Shape, query: SearchQuery, values: dict[str, Any]) -> Total:
    """The search's results, counted up to the cap of its mode; refuses unknown codes first."""
    statement = plan.count(shape)
    row = session.connection().execute(statement, {**values, **cap_parameter(query)}).one()
    return of_row(session, shape, query, row)


def check_only(
    session: Session, shape: plan.Shape, query: SearchQuery, values: dict[str, Any]
) -> None:
    """Refuse unknown codes where nothing is counted (one statement, when there are codes)."""
    statement = plan.checks(shape)
    if statement is not None:
        check(session, shape, query, session.connection().execute(statement, values).one())


def check(
    session: Session,
    shape: plan.Shape,
    query: SearchQuery,
    row: ResultRow,
    *,
    category_field: str = "category",
) -> None:
    """Refuse an unknown area code, then unknown category codes (422s naming the parameter:
    ``category_field`` for the categories)."""
    if shape.mode in plan.AREA_MODES and row.area_level != query.mode:
        raise InvalidInput(
            f"unknown {query.mode} code: {query.area_code}",
            errors=[
                {
                    "field": f"query.{query.mode}",
                    "message": f"unknown {query.mode} code",
                    "type": "value_error",
                }
            ],
        )
    if "categories" in shape.filters and row.known_codes < len(set(query.categories)):
        # Only on a refusal: the taxonomy names which codes are unknown, and where.
        taxonomy.resolve_codes(session=session, codes=query.categories, field=category_field)
