"""Crontab fields: reading them into sets of values, and finding matching wall-clock times.

The syntax and the matching rules are Celery's: each field is a number, a name, a range
(``9-17``, ``22-2`` wraps past the end), a step (``*/15``, ``9-17/2``), or a list of
those (``0,30``, ``0, 30``), or a Python int, list or set. A time matches when all five
fields match: ``day_of_month`` and ``day_of_week`` are both required (cron's rule of
either-or does not apply). There are always exactly these five fields, so a stray space
is an error, never a hidden sixth field.

All the searches here are on naive wall-clock times; :mod:`djqueue.schedules` maps them to
instants in a time zone.
"""

from __future__ import annotations

import calendar
import datetime
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias

# A field as given: a string, an int, or a collection of ints (None reads as "*").
FieldSpec: TypeAlias = str | int | Iterable[int] | None

MINUTE = datetime.timedelta(minutes=1)

DAY_NAMES = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
MONTH_NAMES = tuple(name.lower() for name in calendar.month_name[1:])
# The longest each month can be (February in a leap year).
LONGEST_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

_ITEM = re.compile(r"^(?:(\*)|([0-9a-z]+)(?:-([0-9a-z]+))?)(?:/([0-9]+))?$")


class CronError(ValueError):
    """A crontab field that cannot be read; the message names the field and the rule."""


@dataclass(frozen=True)
class Field:
    """One of the five fields: its name, its bounds and the names it accepts."""

    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    accepts: str = ""

    def value(self, word: str) -> int:
        """A number or a name of this field, checked against its bounds."""
        number = int(word) if word.isdigit() else self._named(word)
        if not self.low <= number <= self.high:
            raise CronError(f"{number} is out of range")
        return number

    def _named(self, word: str) -> int:
        # A full name or its first three letters or more ("tue", "tues", "tuesday").
        found = [i for i, name in enumerate(self.names) if len(word) >= 3 and name.startswith(word)]
        if len(found) != 1:
            other = " (a month name: months go in month_of_year)" if _is_month(word) else ""
            kind = f"a number or a {'day' if self.names == DAY_NAMES else 'month'} name"
            raise CronError(f"{word!r} is not {kind if self.names else 'a number'}{other}")
        return found[0] + self.low

    def span(self, first: int, last: int) -> list[int]:
        """``first`` to ``last``, wrapping past the end when ``last`` is smaller."""
        if last < first:
            return [*range(first, self.high + 1), *range(self.low, last + 1)]
        return list(range(first, last + 1))


MINUTE_FIELD = Field("minute", 0, 59, accepts="0-59")
HOUR_FIELD = Field("hour", 0, 23, accepts="0-23")
DAY_OF_WEEK_FIELD = Field(
    "day_of_week", 0, 6, DAY_NAMES, "0-6 (Sunday is 0) or day names ('mon', 'monday')"
)
DAY_OF_MONTH_FIELD = Field("day_of_month", 1, 31, accepts="1-31")
MONTH_OF_YEAR_FIELD = Field(
    "month_of_year", 1, 12, MONTH_NAMES, "1-12 or month names ('jan', 'january')"
)


def _is_month(word: str) -> bool:
    return len(word) >= 3 and any(name.startswith(word) for name in MONTH_NAMES)


FORMS = (
    "a value, a range ('9-17'; '22-2' wraps around), a step ('*/15', '9-17/2'), a list of "
    "those ('0,30'), '*', or a Python int, list or set of values"
)


def expand(field: Field, spec: Any) -> frozenset[int]:
    """The values ``spec`` stands for in ``field``; raises CronError saying what is wrong."""
    try:
        values = _expand(field, spec)
    except CronError as exc:
        raise CronError(
            f"crontab {field.name}={spec!r} is invalid: {exc}. {field.name} takes "
            f"{field.accepts}, as {FORMS}"
        ) from None
    return values


def _expand(field: Field, spec: Any) -> frozenset[int]:
    if spec is None:
        spec = "*"
    if isinstance(spec, bool):
        raise CronError("a boolean is not a value")
    if isinstance(spec, int):
        return frozenset([field.value(str(spec))]) if spec >= 0 else _negative(spec)
    if isinstance(spec, str):
        return frozenset(_text(field, spec))
    if isinstance(spec, Iterable):
        return frozenset(_iterable(field, spec))
    raise CronError(f"a {type(spec).__name__} is not a field")


def _negative(number: int) -> frozenset[int]:
    raise CronError(f"{number} is out of range")


def _iterable(field: Field, spec: Iterable[Any]) -> list[int]:
    values = list(spec)
    if not values:
        raise CronError("an empty collection matches nothing")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            raise CronError(f"{value!r} is not an int")
        if not field.low <= value <= field.high:
            raise CronError(f"{value} is out of range")
    return values


def _text(field: Field, spec: str) -> list[int]:
    values: list[int] = []
    for item in spec.split(","):
        values.extend(_item(field, item.strip().lower()))
    return values


def _item(field: Field, item: str) -> list[int]:
    if not item:
        raise CronError("an item of the list is empty")
    match = _ITEM.match(item)
    if match is None and item.split() != [item]:
        raise CronError(
            f"{item!r} has a space inside; separate values with commas ('5,1'): a crontab "
            "has five fields and no seconds"
        )
    if match is None:
        raise CronError(f"{item!r} is not a value, a range or a step")
    star, first, last, step = match.groups()
    if star:
        values = list(range(field.low, field.high + 1))
    elif last is None:
        if step is not None:
            raise CronError(f"{item!r}: a step needs '*' or a range before it ('*/{step}')")
        return [field.value(first)]
    else:
        values = field.span(field.value(first), field.value(last))
    if step is not None and int(step) == 0:
        raise CronError(f"{item!r}: a step must be 1 or more")
    return values[:: int(step)] if step is not None else values


@dataclass(frozen=True)
class Spec:
    """Five expanded fields: the sets of minutes, hours, weekdays, days and months."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_week: frozenset[int]
    days_of_month: tuple[int, ...]
    months: tuple[int, ...]

    @classmethod
    def of(
        cls,
        minute: Any,
        hour: Any,
        day_of_week: Any,
        day_of_month: Any,
        month_of_year: Any,
    ) -> Spec:
        """The expanded spec; raises CronError for a bad field or an impossible date."""
        spec = cls(
            tuple(sorted(expand(MINUTE_FIELD, minute))),
            tuple(sorted(expand(HOUR_FIELD, hour))),
            expand(DAY_OF_WEEK_FIELD, day_of_week),
            tuple(sorted(expand(DAY_OF_MONTH_FIELD, day_of_month))),
            tuple(sorted(expand(MONTH_OF_YEAR_FIELD, month_of_year))),
        )
        days = spec.days_of_month
        if not any(day <= LONGEST_MONTH[month - 1] for month in spec.months for day in days):
            raise CronError(
                f"crontab day_of_month={day_of_month!r} never occurs in "
                f"month_of_year={month_of_year!r}"
            )
        return spec

    def matches_day(self, day: datetime.date) -> bool:
        """Whether ``day`` matches the month, the day of the month and the weekday."""
        return (
            day.month in self.months
            and day.day in self.days_of_month
            and (day.weekday() + 1) % 7 in self.days_of_week
        )

    def next_after(self, wall: datetime.datetime) -> datetime.datetime:
        """The first matching minute after the minute of ``wall`` (naive wall-clock time)."""
        start = wall.replace(second=0, microsecond=0) + MINUTE
        for day in self._days_from(start.date()):
            first = (start.hour, start.minute) if day == start.date() else (-1, -1)
            found = self._time_from(first)
            if found is not None:
                return datetime.datetime.combine(day, found)
        raise OverflowError(f"no time matches this crontab after {wall}")  # pragma: no cover

    def last_at_or_before(self, wall: datetime.datetime) -> datetime.datetime | None:
        """The latest matching minute at or before ``wall`` (naive wall-clock time)."""
        for day in self._days_back_from(wall.date()):
            last = (wall.hour, wall.minute) if day == wall.date() else (24, 60)
            found = self._time_back_from(last)
            if found is not None:
                return datetime.datetime.combine(day, found)
        return None

    def _time_from(self, first: tuple[int, int]) -> datetime.time | None:
        for hour in self.hours:
            if hour < first[0]:
                continue
            low = first[1] if hour == first[0] else -1
            minute = next((m for m in self.minutes if m >= low), None)
            if minute is not None:
                return datetime.time(hour, minute)
        return None

    def _time_back_from(self, last: tuple[int, int]) -> datetime.time | None:
        for hour in reversed(self.hours):
            if hour > last[0]:
                continue
            high = last[1] if hour == last[0] else 60
            minute = next((m for m in reversed(self.minutes) if m <= high), None)
            if minute is not None:
                return datetime.time(hour, minute)
        return None

    def _days_from(self, start: datetime.date) -> Iterable[datetime.date]:
        # Month by month: a 29 February on a given weekday can be 28 years away.
        year, month = start.year, start.month
        while year <= datetime.MAXYEAR:
            if month in self.months:
                for day in self._month_days(year, month):
                    if day >= start and self.matches_day(day):
                        yield day
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)

    def _days_back_from(self, end: datetime.date) -> Iterable[datetime.date]:
        year, month = end.year, end.month
        while year >= datetime.MINYEAR:
            if month in self.months:
                for day in reversed(self._month_days(year, month)):
                    if day <= end and self.matches_day(day):
                        yield day
            year, month = (year - 1, 12) if month == 1 else (year, month - 1)

    def _month_days(self, year: int, month: int) -> list[datetime.date]:
        length = calendar.monthrange(year, month)[1]
        return [datetime.date(year, month, day) for day in self.days_of_month if day <= length]


def text(spec: Any) -> str:
    """A field as the text stored for it: strings as given, numbers and lists joined."""
    if spec is None:
        return "*"
    if isinstance(spec, str):
        return spec.strip()
    if isinstance(spec, int) and not isinstance(spec, bool):
        return str(spec)
    if isinstance(spec, Iterable):
        values = list(spec)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return ",".join(str(value) for value in sorted(values))
    return repr(spec)


def describe(spec: Spec, fields: dict[str, str]) -> str:
    """The fields in words: "At 08:00 every day", "At minute */15 of hour 9-17 on mon-fri"."""
    every_minute = len(spec.minutes) == 60
    every_hour = len(spec.hours) == 24
    if len(spec.minutes) == 1 and len(spec.hours) == 1:
        when = f"At {spec.hours[0]:02d}:{spec.minutes[0]:02d}"
    elif every_minute:
        when = "Every minute" + ("" if every_hour else f" of hour {fields['hour']}")
    else:
        hours = "every hour" if every_hour else f"hour {fields['hour']}"
        when = f"At minute {fields['minute']} of {hours}"
    days = []
    if len(spec.days_of_month) < 31:
        days.append(f"on day {fields['day_of_month']} of the month")
    if len(spec.days_of_week) < 7:
        days.append(f"{'when that day is' if days else 'on'} {fields['day_of_week']}")
    if len(spec.months) < 12:
        days.append(f"in month {fields['month_of_year']}")
    return f"{when} {' '.join(days) or 'every day'}"
