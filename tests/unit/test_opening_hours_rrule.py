"""opening_hours against dateutil's own rrule, and the RFC 5545 parts HSDS adds (issue 14).

The oracle builds an RFC 5545 ``DTSTART``/``RRULE`` text from a schedule's HSDS fields, hands it to
``dateutil.rrule.rrulestr`` and walks the occurrences; the hours are the module's documented rules,
restated here. It runs on the same days 8,000 years later (20 Gregorian cycles of 400 years: the
calendar of 9990 is the calendar of 1990, weekdays, leap years and week numbers alike), because
rrulestr walks a rule that never matches again until the year 9999: near it, that walk is short.
"""

from __future__ import annotations

import calendar
import dataclasses
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from dateutil.rrule import rrulestr
from hypothesis import example, given, settings
from hypothesis import strategies as st

from referral_net.opening_hours import (
    DAY_CODES,
    GUATEMALA_TZ,
    WeeklySchedule,
    is_open,
    is_open_24h,
    parse_byday_rule,
    parse_byweekno,
    parse_byyearday,
    parse_wkst,
)

ORACLE_YEARS = 8000
FIRST_DAY = date(1988, 1, 1)
LAST_DAY = date(1998, 12, 31)
WINDOW_DAYS = 45


def later(day: date) -> date:
    """The same calendar day in the oracle's years."""
    return day.replace(year=day.year + ORACLE_YEARS)


def test_the_oracle_years_have_the_same_calendar() -> None:
    # Every day the oracle reads: from the anchor a year before the first window to the last.
    day = date(FIRST_DAY.year - 1, 1, 1)
    while day <= date(LAST_DAY.year + 1, 12, 31):
        assert later(day).isocalendar()[1:] == day.isocalendar()[1:]
        assert later(day).timetuple().tm_yday == day.timetuple().tm_yday
        day += timedelta(days=1)


# --- the oracle ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """A schedule's HSDS fields, as the strategies draw them."""

    freq: str
    interval: int = 1
    byday: str | None = None
    bymonthday: str | None = None
    byweekno: str | None = None
    byyearday: str | None = None
    wkst: str | None = None
    count: int | None = None
    dtstart: date | None = None
    until: date | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    opens_at: time | None = None
    closes_at: time | None = None

    def schedule(self) -> WeeklySchedule:
        return WeeklySchedule(**dataclasses.asdict(self))


def rrule_text(spec: Spec, anchor: date) -> str:
    """The RFC 5545 text of the schedule's rule, in the oracle's years, starting on ``anchor``."""
    parts = [f"FREQ={spec.freq}", f"INTERVAL={spec.interval}"]
    for name, value in (
        ("BYDAY", spec.byday),  # HSDS writes BYDAY, BYMONTHDAY... lists as RFC 5545 does
        ("BYMONTHDAY", spec.bymonthday),
        ("BYWEEKNO", spec.byweekno),
        ("BYYEARDAY", spec.byyearday),
        ("WKST", spec.wkst),
    ):
        if value is not None:
            parts.append(f"{name}={value}")
    if spec.count is not None:
        parts.append(f"COUNT={spec.count}")
    if spec.until is not None:
        parts.append(f"UNTIL={later(spec.until):%Y%m%d}")
    return f"DTSTART;VALUE=DATE:{later(anchor):%Y%m%d}\nRRULE:{';'.join(parts)}"


def needs_dtstart(spec: Spec) -> bool:
    """The module's rule: no dtstart to count from, or to take the days from, means no days."""
    takes_days_from_dtstart = spec.freq != "DAILY" and not any(
        (spec.byday, spec.bymonthday, spec.byweekno, spec.byyearday)
    )
    return spec.interval > 1 or spec.count is not None or takes_days_from_dtstart


def rrule_days(spec: Spec, first: date, last: date) -> set[date]:
    """The days in ``first`` .. ``last`` that rrulestr lists for the schedule's rule."""
    if spec.dtstart is None and needs_dtstart(spec):
        return set()
    # Without dtstart the rule has no start: any anchor a year before the window reads the same.
    anchor = spec.dtstart or date(first.year - 1, 1, 1)
    found = set()
    try:
        for occurrence in rrulestr(rrule_text(spec, anchor)):
            day = occurrence.date().replace(year=occurrence.year - ORACLE_YEARS)
            if day > last:
                break
            if day >= first:
                found.add(day)
    except ValueError:
        pass  # rrule stepped past 31 December 9999, years after the window
    return found


def expected_occurs(spec: Spec, listed: set[date], day: date) -> bool:
    """A period starts on ``day``: it is listed, within valid_from/valid_to, and has hours."""
    return (
        spec.opens_at is not None
        and spec.closes_at is not None
        and day in listed
        and (spec.valid_from is None or spec.valid_from <= day)
        and (spec.valid_to is None or day <= spec.valid_to)
    )


def expected_open(spec: Spec, listed: set[date], local: datetime) -> bool:
    """The documented hours: overnight when closes <= opens, 23:59 as midnight, [start, end)."""
    for day in (local.date() - timedelta(days=1), local.date()):
        if not expected_occurs(spec, listed, day):
            continue
        assert spec.opens_at is not None
        assert spec.closes_at is not None
        start = datetime.combine(day, spec.opens_at)
        if (spec.closes_at.hour, spec.closes_at.minute) == (23, 59):
            end = datetime.combine(day + timedelta(days=1), time(0))
        elif spec.closes_at > spec.opens_at:
            end = datetime.combine(day, spec.closes_at)
        else:
            end = datetime.combine(day + timedelta(days=1), spec.closes_at)
        if start <= local < end:
            return True
    return False


# --- strategies ---------------------------------------------------------------------------------

days_in_range = st.dates(min_value=FIRST_DAY, max_value=LAST_DAY)
# New Year weeks are where week numbers and year days turn over.
new_year_days = st.builds(
    lambda year, offset: date(year, 1, 1) + timedelta(days=offset),
    st.integers(min_value=FIRST_DAY.year + 1, max_value=LAST_DAY.year),
    st.integers(min_value=-WINDOW_DAYS, max_value=7),
)
window_starts = st.one_of(days_in_range, new_year_days)
times = st.sampled_from(
    [time(0), time(6), time(8), time(8, 30), time(12), time(18), time(23, 59), time(23, 59, 30)]
)


def number_list(values: list[int], *, most: int = 3) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(values), min_size=1, max_size=most, unique=True).map(
        lambda items: ",".join(str(item) for item in items)
    )


def byday_list(freq: str, *, ordinals: bool) -> st.SearchStrategy[str]:
    limit = 5 if freq == "MONTHLY" else 53
    ordinal_values = [n for n in (1, 2, 3, 4, 5, 10, 20, 52, 53) if n <= limit]
    allowed = ordinals and freq in {"MONTHLY", "YEARLY"}
    ordinal = (
        st.none() | st.sampled_from(ordinal_values + [-n for n in ordinal_values])
        if allowed
        else st.none()
    )
    item = st.tuples(ordinal, st.sampled_from(DAY_CODES)).map(
        lambda pair: f"{'' if pair[0] is None else pair[0]}{pair[1]}"
    )
    return st.lists(item, min_size=1, max_size=4, unique=True).map(",".join)


MONTH_DAYS = [*range(1, 32), *range(-31, 0)]
WEEK_NUMBERS = [1, 2, 10, 26, 51, 52, 53, -1, -2, -52, -53]
YEAR_DAYS = [1, 2, 59, 60, 100, 200, 365, 366, -1, -2, -365, -366]


def sometimes(strategy: st.SearchStrategy[Any], *, in_ten: int) -> st.SearchStrategy[Any]:
    """``strategy`` about ``in_ten`` times in ten, else None: a rule with every part rarely runs."""
    return st.integers(min_value=1, max_value=10).flatmap(
        lambda roll: strategy if roll <= in_ten else st.none()
    )


def near(first: date, before: int, after: int) -> st.SearchStrategy[date]:
    """A day from ``before`` days before ``first`` to ``after`` days after it."""
    return st.integers(min_value=-before, max_value=after).map(
        lambda offset: first + timedelta(days=offset)
    )


@st.composite
def cases(draw: st.DrawFn, *, new_fields: bool) -> tuple[Spec, date]:
    """A window's first day and a schedule over today's fields or (``new_fields``) all of them.

    The dates fall around the window, so that most rules have days in it to compare.
    """
    first = draw(window_starts)
    freqs = ["DAILY", "WEEKLY", "MONTHLY", *(["YEARLY"] if new_fields else [])]
    freq = draw(st.sampled_from(freqs))
    spec = Spec(
        freq=freq,
        interval=draw(st.sampled_from([1, 1, 1, 2, 3, 4])),
        byday=draw(sometimes(byday_list(freq, ordinals=new_fields), in_ten=6)),
        bymonthday=draw(sometimes(number_list(MONTH_DAYS), in_ten=3)),
        dtstart=draw(sometimes(near(first, 900, 20), in_ten=6)),
        valid_from=draw(sometimes(near(first, 400, 30), in_ten=3)),
        valid_to=draw(sometimes(near(first, 10, 400), in_ten=3)),
        # Now and then no opening time: such a schedule is never open.
        opens_at=draw(sometimes(times, in_ten=9)),
        closes_at=draw(times),
    )
    if new_fields:
        spec = dataclasses.replace(
            spec,
            byweekno=draw(sometimes(number_list(WEEK_NUMBERS, most=2), in_ten=2)),
            byyearday=draw(sometimes(number_list(YEAR_DAYS, most=2), in_ten=2)),
            wkst=draw(sometimes(st.sampled_from(DAY_CODES), in_ten=5)),
        )
    # COUNT and UNTIL exclude each other (RFC 5545).
    if new_fields and draw(st.booleans()):
        counted = dataclasses.replace(spec, count=draw(st.integers(min_value=1, max_value=60)))
        return counted, first
    return dataclasses.replace(spec, until=draw(sometimes(near(first, 10, 300), in_ten=3))), first


def check_against_rrule(spec: Spec, first: date, minutes: list[int]) -> None:
    last = first + timedelta(days=WINDOW_DAYS)
    listed = rrule_days(spec, first - timedelta(days=1), last)
    schedule = spec.schedule()
    # The edges of each day and of the schedule's hours, plus instants drawn at random.
    edges = [time(0), time(23, 59), time(23, 59, 59)]
    for moment in (spec.opens_at, spec.closes_at):
        if moment is not None:
            edges.append(moment)
            edges.append((datetime.combine(first, moment) - timedelta(seconds=1)).time())
    instants = [
        datetime.combine(first, time(), tzinfo=GUATEMALA_TZ) + timedelta(minutes=minute)
        for minute in minutes
    ]
    day = first
    while day <= last:
        assert schedule.occurs_on(day) == expected_occurs(spec, listed, day), day
        instants.extend(datetime.combine(day, edge, tzinfo=GUATEMALA_TZ) for edge in edges)
        day += timedelta(days=1)
    for at in instants:
        local = at.astimezone(UTC).astimezone(GUATEMALA_TZ).replace(tzinfo=None)
        assert is_open([schedule], at) == expected_open(spec, listed, local), at


instants = st.lists(
    st.integers(min_value=0, max_value=WINDOW_DAYS * 24 * 60 - 1), min_size=1, max_size=12
)


@settings(max_examples=300, deadline=None)
@given(case=cases(new_fields=False), minutes=instants)
def test_todays_fields_evaluate_as_rrule_does(case: tuple[Spec, date], minutes: list[int]) -> None:
    check_against_rrule(*case, minutes)


@settings(max_examples=400, deadline=None)
@given(case=cases(new_fields=True), minutes=instants)
def test_every_recurrence_field_evaluates_as_rrule_does(
    case: tuple[Spec, date], minutes: list[int]
) -> None:
    check_against_rrule(*case, minutes)


# 1 January 1994 is a Saturday in week 52 of 1993; on 2 January 1998, a Friday, a rule starts.
@example(
    freq="WEEKLY",
    byweekno="52",
    byday=None,
    wkst=None,
    interval=1,
    year=1994,
    dtstart_offset=None,
    first_offset=-3,
)
@example(
    freq="WEEKLY",
    byweekno="53",
    byday=None,
    wkst="SA",
    interval=1,
    year=1998,
    dtstart_offset=1,
    first_offset=0,
)
@settings(max_examples=300, deadline=None)
@given(
    freq=st.sampled_from(["DAILY", "WEEKLY"]),
    byweekno=number_list([1, 2, 52, 53, -1, -2], most=2),
    byday=st.none() | byday_list("WEEKLY", ordinals=False),
    wkst=st.none() | st.sampled_from(DAY_CODES),
    interval=st.sampled_from([1, 2]),
    year=st.integers(min_value=FIRST_DAY.year + 1, max_value=LAST_DAY.year),
    dtstart_offset=st.none() | st.integers(min_value=-7, max_value=6),
    first_offset=st.integers(min_value=-WINDOW_DAYS + 7, max_value=7),
)
def test_week_numbers_across_new_year_evaluate_as_rrule_does(
    freq: str,
    byweekno: str,
    byday: str | None,
    wkst: str | None,
    interval: int,
    year: int,
    dtstart_offset: int | None,
    first_offset: int,
) -> None:
    # HSDS pairs byweekno with WEEKLY. rrule reads a week that spans New Year with the old year's
    # week numbers, unless the rule starts (dtstart) within that week, in the new year.
    new_year = date(year, 1, 1)
    spec = Spec(
        freq=freq,
        interval=interval,
        byweekno=byweekno,
        byday=byday,
        wkst=wkst,
        dtstart=None if dtstart_offset is None else new_year + timedelta(days=dtstart_offset),
        opens_at=time(8),
        closes_at=time(8),
    )
    check_against_rrule(spec, new_year + timedelta(days=first_offset), [0])


# --- RFC 5545's own examples (section 3.8.5.3), at 00:00-23:59 --------------------------------


def listed_days(schedule: WeeklySchedule, first: date, last: date) -> list[date]:
    days = []
    day = first
    while day <= last:
        if schedule.occurs_on(day):
            days.append(day)
        day += timedelta(days=1)
    return days


def all_day(**fields: Any) -> WeeklySchedule:
    return WeeklySchedule(opens_at=time(0), closes_at=time(23, 59), **fields)


@pytest.mark.parametrize(
    ("wkst", "expected"),
    [("MO", [5, 10, 19, 24]), ("SU", [5, 17, 19, 31])],
)
def test_rfc_wkst_example(wkst: str, expected: list[int]) -> None:
    # "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO" from 1997-08-05, and with WKST=SU.
    schedule = all_day(
        freq="WEEKLY", interval=2, count=4, byday="TU,SU", wkst=wkst, dtstart=date(1997, 8, 5)
    )
    assert listed_days(schedule, date(1997, 8, 1), date(1997, 12, 31)) == [
        date(1997, 8, day) for day in expected
    ]


def test_rfc_first_friday_for_ten_months() -> None:
    schedule = all_day(freq="MONTHLY", count=10, byday="1FR", dtstart=date(1997, 9, 5))
    assert listed_days(schedule, date(1997, 9, 1), date(1999, 1, 1)) == [
        date(1997, 9, 5),
        date(1997, 10, 3),
        date(1997, 11, 7),
        date(1997, 12, 5),
        date(1998, 1, 2),
        date(1998, 2, 6),
        date(1998, 3, 6),
        date(1998, 4, 3),
        date(1998, 5, 1),
        date(1998, 6, 5),
    ]


def test_rfc_first_and_last_sunday_every_other_month() -> None:
    schedule = all_day(
        freq="MONTHLY", interval=2, count=10, byday="1SU,-1SU", dtstart=date(1997, 9, 7)
    )
    assert listed_days(schedule, date(1997, 9, 1), date(1999, 1, 1)) == [
        date(1997, 9, 7),
        date(1997, 9, 28),
        date(1997, 11, 2),
        date(1997, 11, 30),
        date(1998, 1, 4),
        date(1998, 1, 25),
        date(1998, 3, 1),
        date(1998, 3, 29),
        date(1998, 5, 3),
        date(1998, 5, 31),
    ]


def test_rfc_every_third_year_by_year_day() -> None:
    schedule = all_day(
        freq="YEARLY", interval=3, count=10, byyearday="1,100,200", dtstart=date(1997, 1, 1)
    )
    assert listed_days(schedule, date(1997, 1, 1), date(2007, 12, 31)) == [
        date(1997, 1, 1),
        date(1997, 4, 10),
        date(1997, 7, 19),
        date(2000, 1, 1),
        date(2000, 4, 9),
        date(2000, 7, 18),
        date(2003, 1, 1),
        date(2003, 4, 10),
        date(2003, 7, 19),
        date(2006, 1, 1),
    ]


def test_rfc_monday_of_week_twenty() -> None:
    schedule = all_day(freq="YEARLY", byweekno="20", byday="MO", dtstart=date(1997, 5, 12))
    assert listed_days(schedule, date(1997, 1, 1), date(1999, 12, 31)) == [
        date(1997, 5, 12),
        date(1998, 5, 11),
        date(1999, 5, 17),
    ]


# --- the new fields, against the calendar -------------------------------------------------------


def test_count_ends_the_schedule_after_that_many_occurrences() -> None:
    tuesdays = all_day(byday="TU", count=3, dtstart=date(2026, 11, 3))
    assert listed_days(tuesdays, date(2026, 10, 1), date(2027, 1, 31)) == [
        date(2026, 11, 3),
        date(2026, 11, 10),
        date(2026, 11, 17),
    ]
    at = datetime(2026, 11, 24, 10, tzinfo=GUATEMALA_TZ)
    assert not is_open([tuesdays], at)
    assert is_open([tuesdays], at - timedelta(days=7))


def test_count_counts_from_dtstart_not_from_valid_from() -> None:
    # valid_from hides the first two occurrences; it does not move the count.
    schedule = all_day(byday="TU", count=3, dtstart=date(2026, 11, 3), valid_from=date(2026, 11, 9))
    assert listed_days(schedule, date(2026, 10, 1), date(2027, 1, 31)) == [
        date(2026, 11, 10),
        date(2026, 11, 17),
    ]


def test_count_or_interval_without_dtstart_is_never_open() -> None:
    for schedule in (
        all_day(byday="MO,TU,WE,TH,FR,SA,SU", count=100),
        all_day(freq="MONTHLY", interval=2, bymonthday="1"),
        all_day(freq="YEARLY"),
        all_day(freq="MONTHLY"),
    ):
        assert listed_days(schedule, date(2026, 1, 1), date(2026, 12, 31)) == []


def test_byweekno_follows_iso_week_numbers() -> None:
    schedule = all_day(byweekno="1,-1", byday="MO,TU,WE,TH,FR,SA,SU")
    day = date(2024, 12, 1)
    while day <= date(2027, 1, 31):
        iso_year, week, _ = day.isocalendar()
        last_week = date(iso_year, 12, 28).isocalendar()[1]  # 28 December is in the last week
        assert schedule.occurs_on(day) == (week in {1, last_week}), day
        day += timedelta(days=1)


def test_byyearday_counts_from_both_ends_of_the_year() -> None:
    schedule = all_day(freq="YEARLY", byyearday="1,100,-1")
    for year in (2026, 2028):
        length = 366 if calendar.isleap(year) else 365
        days = listed_days(schedule, date(year, 1, 1), date(year, 12, 31))
        assert [day.timetuple().tm_yday for day in days] == [1, 100, length]


def test_ordinals_pick_the_first_monday_and_last_friday() -> None:
    schedule = all_day(freq="MONTHLY", byday="1MO,-1FR")
    for month in range(1, 13):
        weeks = calendar.monthcalendar(2026, month)
        mondays = [week[calendar.MONDAY] for week in weeks if week[calendar.MONDAY]]
        fridays = [week[calendar.FRIDAY] for week in weeks if week[calendar.FRIDAY]]
        last = calendar.monthrange(2026, month)[1]
        days = listed_days(schedule, date(2026, month, 1), date(2026, month, last))
        assert days == sorted({date(2026, month, mondays[0]), date(2026, month, fridays[-1])})


def test_wkst_moves_the_weeks_an_interval_counts() -> None:
    # Every other week from Wednesday 2026-11-04, on Mondays. With weeks starting on Monday the
    # next Monday (9th) is in the skipped week; with weeks starting on Wednesday it is not.
    monday_weeks = all_day(interval=2, byday="MO", dtstart=date(2026, 11, 4))
    wednesday_weeks = all_day(interval=2, byday="MO", wkst="WE", dtstart=date(2026, 11, 4))
    first, last = date(2026, 11, 1), date(2026, 11, 30)
    assert listed_days(monday_weeks, first, last) == [date(2026, 11, 16), date(2026, 11, 30)]
    assert listed_days(wednesday_weeks, first, last) == [date(2026, 11, 9), date(2026, 11, 23)]


def test_yearly_without_parts_repeats_on_dtstart_date() -> None:
    schedule = all_day(freq="YEARLY", dtstart=date(2024, 9, 15))
    assert listed_days(schedule, date(2024, 1, 1), date(2026, 12, 31)) == [
        date(2024, 9, 15),
        date(2025, 9, 15),
        date(2026, 9, 15),
    ]


def test_new_fields_keep_a_schedule_from_counting_as_24h_every_week() -> None:
    always: dict[str, Any] = {"byday": "MO,TU,WE,TH,FR,SA,SU", "opens_at": time(0)}
    always["closes_at"] = time(0)
    counted = WeeklySchedule(**always, dtstart=date(2024, 1, 1), count=400)
    assert is_open_24h([WeeklySchedule(**always)])
    assert not is_open_24h([WeeklySchedule(**always, byweekno="1")])
    assert not is_open_24h([counted])
    assert is_open_24h([counted], on=date(2024, 6, 3))
    assert not is_open_24h([counted], on=date(2025, 1, 29))  # the 400th day is 2025-02-03


# --- malformed values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"byday": "1MO"}, "ordinals"),
        ({"freq": "DAILY", "byday": "-1FR"}, "ordinals"),
        ({"freq": "MONTHLY", "byday": "0MO"}, "ordinal out of range"),
        ({"freq": "MONTHLY", "byday": "54MO"}, "ordinal out of range"),
        ({"freq": "MONTHLY", "byday": "1XX"}, "unknown day code"),
        ({"byday": "MO", "byweekno": "0"}, "byweekno"),
        ({"byday": "MO", "byweekno": "54"}, "byweekno"),
        ({"freq": "YEARLY", "byyearday": "367"}, "byyearday"),
        ({"freq": "YEARLY", "byyearday": "x"}, "byyearday"),
        ({"byday": "MO", "wkst": "LU"}, "wkst"),
        ({"byday": "MO", "count": 0}, "count"),
        ({"byday": "MO", "count": 3, "until": date(2026, 1, 1)}, "count and until"),
        ({"freq": "SECONDLY", "byday": "MO"}, "unsupported freq"),
    ],
)
def test_malformed_recurrence_is_rejected(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WeeklySchedule(**fields)


def test_parsers_read_hsds_lists() -> None:
    assert parse_byday_rule("1MO,-1fr, TU") == ((0, 1), (1, None), (4, -1))
    assert parse_byweekno("1,-1") == frozenset({1, -1})
    assert parse_byyearday("1,100,-1") == frozenset({1, 100, -1})
    assert parse_wkst("su") == 6


def test_wkst_is_normalised_and_the_schedule_compares_by_its_fields() -> None:
    schedule = WeeklySchedule(
        byday="MO", wkst=" su ", byweekno="1", count=2, dtstart=date(2026, 1, 5)
    )
    assert schedule.wkst == "SU"
    assert schedule == WeeklySchedule(
        byday="MO", wkst="SU", byweekno="1", count=2, dtstart=date(2026, 1, 5)
    )


# --- the search model's compact copy -----------------------------------------------------------


def test_compact_schedules_keep_the_new_fields_and_read_entries_written_before_them() -> None:
    from referral_net.domain import search_model

    counted = WeeklySchedule(
        freq="MONTHLY",
        byday="1MO,-1FR",
        byweekno="1,-1",
        byyearday="1,-1",
        wkst="SU",
        count=12,
        dtstart=date(2026, 1, 1),
        opens_at=time(8),
        closes_at=time(12),
    )
    assert search_model.from_compact(search_model.to_compact([counted])) == [counted]
    # An entry from before count, wkst, byweekno and byyearday: ten fields.
    written_before = [
        ["WEEKLY", 2, "MO,FR", None, "08:00:00", "16:30:00", None, None, "2026-01-05", None]
    ]
    assert search_model.from_compact(written_before) == [
        WeeklySchedule(
            interval=2,
            byday="MO,FR",
            opens_at=time(8),
            closes_at=time(16, 30),
            dtstart=date(2026, 1, 5),
        )
    ]
    with pytest.raises(ValueError, match="zip"):
        search_model.from_compact([[*search_model.to_compact([counted])[0], "unknown"]])
