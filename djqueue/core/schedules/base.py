"""What every schedule shares: the questions the scheduler asks (:class:`Schedule`), the
ones Celery asks (:class:`CeleryChecks`), aware instants, and durations in words."""

from __future__ import annotations

import datetime
from typing import NamedTuple, Protocol

UTC = datetime.UTC


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


def aware(moment: datetime.datetime) -> datetime.datetime:
    """``moment``, refused (ValueError) when it has no time zone."""
    if moment.tzinfo is None:
        raise ValueError(f"schedule instants must be time-zone aware, not {moment!r}")
    return moment


def duration(seconds: float) -> str:
    """``seconds`` in words: "10 seconds", "1 hour", "2 days"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} second{'s' if seconds != 1 else ''}"
