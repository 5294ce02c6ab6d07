"""The scheduler's decisions with a controlled clock: no sleeping, no database."""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import logging
import zoneinfo
from dataclasses import dataclass, field

import pytest

from djqueue.beat import scheduler as beat
from djqueue.beat.entries import Entry, EntryError
from djqueue.core import schedules

UTC = datetime.UTC
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
START = datetime.datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class FakeStore:
    """Records what the scheduler fires; a (task, slot) pair is enqueued once at most."""

    entries: list[Entry]
    fired: list[tuple[int, datetime.datetime, bool, bool]] = field(default_factory=list)
    runs: set[tuple[int, datetime.datetime]] = field(default_factory=set)
    failing: set[int] = field(default_factory=set)

    def load(self) -> tuple[list[Entry], dict[int, tuple[str, str]]]:
        return list(self.entries), {}

    def fire(self, item: Entry, decision: schedules.Decision, finish: bool) -> bool:
        if item.id in self.failing:
            raise EntryError(f"periodic task {item.name!r} cannot be sent: broken")
        self.fired.append((item.id, decision.slot, decision.run, finish))
        if not decision.run or (item.id, decision.slot) in self.runs:
            return False
        self.runs.add((item.id, decision.slot))
        return True

    def ran(self) -> list[datetime.datetime]:
        return [slot for _, slot, run, _ in self.fired if run]


def make(schedule: schedules.Schedule, after: datetime.datetime, **options: object) -> Entry:
    return Entry(
        id=1,
        name="report",
        task="tests.testapp.tasks.noop",
        schedule=schedule,
        after=after,
        **options,
    )  # type: ignore[arg-type]


def scheduler(*entries: Entry) -> tuple[beat.Scheduler, FakeStore]:
    store = FakeStore(list(entries))
    made = beat.Scheduler(store, grace=30)
    made.load()
    return made, store


def tick_every(
    made: beat.Scheduler, start: datetime.datetime, end: datetime.datetime, step: datetime.timedelta
) -> None:
    now = start
    while now <= end:
        made.tick(now)
        now += step


def local(slots: list[datetime.datetime]) -> list[str]:
    return [slot.astimezone(PARIS).isoformat() for slot in slots]


def test_autumn_dst_change_runs_the_repeated_hour_once() -> None:
    half_past_two = schedules.crontab(minute=30, hour=2, timezone="Europe/Paris")
    start = datetime.datetime(2026, 10, 24, 12, tzinfo=PARIS)
    made, store = scheduler(make(half_past_two, start))
    tick_every(made, start, start + datetime.timedelta(days=2), datetime.timedelta(minutes=1))
    assert local(store.ran()) == ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]


def test_spring_dst_change_runs_the_missing_time_once_an_hour_later() -> None:
    # 02:30 does not exist on the day 02:00 becomes 03:00: it runs at 02:30 of the old
    # offset, which the clock shows as 03:30.
    half_past_two = schedules.crontab(minute=30, hour=2, timezone="Europe/Paris")
    start = datetime.datetime(2026, 3, 28, 12, tzinfo=PARIS)
    made, store = scheduler(make(half_past_two, start))
    tick_every(made, start, start + datetime.timedelta(days=2), datetime.timedelta(minutes=1))
    assert local(store.ran()) == ["2026-03-29T03:30:00+02:00", "2026-03-30T02:30:00+02:00"]


def test_an_early_wake_up_fires_nothing_and_the_slot_fires_once() -> None:
    every = schedules.Every(10, START)
    made, store = scheduler(make(every, START))
    slot = START + datetime.timedelta(seconds=10)
    # The timer wakes a millisecond early: nothing is due, and the wait is the remainder.
    assert made.tick(slot - datetime.timedelta(milliseconds=1)) == slot
    assert store.fired == []
    assert made.tick(slot + datetime.timedelta(milliseconds=1)) == slot + every.step
    # Waking again within the same slot (a notification, say) fires nothing more.
    made.tick(slot + datetime.timedelta(milliseconds=2))
    made.tick(slot + datetime.timedelta(seconds=9, milliseconds=999))
    assert store.ran() == [slot]


def test_two_schedulers_with_the_same_view_enqueue_a_slot_once() -> None:
    every = schedules.Every(1, START)
    first, store = scheduler(make(every, START))
    second = beat.Scheduler(store)
    second.load()
    now = START + datetime.timedelta(seconds=1, milliseconds=5)
    first.tick(now)
    second.tick(now)
    assert store.ran() == [START + datetime.timedelta(seconds=1)] * 2  # both tried...
    assert store.runs == {(1, START + datetime.timedelta(seconds=1))}  # ...one got in


def test_catch_up_once_runs_the_latest_missed_slot() -> None:
    every_minute = schedules.Every(60, START)
    made, store = scheduler(make(every_minute, START))
    made.tick(START + datetime.timedelta(minutes=30, seconds=20))
    assert store.ran() == [START + datetime.timedelta(minutes=30)]


def test_catch_up_all_runs_every_missed_slot_in_order() -> None:
    every_minute = schedules.Every(60, START)
    made, store = scheduler(make(every_minute, START, catch_up=schedules.CATCH_UP_ALL))
    made.tick(START + datetime.timedelta(minutes=30, seconds=20))
    assert store.ran() == [START + datetime.timedelta(minutes=n) for n in range(1, 31)]


def test_catch_up_all_is_spread_over_ticks_in_batches() -> None:
    every_second = schedules.Every(1, START)
    store = FakeStore([make(every_second, START, catch_up=schedules.CATCH_UP_ALL)])
    made = beat.Scheduler(store, batch=100)
    made.load()
    now = START + datetime.timedelta(seconds=250)
    made.tick(now)
    assert len(store.ran()) == 100
    made.tick(now)
    made.tick(now)
    assert store.ran() == [START + datetime.timedelta(seconds=n) for n in range(1, 251)]


def test_catch_up_skip_passes_over_missed_slots_then_runs_on_time() -> None:
    every_minute = schedules.Every(60, START)
    made, store = scheduler(make(every_minute, START, catch_up=schedules.CATCH_UP_SKIP))
    made.tick(START + datetime.timedelta(minutes=30, seconds=40))
    assert store.fired == [(1, START + datetime.timedelta(minutes=30), False, False)]
    made.tick(START + datetime.timedelta(minutes=31, seconds=1))
    assert store.ran() == [START + datetime.timedelta(minutes=31)]


def test_clocked_runs_once_then_disables_itself() -> None:
    at = START + datetime.timedelta(hours=1)
    made, store = scheduler(make(schedules.Clocked(at), START))
    tick_every(made, START, at + datetime.timedelta(hours=2), datetime.timedelta(minutes=7))
    assert store.fired == [(1, at, True, True)]  # finish=True: the store disables it
    assert made.entries == {}
    assert made.next_due() is None


def test_one_off_interval_runs_once() -> None:
    made, store = scheduler(make(schedules.Every(5, START), START, one_off=True))
    tick_every(made, START, START + datetime.timedelta(minutes=1), datetime.timedelta(seconds=1))
    assert store.fired == [(1, START + datetime.timedelta(seconds=5), True, True)]


def test_an_entry_that_cannot_be_sent_is_reported_once_until_it_changes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    every = schedules.Every(1, START)
    made, store = scheduler(make(every, START, version="v1"))
    store.failing.add(1)
    with caplog.at_level(logging.ERROR, logger="djqueue.beat"):
        made.tick(START + datetime.timedelta(seconds=2))
        made.load()
        made.tick(START + datetime.timedelta(seconds=3))
    assert [r.getMessage() for r in caplog.records] == [
        "periodic task 'report' cannot be sent: broken; nothing is enqueued for it "
        "(fix it in the admin or in BEAT_SCHEDULE)."
    ]
    assert made.entries == {}
    store.failing.clear()
    store.entries = [make(every, START, version="v2")]
    made.load()
    made.tick(START + datetime.timedelta(seconds=3, milliseconds=1))
    assert store.ran() == [START + datetime.timedelta(seconds=3)]


def test_an_hourly_crontab_runs_once_per_wall_clock_slot_across_both_changes() -> None:
    half_past = schedules.crontab(minute=30, timezone="Europe/Paris")

    def runs(start: datetime.datetime) -> list[datetime.datetime]:
        start = start.astimezone(UTC)  # so that the window is six real hours
        made, store = scheduler(make(half_past, start))
        tick_every(made, start, start + datetime.timedelta(hours=6), datetime.timedelta(minutes=1))
        return store.ran()

    # Spring: 02:30 does not exist and runs at 03:30; no hour is skipped in real time.
    spring = runs(datetime.datetime(2026, 3, 28, 23, tzinfo=PARIS))
    assert [slot.astimezone(PARIS).hour for slot in spring] == [23, 0, 1, 3, 4, 5]
    assert {b - a for a, b in itertools.pairwise(spring)} == {datetime.timedelta(hours=1)}
    # Autumn: 02:30 occurs twice and runs once, on its first pass.
    autumn = runs(datetime.datetime(2026, 10, 24, 23, tzinfo=PARIS))
    assert local(autumn) == [
        "2026-10-24T23:30:00+02:00",
        "2026-10-25T00:30:00+02:00",
        "2026-10-25T01:30:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T03:30:00+01:00",
    ]


TITLE = "\x1b]0;pwned\x07"  # sets the terminal's title
CLEAR = "\x1b[2J"  # clears the screen


@dataclass
class BrokenStore(FakeStore):
    """A store whose rows hold a schedule that cannot be read."""

    invalid: dict[int, tuple[str, str]] = field(default_factory=dict)

    def load(self) -> tuple[list[Entry], dict[int, tuple[str, str]]]:
        return list(self.entries), self.invalid


def test_names_from_rows_reach_the_log_escaped(caplog: pytest.LogCaptureFixture) -> None:
    item = dataclasses.replace(
        make(schedules.Every(5, START), START), name=f"r{TITLE}", task=f"t{CLEAR}"
    )
    store = BrokenStore([item], invalid={2: ("v1", f"'x{TITLE}': bad minute '{CLEAR}'")})
    made = beat.Scheduler(store, grace=30)
    with caplog.at_level(logging.INFO, logger="djqueue.beat"):
        made.load()
        made.tick(START + datetime.timedelta(seconds=5))
        made.entries[1] = item  # as if a second scheduler fired the same slot
        made.tick(START + datetime.timedelta(seconds=5))
    assert [r.getMessage() for r in caplog.records] == [
        "periodic task 'x\\x1b]0;pwned\\x07': bad minute '\\x1b[2J'; it will not run "
        "(fix it in the admin or in BEAT_SCHEDULE).",
        "Sent t\\x1b[2J (periodic task 'r\\x1b]0;pwned\\x07') for 2026-01-01T00:00:05+00:00.",
        "Periodic task 'r\\x1b]0;pwned\\x07' for 2026-01-01T00:00:05+00:00 was already sent.",
    ]
