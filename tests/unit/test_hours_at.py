"""``domain.search.hours.HoursAt``: opening hours of many entries at one instant.

A search page, a tile and a match's candidates ask the same three questions of each entry's
compact schedules; ``HoursAt`` works each distinct schedule list out once. Its answers must be
exactly what ``opening_hours`` says of the parsed schedules (the ground truth here), whatever
the order of the questions and however the lists repeat, and a repeated list is parsed once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from referral_net.domain.search import hours as hours_module
from referral_net.domain.search.hours import HoursAt
from referral_net.domain.search_model import from_compact, to_compact
from referral_net.opening_hours import WeeklySchedule, describe_hours, is_open, is_open_24h
from referral_net.opening_hours import to_guatemala as guatemala_time

_DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
_TIMES = st.builds(time, st.integers(0, 23), st.sampled_from([0, 30, 59]))
_SCHEDULE = st.builds(
    WeeklySchedule,
    byday=st.lists(st.sampled_from(_DAYS), min_size=1, max_size=7, unique=True).map(",".join),
    opens_at=_TIMES,
    closes_at=_TIMES,
    valid_from=st.none() | st.dates(date(2026, 1, 1), date(2027, 12, 31)),
)
# A handful of distinct lists, as a directory has (office hours, around the clock, none).
_COMPACT_LISTS = st.lists(st.lists(_SCHEDULE, max_size=3).map(to_compact), min_size=1, max_size=4)
_INSTANT = st.builds(
    lambda day, minutes, tz: datetime.combine(day, time(), tz) + timedelta(minutes=minutes),
    st.dates(date(2026, 1, 1), date(2027, 12, 31)),
    st.integers(0, 24 * 60 - 1),
    st.sampled_from([UTC, timezone(timedelta(hours=-6)), timezone(timedelta(hours=2))]),
)


@settings(max_examples=150, deadline=None)
@given(
    distinct=_COMPACT_LISTS,
    picks=st.lists(st.integers(0, 3), min_size=1, max_size=12),
    at=_INSTANT,
    locale=st.sampled_from(["es", "en"]),
)
def test_answers_are_opening_hours_own(
    distinct: list[list[list[Any]]], picks: list[int], at: datetime, locale: str
) -> None:
    """Each answer, asked in any order and again, equals ``opening_hours`` on the parsed list;
    a list given as tuples (a key, a row's value) answers as the same list."""
    hours = HoursAt(at)
    today = guatemala_time(at).date()
    for pick in picks:
        compact = distinct[pick % len(distinct)]
        schedules = from_compact(compact)
        for asked in (compact, tuple(tuple(schedule) for schedule in compact)):
            assert hours.is_open(asked) == (bool(schedules) and is_open(schedules, at))
            assert hours.is_open_24h(asked) == (
                bool(schedules) and is_open_24h(schedules, on=today)
            )
            assert hours.described(asked, locale) == describe_hours(schedules, locale)


def test_a_repeated_list_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sixty entries sharing three schedule lists cost three parses, whatever is asked, and a
    later request at another instant parses none of them again."""
    parsed: list[object] = []

    def counting(compact: Any) -> list[WeeklySchedule]:
        parsed.append(compact)
        return from_compact(compact)

    monkeypatch.setattr(hours_module, "from_compact", counting)
    hours_module._parsed.cache_clear()  # parsed lists are kept for the process: start afresh
    office = to_compact(
        [WeeklySchedule(byday="MO,TU,WE,TH,FR", opens_at=time(8), closes_at=time(16))]
    )
    always = to_compact(
        [WeeklySchedule(byday=",".join(_DAYS), opens_at=time(0), closes_at=time(0))]
    )
    saturday = to_compact([WeeklySchedule(byday="SA", opens_at=time(9), closes_at=time(12))])
    # Wednesday 2026-11-25, 10:00 in Guatemala.
    hours = HoursAt(datetime(2026, 11, 25, 16, 0, tzinfo=UTC))
    answers = [
        (hours.is_open(c), hours.is_open_24h(c), hours.described(c, "es"))
        for c in [office, always, saturday] * 20
    ]
    assert len(parsed) == 3
    assert answers[:3] == [
        (True, False, ["lun–vie 08:00–16:00"]),
        (True, True, ["todos los días 24 horas"]),
        (False, False, ["sáb 09:00–12:00"]),
    ]
    assert answers[3:] == answers[:3] * 19
    # Saturday 2026-11-28, 10:00 in Guatemala: new "open now" answers, no new parse.
    later = HoursAt(datetime(2026, 11, 28, 16, 0, tzinfo=UTC))
    assert [later.is_open(c) for c in (office, always, saturday)] == [False, True, True]
    assert len(parsed) == 3


def test_described_lists_are_the_callers_own() -> None:
    """A caller that changes the list it got does not change the next answer."""
    hours = HoursAt(datetime(2026, 11, 25, 16, 0, tzinfo=UTC))
    compact = to_compact([WeeklySchedule(byday="SA", opens_at=time(9), closes_at=time(12))])
    first = hours.described(compact, "en")
    first.append("changed")
    assert hours.described(compact, "en") == describe_hours(from_compact(compact), "en")
