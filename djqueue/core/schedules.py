"""Schedules: when a periodic task is due.

Every schedule answers two questions about instants (aware datetimes, compared in UTC):
``next_after(slot)``, the first slot after a given one, and ``last_at_or_before(moment)``,
the latest slot not after a moment. The scheduler computes a task's next slot from its
previous slot, never from the current time, so a timer that wakes early cannot produce a
slot twice. Crontabs are read and stepped as Celery reads and steps them
(:mod:`djqueue.core.cron`); sun events are computed with PyEphem, as Celery computes them.
"""

from __future__ import annotations

import datetime
import functools
import typing
import zoneinfo
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import ephem

from djqueue.core import conf, cron

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


class schedstate(NamedTuple):  # Celery's name
    """Celery's answer to "is it due?": whether it is, and the seconds to the next check."""

    is_due: bool
    next: float


class CeleryChecks:
    """Celery's questions to a schedule, answered from its slots.

    A naive ``last_run_at`` or ``now`` is read as UTC, as Celery reads it; ``now``
    defaults to the current time.
    """

    def next_after(self, slot: datetime.datetime) -> datetime.datetime | None:
        raise NotImplementedError

    def remaining_estimate(
        self, last_run_at: datetime.datetime, now: datetime.datetime | None = None
    ) -> datetime.timedelta:
        """How long until the next run after ``last_run_at`` (negative: overdue)."""
        upcoming = self.next_after(_utc(last_run_at))
        if upcoming is None:
            return datetime.timedelta.max
        return upcoming - _utc(now or datetime.datetime.now(UTC))

    def is_due(
        self, last_run_at: datetime.datetime, now: datetime.datetime | None = None
    ) -> schedstate:
        """Whether a run is due, and in how many seconds to ask again."""
        now = _utc(now or datetime.datetime.now(UTC))
        remaining = max(self.remaining_estimate(last_run_at, now).total_seconds(), 0)
        if remaining > 0:
            return schedstate(False, remaining)
        return schedstate(True, self._after_run(now))

    def _after_run(self, now: datetime.datetime) -> float:
        return max(self.remaining_estimate(now, now).total_seconds(), 0)


def _utc(moment: datetime.datetime) -> datetime.datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


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


@dataclass(frozen=True, eq=False)
class Crontab(CeleryChecks):
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
    # Empty: the TIMEZONE setting (Celery's timezone), read when the crontab is used, so
    # that a crontab can be written in settings.py before settings are loaded.
    timezone: str = ""

    def __post_init__(self) -> None:
        if self.timezone:
            self.zone  # noqa: B018 - validates the time zone name
        self.spec  # noqa: B018 - validates the fields

    def __eq__(self, other: object) -> bool:
        # Equal when they fire at the same moments: a crontab without a zone equals the
        # one that names the zone it is read in.
        if not isinstance(other, Crontab):
            return NotImplemented
        return self.fields() == other.fields()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.fields().items())))

    @classmethod
    def from_string(cls, expression: str, timezone: str = "") -> Crontab:
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
    def zone_name(self) -> str:
        """The time zone the fields are read in: ``timezone``, else the setting."""
        return self.timezone or conf.string("TIMEZONE")

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return _zone(self.zone_name)

    def fields(self) -> dict[str, str]:
        """The fields as stored in a ``CrontabSchedule`` row."""
        return {
            "minute": cron.text(self.minute),
            "hour": cron.text(self.hour),
            "day_of_week": cron.text(self.day_of_week),
            "day_of_month": cron.text(self.day_of_month),
            "month_of_year": cron.text(self.month_of_year),
            "timezone": self.zone_name,
        }

    def next_after(self, slot: datetime.datetime) -> datetime.datetime | None:
        local = _aware(slot).astimezone(self.zone)
        wall = self.spec.next_after(local.replace(tzinfo=None))
        # The previous slot's fold: a slot in the second pass of a repeated hour is
        # followed by the next one in that pass, not by one an hour earlier.
        return wall.replace(tzinfo=self.zone, fold=local.fold).astimezone(UTC)

    def last_at_or_before(self, moment: datetime.datetime) -> datetime.datetime | None:
        local = _aware(moment).astimezone(self.zone)
        wall = self.spec.last_at_or_before(local.replace(tzinfo=None))
        if wall is not None:
            direct = wall.replace(tzinfo=self.zone).astimezone(UTC)
            # No clock change from some hours before that time until ``moment`` (no zone
            # changes twice within hours): the slots there are the matching times.
            recent = direct >= moment - LOOKBACK
            if recent and _offset(direct - LOOKBACK, self.zone) == local.utcoffset():
                return direct
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
        return f"{cron.describe(self.spec, self.fields())}, {self.zone_name}"


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
    timezone: str = "",
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
class Interval(CeleryChecks):
    """Celery's ``schedule(run_every=...)``: a run every ``run_every``, to the microsecond.

    As an entry of ``BEAT_SCHEDULE`` it becomes an interval counted from the task's
    start (see :class:`Every`); on its own, the next run is ``run_every`` after the last.
    """

    run_every: datetime.timedelta

    def __post_init__(self) -> None:
        if self.run_every <= datetime.timedelta(0):
            raise ValueError(f"an interval must be positive, not {self.run_every!r}")

    @property
    def seconds(self) -> float:
        return self.run_every.total_seconds()

    def next_after(self, slot: datetime.datetime) -> datetime.datetime | None:
        return (_aware(slot) + self.run_every).astimezone(UTC)

    def _after_run(self, now: datetime.datetime) -> float:
        return self.seconds

    def describe(self) -> str:
        return f"every {duration(self.seconds)}"


def schedule(run_every: float | datetime.timedelta, relative: bool = False) -> Interval:
    """An interval schedule, with Celery's arguments: ``schedule(run_every=timedelta(...))``.

    ``run_every`` is a timedelta or a number of seconds, fractions included.
    """
    if relative:
        raise ValueError(
            "schedule(relative=True) is not supported: intervals run at fixed steps from "
            "the task's start; for runs on the clock's boundaries use crontab(...), for "
            "example crontab(minute='*/15')"
        )
    if isinstance(run_every, bool) or not isinstance(run_every, datetime.timedelta | int | float):
        raise TypeError(f"run_every must be a timedelta or a number of seconds, not {run_every!r}")
    if not isinstance(run_every, datetime.timedelta):
        run_every = datetime.timedelta(seconds=run_every)
    return Interval(run_every)


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


# Celery's events: (the horizon the sun crosses, which crossing, whether its centre or its
# upper edge counts). No atmospheric refraction is modelled; sunrise and sunset take the
# upper edge 34 arc minutes below the horizon, as a stand-in for it.
_SOLAR: dict[str, tuple[str, str, bool]] = {
    "dawn_astronomical": ("-18", "rising", True),
    "dawn_nautical": ("-12", "rising", True),
    "dawn_civil": ("-6", "rising", True),
    "sunrise": ("-0:34", "rising", False),
    "solar_noon": ("0", "transit", False),
    "sunset": ("-0:34", "setting", False),
    "dusk_civil": ("-6", "setting", True),
    "dusk_nautical": ("-12", "setting", True),
    "dusk_astronomical": ("-18", "setting", True),
}
SOLAR_EVENTS = tuple(_SOLAR)
# Names of earlier releases, read as the event they meant.
SOLAR_ALIASES = {"dawn": "dawn_civil", "noon": "solar_noon", "dusk": "dusk_civil"}
# How many days a search for an event goes on before there is none (polar day or night
# can hide an event for months, never for a whole year).
SOLAR_SEARCH_DAYS = 366
SECOND = datetime.timedelta(seconds=1)


@dataclass(frozen=True)
class Solar(CeleryChecks):
    """Daily at a sun event at a place: ``solar("sunset", -37.81, 144.96)``.

    Events, names and arguments are Celery's, and so is the astronomy (PyEphem with
    Celery's horizons). A slot is the event's time rounded up to the whole second, so
    that it never comes before the event and is the same however it was computed.
    """

    event: str
    lat: float
    lon: float

    def __post_init__(self) -> None:
        event = SOLAR_ALIASES.get(self.event, self.event)
        if event not in _SOLAR:
            raise ValueError(
                f"unknown solar event {self.event!r}; use one of {', '.join(SOLAR_EVENTS)}"
            )
        object.__setattr__(self, "event", event)
        if not -90 <= self.lat <= 90 or not -180 <= self.lon <= 180:
            raise ValueError(
                f"latitude (lat) must be within ±90 and longitude (lon) within ±180, not "
                f"({self.lat}, {self.lon})"
            )

    @property
    def latitude(self) -> float:
        return self.lat

    @property
    def longitude(self) -> float:
        return self.lon

    def next_after(self, slot: datetime.datetime) -> datetime.datetime | None:
        start = _aware(slot).astimezone(UTC)
        found = self._search(start, forward=True)
        while found is not None:
            rounded = _ceil(self._settled(found))
            if rounded > start:
                return rounded
            # The same event, already taken as a slot: the next one.
            found = self._search(found + datetime.timedelta(minutes=1), forward=True)
        return None

    def last_at_or_before(self, moment: datetime.datetime) -> datetime.datetime | None:
        end = _aware(moment).astimezone(UTC)
        found = self._search(end, forward=False)
        while found is not None:
            rounded = _ceil(self._settled(found))
            if rounded <= end:
                return rounded
            found = self._search(found - datetime.timedelta(minutes=1), forward=False)
        return None

    def _settled(self, found: datetime.datetime) -> datetime.datetime:
        """``found`` computed again from a fixed start, so that it does not vary by the
        hundredths of a second that depend on where a search began."""
        start = found.replace(minute=0, second=0, microsecond=0) - datetime.timedelta(hours=2)
        settled = self._search(start, forward=True)
        if settled is None or abs(settled - found) > datetime.timedelta(minutes=10):
            return found
        return settled

    def _search(self, start: datetime.datetime, forward: bool) -> datetime.datetime | None:
        """The first event after (or before) ``start``, as Celery's ephem search finds it."""
        horizon, crossing, centre = _SOLAR[self.event]
        observer = ephem.Observer()
        observer.lat, observer.lon = str(self.lat), str(self.lon)
        observer.elev, observer.pressure, observer.horizon = 0, 0, horizon
        when = ephem.Date(start.replace(tzinfo=None))
        observer.date = when
        find = getattr(observer, f"{'next' if forward else 'previous'}_{crossing}")
        step = observer.next_antitransit if forward else observer.previous_antitransit
        options = {"use_center": True} if centre else {}
        sun = ephem.Sun()
        for _ in range(SOLAR_SEARCH_DAYS):
            try:
                found = find(sun, start=when, **options)
            except ephem.CircumpolarError:  # not that day (polar day or night): the next
                when = step(sun, start=when)
                continue
            return typing.cast(datetime.datetime, found.datetime()).replace(tzinfo=UTC)
        return None

    def describe(self) -> str:
        return f"at {self.event} at ({self.lat:g}, {self.lon:g})"


def _ceil(moment: datetime.datetime) -> datetime.datetime:
    if moment.microsecond:
        return moment.replace(microsecond=0) + SECOND
    return moment


def solar(
    event: str,
    lat: float | None = None,
    lon: float | None = None,
    *,
    latitude: float | None = None,
    longitude: float | None = None,
) -> Solar:
    """A daily schedule at a sun event, with Celery's arguments: ``solar(event, lat, lon)``.

    ``latitude`` and ``longitude`` are accepted for ``lat`` and ``lon``, as earlier
    releases named them.
    """
    lat = _one_of("lat", lat, "latitude", latitude)
    lon = _one_of("lon", lon, "longitude", longitude)
    return Solar(event, float(lat), float(lon))


def _one_of(name: str, value: float | None, alias: str, other: float | None) -> float:
    if value is not None and other is not None:
        raise TypeError(f"give {name} or {alias}, not both")
    if value is None and other is None:
        raise TypeError(f"solar() needs {name} (degrees)")
    return value if value is not None else typing.cast(float, other)


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
