"""Schedules with a controlled clock: no sleeping, no database."""

import datetime
import zoneinfo

import pytest

from djqueue.core import schedules

UTC = datetime.UTC
PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def paris(*args: int, fold: int = 0) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=PARIS, fold=fold)  # type: ignore[misc]


def slots(schedule: schedules.Schedule, start: datetime.datetime, count: int) -> list[str]:
    found, slot = [], start
    for _ in range(count):
        slot = schedule.next_after(slot)  # type: ignore[assignment]
        found.append(slot.astimezone(PARIS).isoformat())
    return found


def test_crontab_fires_at_local_time_across_both_dst_changes() -> None:
    eight = schedules.crontab(minute=0, hour=8, timezone="Europe/Paris")
    spring = slots(eight, paris(2026, 3, 27, 12), 3)
    assert spring == [
        "2026-03-28T08:00:00+01:00",
        "2026-03-29T08:00:00+02:00",
        "2026-03-30T08:00:00+02:00",
    ]
    autumn = slots(eight, paris(2026, 10, 24, 12), 2)
    assert autumn == ["2026-10-25T08:00:00+01:00", "2026-10-26T08:00:00+01:00"]


def test_no_double_run_in_the_repeated_hour() -> None:
    half_past_two = schedules.crontab(minute=30, hour=2, timezone="Europe/Paris")
    runs = slots(half_past_two, paris(2026, 10, 24, 12), 3)
    assert runs == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
        "2026-10-27T02:30:00+01:00",
    ]


def test_a_time_in_the_missing_hour_runs_once_at_the_old_offset() -> None:
    half_past_two = schedules.crontab(minute=30, hour=2, timezone="Europe/Paris")
    runs = slots(half_past_two, paris(2026, 3, 28, 12), 2)
    assert runs == ["2026-03-29T03:30:00+02:00", "2026-03-30T02:30:00+02:00"]


def test_slots_are_instants_in_utc() -> None:
    eight = schedules.crontab(minute=0, hour=8, timezone="Europe/Paris")
    slot = eight.next_after(paris(2026, 7, 1, 9))
    assert slot == datetime.datetime(2026, 7, 2, 6, tzinfo=UTC)
    assert slot is not None and slot.tzinfo is UTC


def test_invalid_crontab_and_zone_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match=r"crontab minute=61 is invalid: 61 is out of range"):
        schedules.crontab(minute=61)
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        schedules.crontab(timezone="Mars/Olympus")


def test_crontab_in_words() -> None:
    eight = schedules.crontab(minute=0, hour=8, timezone="Europe/Paris")
    assert eight.describe() == "At 08:00 every day, Europe/Paris"


def test_interval_counts_from_its_anchor_not_from_wake_ups() -> None:
    anchor = datetime.datetime(2026, 1, 1, tzinfo=UTC)
    every = schedules.Every(10, anchor)
    # A wake-up at 00:00:09.999 (early) still gives the 00:00:10 slot, once.
    first = every.next_after(anchor)
    assert first == anchor + datetime.timedelta(seconds=10)
    early = anchor + datetime.timedelta(seconds=9, microseconds=999_000)
    assert schedules.due(every, anchor, early) is None
    decision = schedules.due(every, anchor, first + datetime.timedelta(milliseconds=5))
    assert decision == schedules.Decision(first, run=True)
    # Asking again from the slot that ran gives nothing until the next slot.
    assert schedules.due(every, first, first + datetime.timedelta(seconds=1)) is None
    assert every.describe() == "every 10 seconds"
    assert schedules.Every(3600, anchor).describe() == "every 1 hour"


def test_catch_up_policies_after_downtime() -> None:
    anchor = datetime.datetime(2026, 1, 1, tzinfo=UTC)
    every_minute = schedules.Every(60, anchor)
    now = anchor + datetime.timedelta(minutes=30, seconds=20)
    latest = anchor + datetime.timedelta(minutes=30)
    once = schedules.due(every_minute, anchor, now, schedules.CATCH_UP_ONCE)
    assert once == schedules.Decision(latest, run=True)
    first = schedules.due(every_minute, anchor, now, schedules.CATCH_UP_ALL)
    assert first == schedules.Decision(anchor + datetime.timedelta(minutes=1), run=True)
    later = anchor + datetime.timedelta(minutes=32, seconds=45)
    skip = schedules.due(every_minute, anchor, later, schedules.CATCH_UP_SKIP, grace=30)
    assert skip == schedules.Decision(anchor + datetime.timedelta(minutes=32), run=False)
    current = schedules.due(
        every_minute,
        anchor + datetime.timedelta(minutes=29),
        now,
        schedules.CATCH_UP_SKIP,
        grace=30,
    )
    assert current == schedules.Decision(latest, run=True)
    with pytest.raises(ValueError, match="unknown catch-up policy"):
        schedules.due(every_minute, anchor, now, "sometimes")


def test_clocked_runs_once() -> None:
    at = datetime.datetime(2026, 5, 1, 12, tzinfo=UTC)
    clocked = schedules.Clocked(at)
    start = at - datetime.timedelta(days=1)
    assert schedules.due(clocked, start, at - datetime.timedelta(seconds=1)) is None
    assert schedules.due(clocked, start, at) == schedules.Decision(at, run=True)
    assert schedules.due(clocked, at, at + datetime.timedelta(days=365)) is None


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="time-zone aware"):
        schedules.crontab().next_after(datetime.datetime(2026, 1, 1))


def test_catch_up_never_goes_back_before_the_slot_after_a_spring_jump() -> None:
    half_past_two = schedules.crontab(minute=30, hour=2, timezone="Europe/Paris")
    last = paris(2026, 3, 28, 2, 30)
    # On the day the clock jumps from 02:00 to 03:00, 02:30 runs at 03:30: a backward
    # search from just after it would find yesterday's slot instead.
    now = paris(2026, 3, 29, 3, 30, 5)
    assert schedules.due(half_past_two, last, paris(2026, 3, 29, 3, 29)) is None
    decision = schedules.due(half_past_two, last, now)
    assert decision == schedules.Decision(paris(2026, 3, 29, 3, 30).astimezone(UTC), run=True)
