"""Opening hours as short text for maps and lists (``opening_hours.describe_hours``)."""

from __future__ import annotations

from datetime import date, time

import pytest

from referral_net.opening_hours import WeeklySchedule, describe_hours, describe_schedule


@pytest.mark.parametrize(
    ("schedule", "es", "en"),
    [
        (
            WeeklySchedule(byday="MO,TU,WE,TH,FR", opens_at=time(8), closes_at=time(16, 30)),
            "lun–vie 08:00–16:30",
            "Mon–Fri 08:00–16:30",
        ),
        (
            WeeklySchedule(byday="SA,SU", opens_at=time(0), closes_at=time(23, 59)),
            "sáb, dom 24 horas",
            "Sat, Sun 24 hours",
        ),
        (
            WeeklySchedule(byday="MO,WE,FR", opens_at=time(18), closes_at=time(23, 59)),
            "lun, mié, vie 18:00–24:00",
            "Mon, Wed, Fri 18:00–24:00",
        ),
        (
            WeeklySchedule(byday="SU,MO,TU,FR", opens_at=time(22), closes_at=time(6)),
            "lun, mar, vie, dom 22:00–06:00",  # two days in a row are listed, not a range
            "Mon, Tue, Fri, Sun 22:00–06:00",
        ),
        (
            WeeklySchedule(opens_at=time(0), closes_at=time(0)),
            "todos los días 24 horas",
            "every day 24 hours",
        ),
        (WeeklySchedule(byday="TU"), "mar sin horario", "Tue no hours given"),
        (
            WeeklySchedule(freq="MONTHLY", bymonthday="1", opens_at=time(9), closes_at=time(12)),
            "09:00–12:00 (según calendario)",
            "09:00–12:00 (on set dates)",
        ),
        (
            WeeklySchedule(
                byday="MO", opens_at=time(9), closes_at=time(12), valid_to=date(2027, 1, 1)
            ),
            "09:00–12:00 (según calendario)",
            "09:00–12:00 (on set dates)",
        ),
    ],
)
def test_describe_schedule(schedule: WeeklySchedule, es: str, en: str) -> None:
    assert describe_schedule(schedule, "es") == es
    assert describe_schedule(schedule, "en") == en


def test_describe_hours_keeps_order_and_an_unknown_locale_reads_english() -> None:
    schedules = [
        WeeklySchedule(byday="SA", opens_at=time(8), closes_at=time(12)),
        WeeklySchedule(byday="MO,TU,WE", opens_at=time(8), closes_at=time(17)),
    ]
    assert describe_hours(schedules, "es") == ["sáb 08:00–12:00", "lun–mié 08:00–17:00"]
    assert describe_hours(schedules, "fr") == ["Sat 08:00–12:00", "Mon–Wed 08:00–17:00"]
    assert describe_hours([], "es") == []
