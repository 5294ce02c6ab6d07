"""Crontab schedules, read in a time zone and stepped as Celery steps them (the fields'
rules are :mod:`djqueue.core.cron`), across clock changes included."""

from __future__ import annotations

import datetime
import functools
import zoneinfo
from dataclasses import dataclass

from djqueue.core import conf, cron
from djqueue.core.schedules.base import UTC, CeleryChecks, aware


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
        local = aware(slot).astimezone(self.zone)
        wall = self.spec.next_after(local.replace(tzinfo=None))
        # The previous slot's fold: a slot in the second pass of a repeated hour is
        # followed by the next one in that pass, not by one an hour earlier.
        return wall.replace(tzinfo=self.zone, fold=local.fold).astimezone(UTC)

    def last_at_or_before(self, moment: datetime.datetime) -> datetime.datetime | None:
        local = aware(moment).astimezone(self.zone)
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
        found = self._slot_before(aware(moment) - LOOKBACK)
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
