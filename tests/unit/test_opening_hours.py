"""Tests for referral_net.opening_hours (HSDS schedules in America/Guatemala time)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from referral_net.opening_hours import (
    GUATEMALA_TZ,
    WeeklySchedule,
    is_open,
    is_open_24h,
    parse_byday,
    parse_bymonthday,
    parse_time,
    to_guatemala,
)

# Week of 2026-11-23 (Monday) .. 2026-11-29 (Sunday).
MON = date(2026, 11, 23)
WED = date(2026, 11, 25)
THU = date(2026, 11, 26)
FRI = date(2026, 11, 27)
SAT = date(2026, 11, 28)
SUN = date(2026, 11, 29)

ALL_DAYS = "MO,TU,WE,TH,FR,SA,SU"


def gt(day: date, hour: int, minute: int = 0) -> datetime:
    """An aware datetime in Guatemala time."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=GUATEMALA_TZ)


def weekly(
    byday: str,
    opens: str,
    closes: str,
    *,
    valid_from: date | None = None,
    valid_to: date | None = None,
    dtstart: date | None = None,
    until: date | None = None,
) -> WeeklySchedule:
    """A weekly schedule from HSDS-style strings."""
    return WeeklySchedule(
        byday=byday,
        opens_at=parse_time(opens),
        closes_at=parse_time(closes),
        valid_from=valid_from,
        valid_to=valid_to,
        dtstart=dtstart,
        until=until,
    )


OFFICE = weekly("MO,TU,WE,TH,FR", "08:00", "16:30")
FRIDAY_NIGHTS = weekly("FR", "18:00", "06:00")


# --- parsing ------------------------------------------------------------------------------------


def test_parse_byday_maps_codes_to_weekday_numbers() -> None:
    assert parse_byday("MO,TU,WE") == frozenset({0, 1, 2})
    assert parse_byday("su, sa") == frozenset({5, 6})
    assert parse_byday(ALL_DAYS) == frozenset(range(7))


@pytest.mark.parametrize("text", ["", " ", "MO,,TU", "XX", "MON", "1MO", "LU", "MO;TU"])
def test_parse_byday_rejects_bad_codes(text: str) -> None:
    with pytest.raises(ValueError, match="byday"):
        parse_byday(text)


def test_schedule_with_bad_byday_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown day code"):
        WeeklySchedule(byday="MO,XY", opens_at=time(8), closes_at=time(12))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("08:00", time(8)),
        ("16:30", time(16, 30)),
        ("00:00", time(0)),
        ("23:59:59", time(23, 59, 59)),
    ],
)
def test_parse_time_accepts_hh_mm_and_hh_mm_ss(text: str, expected: time) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["24:00", "8:00", "08:60", "08", "08:00+01:00", "noon", ""])
def test_parse_time_rejects_other_forms(text: str) -> None:
    with pytest.raises(ValueError, match="not a time of day"):
        parse_time(text)


def test_parse_bymonthday() -> None:
    assert parse_bymonthday("1,15,-1") == frozenset({1, 15, -1})
    for bad in ("0", "32", "x", ""):
        with pytest.raises(ValueError, match="bymonthday"):
            parse_bymonthday(bad)


def test_unsupported_freq_and_bad_interval_are_rejected() -> None:
    with pytest.raises(ValueError, match="unsupported freq"):
        WeeklySchedule(freq="HOURLY", byday="MO", opens_at=time(8), closes_at=time(9))
    with pytest.raises(ValueError, match="interval"):
        WeeklySchedule(interval=0, byday="MO", opens_at=time(8), closes_at=time(9))


def test_aware_opening_time_is_rejected() -> None:
    with pytest.raises(ValueError, match="local time"):
        WeeklySchedule(byday="MO", opens_at=time(8, tzinfo=UTC), closes_at=time(9))


def test_freq_is_normalised_to_upper_case() -> None:
    assert WeeklySchedule(freq="weekly", byday="MO").freq == "WEEKLY"


# --- ordinary hours -----------------------------------------------------------------------------


def test_office_hours_half_open_interval() -> None:
    assert not is_open([OFFICE], gt(MON, 7, 59))
    assert is_open([OFFICE], gt(MON, 8, 0))
    assert is_open([OFFICE], gt(FRI, 16, 29))
    assert not is_open([OFFICE], gt(FRI, 16, 30))  # closes_at itself is closed
    assert not is_open([OFFICE], gt(SAT, 10))


def test_no_schedules_is_never_open() -> None:
    assert not is_open([], gt(MON, 10))
    assert not is_open_24h([])


def test_schedule_without_hours_never_claims_open() -> None:
    assert not is_open([WeeklySchedule(byday=ALL_DAYS)], gt(MON, 10))
    assert not is_open([WeeklySchedule(byday=ALL_DAYS, opens_at=time(8))], gt(MON, 10))


def test_several_schedules_combine() -> None:
    saturday_morning = weekly("SA", "08:00", "12:00")
    assert is_open([OFFICE, saturday_morning], gt(SAT, 9))
    assert is_open([OFFICE, saturday_morning], gt(date(2026, 11, 24), 9))


# --- across midnight ----------------------------------------------------------------------------


def test_friday_night_period_is_open_early_saturday() -> None:
    assert is_open([FRIDAY_NIGHTS], gt(SAT, 2))
    assert is_open([FRIDAY_NIGHTS], gt(FRI, 18))
    assert is_open([FRIDAY_NIGHTS], gt(FRI, 23, 59))
    assert is_open([FRIDAY_NIGHTS], gt(SAT, 0))


def test_friday_night_period_is_closed_saturday_morning() -> None:
    assert not is_open([FRIDAY_NIGHTS], gt(SAT, 6))
    assert not is_open([FRIDAY_NIGHTS], gt(SAT, 7))
    assert not is_open([FRIDAY_NIGHTS], gt(FRI, 17, 59))


def test_early_hours_belong_to_the_previous_listed_day() -> None:
    # Friday 02:00 would need Thursday listed; Thursday 02:00 would need Wednesday listed.
    assert not is_open([FRIDAY_NIGHTS], gt(FRI, 2))
    assert not is_open([FRIDAY_NIGHTS], gt(THU, 2))
    wednesday_nights = weekly("WE", "18:00", "06:00")
    assert is_open([wednesday_nights], gt(THU, 2))
    assert not is_open([wednesday_nights], gt(WED, 2))


def test_every_night_from_sample_network() -> None:
    nights = weekly(ALL_DAYS, "18:00", "06:00")
    assert is_open([nights], gt(MON, 3))
    assert not is_open([nights], gt(MON, 12))
    assert not is_open_24h([nights])


def test_equal_times_other_than_midnight_give_24_hours_from_opening() -> None:
    schedule = weekly("MO", "08:00", "08:00")
    assert is_open([schedule], gt(MON, 8))
    assert is_open([schedule], gt(MON + timedelta(days=1), 7, 59))
    assert not is_open([schedule], gt(MON + timedelta(days=1), 8))


# --- 24-hour services ---------------------------------------------------------------------------


def test_all_days_midnight_to_midnight_is_24h() -> None:
    always = weekly(ALL_DAYS, "00:00", "00:00")
    assert is_open_24h([always])
    for hour in range(24):
        assert is_open([always], gt(SUN, hour, 30))


def test_one_missing_day_is_not_24h() -> None:
    assert not is_open_24h([weekly("MO,TU,WE,TH,FR,SA", "00:00", "00:00")])
    assert not is_open_24h([OFFICE])


def test_closing_at_2359_means_midnight() -> None:
    assert is_open_24h([weekly(ALL_DAYS, "00:00", "23:59")])
    assert is_open([weekly("MO", "08:00", "23:59")], gt(MON, 23, 59))
    assert not is_open([weekly("MO", "08:00", "23:59")], gt(MON + timedelta(days=1), 0))


def test_day_and_night_shifts_together_are_24h() -> None:
    day_shift = weekly(ALL_DAYS, "06:00", "18:00")
    night_shift = weekly(ALL_DAYS, "18:00", "06:00")
    assert is_open_24h([day_shift, night_shift])
    assert not is_open_24h([day_shift])


def test_daily_freq_every_day() -> None:
    schedule = WeeklySchedule(freq="DAILY", opens_at=time(0), closes_at=time(0))
    assert is_open_24h([schedule])


def test_bounded_schedule_is_not_timelessly_24h_but_is_for_a_week_inside_bounds() -> None:
    bounded = weekly(ALL_DAYS, "00:00", "00:00", valid_from=date(2026, 1, 1))
    assert not is_open_24h([bounded])
    assert is_open_24h([bounded], on=MON)
    assert not is_open_24h([bounded], on=date(2025, 12, 29))


def test_24h_for_a_week_ending_mid_week_is_false() -> None:
    bounded = weekly(ALL_DAYS, "00:00", "00:00", valid_to=THU)
    assert not is_open_24h([bounded], on=MON)
    assert is_open_24h([bounded], on=THU - timedelta(days=6))


# --- validity bounds ----------------------------------------------------------------------------


def test_valid_from_and_valid_to_are_inclusive() -> None:
    schedule = weekly(ALL_DAYS, "08:00", "17:00", valid_from=WED, valid_to=FRI)
    assert not is_open([schedule], gt(date(2026, 11, 24), 10))
    assert is_open([schedule], gt(WED, 10))
    assert is_open([schedule], gt(FRI, 10))
    assert not is_open([schedule], gt(SAT, 10))


def test_bounds_apply_to_the_start_day_of_an_overnight_period() -> None:
    schedule = weekly(ALL_DAYS, "18:00", "06:00", valid_to=FRI)
    assert is_open([schedule], gt(SAT, 2))  # started Friday, the last valid day
    assert not is_open([schedule], gt(SAT, 20))
    late_start = weekly(ALL_DAYS, "18:00", "06:00", valid_from=FRI)
    assert not is_open([late_start], gt(FRI, 2))  # would have started Thursday


def test_until_and_dtstart_bound_the_recurrence() -> None:
    schedule = weekly(ALL_DAYS, "08:00", "17:00", dtstart=WED, until=THU)
    assert not is_open([schedule], gt(date(2026, 11, 24), 10))
    assert is_open([schedule], gt(THU, 10))
    assert not is_open([schedule], gt(FRI, 10))


# --- recurrence ---------------------------------------------------------------------------------


def test_every_other_week_anchored_on_dtstart() -> None:
    schedule = WeeklySchedule(
        interval=2, byday="TU", opens_at=time(9), closes_at=time(13), dtstart=date(2026, 11, 10)
    )
    assert is_open([schedule], gt(date(2026, 11, 10), 10))
    assert not is_open([schedule], gt(date(2026, 11, 17), 10))
    assert is_open([schedule], gt(date(2026, 11, 24), 10))


def test_interval_without_dtstart_never_claims_open() -> None:
    schedule = WeeklySchedule(interval=2, byday="TU", opens_at=time(9), closes_at=time(13))
    assert not is_open([schedule], gt(date(2026, 11, 24), 10))


def test_weekly_without_byday_uses_dtstart_weekday() -> None:
    schedule = WeeklySchedule(opens_at=time(9), closes_at=time(13), dtstart=WED)
    assert is_open([schedule], gt(WED + timedelta(days=7), 10))
    assert not is_open([schedule], gt(THU, 10))
    assert not is_open([WeeklySchedule(opens_at=time(9), closes_at=time(13))], gt(WED, 10))


def test_monthly_bymonthday_including_last_day() -> None:
    schedule = WeeklySchedule(
        freq="MONTHLY", bymonthday="1,-1", opens_at=time(9), closes_at=time(12)
    )
    assert is_open([schedule], gt(date(2026, 12, 1), 10))
    assert is_open([schedule], gt(date(2026, 11, 30), 10))
    assert is_open([schedule], gt(date(2026, 2, 28), 10))
    assert not is_open([schedule], gt(date(2026, 11, 29), 10))


def test_monthly_every_third_month_from_dtstart() -> None:
    schedule = WeeklySchedule(
        freq="MONTHLY",
        interval=3,
        bymonthday="15",
        opens_at=time(9),
        closes_at=time(12),
        dtstart=date(2026, 1, 15),
    )
    assert is_open([schedule], gt(date(2026, 4, 15), 10))
    assert not is_open([schedule], gt(date(2026, 5, 15), 10))


def test_monthly_with_byday_and_bymonthday_needs_both() -> None:
    # "Friday the 13th": both parts of the rule must hold.
    schedule = WeeklySchedule(
        freq="MONTHLY", byday="FR", bymonthday="13", opens_at=time(9), closes_at=time(12)
    )
    assert is_open([schedule], gt(date(2026, 11, 13), 10))
    assert not is_open([schedule], gt(date(2026, 10, 13), 10))


# --- time zones ---------------------------------------------------------------------------------


def test_utc_input_is_converted_to_guatemala_time() -> None:
    at = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)  # Friday 21:00 in Guatemala
    assert to_guatemala(at) == datetime(2026, 11, 27, 21, 0)
    assert is_open([FRIDAY_NIGHTS], at)
    assert not is_open([weekly("SA", "00:00", "00:00")], at)


def test_other_offsets_are_converted() -> None:
    madrid_winter = timezone(timedelta(hours=1))
    at = datetime(2026, 11, 27, 16, 0, tzinfo=madrid_winter)  # 09:00 in Guatemala
    assert is_open([OFFICE], at)
    assert not is_open([OFFICE], at - timedelta(hours=2))


def test_naive_datetime_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open([OFFICE], datetime(2026, 11, 27, 10, 0))


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
    )
)
def test_24h_schedule_is_open_at_every_instant(at: datetime) -> None:
    always = weekly(ALL_DAYS, "00:00", "00:00")
    nights_and_days = [weekly(ALL_DAYS, "18:00", "06:00"), weekly(ALL_DAYS, "06:00", "18:00")]
    assert is_open([always], at)
    assert is_open(nights_and_days, at)


@settings(max_examples=200, deadline=None)
@given(
    day=st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)),
    minute=st.integers(min_value=0, max_value=24 * 60 - 1),
    opens=st.integers(min_value=0, max_value=23),
    closes=st.integers(min_value=0, max_value=23),
    listed=st.sets(st.integers(min_value=0, max_value=6)),
)
def test_is_open_matches_a_minute_by_minute_restatement(
    day: date, minute: int, opens: int, closes: int, listed: set[int]
) -> None:
    codes = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
    byday = ",".join(codes[index] for index in sorted(listed)) or None
    schedule = WeeklySchedule(byday=byday, opens_at=time(opens), closes_at=time(closes))
    at = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=GUATEMALA_TZ)
    hour = minute // 60
    if opens < closes:
        expected = day.weekday() in listed and opens <= hour < closes
    else:
        yesterday = (day.weekday() - 1) % 7
        expected = (day.weekday() in listed and hour >= opens) or (
            yesterday in listed and hour < closes
        )
    assert is_open([schedule], at) == expected
