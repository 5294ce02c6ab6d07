"""Differential tests: djqueue's schedules against Celery's own, on random schedules.

Celery is installed only in tox's ``celery-parity`` environment; elsewhere these tests
are skipped. Each test draws its schedules from a seeded generator, so that a failure
names a seed and a schedule that reproduce it. ``DJQUEUE_PARITY_SCALE`` multiplies the
number of schedules (default 1).

The differences that are expected, and documented in docs/celery-migration.md
("Schedules"), are checked to be exactly those:

- field text that Celery reads leniently is refused here (``LENIENT``);
- after a moment in the second pass of a repeated autumn hour, Celery's next run is on
  the first pass, already past; ours is on the second pass;
- solar times are rounded up to the second and computed from a fixed start (Celery's
  vary by hundredths of a second, by up to about a minute near the poles);
- within a fraction of a degree of the poles, an event that is not found within 366
  days is no run here (Celery runs when its search stops).
"""

from __future__ import annotations

import datetime
import os
import random
import zoneinfo
from collections.abc import Callable
from typing import Any

import pytest

celery = pytest.importorskip("celery")
pytest.importorskip("ephem")

from celery import schedules as theirs  # noqa: E402

from djqueue import schedules as ours  # noqa: E402

# What Celery raises for a field it refuses.
REFUSED = (ValueError, TypeError, theirs.ParseException)

UTC = datetime.UTC
SCALE = float(os.environ.get("DJQUEUE_PARITY_SCALE", "1"))
SEEDS = range(4)
# Zones with one-hour changes at 01:00 UTC, at 02:00 local, at midnight (Santiago,
# Havana), half-hour changes (Lord Howe), 45-minute offsets (Chatham), southern
# summers, and none at all.
ZONES = (
    "UTC",
    "Europe/Paris",
    "Europe/London",
    "America/New_York",
    "America/Santiago",
    "America/Havana",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Asia/Kolkata",
)
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sunday", "Monday", "tues", "thurs")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
MONTHS_LONG = ("january", "September", "sept", "december")


def count(base: int) -> int:
    return max(1, int(base * SCALE))


_apps: dict[str, Any] = {}


def app(zone: str) -> Any:
    """A Celery app whose time zone is ``zone`` (Celery reads crontabs in the app's)."""
    if zone not in _apps:
        made = celery.Celery(set_as_current=False)
        made.conf.timezone = zone
        made.conf.enable_utc = True
        _apps[zone] = made
    return _apps[zone]


# Random schedules ---------------------------------------------------------------------


def _value(r: random.Random, low: int, high: int, names: tuple[str, ...]) -> str:
    if names and r.random() < 0.3:
        return r.choice(names)
    return str(r.randint(low, high))


def _item(r: random.Random, low: int, high: int, names: tuple[str, ...]) -> str:
    kind = r.randrange(6)
    if kind == 0:
        return "*"
    if kind == 1:
        return _value(r, low, high, names)
    if kind == 2:  # a range; when the second value is smaller, it wraps around
        return f"{_value(r, low, high, names)}-{_value(r, low, high, names)}"
    if kind == 3:
        return f"*/{r.randint(1, high - low + 2)}"
    if kind == 4:
        return f"{_value(r, low, high, names)}-{_value(r, low, high, names)}/{r.randint(1, 7)}"
    return str(r.randint(low, high))


def field(r: random.Random, low: int, high: int, names: tuple[str, ...] = ()) -> Any:
    """A field in any of the forms both accept."""
    kind = r.randrange(10)
    if kind < 3:
        return "*"
    if kind == 3:
        return r.randint(low, high)
    if kind == 4:
        return sorted(r.sample(range(low, high + 1), r.randint(1, 4)))
    if kind == 5:
        return set(r.sample(range(low, high + 1), r.randint(1, 4)))
    items = [_item(r, low, high, names) for _ in range(r.randint(1, 3))]
    # Celery takes a space after a comma only before a plain number.
    return "".join(
        (("" if i == 0 else (", " if item.isdigit() and r.random() < 0.5 else ",")) + item)
        for i, item in enumerate(items)
    )


def crontab_fields(r: random.Random) -> dict[str, Any]:
    return {
        "minute": field(r, 0, 59),
        "hour": field(r, 0, 23),
        "day_of_week": field(r, 0, 6, DAYS),
        "day_of_month": field(r, 1, 31) if r.random() < 0.5 else "*",
        "month_of_year": field(r, 1, 12, MONTHS + MONTHS_LONG) if r.random() < 0.4 else "*",
    }


def moment(r: random.Random) -> datetime.datetime:
    """A random instant; half of them in months with clock changes, some on fractions."""
    if r.random() < 0.5:
        day = datetime.datetime(
            r.choice((2024, 2025, 2026)),
            r.choice((3, 4, 9, 10, 11)),
            r.randint(1, 30),
            r.randint(0, 23),
            r.choice((0, 0, 29, 30, 59)),
            r.choice((0, 0, 30)),
            tzinfo=UTC,
        )
        return day
    start = datetime.datetime(2024, 1, 1, tzinfo=UTC)
    return start + datetime.timedelta(
        seconds=r.randrange(4 * 365 * 86400), microseconds=r.choice((0, r.randrange(10**6)))
    )


# Crontab --------------------------------------------------------------------------------


def celery_next(schedule: Any, last: datetime.datetime) -> datetime.datetime:
    """Celery's next run after ``last``: ``now + remaining_estimate(last)`` at now=last."""
    schedule.nowfun = lambda: last
    return last + schedule.remaining_estimate(last)


def second_pass(zone: zoneinfo.ZoneInfo, last: datetime.datetime, mine: datetime.datetime) -> bool:
    """The documented difference: after ``last`` in a repeated hour's second pass, our
    next run is the same wall-clock time as Celery's, on the second pass."""
    return last.astimezone(zone).fold == 1 and mine.astimezone(zone).fold == 1


@pytest.mark.parametrize("seed", SEEDS)
def test_crontab_next_runs_are_celerys(seed: int) -> None:
    r = random.Random(seed)
    checked = documented = 0
    for _ in range(count(300)):
        fields, zone_name = crontab_fields(r), r.choice(ZONES)
        zone = zoneinfo.ZoneInfo(zone_name)
        try:
            reference = theirs.crontab(**fields, app=app(zone_name))
        except REFUSED:
            with pytest.raises(ValueError):
                ours.crontab(**fields, timezone=zone_name)
            continue
        mine = ours.crontab(**fields, timezone=zone_name)
        last = moment(r)
        if r.random() < 0.1:  # now and then, start in a repeated hour's second pass
            last = _second_pass_moment(zone, last) or last
        for _step in range(20):
            expected, found = celery_next(reference, last), mine.next_after(last)
            assert found is not None
            checked += 1
            if expected != found:
                context = f"seed {seed}: crontab({fields}) in {zone_name} after {last}"
                assert expected < last, f"{context}: Celery {expected}, djqueue {found}"
                assert second_pass(zone, last, found), context
                documented += 1
            last = found
    assert checked >= count(300) * 10


def _second_pass_moment(
    zone: zoneinfo.ZoneInfo, near: datetime.datetime
) -> datetime.datetime | None:
    """A moment in the second pass of the zone's first repeated hour after ``near``."""
    probe = near
    for _ in range(24 * 400):
        probe += datetime.timedelta(hours=1)
        local = probe.astimezone(zone)
        if local.fold == 1:
            return probe + datetime.timedelta(minutes=7)
    return None


@pytest.mark.parametrize("seed", SEEDS)
def test_crontab_is_due_answers_are_celerys(seed: int) -> None:
    r = random.Random(1000 + seed)
    for _ in range(count(300)):
        fields, zone_name = crontab_fields(r), r.choice(ZONES)
        try:
            reference = theirs.crontab(**fields, app=app(zone_name))
        except REFUSED:
            continue
        mine = ours.crontab(**fields, timezone=zone_name)
        zone = zoneinfo.ZoneInfo(zone_name)
        last = moment(r)
        upcoming = mine.next_after(last)
        assert upcoming is not None
        # Just before, at, and after the next run.
        for now in (
            upcoming - datetime.timedelta(seconds=r.randint(1, 7200)),
            upcoming,
            upcoming + datetime.timedelta(seconds=r.randint(1, 7200)),
        ):
            reference.nowfun = lambda now=now: now
            expected, found = reference.is_due(last), mine.is_due(last, now=now)
            if tuple(found) != pytest.approx(tuple(expected)):
                context = f"seed {seed}: crontab({fields}) in {zone_name}, last {last}, now {now}"
                # The documented difference: from a moment in a repeated hour's second
                # pass, Celery's next run is on the first pass, already past (due, 0).
                passes = (last.astimezone(zone).fold, now.astimezone(zone).fold)
                assert 1 in passes, f"{context}: Celery {expected}, djqueue {found}"
                assert expected.is_due or expected.next == 0, context


# Field text -----------------------------------------------------------------------------

# Accepted by both, with the same values.
WELL_FORMED = [
    ("minute", "0, 30"),
    ("minute", "1,13,30-45,50-59/2"),
    ("minute", [0, 30]),
    ("minute", {15, 45}),
    ("hour", "22-2"),
    ("hour", "22-2/2"),
    ("hour", "*/3"),
    ("day_of_week", "sat-sun"),
    ("day_of_week", "monday"),
    ("day_of_week", "MON-fri"),
    ("day_of_week", "tues,thurs"),
    ("day_of_month", "1-7,15-21"),
    ("month_of_year", "nov-feb"),
    ("month_of_year", "sept"),
]
# Refused by both.
MALFORMED = [
    ("hour", "5 1"),
    ("minute", "60"),
    ("minute", "*/0"),
    ("minute", "*/"),
    ("minute", "5/15"),
    ("minute", "0,,30"),
    ("minute", "-5"),
    ("day_of_week", "7"),
    ("day_of_week", "xyz"),
    ("hour", "1-5/"),
    ("minute", [60]),
    ("minute", 1.5),
]
# Read leniently by Celery, refused by djqueue (docs/celery-migration.md, "Schedules").
LENIENT = [
    ("minute", "1-5-7"),
    ("minute", "1-5/2/3"),
    ("minute", "1-5 x"),
    ("day_of_week", "monkey"),
    ("day_of_week", "mar"),
    ("minute", "jan"),
    ("hour", "mon"),
    ("minute", "+5"),
    ("minute", "1_0"),
    ("hour", True),
]


def _their_values(name: str, spec: Any) -> set[int]:
    return set(getattr(theirs.crontab(**{name: spec}, app=app("UTC")), name))


def _our_values(name: str, spec: Any) -> set[int]:
    expanded = ours.crontab(**{name: spec}).spec
    return set(
        {
            "minute": expanded.minutes,
            "hour": expanded.hours,
            "day_of_week": expanded.days_of_week,
            "day_of_month": expanded.days_of_month,
            "month_of_year": expanded.months,
        }[name]
    )


@pytest.mark.parametrize(("name", "spec"), WELL_FORMED)
def test_well_formed_fields_read_the_same(name: str, spec: Any) -> None:
    assert _our_values(name, spec) == _their_values(name, spec)


@pytest.mark.parametrize(("name", "spec"), MALFORMED)
def test_malformed_fields_are_refused_by_both(name: str, spec: Any) -> None:
    with pytest.raises(REFUSED):
        theirs.crontab(**{name: spec}, app=app("UTC"))
    with pytest.raises((ValueError, TypeError)):
        ours.crontab(**{name: spec})


@pytest.mark.parametrize(("name", "spec"), LENIENT)
def test_the_documented_lenient_readings_are_refused_here_only(name: str, spec: Any) -> None:
    _their_values(name, spec)  # accepted
    with pytest.raises(ValueError, match=f"crontab {name}="):
        ours.crontab(**{name: spec})


@pytest.mark.parametrize("seed", SEEDS)
def test_random_fields_read_the_same(seed: int) -> None:
    r = random.Random(2000 + seed)
    bounds = {
        "minute": (0, 59, ()),
        "hour": (0, 23, ()),
        "day_of_week": (0, 6, DAYS),
        "day_of_month": (1, 31, ()),
        "month_of_year": (1, 12, MONTHS),
    }
    for _ in range(count(500)):
        name = r.choice(list(bounds))
        low, high, names = bounds[name]
        spec = field(r, low, high, names)
        try:
            expected = _their_values(name, spec)
        except REFUSED:
            with pytest.raises(ValueError):
                ours.crontab(**{name: spec})
            continue
        assert _our_values(name, spec) == expected, f"seed {seed}: {name}={spec!r}"


# Solar ----------------------------------------------------------------------------------


def _solar_case(r: random.Random, polar: bool) -> tuple[str, float, float]:
    event = r.choice(ours.SOLAR_EVENTS)
    latitude = r.uniform(85, 89.9) * r.choice((-1, 1)) if polar else r.uniform(-85, 85)
    return event, round(latitude, r.randint(0, 4)), round(r.uniform(-180, 180), r.randint(0, 4))


@pytest.mark.parametrize(
    ("seed", "polar", "early", "late"),
    [
        # Rounded up to the second, from a fixed start: up to a second later, a few
        # hundredths earlier.
        (0, False, 0.2, 1.2),
        (1, False, 0.2, 1.2),
        # Within five degrees of the poles, where the sun's height changes slowly, the
        # computed time of an event depends more on where a search starts: up to a few
        # minutes (documented).
        (2, True, 900, 900),
    ],
)
def test_solar_next_runs_are_celerys(seed: int, polar: bool, early: float, late: float) -> None:
    r = random.Random(3000 + seed)
    for _ in range(count(150)):
        event, latitude, longitude = _solar_case(r, polar)
        last = moment(r)
        reference = theirs.solar(event, latitude, longitude, app=app("UTC"))
        mine = ours.solar(event, latitude, longitude)
        for _step in range(3):
            expected, found = celery_next(reference, last), mine.next_after(last)
            context = f"seed {seed}: solar({event!r}, {latitude}, {longitude}) after {last}"
            if found is None:  # no event within 366 days: Celery runs when its search stops
                assert polar and expected - last > datetime.timedelta(days=360), context
                break
            if polar and expected - last < datetime.timedelta(seconds=late):
                # Searching from just after the event it ran, Celery's search finds the
                # same event again, a little later; ours is the next one.
                last = found
                continue
            difference = (found - expected).total_seconds()
            assert -early <= difference <= late, f"{context}: Celery {expected}, djqueue {found}"
            last = found


def test_solar_is_due_answers_are_celerys() -> None:
    r = random.Random(4000)
    for _ in range(count(100)):
        event, latitude, longitude = _solar_case(r, polar=False)
        last = moment(r)
        mine = ours.solar(event, latitude, longitude)
        reference = theirs.solar(event, latitude, longitude, app=app("UTC"))
        upcoming = mine.next_after(last)
        assert upcoming is not None
        # Away from the rounding: a minute before or after the next run.
        for now, due in ((upcoming - datetime.timedelta(minutes=1), False), (upcoming, True)):
            now = now + datetime.timedelta(minutes=1) if due else now
            reference.nowfun = lambda now=now: now
            expected = reference.is_due(last)
            found = mine.is_due(last, now=now)
            assert (found.is_due, expected.is_due) == (due, due)
            assert found.next == pytest.approx(expected.next, abs=1.5)


def test_at_the_poles_an_event_that_never_happens_is_no_run() -> None:
    # At the pole the sun's height does not change within a day: it never "rises".
    last = datetime.datetime(2026, 1, 1, tzinfo=UTC)
    reference = theirs.solar("sunrise", 90, 0, app=app("UTC"))
    assert celery_next(reference, last) > last  # Celery runs when its search stops
    assert ours.solar("sunrise", 90, 0).next_after(last) is None


# Intervals ------------------------------------------------------------------------------


def _run_every(r: random.Random) -> Any:
    kind = r.randrange(4)
    if kind == 0:
        return r.randint(1, 86400)
    if kind == 1:
        return max(0.001, round(r.uniform(0.001, 120), r.randint(0, 6)))
    if kind == 2:
        return datetime.timedelta(milliseconds=r.randint(1, 10**7))
    return datetime.timedelta(days=r.randint(0, 30), seconds=r.randint(1, 86399))


@pytest.mark.parametrize("seed", SEEDS)
def test_interval_answers_are_celerys(seed: int) -> None:
    r = random.Random(5000 + seed)
    for _ in range(count(500)):
        run_every = _run_every(r)
        reference = theirs.schedule(run_every=run_every, app=app("UTC"))
        mine = ours.schedule(run_every=run_every)
        last = moment(r)
        assert mine.next_after(last) == celery_next(reference, last)
        for offset in (-1.0, 0.0, 0.5, 1.0, 3.0):
            now = last + mine.run_every * offset
            reference.nowfun = lambda now=now: now
            assert mine.remaining_estimate(last, now=now) == reference.remaining_estimate(last)
            assert tuple(mine.is_due(last, now=now)) == pytest.approx(tuple(reference.is_due(last)))


@pytest.mark.parametrize("seed", SEEDS)
def test_interval_slots_follow_celerys_chain_from_each_slot(seed: int) -> None:
    r = random.Random(6000 + seed)
    for _ in range(count(100)):
        run_every = _run_every(r)
        step = ours.schedule(run_every).run_every
        reference = theirs.schedule(run_every=run_every, app=app("UTC"))
        anchor = moment(r).replace(microsecond=0)
        every = ours.Every(step.total_seconds(), anchor)
        slot = anchor
        for _step in range(10):
            following = every.next_after(slot)
            assert following == celery_next(reference, slot)
            slot = following  # type: ignore[assignment]


def test_a_failing_comparison_would_be_seen() -> None:
    """The harness itself: a different crontab gives different times."""
    reference = theirs.crontab(minute=0, hour=8, app=app("UTC"))
    mine: Callable[[datetime.datetime], datetime.datetime | None]
    mine = ours.crontab(minute=0, hour=9).next_after
    last = datetime.datetime(2026, 1, 1, tzinfo=UTC)
    assert celery_next(reference, last) != mine(last)
