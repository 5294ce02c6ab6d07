"""Schedules: when a periodic task is due.

Every schedule answers two questions about instants (aware datetimes, compared in UTC):
``next_after(slot)``, the first slot after a given one, and ``last_at_or_before(moment)``,
the latest slot not after a moment. The scheduler computes a task's next slot from its
previous slot, never from the current time, so a timer that wakes early cannot produce a
slot twice. Crontabs are read and stepped as Celery reads and steps them
(:mod:`djqueue.core.cron`); sun positions come from ``astral``.
"""

from __future__ import annotations

import datetime
import functools
import zoneinfo
from dataclasses import dataclass
from typing import Protocol

from astral import Observer, sun

from djqueue.core import cron

UTC = datetime.UTC

# How missed slots are handled when the scheduler was not running.
CATCH_UP_ONCE = "once"  # run once for the whole missed period (the latest missed slot)
CATCH_UP_ALL = "all"  # run every missed slot, one after the other
CATCH_UP_SKIP = "skip"  # run none of them; wait for the next slot
CATCH_UP_POLICIES = (CATCH_UP_ONCE, CATCH_UP_ALL, CATCH_UP_SKIP)


class Schedule(Protocol):
    """What the scheduler needs of a schedule."""

    def next_after(self, slot: datetime.datetime) -> datetime.datetime | None:
        """The first slot strictly after ``slot`` (None: no more slots)."""

    def last_at_or_before(self, moment: datetime.datetime) -> datetime.datetime | None:
        """The latest slot at or before ``moment`` (None: none yet)."""

    def describe(self) -> str:
        """The schedule in words, for people."""


def _aware(moment: datetime.datetime) -> datetime.datetime:
    if moment.tzinfo is None:
        raise ValueError(f"schedule instants must be time-zone aware, not {moment!r}")
    return moment


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name like 'Europe/Paris'"
        ) from None


@dataclass(frozen=True)
class Crontab:
    """A crontab read in a time zone: ``crontab(minute=0, hour=8)``.

    Fields follow Celery's syntax and rules (see :mod:`djqueue.core.cron`). Slots are wall-clock
    times in ``timezone``: the next slot is the first matching minute after the previous
    slot's wall-clock minute, read with the previous slot's side of a repeated hour. So a
    slot in the hour that the clock skips in spring runs as many minutes after the jump as
    it lies after the start of the gap (02:30 runs at 03:30 when 02:00 becomes 03:00), any
    other skipped slots before that time do not run, and in autumn the repeated hour's
    slots run once, on their first pass.
    """

    minute: str = "*"
    hour: str = "*"
    day_of_week: str = "*"
    day_of_month: str = "*"
    month_of_year: str = "*"
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        self.zone  # noqa: B018 - validates the time zone name
        self.spec  # noqa: B018 - validates the fields

    @classmethod
    def from_string(cls, expression: str, timezone: str = "UTC") -> Crontab:
        """A crontab from cron's five fields: minute, hour, day of month, month, weekday."""
        fields = expression.split()
        if len(fields) != 5:
            raise ValueError(
                f"a cron expression has 5 fields (minute hour day_of_month month_of_year "
                f"day_of_week), not {len(fields)}: {expression!r}"
            )
        minute, hour, day_of_month, month_of_year, day_of_week = fields
        return crontab(minute, hour, day_of_week, day_of_month, month_of_year, timezone)

    @functools.cached_property
    def spec(self) -> cron.Spec:
        """The expanded fields."""
        return cron.Spec.of(
            self.minute, self.hour, self.day_of_week, self.day_of_month, self.month_of_year
        )

    @property
    def expression(self) -> str:
        """The five fields, in cron's order."""
        fields = (self.minute, self.hour, self.day_of_month, self.month_of_year, self.day_of_week)
        return " ".join(cron.text(field).replace(" ", "") for field in fields)

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return _zone(self.timezone)

    def fields(self) -> dict[str, str]:
        """The fields as stored in a ``CrontabSchedule`` row."""
        return {
            "minute": cron.text(self.minute),
            "hour": cron.text(self.hour),
            "day_of_week": cron.text(self.day_of_week),
            "day_of_month": cron.text(self.day_of_month),
            "month_of_year": cron.text(self.month_of_year),
            "timezone": self.timezone,
        }

    def next_after(self, slot: datetime.datetime) -> datetime.datetime | None:
        local = _aware(slot).astimezone(self.zone)
        wall = self.spec.next_after(local.replace(tzinfo=None))
        # The previous slot's fold: a slot in the second pass of a repeated hour is
        # followed by the next one in that pass, not by one an hour earlier.
        return wall.replace(tzinfo=self.zone, fold=local.fold).astimezone(UTC)

    def last_at_or_before(self, moment: datetime.datetime) -> datetime.datetime | None:
        # Near a clock change the slots are not simply the matching wall-clock times
        # (see the class): walk forward from a slot some hours back, as the scheduler does.
        found = self._slot_before(_aware(moment) - LOOKBACK)
        if found is None:
            return None
        while (following := self.next_after(found)) is not None and following <= moment:
            found = following
        return found

    def _slot_before(self, instant: datetime.datetime) -> datetime.datetime | None:
        """A matching time at or before ``instant`` from which walking forward is safe."""
        wall = self.spec.last_at_or_before(instant.astimezone(self.zone).replace(tzinfo=None))
        if wall is None:
            return None
        found = wall.replace(tzinfo=self.zone).astimezone(UTC)
        if _offset(found - LOOKBACK, self.zone) != _offset(found, self.zone):
            # Just after a clock change, a matching time may be one the walk skips.
            return self._slot_before(found - LOOKBACK)
        return found

    def describe(self) -> str:
        return f"{cron.describe(self.spec, self.fields())}, {self.timezone}"


# How far back a walk to the latest crontab slot starts: more than any clock change.
LOOKBACK = datetime.timedelta(hours=3)


def _offset(instant: datetime.datetime, zone: zoneinfo.ZoneInfo) -> datetime.timedelta | None:
    return instant.astimezone(zone).utcoffset()


def crontab(
    minute: cron.FieldSpec = "*",
    hour: cron.FieldSpec = "*",
    day_of_week: cron.FieldSpec = "*",
    day_of_month: cron.FieldSpec = "*",
    month_of_year: cron.FieldSpec = "*",
    timezone: str = "UTC",
) -> Crontab:
    """A crontab schedule, with Celery's argument names, order and field syntax.

    Each field is a string (``"*/15"``, ``"mon-fri"``, ``"0, 30"``), an int, or a list or
    set of ints. Raises ValueError naming the field and what it accepts.
    """
    cron.Spec.of(minute, hour, day_of_week, day_of_month, month_of_year)
    return Crontab(
        cron.text(minute),
        cron.text(hour),
        cron.text(day_of_week),
        cron.text(day_of_month),
        cron.text(month_of_year),
        timezone,
    )


@dataclass(frozen=True)
class Every:
    """Every ``seconds`` seconds, counted from an anchor slot (the first run)."""

    seconds: float
    anchor: datetime.datetime

    def __post_init__(self) -> None:
        if self.seconds <= 0:
            raise ValueError(f"an interval must be positive, not {self.seconds}s")
        _aware(self.anchor)

    @property
    def step(self) -> datetime.timedelta:
        return datetime.timedelta(seconds=self.seconds)

    def next_after(self, slot: datetime.datetime) -> datetime.datetime | None:
        # Counted from the anchor, so that slots never drift with the scheduler's timing.
        steps = max(0, (_aware(slot) - self.anchor) // self.step + 1)
        return (self.anchor + steps * self.step).astimezone(UTC)

    def last_at_or_before(self, moment: datetime.datetime) -> datetime.datetime | None:
        if _aware(moment) < self.anchor:
            return None
        return (self.anchor + ((moment - self.anchor) // self.step) * self.step).astimezone(UTC)

    def describe(self) -> str:
        return f"every {duration(self.seconds)}"


@dataclass(frozen=True)
class Clocked:
    """Once, at ``at``."""

    at: datetime.datetime

    def __post_init__(self) -> None:
        _aware(self.at)

    def next_after(self, slot: datetime.datetime) -> datetime.datetime | None:
        return self.at.astimezone(UTC) if _aware(slot) < self.at else None

    def last_at_or_before(self, moment: datetime.datetime) -> datetime.datetime | None:
        return self.at.astimezone(UTC) if self.at <= _aware(moment) else None

    def describe(self) -> str:
        return f"once at {self.at.isoformat()}"


SOLAR_EVENTS = ("dawn", "sunrise", "noon", "sunset", "dusk")


@dataclass(frozen=True)
class Solar:
    """Daily at a sun event (dawn, sunrise, noon, sunset, dusk) at a place."""

    event: str
    latitude: float
    longitude: float

    def __post_init__(self) -> None:
        if self.event not in SOLAR_EVENTS:
            raise ValueError(f"unknown solar event {self.event!r}; use one of {SOLAR_EVENTS}")
        if not -90 <= self.latitude <= 90 or not -180 <= self.longitude <= 180:
            raise ValueError(
                f"latitude must be within ±90 and longitude within ±180, not "
                f"({self.latitude}, {self.longitude})"
            )

    def _on(self, day: datetime.date) -> datetime.datetime | None:
        observer = Observer(latitude=self.latitude, longitude=self.longitude)
        try:
            moment: datetime.datetime = getattr(sun, self.event)(observer, date=day)
        except ValueError:  # the sun never reaches that position that day (polar regions)
            return None
        return moment.replace(microsecond=0).astimezone(UTC)

    def next_after(self, slot: datetime.datetime) -> datetime.datetime | None:
        day = _aware(slot).astimezone(UTC).date() - datetime.timedelta(days=1)
        for _ in range(370):
            found = self._on(day)
            if found is not None and found > slot:
                return found
            day += datetime.timedelta(days=1)
        return None

    def last_at_or_before(self, moment: datetime.datetime) -> datetime.datetime | None:
        day = _aware(moment).astimezone(UTC).date() + datetime.timedelta(days=1)
        for _ in range(370):
            found = self._on(day)
            if found is not None and found <= moment:
                return found
            day -= datetime.timedelta(days=1)
        return None

    def describe(self) -> str:
        return f"at {self.event} at ({self.latitude:g}, {self.longitude:g})"


def solar(event: str, latitude: float, longitude: float) -> Solar:
    """A daily schedule at a sun event, with Celery's argument names."""
    return Solar(event, float(latitude), float(longitude))


@dataclass(frozen=True)
class Decision:
    """What to do now: ``slot`` becomes the task's last slot; enqueue it if ``run``."""

    slot: datetime.datetime
    run: bool


def due(
    schedule: Schedule,
    last_slot: datetime.datetime,
    now: datetime.datetime,
    catch_up: str = CATCH_UP_ONCE,
    grace: float = 60.0,
) -> Decision | None:
    """What is due at ``now``, given the last slot that ran (or the start); None: nothing.

    ``last_slot`` is the previous slot, not the previous wake-up: the answer depends only
    on the schedule, the slots and ``now``, so asking twice for the same ``last_slot``
    gives the same slot (which the database then refuses to enqueue twice). A slot is
    missed when it is more than ``grace`` seconds old.
    """
    if catch_up not in CATCH_UP_POLICIES:
        raise ValueError(f"unknown catch-up policy {catch_up!r}; use one of {CATCH_UP_POLICIES}")
    upcoming = schedule.next_after(last_slot)
    if upcoming is None or upcoming > now:
        return None
    if catch_up == CATCH_UP_ALL:
        return Decision(upcoming, run=True)
    # Never before ``upcoming``: in a skipped DST hour, cron runs the missing time just
    # after the jump, which a backward search from ``now`` does not find.
    latest = max(upcoming, schedule.last_at_or_before(now) or upcoming)
    if catch_up == CATCH_UP_ONCE:
        return Decision(latest, run=True)
    # Skip: only a slot that is due now runs; older ones are passed over.
    return Decision(latest, run=(now - latest).total_seconds() <= grace)


def duration(seconds: float) -> str:
    """``seconds`` in words: "10 seconds", "1 hour", "2 days"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} second{'s' if seconds != 1 else ''}"
