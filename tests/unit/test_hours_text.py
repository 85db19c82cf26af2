"""Hours text of the spreadsheet template -> HSDS schedules (exchange/hours_text.py).

The expected schedules are written by hand from the text, and every result is also checked by the
API's own ScheduleIn, so what the reader yields is what a write accepts.
"""

from __future__ import annotations

import pytest

from referral_net.exchange.hours_text import HoursTextError, parse_hours
from referral_net.schemas.directory import ScheduleIn

WEEKDAYS = "MO,TU,WE,TH,FR"
ALL_WEEK = "MO,TU,WE,TH,FR,SA,SU"

# (text, [(byday, opens_at, closes_at), ...])
GOOD: list[tuple[str, list[tuple[str, str, str]]]] = [
    ("lunes a viernes 8:00-16:30", [(WEEKDAYS, "08:00", "16:30")]),
    ("Lunes a Viernes 8:00 - 16:30", [(WEEKDAYS, "08:00", "16:30")]),
    ("24 horas", [(ALL_WEEK, "00:00", "00:00")]),
    ("Las 24 horas", [(ALL_WEEK, "00:00", "00:00")]),
    ("24/7", [(ALL_WEEK, "00:00", "00:00")]),
    ("lunes a viernes 24 horas", [(WEEKDAYS, "00:00", "00:00")]),
    ("sábados 9 a 12", [("SA", "09:00", "12:00")]),
    ("sabados 9 a 12", [("SA", "09:00", "12:00")]),
    ("lun-vie 8-17; sáb 8-12", [(WEEKDAYS, "08:00", "17:00"), ("SA", "08:00", "12:00")]),
    ("lunes, miércoles y viernes de 9:00 a 13:00", [("MO,WE,FR", "09:00", "13:00")]),
    ("LUNES, MIERCOLES Y VIERNES DE 9:00 A 13:00", [("MO,WE,FR", "09:00", "13:00")]),
    ("lunes a viernes de 8 a 5 pm", [(WEEKDAYS, "08:00", "17:00")]),
    ("lunes a viernes 8 am a 5", [(WEEKDAYS, "08:00", "17:00")]),
    ("todos los días 7:30 a.m. a 3:30 p.m.", [(ALL_WEEK, "07:30", "15:30")]),
    ("martes 9:00 a. m. a 12:00 p. m.", [("TU", "09:00", "12:00")]),
    ("jueves 12 am a 6 am", [("TH", "00:00", "06:00")]),
    ("lunes a viernes 8h a 16h", [(WEEKDAYS, "08:00", "16:00")]),
    ("LUN. A VIE. 8H-16H30", [(WEEKDAYS, "08:00", "16:30")]),
    ("lunes a viernes 8.00 a 16.30 horas", [(WEEKDAYS, "08:00", "16:30")]),
    (
        "lunes a viernes 8:00-12:00 y 14:00-17:00",
        [(WEEKDAYS, "08:00", "12:00"), (WEEKDAYS, "14:00", "17:00")],
    ),
    (
        "Lunes a Viernes: 8:00 - 12:00, 14:00 - 17:00. Sábados 8 a 12.",
        [(WEEKDAYS, "08:00", "12:00"), (WEEKDAYS, "14:00", "17:00"), ("SA", "08:00", "12:00")],
    ),
    ("martes 8:00 a 16:00 y jueves 8 a 12", [("TU", "08:00", "16:00"), ("TH", "08:00", "12:00")]),
    ("8:00 a 12:00 sábados", [("SA", "08:00", "12:00")]),
    ("de lunes a viernes de 8 a mediodía", [(WEEKDAYS, "08:00", "12:00")]),
    ("lunes a viernes 20:00 a medianoche", [(WEEKDAYS, "20:00", "23:59")]),
    ("lunes a viernes 8:00 a 24:00", [(WEEKDAYS, "08:00", "23:59")]),
    ("fines de semana 22:00 a 06:00", [("SA,SU", "22:00", "06:00")]),
    ("viernes a lunes 10-14", [("MO,FR,SA,SU", "10:00", "14:00")]),
    ("entre semana 9-15", [(WEEKDAYS, "09:00", "15:00")]),
    (
        "Monday to Friday 9am to 1pm and Saturday 10am-12pm",
        [(WEEKDAYS, "09:00", "13:00"), ("SA", "10:00", "12:00")],
    ),
    ("Mon-Fri 8am-5pm", [(WEEKDAYS, "08:00", "17:00")]),
    ("daily 24 hours", [(ALL_WEEK, "00:00", "00:00")]),
    ("lunes 9-11\nmiércoles 14-16", [("MO", "09:00", "11:00"), ("WE", "14:00", "16:00")]),
]

BAD = [
    "",
    "   ",
    "de 8 a 5",  # no days
    "lunes a viernes de 8 a 5",  # 8:00-5:00 is a night shift or 8:00-17:00: not said
    "lunes 2 a 5 pm",  # 2:00 or 14:00
    "lunes a viernes 25:00-26:00",
    "lunes a viernes 8:75-9:00",
    "lunes a viernes 14 pm a 16 pm",
    "lunes cerrado",
    "con cita previa",
    "l-v 8-17",
    "lunes a viernes",
    "lunes a viernes 8",
    "lunes a viernes 8 a",
    "sábados 9 a 12 y",
    "lunes a lunes 8-12",
    "lunes 8-8",
    "lunes 24:00 a 6:00",
    "por la mañana",
    "lunes\nmiércoles 9-11",  # Monday's hours are missing
]


@pytest.mark.parametrize(("text", "expected"), GOOD, ids=[text for text, _ in GOOD])
def test_understood_text_gives_the_schedules_written_by_hand(
    text: str, expected: list[tuple[str, str, str]]
) -> None:
    schedules = parse_hours(text)
    assert [(s["byday"], s["opens_at"], s["closes_at"]) for s in schedules] == expected
    for schedule in schedules:
        assert schedule["freq"] == "WEEKLY"
        assert schedule["description"] == text.strip()
        ScheduleIn.model_validate(schedule)


@pytest.mark.parametrize("text", BAD)
def test_text_not_fully_understood_is_an_error_naming_it(text: str) -> None:
    with pytest.raises(HoursTextError) as caught:
        parse_hours(text)
    assert repr(text) in str(caught.value)


def test_hours_text_error_is_a_value_error() -> None:
    assert issubclass(HoursTextError, ValueError)
