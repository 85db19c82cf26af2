"""HSDS 3.0 schedules evaluated in America/Guatemala time.

Pure: the standard library and ``python-dateutil`` only. A schedule is an iCalendar recurrence
(``freq``, ``interval``, ``byday``, ``bymonthday``, ``byweekno``, ``byyearday``, ``wkst``,
``dtstart``, ``count``, ``until``: RFC 5545's RRULE with HSDS's field names) plus daily opening
hours (``opens_at``/``closes_at``). Which days a schedule occurs on is what ``dateutil.rrule``
says, not a hand-written reading of the RFC; this module only adds the rules about hours.

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
* Times are Guatemala wall-clock time. The HSDS ``timezone`` field is not read: the directory's
  schedules are all Guatemalan, and a stray offset must not move a shelter's hours.

How the recurrence is read (``dateutil.rrule``'s reading of RFC 5545):

* ``dtstart`` anchors ``interval`` and ``count`` and fills in what a rule leaves out (a WEEKLY
  rule without ``byday`` repeats on ``dtstart``'s weekday, a MONTHLY one on its day of the month,
  a YEARLY one on its date). It is an occurrence only if the rule lists it: dateutil departs from
  the RFC there, and for a directory the safer reading is never to add a day nobody listed.
* ``count`` counts the occurrences from ``dtstart``; it and ``until`` exclude each other (RFC).
* ``byday`` may carry ordinals (``"1MO,-1FR"``: the first Monday, the last Friday) with MONTHLY
  and YEARLY only, as the RFC says: under WEEKLY or DAILY rrule would drop the ordinal and open the
  service every Monday. Other parts (``bymonthday``, ``byweekno``, ``byyearday``) combine with any
  ``freq`` the way rrule combines them: as filters (HSDS pairs ``byweekno`` with WEEKLY, which the
  RFC does not).

Malformed data (an unknown ``freq``, a bad day code, ``count`` with ``until``) raises
``ValueError``. Incomplete data (no opening hours; an ``interval`` above 1, a ``count``, or a rule
that takes its days from ``dtstart``, without ``dtstart``) never raises and never claims the
service is open: for people in danger, "open" must only be said when the data says so.

Cost: ``is_open`` runs once per search result, so a day is never found by walking the rule from
``dtstart`` (a rule that never matches again would walk to the year 9999). The interval's phase is
plain arithmetic on period numbers, and rrule lists the days of the one period (month, year, or
the week around New Year) that holds the day; those lists are cached and shared by every schedule
with the same rule. Only ``count`` needs a walk from ``dtstart``, and it ends at the day asked
about or after ``count`` occurrences.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, Literal, TypeGuard

from dateutil import rrule

from referral_net.vocab import GUATEMALA_TZ

# iCalendar / HSDS two-letter day codes, indexed like ``date.weekday()`` (Monday = 0).
DAY_CODES: tuple[str, ...] = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_DAY_INDEX = {code: index for index, code in enumerate(DAY_CODES)}

# dateutil's constants for the day-based frequencies (its stubs type them as literals).
_Frequency = Literal[0, 1, 2, 3]
# Day-based frequencies only: HOURLY and finer would repeat within the opening hours themselves.
_FREQS: dict[str, _Frequency] = {
    "YEARLY": rrule.YEARLY,
    "MONTHLY": rrule.MONTHLY,
    "WEEKLY": rrule.WEEKLY,
    "DAILY": rrule.DAILY,
}
SUPPORTED_FREQS = frozenset(_FREQS)
# RFC 5545: "The BYDAY rule part MUST NOT be specified with a numeric value when the FREQ rule part
# is not set to MONTHLY or YEARLY."
_ORDINAL_FREQS = frozenset({"MONTHLY", "YEARLY"})

_TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")
_BYDAY_RE = re.compile(r"^([+-]?\d{1,2})?([A-Z]{2})$")
_DAY = timedelta(days=1)
_WEEK_DAYS = 7

# A weekday with its ordinal (None for "every"), as RFC 5545's BYDAY items: "-1FR" is (4, -1).
ByDay = tuple[int, int | None]


def parse_byday(text: str) -> frozenset[int]:
    """Parse an HSDS ``byday`` list such as ``"MO,TU,WE"`` into weekday numbers (Monday = 0).

    Plain day codes only; :func:`parse_byday_rule` also reads ordinals such as ``"-1FR"``.
    """
    days: set[int] = set()
    for weekday, ordinal in parse_byday_rule(text):
        if ordinal is not None:
            raise ValueError(f"byday: an ordinal day ({ordinal}{DAY_CODES[weekday]}) is not a day")
        days.add(weekday)
    return frozenset(days)


def parse_byday_rule(text: str) -> tuple[ByDay, ...]:
    """Parse an HSDS ``byday`` list with optional ordinals (``"1MO,-1FR"``), sorted, no repeats.

    An ordinal counts within the month or year (1 to 53 either way, RFC 5545); whether the
    schedule's ``freq`` allows ordinals is the schedule's check.
    """
    items = [item.strip().upper() for item in text.split(",")]
    if not all(items):
        raise ValueError("byday lists an empty day code")
    found: set[ByDay] = set()
    for item in items:
        match = _BYDAY_RE.match(item)
        if match is None or match.group(2) not in _DAY_INDEX:
            raise ValueError(
                f"unknown day code {item[:20]!r} in byday (expected MO,TU,WE,TH,FR,SA,SU, "
                "optionally after an ordinal such as 1MO or -1FR)"
            )
        ordinal = None if match.group(1) is None else int(match.group(1))
        if ordinal is not None and not 1 <= abs(ordinal) <= 53:
            raise ValueError(f"ordinal out of range in byday (1 to 53, or -1 to -53): {item!r}")
        found.add((_DAY_INDEX[match.group(2)], ordinal))
    return tuple(sorted(found, key=lambda day: (day[0], day[1] or 0)))


def parse_time(text: str) -> time:
    """Parse an HSDS local time ``"HH:MM"`` or ``"HH:MM:SS"`` (24-hour clock, no offset)."""
    match = _TIME_RE.match(text.strip())
    if match is None:
        raise ValueError(f"not a time of day (HH:MM or HH:MM:SS): {text[:20]!r}")
    hours, minutes, seconds = match.groups()
    return time(int(hours), int(minutes), int(seconds or 0))


def _parse_numbers(text: str, *, name: str, what: str, limit: int) -> frozenset[int]:
    """A comma-separated list of non-zero integers in ``-limit .. limit`` (RFC 5545 by-lists)."""
    numbers: set[int] = set()
    for item in (part.strip() for part in text.split(",")):
        try:
            value = int(item)
        except ValueError:
            raise ValueError(f"not a {what} in {name}: {item[:20]!r}") from None
        if value == 0 or not -limit <= value <= limit:
            raise ValueError(f"{what} out of range in {name}: {value}")
        numbers.add(value)
    return frozenset(numbers)


def parse_bymonthday(text: str) -> frozenset[int]:
    """Parse an HSDS ``bymonthday`` list such as ``"1,15,-1"`` (negative counts from month end)."""
    return _parse_numbers(text, name="bymonthday", what="day of the month", limit=31)


def parse_byweekno(text: str) -> frozenset[int]:
    """Parse an HSDS ``byweekno`` list such as ``"1,-1"`` (ISO-style weeks of the year)."""
    return _parse_numbers(text, name="byweekno", what="week of the year", limit=53)


def parse_byyearday(text: str) -> frozenset[int]:
    """Parse an HSDS ``byyearday`` list such as ``"1,100,-1"`` (negative counts from year end)."""
    return _parse_numbers(text, name="byyearday", what="day of the year", limit=366)


def parse_wkst(text: str) -> int:
    """Parse an HSDS ``wkst`` (``"MO"`` .. ``"SU"``) into a weekday number (Monday = 0)."""
    code = text.strip().upper()
    if code not in _DAY_INDEX:
        raise ValueError(f"unknown day code {text[:20]!r} in wkst (expected MO .. SU)")
    return _DAY_INDEX[code]


def _given(text: str | None) -> TypeGuard[str]:
    return text is not None and bool(text.strip())


def _sorted_or_none(values: frozenset[int] | None) -> tuple[int, ...] | None:
    return None if values is None else tuple(sorted(values))


# --- the recurrence, as rrule reads it --------------------------------------------------------


@dataclass(frozen=True)
class _ByRules:
    """The BY parts of a rule with ``dtstart``'s defaults filled in; hashable, so cache keys."""

    byday: tuple[ByDay, ...] | None
    bymonthday: tuple[int, ...] | None
    byweekno: tuple[int, ...] | None
    byyearday: tuple[int, ...] | None
    # Only set for a YEARLY rule's default (HSDS has no bymonth): the month of dtstart.
    bymonth: int | None
    wkst: int

    def filters_nothing(self) -> bool:
        """True if no part narrows the days (only a DAILY rule can be so: every day)."""
        parts = (self.byday, self.bymonthday, self.byweekno, self.byyearday, self.bymonth)
        return all(part is None for part in parts)

    def rrule_for(self, freq: _Frequency, start: date, **extra: Any) -> rrule.rrule:
        """A ``dateutil`` rule with these parts, starting at midnight on ``start``."""
        byday = (
            None
            if self.byday is None
            else [rrule.weekday(weekday, ordinal) for weekday, ordinal in self.byday]
        )
        return rrule.rrule(
            freq,
            dtstart=datetime.combine(start, time()),
            wkst=self.wkst,
            byweekday=byday,
            bymonthday=self.bymonthday,
            byweekno=self.byweekno,
            byyearday=self.byyearday,
            bymonth=self.bymonth,
            **extra,
        )


@dataclass(frozen=True)
class _Recurrence:
    """An evaluable rule: a ``freq`` (dateutil's constant), its phase and its BY parts."""

    freq: _Frequency
    interval: int
    by: _ByRules
    dtstart: date | None
    until: date | None
    count: int | None


def _resolve_defaults(freq: _Frequency, by: _ByRules, dtstart: date | None) -> _ByRules | None:
    """The BY parts with rrule's defaults from ``dtstart``; None if they need a missing dtstart.

    rrule fills them in only when the rule has none of BYWEEKNO, BYYEARDAY, BYMONTHDAY or BYDAY;
    spelling them out lets the rule be evaluated from any period, not only from ``dtstart``.
    """
    if freq == rrule.DAILY or any(
        part is not None for part in (by.byday, by.bymonthday, by.byweekno, by.byyearday)
    ):
        return by
    if dtstart is None:
        return None  # "the same weekday as the first one", and no first one: no days at all
    if freq == rrule.WEEKLY:
        return dataclasses.replace(by, byday=((dtstart.weekday(), None),))
    if freq == rrule.MONTHLY:
        return dataclasses.replace(by, bymonthday=(dtstart.day,))
    return dataclasses.replace(by, bymonth=dtstart.month, bymonthday=(dtstart.day,))


def _period_number(freq: _Frequency, day: date, wkst: int) -> int:
    """Which day, week (starting on ``wkst``), month or year ``day`` falls in, as one count."""
    if freq == rrule.YEARLY:
        return day.year
    if freq == rrule.MONTHLY:
        return day.year * 12 + day.month
    if freq == rrule.WEEKLY:
        return (day.toordinal() - (day.weekday() - wkst) % _WEEK_DAYS) // _WEEK_DAYS
    return day.toordinal()


# rrule walks a rule period by period, and stops only when an occurrence passes UNTIL/COUNT or
# the year passes 9999. An interval this large ends a rule after its first period: the next one
# would start after 9999 (years and months jump there at once).
_ONE_PERIOD_INTERVAL = {rrule.YEARLY: 10_000, rrule.MONTHLY: 120_000, rrule.WEEKLY: 21_000}
# The Gregorian calendar repeats every 400 years (146,097 days, exactly 20,871 weeks): weekdays,
# leap years and week numbers alike.
_CYCLE_YEARS = 400
_CYCLE_DAYS = 146_097
# A week that starts in this year still ends inside the calendar (9999).
_LAST_YEAR_OF_A_WHOLE_WEEK = 9998


@lru_cache(maxsize=4096)
def _days_of_period(by: _ByRules, freq: _Frequency, start: date) -> frozenset[date]:
    """The days rrule lists in the one month (MONTHLY) or year (YEARLY) starting on ``start``."""
    rule = by.rrule_for(freq, start, interval=_ONE_PERIOD_INTERVAL[freq])
    return frozenset(occurrence.date() for occurrence in rule)


@lru_cache(maxsize=1024)
def _days_of_new_year_week(by: _ByRules, start: date) -> frozenset[date]:
    """The days rrule lists in the WEEKLY period from ``start`` (a week that crosses New Year).

    rrule weighs such a week's January days with the old year's week numbers, which no
    month-sized period reproduces, so the week is evaluated as a WEEKLY rule. It is moved by whole
    400-year cycles to just before 9999, where a WEEKLY rule's next period leaves the calendar
    after a few thousand short steps instead of a hundred thousand.
    """
    cycles = (_LAST_YEAR_OF_A_WHOLE_WEEK - start.year) // _CYCLE_YEARS
    shift = timedelta(days=_CYCLE_DAYS * cycles)
    rule = by.rrule_for(rrule.WEEKLY, start + shift, interval=_ONE_PERIOD_INTERVAL[rrule.WEEKLY])
    return frozenset(occurrence.date() - shift for occurrence in rule)


def _rule_lists(recurrence: _Recurrence, day: date) -> bool:
    """True if rrule lists ``day`` within its period (BY parts only; phase and bounds apart)."""
    by, freq = recurrence.by, recurrence.freq
    if by.filters_nothing():
        return True
    if freq == rrule.YEARLY:
        return day in _days_of_period(by, rrule.YEARLY, date(day.year, 1, 1))
    if freq == rrule.WEEKLY:
        # rrule's weeks start on wkst, except the first, which starts on dtstart.
        week_start = day.toordinal() - (day.weekday() - by.wkst) % _WEEK_DAYS
        if recurrence.dtstart is not None:
            week_start = max(week_start, recurrence.dtstart.toordinal())
        if week_start >= 1 and date.fromordinal(week_start).year < day.year:
            return day in _days_of_new_year_week(by, date.fromordinal(week_start))
    # DAILY and WEEKLY rules (no ordinals) judge a day by its own year's masks, as MONTHLY does.
    return day in _days_of_period(by, rrule.MONTHLY, date(day.year, day.month, 1))


class _CountedWalk:
    """How far a counted rule's occurrences have been walked, kept so no walk is done twice.

    A day that the rule without COUNT lists is among the first ``count`` occurrences exactly when
    the walk, run up to that day, does not run out first. The walk only moves forward, so over a
    process's life it visits each of the ``count`` occurrences at most once.
    """

    def __init__(self, recurrence: _Recurrence) -> None:
        """Start the walk at ``dtstart`` (a counted rule is never evaluated without one)."""
        assert recurrence.dtstart is not None
        rule = recurrence.by.rrule_for(
            recurrence.freq,
            recurrence.dtstart,
            interval=recurrence.interval,
            count=recurrence.count,
        )
        self._occurrences = iter(rule)
        self._reached: date | None = None
        self._ended = False
        # Search evaluates in a thread pool, and a generator cannot run in two threads at once.
        self._lock = threading.Lock()

    def reaches(self, day: date) -> bool:
        """True if the counted occurrences go on at least until ``day``."""
        with self._lock:
            while not self._ended and (self._reached is None or self._reached < day):
                occurrence = next(self._occurrences, None)
                if occurrence is None:
                    self._ended = True
                else:
                    self._reached = occurrence.date()
            return self._reached is not None and self._reached >= day


@lru_cache(maxsize=1024)
def _counted_walk(recurrence: _Recurrence) -> _CountedWalk:
    return _CountedWalk(recurrence)


@lru_cache(maxsize=16_384)
def _occurs(recurrence: _Recurrence, day: date) -> bool:
    """True if the rule has an occurrence on ``day`` (cached: search asks the same days often)."""
    if recurrence.dtstart is not None and day < recurrence.dtstart:
        return False
    if recurrence.until is not None and day > recurrence.until:
        return False
    if recurrence.interval > 1:
        assert recurrence.dtstart is not None  # an unanchored interval is never evaluated
        wkst = recurrence.by.wkst
        periods = _period_number(recurrence.freq, day, wkst) - _period_number(
            recurrence.freq, recurrence.dtstart, wkst
        )
        if periods % recurrence.interval:
            return False
    if not _rule_lists(recurrence, day):
        return False
    return recurrence.count is None or _counted_walk(recurrence).reaches(day)


# --- the schedule -----------------------------------------------------------------------------


@dataclass(frozen=True)
class WeeklySchedule:
    """One HSDS ``schedule`` row: a recurrence and the hours it is open on each occurring day.

    Field names follow HSDS 3.0 (``timezone`` is left out: see the module docstring). ``byday``,
    ``bymonthday``, ``byweekno``, ``byyearday`` and ``wkst`` are the HSDS strings; they are parsed
    (and checked) once, when the schedule is built.
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
    count: int | None = None
    wkst: str | None = None
    byweekno: str | None = None
    byyearday: str | None = None
    _recurrence: _Recurrence | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        """Normalise and check the recurrence so evaluation never meets malformed data."""
        freq = self.freq.strip().upper()
        if freq not in SUPPORTED_FREQS:
            raise ValueError(
                f"unsupported freq {self.freq!r} (expected WEEKLY, MONTHLY, DAILY or YEARLY)"
            )
        object.__setattr__(self, "freq", freq)
        if self.wkst is not None:
            object.__setattr__(self, "wkst", self.wkst.strip().upper() or None)
        self._check_scalars()
        object.__setattr__(self, "_recurrence", self._build_recurrence())

    def _check_scalars(self) -> None:
        if self.interval < 1:
            raise ValueError(f"interval must be at least 1, got {self.interval}")
        if self.count is not None and self.count < 1:
            raise ValueError(f"count must be at least 1, got {self.count}")
        if self.count is not None and self.until is not None:
            # RFC 5545: "they MUST NOT occur in the same 'recur'"; dateutil deprecates it.
            raise ValueError("count and until exclude each other")
        for name in ("opens_at", "closes_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is not None:
                # Schedules are local Guatemala time; an offset here would be ambiguous.
                raise ValueError(f"{name} must be a local time without a UTC offset")

    def _build_recurrence(self) -> _Recurrence | None:
        """The rule to evaluate, or None if the data cannot say which days (never open)."""
        byday = parse_byday_rule(self.byday) if _given(self.byday) else None
        if byday and self.freq not in _ORDINAL_FREQS and any(n is not None for _, n in byday):
            raise ValueError(
                f"byday ordinals (such as 1MO) need freq MONTHLY or YEARLY: {self.byday!r}"
            )
        by = _ByRules(
            byday=byday,
            bymonthday=_sorted_or_none(self.monthdays),
            byweekno=_sorted_or_none(
                parse_byweekno(self.byweekno) if _given(self.byweekno) else None
            ),
            byyearday=_sorted_or_none(
                parse_byyearday(self.byyearday) if _given(self.byyearday) else None
            ),
            bymonth=None,
            wkst=parse_wkst(self.wkst) if self.wkst else 0,  # RFC 5545's default: Monday
        )
        freq = _FREQS[self.freq]
        resolved = _resolve_defaults(freq, by, self.dtstart)
        unanchored = self.dtstart is None and (self.interval > 1 or self.count is not None)
        if resolved is None or unanchored:
            return None  # "every other week" or "ten times" needs a first occurrence to count from
        return _Recurrence(
            freq=freq,
            interval=self.interval,
            by=resolved,
            dtstart=self.dtstart,
            until=self.until,
            count=self.count,
        )

    @property
    def weekdays(self) -> frozenset[int] | None:
        """The weekdays ``byday`` names (Monday = 0, ordinals dropped); None without ``byday``."""
        if not _given(self.byday):
            return None
        return frozenset(weekday for weekday, _ in parse_byday_rule(self.byday))

    @property
    def monthdays(self) -> frozenset[int] | None:
        """The parsed ``bymonthday`` days, or None when ``bymonthday`` is not given."""
        if not _given(self.bymonthday):
            return None
        return parse_bymonthday(self.bymonthday)

    def occurs_on(self, day: date) -> bool:
        """True if a period of this schedule starts on ``day`` (bounds, recurrence and hours)."""
        if self.opens_at is None or self.closes_at is None or self._recurrence is None:
            return False
        if self.valid_from is not None and day < self.valid_from:
            return False
        if self.valid_to is not None and day > self.valid_to:
            return False
        return _occurs(self._recurrence, day)

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
    bounds = (schedule.valid_from, schedule.valid_to, schedule.dtstart, schedule.until)
    # These pick days by month or year, so one week does not stand for every week.
    calendar_parts = (schedule.bymonthday, schedule.byweekno, schedule.byyearday)
    return (
        schedule.freq in {"WEEKLY", "DAILY"}
        and schedule.interval == 1
        and schedule.count is None
        and all(bound is None for bound in bounds)
        and not any(_given(part) for part in calendar_parts)
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


# --- opening hours as text (maps, lists) ----------------------------------------------------------

_DAY_LABELS: dict[str, tuple[str, ...]] = {
    "es": ("lun", "mar", "mié", "jue", "vie", "sáb", "dom"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}
_EVERY_DAY = {"es": "todos los días", "en": "every day"}
_ALL_DAY = {"es": "24 horas", "en": "24 hours"}
_CALENDAR_RULE = {"es": "según calendario", "en": "on set dates"}
_NO_HOURS = {"es": "sin horario", "en": "no hours given"}


def _day_runs(days: frozenset[int], labels: Sequence[str]) -> str:
    """Weekdays as runs: {0..4, 6} -> "lun–vie, dom" (a run of three or more uses a dash)."""
    ordered = sorted(days)
    runs: list[list[int]] = []
    for day in ordered:
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts: list[str] = []
    for run in runs:
        if len(run) >= 3:  # "lun–mié"; two days read better listed
            parts.append(f"{labels[run[0]]}–{labels[run[-1]]}")
        else:
            parts.extend(labels[day] for day in run)
    return ", ".join(parts)


def describe_schedule(schedule: WeeklySchedule, locale: str) -> str:
    """One schedule as short text in ``locale`` (es or en): "lun–vie 08:00–16:30", "sáb 24 horas".

    Weekly and daily rules without calendar parts read as days and hours; any other rule (by
    month, by date, every other week) is named as a calendar rule after its hours, since a map
    popup has no room for the whole recurrence (the HSDS record keeps it).
    """
    language = locale if locale in _DAY_LABELS else "en"
    opens, closes = schedule.opens_at, schedule.closes_at
    if opens is None or closes is None:
        hours = _NO_HOURS[language]  # such a schedule never opens (``occurs_on``)
    elif opens == time(0) and (closes == time(0) or (closes.hour, closes.minute) == (23, 59)):
        hours = _ALL_DAY[language]
    else:
        # 23:59 is how data entry writes "until midnight" (see the module docstring).
        until = "24:00" if (closes.hour, closes.minute) == (23, 59) else closes.strftime("%H:%M")
        hours = f"{opens.strftime('%H:%M')}–{until}"
    if not _is_timeless_weekly(schedule):
        return f"{hours} ({_CALENDAR_RULE[language]})"
    days = parse_byday(schedule.byday) if _given(schedule.byday) else frozenset(range(_WEEK_DAYS))
    if len(days) == _WEEK_DAYS:
        return f"{_EVERY_DAY[language]} {hours}"
    return f"{_day_runs(days, _DAY_LABELS[language])} {hours}"


def describe_hours(schedules: Sequence[WeeklySchedule], locale: str) -> list[str]:
    """Every schedule as text (:func:`describe_schedule`), in the order given."""
    return [describe_schedule(schedule, locale) for schedule in schedules]
