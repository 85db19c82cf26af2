"""The statements of a search over the read model (``search_entry``), built once per shape.

A statement's SQL depends only on its :class:`Shape`: the engine, the point column the audience
reads (``access`` decides it), the mode, and which filters the query has. Every value is a bind
parameter (:func:`parameters`). Statements are built on first use and kept, so a request spends
no time constructing SQL and SQLAlchemy's compiled cache hands back the SQL text.

    nearest     near mode: the cheap nearest-first order picks ``fetch`` candidates and the page
                is their exact (geodesic) order; ``bound`` checks that nothing nearer was missed
    listing     the other modes: the page in name order (distance order where there is a point)
    count       the matches, counted up to a cap, with the checks of the query's codes (PostGIS
                near mode: in the nearest statement's own summary row)
    checks      those checks alone, where nothing is counted
    candidates  every match with its weekly schedule, for the ``open_at`` filter (in Python)
    entries     the shown columns of chosen services at locations

Every statement selects labelled columns; readers read rows by those names, never by position.
Engine SQL comes from ``db.dialect``; everything here is portable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    Boolean,
    ColumnElement,
    Date,
    Float,
    Integer,
    Label,
    Select,
    String,
    Uuid,
    and_,
    bindparam,
    case,
    distinct,
    false,
    func,
    literal,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session

from referral_net.db import dialect
from referral_net.db.dialect import Dialect
from referral_net.db.models import AdminArea, SearchEntry, SearchEntryCategory, TaxonomyTerm
from referral_net.domain import access, taxonomy
from referral_net.domain.search import bound
from referral_net.domain.search.query import SearchQuery
from referral_net.geo.convert import geodesic_bbox
from referral_net.schemas.search import SearchMode
from referral_net.security.roles import Principal
from referral_net.text import fold

_ENTRY = SearchEntry.__table__  # type: ignore[attr-defined]
_ENTRY_CATEGORY = SearchEntryCategory.__table__  # type: ignore[attr-defined]
_AREA_CODE = AdminArea.__table__.c.code  # type: ignore[attr-defined]
_AREA_LEVEL = AdminArea.__table__.c.level  # type: ignore[attr-defined]
_TERM_CODE = TaxonomyTerm.__table__.c.code  # type: ignore[attr-defined]

# The bind parameters; code lists are the dialect's (``Dialect.code_list``).
_LAT = bindparam("lat", type_=Float)
_LON = bindparam("lon", type_=Float)
_SCALE = bindparam("scale", type_=Float)
_RADIUS = bindparam("radius", type_=Float)
# The cheap order's values that decide the radius without the exact distance (``bound.ring``).
_SURELY_WITHIN = bindparam("surely_within", type_=Float)
_SURELY_BEYOND = bindparam("surely_beyond", type_=Float)
_BOX = tuple(bindparam(name, type_=Float) for name in ("min_lon", "min_lat", "max_lon", "max_lat"))
_AREA = bindparam("area", type_=String)
_LANGUAGE = bindparam("language", type_=String)
_GENDER = bindparam("gender", type_=String)
_AGE = bindparam("age", type_=Integer)
_IS_MINOR = bindparam("is_minor", type_=Boolean)
_LGBTIQ = bindparam("lgbtiq", type_=Boolean)
_CHILDREN = bindparam("children", type_=Boolean)
_HAS_CAPACITY = bindparam("has_capacity", type_=Boolean)
_SINCE = bindparam("since", type_=Date)
_FETCH = bindparam("fetch", type_=Integer)
_LIMIT = bindparam("limit", type_=Integer)
_OFFSET = bindparam("offset", type_=Integer)
_CAP = bindparam("cap", type_=Integer)
_LINKS = bindparam("links", type_=Uuid(), expanding=True)
# The query's own list of services at locations (``SearchQuery.link_ids``): not ``_LINKS``, which
# ``hours`` binds to the rows it re-reads.
_ONLY_LINKS = bindparam("only_links", type_=Uuid(), expanding=True)

AREA_MODES = frozenset({"department", "municipality"})


@dataclass(frozen=True)
class Shape:
    """What decides a statement's SQL text (never the values: those are bound).

    ``point``: the query has a reference point (distances, nearest-first order). ``radius``:
    near mode within ``radius_m``. ``window``: near mode inside an index window (``bound``:
    SpatiaLite's growing windows, or a radius's box). ``matching``: the rows also carry what
    matching reads (category codes, ``minors_only``, whether a service area covers the point).
    ``counted``: near mode's statement also counts and checks (``count``'s columns), where its
    one run is the whole search (PostGIS). ``checked``: near mode's statement also carries the
    checks of the query's codes alone (matching: one statement fewer). ``one_category``: the
    query names one category code (its count needs no ``DISTINCT``: an entry holds a code once).
    """

    engine: str
    column: str
    mode: SearchMode
    filters: frozenset[str]
    point: bool
    radius: bool
    window: bool = False
    matching: bool = False
    counted: bool = False
    checked: bool = False
    one_category: bool = False


def _filter_names(query: SearchQuery) -> frozenset[str]:
    present = {
        "categories": bool(query.categories),
        "language": query.language is not None,
        "age": query.age is not None,
        "gender": query.gender is not None,
        "lgbtiq": query.lgbtiq_affirming is not None,
        "children": query.accepts_children is not None,
        "has_capacity": query.has_capacity is not None,
        "text": bool(text_tokens(query)),
        "verified": query.verified_within_days is not None,
        "links": bool(query.link_ids),
    }
    return frozenset(name for name, given in present.items() if given)


def shape_of(
    session: Session, principal: Principal, query: SearchQuery, *, matching: bool = False
) -> Shape:
    """The shape of a query for a caller: the audience rule chooses the point column first.

    Trusted roles search the exact points; everyone else the public ones (a restricted site's
    municipality point; none for a confidential site, which therefore does not exist for them).
    """
    column = "exact_geom" if access.sees_exact_points_everywhere(principal) else "public_geom"
    return Shape(
        engine=dialect.dialect_name(session),
        column=column,
        mode=query.mode,
        filters=_filter_names(query),
        point=query.has_point,
        radius=query.mode == "near" and query.radius_m is not None,
        window=query.mode == "near" and query.radius_m is not None,
        matching=matching,
        one_category=len(set(query.categories)) == 1,
    )


# --- parameters ------------------------------------------------------------------------------


def text_tokens(query: SearchQuery) -> list[str]:
    """The folded words of the text filter (each must appear in the search text)."""
    return fold(query.text).split() if query.text else []


def _escape_like(token: str) -> str:
    return token.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filter_parameters(query: SearchQuery) -> dict[str, Any]:
    values: dict[str, Any] = {
        "codes": list(dict.fromkeys(query.categories)),
        "language": query.language,
        "gender": query.gender,
        "lgbtiq": query.lgbtiq_affirming,
        "children": query.accepts_children,
        "has_capacity": query.has_capacity,
        "patterns": [f"%{_escape_like(token)}%" for token in text_tokens(query)],
        "only_links": list(query.link_ids),
    }
    if query.age is not None:
        values.update(age=query.age, is_minor=query.age < 18)
    if query.verified_within_days is not None:
        values["since"] = query.today - timedelta(days=query.verified_within_days)
    return values


def box_parameters(box: tuple[float, float, float, float]) -> dict[str, float]:
    """The index window's parameters for a lon/lat box."""
    return dict(zip(("min_lon", "min_lat", "max_lon", "max_lat"), box, strict=True))


def window_parameters(query: SearchQuery, radius_m: float) -> dict[str, float]:
    """The index window's parameters for the box around a geodesic circle of the query point."""
    if query.latitude is None or query.longitude is None:
        raise ValueError("a window needs a reference point")
    return box_parameters(geodesic_bbox(query.latitude, query.longitude, radius_m))


def planar_order(shape: Shape) -> bool:
    """Whether the engine's cheap nearest-first order is planar degrees (PostGIS's KNN
    ``<->``) rather than scaled squared degrees (SpatiaLite): ``bound`` measures in it."""
    return dialect.dialect_named(shape.engine).has_knn_index()


def radius_parameters(shape: Shape, query: SearchQuery, radius_m: float) -> dict[str, float]:
    """A radius's parameters: the radius, its index window, and the cheap order's values that
    decide most rows without the exact distance (``bound.ring``)."""
    within, beyond = bound.ring(query, radius_m, planar=planar_order(shape))
    return {
        "radius": radius_m,
        "surely_within": within,
        "surely_beyond": beyond,
        **window_parameters(query, radius_m),
    }


def parameters(shape: Shape, query: SearchQuery) -> dict[str, Any]:
    """The values of every parameter a statement of this query's ``shape`` may bind (unused
    ones are ignored), except the paging and window ones, which the caller adds."""
    values = _filter_parameters(query)
    if query.latitude is not None and query.longitude is not None:
        scale = math.cos(math.radians(query.latitude)) ** 2
        values.update(lat=query.latitude, lon=query.longitude, scale=scale)
    if query.radius_m is not None:
        values.update(radius_parameters(shape, query, query.radius_m))
    if query.mode == "bbox" and query.box is not None:
        values.update(box_parameters(query.box))
    if query.area_code is not None:
        values["area"] = query.area_code
    return values


# --- the parts of a statement ----------------------------------------------------------------


@dataclass(frozen=True)
class _Parts:
    """The expressions every statement of one shape is made of."""

    sql: Dialect
    geom: ColumnElement[Any]
    target: ColumnElement[Any]
    codes: BindParameter[Any]
    patterns: BindParameter[Any]


def _parts(shape: Shape) -> _Parts:
    sql = dialect.dialect_named(shape.engine)
    return _Parts(
        sql=sql,
        geom=_ENTRY.c[shape.column],
        target=sql.entry_point(latitude=_LAT, longitude=_LON),
        codes=sql.code_list("codes"),
        patterns=sql.code_list("patterns"),
    )


def _person_filters(
    shape: Shape, parts: _Parts, *, categories_lead: bool, window_leads: bool = False
) -> list[ColumnElement[bool]]:
    """What the person needs: categories (with descendants), a language, their age, gender.

    ``categories_lead``: the statement reads from ``Dialect.categories_leading``, which holds
    the category condition already. ``window_leads``: the spatial index's window leads and the
    category test is made on each entry in it (``Dialect.entry_in_categories``).
    """
    entry = _ENTRY.c
    conditions: list[ColumnElement[bool]] = []
    if "categories" in shape.filters and not categories_lead:
        conditions.append(parts.sql.entry_in_categories(parts.codes, window_leads=window_leads))
    if "language" in shape.filters:
        conditions.append(parts.sql.entry_speaks(_LANGUAGE))
    if "age" in shape.filters:
        conditions.append(
            and_(
                or_(entry.minimum_age.is_(None), entry.minimum_age <= _AGE),
                or_(entry.maximum_age.is_(None), entry.maximum_age >= _AGE),
                or_(entry.minors_only.is_(False), _IS_MINOR),
            )
        )
    if "gender" in shape.filters:
        conditions.append(parts.sql.entry_serves(_GENDER))
    return conditions


def _offer_filters(shape: Shape, parts: _Parts) -> list[ColumnElement[bool]]:
    """What the service offers: flags, free capacity, text, a recent verification."""
    entry = _ENTRY.c
    flags = {
        "lgbtiq": (entry.lgbtiq_affirming, _LGBTIQ),
        "children": (entry.accepts_accompanying_children, _CHILDREN),
        "has_capacity": (entry.has_capacity, _HAS_CAPACITY),
    }
    conditions: list[ColumnElement[bool]] = [
        column == value for name, (column, value) in flags.items() if name in shape.filters
    ]
    if "text" in shape.filters:
        conditions.append(parts.sql.entry_text_matches(parts.patterns))
    if "verified" in shape.filters:
        conditions.append(entry.assured_date >= _SINCE)
    if "links" in shape.filters:
        conditions.append(entry.service_at_location_id.in_(_ONLY_LINKS))
    return conditions


def _in_mode(
    shape: Shape, parts: _Parts, *, window_leads: bool = False, knn_leads: bool = False
) -> list[ColumnElement[bool]]:
    """The mode's condition; near mode has none but its window (bounded later, by distance).
    ``window_leads``: the window is read from the index a radius's count walks; ``knn_leads``:
    from the index the nearest statement walks."""
    geom, sql = parts.geom, parts.sql
    if shape.mode == "near":
        if not shape.window:
            return []
        return [
            sql.entry_window(
                geom,
                column_name=shape.column,
                box=_BOX,
                window_leads=window_leads,
                knn_leads=knn_leads,
            )
        ]
    if shape.mode == "bbox":
        min_lon, min_lat, max_lon, max_lat = _BOX
        # Coordinates, not ST_Intersects: a box shrunk to one point is a degenerate polygon
        # that intersects nothing in GEOS (found by the parity property test).
        return [
            sql.entry_window(geom, column_name=shape.column, box=_BOX),
            func.ST_X(geom).between(min_lon, max_lon),
            func.ST_Y(geom).between(min_lat, max_lat),
        ]
    if shape.mode in AREA_MODES:
        return [sql.entry_in_area(geom, column_name=shape.column, code=_AREA)]
    return [sql.entry_covered(_ENTRY.c.service_id, parts.target, latitude=_LAT, longitude=_LON)]


def _matches(
    shape: Shape,
    parts: _Parts,
    *,
    categories_lead: bool = False,
    window_leads: bool = False,
    knn_leads: bool = False,
) -> list[ColumnElement[bool]]:
    """Every condition of a match except near mode's radius (the caller applies it)."""
    return [
        _ENTRY.c.listed,
        parts.geom.is_not(None),
        *_person_filters(shape, parts, categories_lead=categories_lead, window_leads=window_leads),
        *_offer_filters(shape, parts),
        *_in_mode(shape, parts, window_leads=window_leads, knn_leads=knn_leads),
    ]


def _within_radius(shape: Shape, parts: _Parts) -> list[ColumnElement[bool]]:
    """Within the radius: the cheap order decides where it can (``bound.ring``), the exact
    distance only in the thin ring between (a 10 km radius's count computed it for every
    row: three quarters of that statement on SpatiaLite, a third on PostGIS)."""
    if not shape.radius:
        return []
    reach = parts.sql.entry_reach(
        parts.geom, parts.target, latitude=_LAT, longitude=_LON, scale=_SCALE
    )
    exact = parts.sql.entry_distance_m(parts.geom, parts.target) <= _RADIUS
    return [case((reach <= _SURELY_WITHIN, true()), (reach > _SURELY_BEYOND, false()), else_=exact)]


def _distance(shape: Shape, parts: _Parts) -> ColumnElement[Any]:
    if not shape.point:
        return null()
    return parts.sql.entry_distance_m(parts.geom, parts.target)


def _shown(shape: Shape, parts: _Parts) -> list[ColumnElement[Any]]:
    """The columns a result is shaped from (``entry.Entry``)."""
    entry = _ENTRY.c
    columns: list[ColumnElement[Any]] = [
        entry.service_at_location_id.label("link_id"),
        entry.service_id,
        entry.location_id,
        entry.visibility,
        entry.location_organization_id,
        entry.public_latitude,
        entry.public_longitude,
        entry.doc,
    ]
    if shape.matching:
        covers = parts.sql.entry_covered(
            entry.service_id, parts.target, latitude=_LAT, longitude=_LON
        )
        columns += [
            parts.sql.entry_category_codes().label("category_codes"),
            entry.minors_only,
            covers.label("covers_area"),
        ]
    return columns


def _checks(shape: Shape, parts: _Parts) -> list[Label[Any]]:
    """How many of the query's category codes exist; the level of its area code."""
    checks: list[Label[Any]] = []
    if "categories" in shape.filters:
        known = select(func.count(distinct(_TERM_CODE))).where(
            parts.sql.in_code_list(_TERM_CODE, parts.codes), taxonomy.own_terms()
        )
        checks.append(known.scalar_subquery().label("known_codes"))
    if shape.mode in AREA_MODES:
        level = select(_AREA_LEVEL).where(_AREA_CODE == _AREA)
        checks.append(level.scalar_subquery().label("area_level"))
    return checks


# --- the statements ----------------------------------------------------------------------------


@cache
def nearest(shape: Shape) -> Select[Any]:
    """Near mode's page: one row of ``fetched``/``reach`` (how many candidates the cheap order
    gave, and its value at the last) left-joined to the page rows, nearest first, ties by id.

    The candidates are the first ``fetch`` matches in the cheap order (PostGIS: KNN on the
    GiST index; SpatiaLite: inside the index window). Only they get a geodesic distance; the
    radius is applied to them. ``bound`` decides whether the page is exact. A ``counted`` shape
    adds ``count``'s columns to the summary row (evaluated once).
    """
    parts = _parts(shape)
    reach = parts.sql.entry_reach(
        parts.geom, parts.target, latitude=_LAT, longitude=_LON, scale=_SCALE
    )
    # Where the cheap order reads each candidate's row anyway (SpatiaLite's windows), the shown
    # columns ride along with the candidates instead of a join back to the entries by id. Where
    # the candidates come from an index alone (PostGIS), only the page's rows are read, by id.
    # Matching's extra columns (a service-area test per row) are for the page rows only.
    carried = [] if shape.matching or parts.sql.nearest_reads_index_only() else _shown(shape, parts)
    near = (
        select(
            _ENTRY.c.service_at_location_id.label("near_link_id"),
            parts.geom.label("geom"),
            reach.label("reach"),
            *carried,
        )
        .where(*_matches(shape, parts, knn_leads=True))
        .order_by(reach)
        .limit(_FETCH)
        .cte("near")
        .prefix_with("MATERIALIZED")
    )
    distance = parts.sql.entry_distance_m(near.c.geom, parts.target)
    kept = [near.c[column.name] for column in carried]
    ranked = select(
        near.c.near_link_id.label("page_link_id"), distance.label("distance_m"), *kept
    ).subquery("ranked")
    page_rows = select(*ranked.c)
    if shape.radius:
        page_rows = page_rows.where(ranked.c.distance_m <= _RADIUS)
    page = (
        page_rows.order_by(ranked.c.distance_m, ranked.c.page_link_id)
        .limit(_LIMIT)
        .offset(_OFFSET)
        .subquery("page")
    )
    counted: list[Label[Any]] = []
    if shape.counted:
        counted = [_capped_total(shape, parts), *_checks(shape, parts)]
    elif shape.checked:
        counted = _checks(shape, parts)
    summary = (
        select(func.count().label("fetched"), func.max(near.c.reach).label("reach"), *counted)
        .select_from(near)
        .subquery("summary")
    )
    if carried:
        shown_rows: Any = page
        columns: list[Any] = [page.c.distance_m, *(page.c[column.name] for column in carried)]
    else:
        shown_rows = page.join(_ENTRY, _ENTRY.c.service_at_location_id == page.c.page_link_id)
        columns = [page.c.distance_m, *_shown(shape, parts)]
    return (
        select(*summary.c, *columns)
        .select_from(summary.outerjoin(shown_rows, true()))
        .order_by(page.c.distance_m, page.c.page_link_id)
    )


def _order(shape: Shape, parts: _Parts) -> list[ColumnElement[Any]]:
    """Nearest first (ties by id) with a reference point; otherwise by name (code point)."""
    if shape.point:
        return [
            parts.sql.entry_distance_m(parts.geom, parts.target),
            _ENTRY.c.service_at_location_id,
        ]
    name = dialect.dialect_named(shape.engine).code_point_order(_ENTRY.c.service_name)
    return [name, _ENTRY.c.service_at_location_id]


@cache
def listing(shape: Shape) -> Select[Any]:
    """A page of the modes other than near, in result order."""
    parts = _parts(shape)
    return (
        select(_distance(shape, parts).label("distance_m"), *_shown(shape, parts))
        .where(*_matches(shape, parts), *_within_radius(shape, parts))
        .order_by(*_order(shape, parts))
        .limit(_LIMIT)
        .offset(_OFFSET)
    )


def _counted_by_category(shape: Shape, parts: _Parts) -> Select[Any]:
    """The matches of a query with only categories and no window, from the side table alone:
    its partial index per audience holds the listed entries with a point, so the count is an
    index-only scan that stops at the cap (on PostGIS the entries' heap is wide: a scan of it
    until 201 matches took 8 of a 1M-row search's 9 ms)."""
    side = _ENTRY_CATEGORY.c
    flag = (
        side.listed_with_public_point
        if shape.column == "public_geom"
        else side.listed_with_exact_point
    )
    rows = select(side.service_at_location_id).where(
        parts.sql.in_code_list(side.code, parts.codes), flag
    )
    # An entry holds each code once, so one code needs no DISTINCT (which would read every
    # match before the cap stops it); several codes may meet in one entry.
    return rows if shape.one_category else rows.distinct()


def _capped_total(shape: Shape, parts: _Parts) -> Label[Any]:
    """The matches counted up to ``cap`` rows (the caller binds the cap plus one)."""
    unwindowed = shape.mode == "near" and not shape.window
    leading = (
        parts.sql.categories_leading(parts.codes)
        if unwindowed and "categories" in shape.filters
        else None
    )
    if unwindowed and shape.filters == {"categories"}:
        capped = _counted_by_category(shape, parts)
    elif leading is None:
        # A radius, with categories or no filter: its window leads (an index-only walk on
        # PostGIS that stops at the cap). With other filters the planner chooses: a rare
        # language's index may well beat a dense window whose every entry it would read.
        window_leads = shape.radius and shape.filters <= {"categories"}
        capped = (
            select(literal(1))
            .select_from(_ENTRY)
            .where(
                *_matches(shape, parts, window_leads=window_leads),
                *_within_radius(shape, parts),
            )
        )
    else:  # the category index leads; an entry in two wanted categories counts once
        capped = (
            select(_ENTRY.c.service_at_location_id)
            .distinct()
            .select_from(leading)
            .where(*_matches(shape, parts, categories_lead=True))
        )
    limited = capped.limit(_CAP).subquery("capped")
    return select(func.count()).select_from(limited).scalar_subquery().label("total")


@cache
def count(shape: Shape) -> Select[Any]:
    """The capped count and the checks of the query's codes (one row, always)."""
    parts = _parts(shape)
    return select(_capped_total(shape, parts), *_checks(shape, parts))


@cache
def checks(shape: Shape) -> Select[Any] | None:
    """The checks of the query's codes alone (None when it has none to check)."""
    parts = _parts(shape)
    found = _checks(shape, parts)
    return select(*found) if found else None


@cache
def candidates(shape: Shape) -> Select[Any]:
    """Every match in result order with its weekly schedule (for ``open_at``)."""
    parts = _parts(shape)
    return (
        select(
            _ENTRY.c.service_at_location_id.label("link_id"),
            _distance(shape, parts).label("distance_m"),
            _ENTRY.c.doc["schedules"].label("schedules"),
        )
        .where(*_matches(shape, parts), *_within_radius(shape, parts))
        .order_by(*_order(shape, parts))
    )


@cache
def entries(shape: Shape) -> Select[Any]:
    """The shown columns of the services at locations bound as ``links``."""
    parts = _parts(shape)
    return select(*_shown(shape, parts)).where(_ENTRY.c.service_at_location_id.in_(_LINKS))
