"""Interval schedules and Celery's questions to a schedule (remaining_estimate, is_due)."""

import datetime

import pytest

from djqueue import schedules

UTC = datetime.UTC
START = datetime.datetime(2026, 1, 1, tzinfo=UTC)


def test_schedule_takes_a_timedelta_or_seconds_with_fractions() -> None:
    assert schedules.schedule(run_every=datetime.timedelta(seconds=1.5)).seconds == 1.5
    assert schedules.schedule(0.25).run_every == datetime.timedelta(milliseconds=250)
    assert schedules.schedule(10) == schedules.schedule(datetime.timedelta(seconds=10))
    assert schedules.schedule(0.5).describe() == "every 0.5 seconds"


def test_bad_intervals_are_refused() -> None:
    with pytest.raises(ValueError, match="an interval must be positive"):
        schedules.schedule(0)
    with pytest.raises(ValueError, match=r"relative=True\) is not supported.*crontab\(minute="):
        schedules.schedule(60, relative=True)
    with pytest.raises(TypeError, match="run_every must be a timedelta or a number"):
        schedules.schedule("10")  # type: ignore[arg-type]


def test_an_anchored_interval_keeps_fractional_steps_exact() -> None:
    every = schedules.Every(0.1, START)
    slot = START
    for _ in range(1000):
        slot = every.next_after(slot)  # type: ignore[assignment]
    assert slot == START + datetime.timedelta(seconds=100)
    assert every.last_at_or_before(START + datetime.timedelta(seconds=0.35)) == (
        START + datetime.timedelta(seconds=0.3)
    )


def test_remaining_estimate_and_is_due_as_celery_answers_them() -> None:
    every = schedules.schedule(datetime.timedelta(seconds=30))
    assert every.remaining_estimate(START, now=START + datetime.timedelta(seconds=10)) == (
        datetime.timedelta(seconds=20)
    )
    assert every.is_due(START, now=START + datetime.timedelta(seconds=10)) == (False, 20.0)
    # Due: ask again one interval later.
    assert every.is_due(START, now=START + datetime.timedelta(seconds=31)) == (True, 30.0)
    eight = schedules.crontab(minute=0, hour=8)
    nine = START.replace(hour=9)
    assert eight.is_due(START, now=nine) == schedules.schedstate(True, 23 * 3600.0)
    assert eight.is_due(START, now=START.replace(hour=7)) == (False, 3600.0)
    # A naive time is read as UTC, as Celery reads it.
    assert eight.remaining_estimate(datetime.datetime(2026, 1, 1), now=START) == (
        datetime.timedelta(hours=8)
    )
