"""Schedules by the clock's arithmetic: Celery's interval (``schedule(run_every=...)``),
an interval counted from a task's start, and a single moment."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from djqueue.core.schedules.base import UTC, CeleryChecks, aware, duration


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
        return (aware(slot) + self.run_every).astimezone(UTC)

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
        aware(self.anchor)

    @property
    def step(self) -> datetime.timedelta:
        return datetime.timedelta(seconds=self.seconds)

    def next_after(self, slot: datetime.datetime) -> datetime.datetime | None:
        # Counted from the anchor, so that slots never drift with the scheduler's timing.
        steps = max(0, (aware(slot) - self.anchor) // self.step + 1)
        return (self.anchor + steps * self.step).astimezone(UTC)

    def last_at_or_before(self, moment: datetime.datetime) -> datetime.datetime | None:
        if aware(moment) < self.anchor:
            return None
        return (self.anchor + ((moment - self.anchor) // self.step) * self.step).astimezone(UTC)

    def describe(self) -> str:
        return f"every {duration(self.seconds)}"


@dataclass(frozen=True)
class Clocked:
    """Once, at ``at``."""

    at: datetime.datetime

    def __post_init__(self) -> None:
        aware(self.at)

    def next_after(self, slot: datetime.datetime) -> datetime.datetime | None:
        return self.at.astimezone(UTC) if aware(slot) < self.at else None

    def last_at_or_before(self, moment: datetime.datetime) -> datetime.datetime | None:
        return self.at.astimezone(UTC) if self.at <= aware(moment) else None

    def describe(self) -> str:
        return f"once at {self.at.isoformat()}"
