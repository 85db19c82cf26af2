"""HSDS 3.0 schedules evaluated in America/Guatemala time.

Pure: standard library only. A schedule is a recurrence (``freq``/``interval``/``byday``/
``bymonthday``, iCalendar style) plus daily opening hours (``opens_at``/``closes_at``).

Rules, in the words a caseworker would use:

* ``opens_at < closes_at``: open from ``opens_at`` up to (not including) ``closes_at`` on each
  listed day.
* ``closes_at <= opens_at``: the period crosses midnight. It starts on the listed day and ends on
  the next day, so "Friday 18:00-06:00" covers Saturday 02:00. ``00:00-00:00`` is therefore the
  whole listed day, and seven listed days of ``00:00-00:00`` are 24 hours.
* ``closes_at`` of 23:59 (or 23:59:xx) means "until midnight": 24:00 is not a valid time, so data
  entry uses 23:59, and a one-minute gap each night must not hide a 24-hour service.
* ``valid_from``, ``valid_to``, ``dtstart`` and ``until`` bound the day a period *starts* on
  (inclusive), so an overnight period starting on ``valid_to`` still runs into the next morning.

Malformed data (an unknown ``freq``, a bad day code) raises ``ValueError``. Incomplete data (no
opening hours, an ``interval`` above 1 without ``dtstart`` to anchor it) never raises and never
claims the service is open: for people in danger, "open" must only be said when the data says so.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from referral_net.vocab import GUATEMALA_TZ

# iCalendar / HSDS two-letter day codes, indexed like ``date.weekday()`` (Monday = 0).
DAY_CODES: tuple[str, ...] = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_DAY_INDEX = {code: index for index, code in enumerate(DAY_CODES)}

SUPPORTED_FREQS = frozenset({"DAILY", "WEEKLY", "MONTHLY"})

_TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")
_DAY = timedelta(days=1)
_WEEK_DAYS = 7


def parse_byday(text: str) -> frozenset[int]:
    """Parse an HSDS ``byday`` list such as ``"MO,TU,WE"`` into weekday numbers (Monday = 0)."""
    items = [item.strip().upper() for item in text.split(",")]
    if not any(items):
        raise ValueError("byday lists no day codes")
    days: set[int] = set()
    for item in items:
        if item not in _DAY_INDEX:
            # Ordinal forms like "1MO" (first Monday) are not supported; say so rather than guess.
            raise ValueError(f"unknown day code {item!r} in byday (expected MO,TU,WE,TH,FR,SA,SU)")
        days.add(_DAY_INDEX[item])
    return frozenset(days)


def parse_time(text: str) -> time:
    """Parse an HSDS local time ``"HH:MM"`` or ``"HH:MM:SS"`` (24-hour clock, no offset)."""
    match = _TIME_RE.match(text.strip())
    if match is None:
        raise ValueError(f"not a time of day (HH:MM or HH:MM:SS): {text[:20]!r}")
    hours, minutes, seconds = match.groups()
    return time(int(hours), int(minutes), int(seconds or 0))


def parse_bymonthday(text: str) -> frozenset[int]:
    """Parse an HSDS ``bymonthday`` list such as ``"1,15,-1"`` (negative counts from month end)."""
    days: set[int] = set()
    for item in (part.strip() for part in text.split(",")):
        try:
            value = int(item)
        except ValueError:
            raise ValueError(f"not a day of the month in bymonthday: {item[:20]!r}") from None
        if value == 0 or not -31 <= value <= 31:
            raise ValueError(f"day of the month out of range in bymonthday: {value}")
        days.add(value)
    return frozenset(days)


@dataclass(frozen=True)
class WeeklySchedule:
    """One HSDS ``schedule`` row: a recurrence and the hours it is open on each occurring day.

    Field names follow HSDS 3.0. ``byday`` and ``bymonthday`` are the HSDS comma-separated
    strings; they are parsed (and checked) once, when the schedule is built.
    """

    freq: str = "WEEKLY"
    interval: int = 1
    byday: str | None = None
    bymonthday: str | None = None
    opens_at: time | None = None
    closes_at: time | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    dtstart: date | None = None
    until: date | None = None
    _days: frozenset[int] | None = field(init=False, repr=False, compare=False, default=None)
    _monthdays: frozenset[int] | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        """Normalise and check the recurrence so evaluation never meets malformed data."""
        freq = self.freq.strip().upper()
        if freq not in SUPPORTED_FREQS:
            raise ValueError(f"unsupported freq {self.freq!r} (expected WEEKLY, MONTHLY or DAILY)")
        if self.interval < 1:
            raise ValueError(f"interval must be at least 1, got {self.interval}")
        for name in ("opens_at", "closes_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is not None:
                # Schedules are local Guatemala time; an offset here would be ambiguous.
                raise ValueError(f"{name} must be a local time without a UTC offset")
        object.__setattr__(self, "freq", freq)
        days = parse_byday(self.byday) if self.byday and self.byday.strip() else None
        monthdays = (
            parse_bymonthday(self.bymonthday)
            if self.bymonthday and self.bymonthday.strip()
            else None
        )
        object.__setattr__(self, "_days", days)
        object.__setattr__(self, "_monthdays", monthdays)

    @property
    def weekdays(self) -> frozenset[int] | None:
        """The parsed ``byday`` weekdays (Monday = 0), or None when ``byday`` is not given."""
        return self._days

    @property
    def monthdays(self) -> frozenset[int] | None:
        """The parsed ``bymonthday`` days, or None when ``bymonthday`` is not given."""
        return self._monthdays

    def occurs_on(self, day: date) -> bool:
        """True if a period of this schedule starts on ``day`` (bounds, recurrence and hours)."""
        if self.opens_at is None or self.closes_at is None:
            return False
        if not self._within_bounds(day):
            return False
        if self.freq == "DAILY":
            return self._daily(day)
        if self.freq == "WEEKLY":
            return self._weekly(day)
        return self._monthly(day)

    def period_starting(self, day: date) -> tuple[datetime, datetime] | None:
        """The naive local ``[start, end)`` period starting on ``day``, or None if none starts."""
        if not self.occurs_on(day):
            return None
        # occurs_on guarantees both times are set.
        assert self.opens_at is not None
        assert self.closes_at is not None
        start = datetime.combine(day, self.opens_at)
        closes = self.closes_at
        if (closes.hour, closes.minute) == (23, 59):
            # "Until 23:59" is how data entry writes "until midnight" (see module docstring).
            end = datetime.combine(day + _DAY, time(0))
        elif closes > self.opens_at:
            end = datetime.combine(day, closes)
        else:
            end = datetime.combine(day + _DAY, closes)
        return start, end

    def _within_bounds(self, day: date) -> bool:
        lower = [bound for bound in (self.valid_from, self.dtstart) if bound is not None]
        upper = [bound for bound in (self.valid_to, self.until) if bound is not None]
        return all(day >= bound for bound in lower) and all(day <= bound for bound in upper)

    def _daily(self, day: date) -> bool:
        if self._days is not None and day.weekday() not in self._days:
            return False
        if self.interval == 1:
            return True
        if self.dtstart is None:
            return False  # no anchor: cannot tell which days are "every other day"
        return (day - self.dtstart).days % self.interval == 0

    def _weekly(self, day: date) -> bool:
        days = self._days
        if days is None:
            # RFC 5545: without BYDAY a weekly rule repeats on DTSTART's weekday.
            if self.dtstart is None:
                return False
            days = frozenset({self.dtstart.weekday()})
        if day.weekday() not in days:
            return False
        if self.interval == 1:
            return True
        if self.dtstart is None:
            return False  # "every other week" needs an anchor week
        # Weeks start on Monday (iCalendar's default WKST).
        anchor = self.dtstart - timedelta(days=self.dtstart.weekday())
        return ((day - anchor).days // _WEEK_DAYS) % self.interval == 0

    def _monthly(self, day: date) -> bool:
        monthdays = self._monthdays
        if monthdays is None and self._days is None:
            # RFC 5545: without BYMONTHDAY/BYDAY a monthly rule repeats on DTSTART's day.
            if self.dtstart is None:
                return False
            monthdays = frozenset({self.dtstart.day})
        if monthdays is not None and not _is_month_day(day, monthdays):
            return False
        if self._days is not None and day.weekday() not in self._days:
            return False
        if self.interval == 1:
            return True
        if self.dtstart is None:
            return False
        months = (day.year - self.dtstart.year) * 12 + (day.month - self.dtstart.month)
        return months % self.interval == 0


def _is_month_day(day: date, monthdays: frozenset[int]) -> bool:
    """True if ``day`` is one of ``monthdays`` (negative values count back from the month end)."""
    # monthrange, not "the 1st of next month": December 9999 has no next month to subtract from.
    length = calendar.monthrange(day.year, day.month)[1]
    return day.day in monthdays or (day.day - length - 1) in monthdays


def to_guatemala(at: datetime) -> datetime:
    """Convert an aware datetime to naive America/Guatemala wall-clock time."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware (naive times are ambiguous)")
    return at.astimezone(GUATEMALA_TZ).replace(tzinfo=None)


def _periods(
    schedules: Iterable[WeeklySchedule], first_day: date, last_day: date
) -> list[tuple[datetime, datetime]]:
    """All periods starting on days ``first_day`` .. ``last_day`` (inclusive), sorted."""
    found: list[tuple[datetime, datetime]] = []
    for schedule in schedules:
        day = first_day
        while day <= last_day:
            period = schedule.period_starting(day)
            if period is not None:
                found.append(period)
            day += _DAY
    found.sort()
    return found


def is_open(schedules: Sequence[WeeklySchedule], at: datetime) -> bool:
    """True if any schedule has a period containing ``at`` (aware; evaluated in Guatemala time)."""
    local = to_guatemala(at)
    # A period lasts at most 24 h, so only periods starting today or yesterday can contain `at`.
    return any(
        start <= local < end
        for start, end in _periods(schedules, local.date() - _DAY, local.date())
    )


def _covers(periods: Sequence[tuple[datetime, datetime]], start: datetime, end: datetime) -> bool:
    """True if the sorted ``periods`` together cover every instant of ``[start, end)``."""
    reached = start
    for period_start, period_end in periods:
        if period_start > reached:
            break
        reached = max(reached, period_end)
        if reached >= end:
            return True
    return reached >= end


def _is_timeless_weekly(schedule: WeeklySchedule) -> bool:
    """True if the schedule repeats identically every week, forever."""
    return (
        schedule.freq in {"WEEKLY", "DAILY"}
        and schedule.interval == 1
        and all(
            bound is None
            for bound in (schedule.valid_from, schedule.valid_to, schedule.dtstart, schedule.until)
        )
    )


def is_open_24h(schedules: Sequence[WeeklySchedule], *, on: date | None = None) -> bool:
    """True if the schedules cover every instant of the week (the week starting ``on`` if given).

    Without ``on`` the answer must hold for every week, so only schedules that repeat every week
    with no date bounds count. With ``on`` (a Guatemala date), the seven days from ``on`` are
    evaluated with every rule, bounds included.
    """
    if on is None:
        usable = [schedule for schedule in schedules if _is_timeless_weekly(schedule)]
        # Any Monday-to-Monday week stands for all weeks; 2024-01-01 is a Monday.
        on = date(2024, 1, 1)
    else:
        usable = list(schedules)
    start = datetime.combine(on, time(0))
    end = start + timedelta(days=_WEEK_DAYS)
    # Periods starting the day before can run into the first morning.
    periods = _periods(usable, on - _DAY, on + timedelta(days=_WEEK_DAYS - 1))
    return _covers(periods, start, end)
