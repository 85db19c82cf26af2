"""The pure checks behind the 422s for out-of-range instants, dates and places."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from referral_net.opening_hours import (
    GUATEMALA_TZ,
    WeeklySchedule,
    is_open,
    is_open_24h,
    parse_time,
)
from referral_net.validation import (
    EARLIEST_INSTANT,
    LATEST_INSTANT,
    check_instant,
    check_place_in_country,
    days_before,
)


def test_the_bounds_are_inside_the_calendar_by_more_than_a_week() -> None:
    assert EARLIEST_INSTANT - timedelta(days=7, hours=6) > datetime.min.replace(tzinfo=UTC)
    assert LATEST_INSTANT + timedelta(days=7, hours=6) < datetime.max.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        datetime(9999, 12, 31, 23, 59, 59),
        datetime(1, 1, 1),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),
        datetime(9999, 12, 31, tzinfo=timezone(timedelta(hours=-12))),
    ],
)
def test_instants_at_the_ends_of_the_calendar_are_refused(value: datetime) -> None:
    for zone in (UTC, GUATEMALA_TZ):
        with pytest.raises(ValueError, match="must be between"):
            check_instant(value, naive_zone=zone)


# Monthly "last day" rules look up the month's length: December 9999 must not need year 10000.
SCHEDULES = [
    WeeklySchedule(
        freq="MONTHLY", bymonthday="-1", opens_at=parse_time("22:00"), closes_at=parse_time("06:00")
    ),
    WeeklySchedule(
        byday="MO,TU,WE,TH,FR", opens_at=parse_time("08:00"), closes_at=parse_time("16:00")
    ),
]


@given(
    st.datetimes(
        min_value=datetime.min,
        max_value=datetime.max,
        timezones=st.none() | st.timezones(),
    )
)
@example(datetime(9999, 12, 20, 12))
@example(datetime(1, 1, 10))
def test_every_accepted_instant_can_be_evaluated(value: datetime) -> None:
    try:
        check_instant(value, naive_zone=GUATEMALA_TZ)
    except ValueError:
        return
    aware = value if value.utcoffset() is not None else value.replace(tzinfo=GUATEMALA_TZ)
    is_open(SCHEDULES, aware)
    is_open_24h(SCHEDULES, on=aware.astimezone(GUATEMALA_TZ).date())


def test_days_before_the_year_one_is_an_error() -> None:
    assert days_before(date(1, 1, 11), 10) == date(1, 1, 1)
    with pytest.raises(ValueError, match="3650 days"):
        days_before(date(1, 1, 1), 3650)


@pytest.mark.parametrize(
    ("lat", "lon", "message"),
    [
        (40.4168, -3.7038, "outside Guatemala"),
        (90.0, 0.0, "outside Guatemala"),
        (0.0, 180.0, "outside Guatemala"),
        (-89.5, 14.6, "swapped"),
    ],
)
def test_a_place_abroad_is_refused_without_repeating_it(
    lat: float, lon: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        check_place_in_country(lat, lon, allow_outside_country=False)
    assert str(lat) not in str(caught.value) or lat.is_integer()
    check_place_in_country(lat, lon, allow_outside_country=True)
    check_place_in_country(15.3197, -91.4710, allow_outside_country=False)
