"""Opening hours written as Spanish (or English) text -> HSDS weekly schedules.

The spreadsheet template has one ``horario`` cell per row, filled by people, not programs:
"lunes a viernes 8:00-16:30", "24 horas", "sábados 9 a 12", "lun-vie 8-17; sáb 8-12",
"lunes, miércoles y viernes de 9:00 a 13:00", "Mon-Fri 8am-5pm". This module reads that small
language exactly and refuses the rest: a word it does not know, a time it cannot place on the
24-hour clock, a closing time before the opening one that could be read two ways. A wrong schedule
sends a person to a closed door, so text that is not fully understood is an error naming the text,
never a guess.

The grammar, after folding (lower case, no accents):

    text     := "24 horas" | group (separator group)*
    group    := days ["de" | "from"] (ranges | "24 horas") | ranges days
    days     := dayspan (("," | "y" | "e" | "and" | "&") dayspan)*
    dayspan  := day [("a" | "al" | "-" | "hasta" | "to" | "through") day]
    ranges   := range (("y" | "," | "and") range)*
    range    := ["de" | "desde" | "from"] time ("a" | "-" | "hasta" | "to") time

Each range of each group is one schedule (``freq`` WEEKLY, ``byday``, ``opens_at``,
``closes_at``); a split shift ("8-12 y 14-17") is two. Every schedule carries the original text
as its ``description``. Pure: no database, no clock.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

WEEK = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")

# Day names and abbreviations, folded (no accents), each with an optional trailing dot.
_DAY_NAMES: dict[str, str] = {}
for _code, _names in {
    "MO": "lunes lun lu monday mon mo",
    "TU": "martes mar ma tuesday tues tue tu",
    "WE": "miercoles mier mie mi x wednesday wed we",
    "TH": "jueves jue ju thursday thurs thur thu th",
    "FR": "viernes vie vi friday fri fr",
    "SA": "sabados sabado sab sa saturdays saturday sat",
    "SU": "domingos domingo dom do sundays sunday sun su",
}.items():
    for _name in _names.split():
        _DAY_NAMES[_name] = _code
for _english in ("mondays", "tuesdays", "wednesdays", "thursdays", "fridays"):
    _DAY_NAMES[_english] = _DAY_NAMES[_english[:-1]]

# Phrases naming several days or the whole day, rewritten to tokens before tokenizing. Longest
# first, so "todos los dias de la semana" wins over "todos los dias".
_PHRASES: tuple[tuple[str, str], ...] = tuple(
    sorted(
        {
            "todos los dias de la semana": " @all ",
            "todos los dias": " @all ",
            "diariamente": " @all ",
            "diario": " @all ",
            "every day": " @all ",
            "everyday": " @all ",
            "daily": " @all ",
            "fines de semana": " @weekend ",
            "fin de semana": " @weekend ",
            "weekends": " @weekend ",
            "weekend": " @weekend ",
            "entre semana": " @weekdays ",
            "dias habiles": " @weekdays ",
            "dias de semana": " @weekdays ",
            "weekdays": " @weekdays ",
            "las 24 horas": " @fullday ",
            "24 horas": " @fullday ",
            "24 hrs": " @fullday ",
            "24 hours": " @fullday ",
            "24h": " @fullday ",
            "24/7": " @all @fullday ",
            "medio dia": " @noon ",
            "mediodia": " @noon ",
            "noon": " @noon ",
            "medianoche": " @midnight ",
            "midnight": " @midnight ",
        }.items(),
        key=lambda item: -len(item[0]),
    )
)
_DAY_SETS = {
    "@all": WEEK,
    "@weekend": ("SA", "SU"),
    "@weekdays": WEEK[:5],
}

# A clock time: "8", "8:30", "8.30", "8h", "8h30", "8:30 hrs", "8 am", "8:00 p. m.", "8am".
_TIME = re.compile(
    r"(?P<hour>\d{1,2})(?:(?:[:.]|h)(?P<minute>\d{2}))?"
    r"(?:\s*(?P<suffix>a\.?\s?m\.?|p\.?\s?m\.?|hrs?\.?|horas|h)(?![a-z]))?"
)
_WORD = re.compile(r"@?[a-z]+\.?|[,;:&\-/.]|\n")

_DAY_RANGE_WORDS = frozenset({"a", "al", "-", "hasta", "to", "through", "thru"})
_DAY_LIST_WORDS = frozenset({",", "y", "e", "and", "&"})
_TIME_RANGE_WORDS = frozenset({"a", "-", "hasta", "to", "al"})
# Words that only introduce what follows ("de 8 a 12", "lunes: 8-12", "horario: ...").
_FROM_WORDS = frozenset({"de", "desde", "from", "horario", "abierto", "open", ":"})
_GROUP_SEPARATORS = frozenset({";", "\n", ",", "y", "and", "/", "&", "e", "."})


class HoursTextError(ValueError):
    """Hours text that cannot be read exactly; the message names the text."""


@dataclass(frozen=True)
class _Token:
    kind: str  # "day", "days", "time", "fullday", "word"
    text: str
    days: tuple[str, ...] = ()
    hour: int = 0
    minute: int = 0
    suffix: str = ""  # "am", "pm" or ""
    clock_24: bool = False  # written in a way only the 24-hour clock allows ("24:00", "00:00")


def fold(text: str) -> str:
    """Lower case, accents removed, dashes unified, spaces collapsed (newlines kept)."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
    plain = re.sub(r"[\u2010-\u2015\u2212]", "-", plain)
    lines = (" ".join(line.split()) for line in plain.splitlines())
    return "\n".join(line for line in lines if line)


def _problem(original: str, why: str) -> HoursTextError:
    return HoursTextError(f"hours {original!r} not understood: {why}")


def _tokens(original: str) -> list[_Token]:
    text = fold(original)
    for phrase, replacement in _PHRASES:
        text = re.sub(rf"(?<![a-z0-9@]){re.escape(phrase)}(?![a-z0-9])", replacement, text)
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        if text[position] == " ":
            position += 1
            continue
        time_match = _TIME.match(text, position)
        if time_match:
            tokens.append(_time_token(original, time_match))
            position = time_match.end()
            continue
        word_match = _WORD.match(text, position)
        if not word_match:
            raise _problem(original, f"unexpected {text[position : position + 12]!r}")
        word = word_match.group(0)
        position = word_match.end()
        tokens.append(_word_token(original, word))
    return tokens


def _word_token(original: str, word: str) -> _Token:
    bare = word.rstrip(".") or word
    if bare in _DAY_NAMES:
        return _Token("day", word, days=(_DAY_NAMES[bare],))
    if bare in _DAY_SETS:
        return _Token("days", word, days=_DAY_SETS[bare])
    if bare == "@fullday":
        return _Token("fullday", word)
    if bare == "@noon":
        return _Token("time", word, hour=12, suffix="pm")
    if bare == "@midnight":
        return _Token("time", word, hour=24, clock_24=True)
    if bare in _DAY_RANGE_WORDS | _DAY_LIST_WORDS | _FROM_WORDS | _GROUP_SEPARATORS:
        return _Token("word", bare)
    raise _problem(original, f"unknown word {word!r}")


def _time_token(original: str, match: re.Match[str]) -> _Token:
    hour = int(match.group("hour"))
    minute = int(match.group("minute") or 0)
    raw_suffix = (match.group("suffix") or "").replace(".", "").replace(" ", "")
    suffix = raw_suffix if raw_suffix in {"am", "pm"} else ""
    if minute > 59 or hour > 24 or (hour == 24 and minute):
        raise _problem(original, f"{match.group(0).strip()!r} is not a time")
    if suffix and not 1 <= hour <= 12:
        raise _problem(original, f"{match.group(0).strip()!r} mixes a.m./p.m. with a 24-hour time")
    written = match.group(0).strip()
    return _Token(
        "time",
        written,
        hour=hour,
        minute=minute,
        suffix=suffix,
        clock_24=hour in {0, 24} or hour > 12,
    )


class _Parser:
    """A recursive-descent reader over the tokens of one text."""

    def __init__(self, original: str) -> None:
        self.original = original
        self.tokens = _tokens(original)
        self.index = 0

    def peek(self, offset: int = 0) -> _Token | None:
        at = self.index + offset
        return self.tokens[at] if at < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def is_word(self, token: _Token | None, words: frozenset[str]) -> bool:
        return token is not None and token.kind == "word" and token.text in words

    def fail(self, why: str) -> HoursTextError:
        return _problem(self.original, why)

    def parse(self) -> list[dict[str, Any]]:
        # A full stop may end the text ("Sábados 8 a 12.").
        while self.tokens and self.is_word(self.tokens[-1], frozenset({"."})):
            self.tokens.pop()
        if not self.tokens:
            raise self.fail("it is empty")
        schedules: list[dict[str, Any]] = []
        while True:
            schedules.extend(self.group())
            if self.peek() is None:
                return schedules
            # Groups are separated by ";", a new line, ",", "y" ... or nothing at all.
            while self.is_word(self.peek(), _GROUP_SEPARATORS):
                self.take()
            if self.peek() is None:
                raise self.fail("it ends with a separator")

    def group(self) -> list[dict[str, Any]]:
        self.skip_from_words()
        token = self.peek()
        if token is None:
            raise self.fail("a day or a time is missing")
        if token.kind == "fullday":
            self.take()
            days: tuple[str, ...] = WEEK
            if self.peek() is not None and self.peek_is_days():
                days = self.days()
            return [self.schedule(days, None)]
        if token.kind == "time":
            ranges = self.ranges()
            self.skip_from_words()
            if not self.peek_is_days():
                raise self.fail("the days of the hours are missing")
            days = self.days()
            return [self.schedule(days, item) for item in ranges]
        if not self.peek_is_days():
            raise self.fail(f"expected a day or a time at {token.text!r}")
        days = self.days()
        self.skip_from_words()
        after = self.peek()
        if after is None:
            raise self.fail("the hours of the days are missing")
        if after.kind == "fullday":
            self.take()
            return [self.schedule(days, None)]
        return [self.schedule(days, item) for item in self.ranges()]

    def skip_from_words(self) -> None:
        while self.is_word(self.peek(), _FROM_WORDS):
            self.take()

    def peek_is_days(self) -> bool:
        token = self.peek()
        return token is not None and token.kind in {"day", "days"}

    def days(self) -> tuple[str, ...]:
        chosen: set[str] = set()
        while True:
            chosen.update(self.dayspan())
            # A list goes on only when a day follows the connector ("lunes, miércoles y
            # viernes"); otherwise the connector belongs to the next part.
            following = self.peek(1)
            if (
                self.is_word(self.peek(), _DAY_LIST_WORDS)
                and following is not None
                and following.kind in {"day", "days"}
            ):
                self.take()
                continue
            return tuple(day for day in WEEK if day in chosen)

    def dayspan(self) -> tuple[str, ...]:
        first = self.take()
        if first.kind == "days":
            return first.days
        following = self.peek(1)
        if (
            self.is_word(self.peek(), _DAY_RANGE_WORDS)
            and following is not None
            and following.kind == "day"
        ):
            self.take()
            last = self.take()
            start, end = WEEK.index(first.days[0]), WEEK.index(last.days[0])
            if start == end:
                raise self.fail(f"the day range {first.text!r} to {last.text!r} is one day")
            span = (end - start) % 7
            return tuple(WEEK[(start + step) % 7] for step in range(span + 1))
        return first.days

    def ranges(self) -> list[tuple[str, str]]:
        found = [self.range()]
        while True:
            following = self.peek(1)
            after_de = self.peek(2)
            if self.is_word(self.peek(), _DAY_LIST_WORDS) and (
                (following is not None and following.kind == "time")
                or (
                    self.is_word(following, _FROM_WORDS)
                    and after_de is not None
                    and after_de.kind == "time"
                )
            ):
                self.take()
                found.append(self.range())
                continue
            return found

    def range(self) -> tuple[str, str]:
        self.skip_from_words()
        opens = self.peek()
        if opens is None or opens.kind != "time":
            raise self.fail("an opening time is missing")
        self.take()
        if not self.is_word(self.peek(), _TIME_RANGE_WORDS):
            raise self.fail(f"no closing time after {opens.text!r}")
        self.take()
        closes = self.peek()
        if closes is None or closes.kind != "time":
            raise self.fail(f"no closing time after {opens.text!r}")
        self.take()
        return self.clock(opens, closes)

    def clock(self, opens: _Token, closes: _Token) -> tuple[str, str]:
        """The two times on the 24-hour clock, or an error where the text allows two readings."""
        open_minutes = self.reading(opens, closes, before=True)
        close_minutes = self.reading(closes, opens, before=False)
        if close_minutes == 24 * 60:
            # 24:00 is not a time; the evaluator reads 23:59 as "until midnight".
            close_minutes = 24 * 60 - 1
        if open_minutes == 24 * 60:
            raise self.fail("nothing opens at 24:00; write 00:00")
        if close_minutes == open_minutes:
            raise self.fail(f"it opens and closes at the same time ({opens.text!r})")
        overnight_is_written = (opens.suffix and closes.suffix) or opens.clock_24 or closes.clock_24
        if close_minutes < open_minutes and not overnight_is_written:
            # "8 a 5" is 8:00-17:00 or a night shift; the text does not say which.
            raise self.fail(
                f"{closes.text!r} is before {opens.text!r}; write the closing time on the"
                " 24-hour clock (17:00) or with p.m."
            )
        return _hhmm(open_minutes), _hhmm(close_minutes)

    def reading(self, time: _Token, other: _Token, *, before: bool) -> int:
        """Minutes after midnight of ``time``. When only ``other`` says a.m. or p.m. ("8 a 5 pm"),
        ``time`` is whichever reading keeps the opening before the closing, if exactly one does."""
        if time.suffix or not other.suffix or time.clock_24:
            return _minutes(time.hour, time.minute, time.suffix)
        anchor = _minutes(other.hour, other.minute, other.suffix)
        readings = {_minutes(time.hour, time.minute, suffix) for suffix in ("am", "pm")}
        fitting = sorted(r for r in readings if (r < anchor if before else r > anchor))
        if len(fitting) != 1:
            raise self.fail(f"{time.text!r} could be a.m. or p.m.; write both times in full")
        return fitting[0]

    def schedule(self, days: tuple[str, ...], hours: tuple[str, str] | None) -> dict[str, Any]:
        opens, closes = hours or ("00:00", "00:00")
        return {
            "freq": "WEEKLY",
            "byday": ",".join(days),
            "opens_at": opens,
            "closes_at": closes,
            "description": self.original.strip(),
        }


def _minutes(hour: int, minute: int, suffix: str) -> int:
    if suffix == "am":
        hour = 0 if hour == 12 else hour
    elif suffix == "pm":
        hour = 12 if hour == 12 else hour + 12
    return hour * 60 + minute


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_hours(text: str) -> list[dict[str, Any]]:
    """HSDS schedules (dicts ScheduleIn accepts) of an hours text; HoursTextError if any part of
    it is not understood exactly."""
    if not isinstance(text, str):
        raise HoursTextError(f"hours {text!r} not understood: not a text")
    return _Parser(text).parse()
