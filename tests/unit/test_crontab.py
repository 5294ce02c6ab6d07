"""Crontab fields and matching as Celery defines them, with a controlled clock."""

import datetime
import random
import zoneinfo

import pytest

from djqueue.core import cron, schedules

UTC = datetime.UTC
PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def values(field: str, spec: object) -> list[int]:
    """The values a field stands for."""
    crontab = schedules.crontab(**{field: spec})  # type: ignore[arg-type]
    spec_of = crontab.spec
    found = {
        "minute": spec_of.minutes,
        "hour": spec_of.hours,
        "day_of_week": spec_of.days_of_week,
        "day_of_month": spec_of.days_of_month,
        "month_of_year": spec_of.months,
    }[field]
    return sorted(found)


def runs(crontab: schedules.Crontab, start: datetime.datetime, count: int) -> list[str]:
    found, slot = [], start
    for _ in range(count):
        slot = crontab.next_after(slot)  # type: ignore[assignment]
        found.append(slot.astimezone(crontab.zone).isoformat())
    return found


@pytest.mark.parametrize(
    ("field", "spec", "expected"),
    [
        ("minute", "*/15", [0, 15, 30, 45]),
        ("minute", "0,30", [0, 30]),
        ("minute", "0, 30", [0, 30]),
        ("minute", " 5 , 10-12 ", [5, 10, 11, 12]),
        ("minute", [0, 30], [0, 30]),
        ("minute", {45, 15}, [15, 45]),
        ("minute", 7, [7]),
        ("minute", "1,13,30-45,50-59/2", [1, 13, *range(30, 46), 50, 52, 54, 56, 58]),
        ("hour", "22-2", [0, 1, 2, 22, 23]),
        ("hour", "22-2/2", [0, 2, 22]),
        ("hour", "0,8-17/2", [0, 8, 10, 12, 14, 16]),
        ("hour", None, list(range(24))),
        ("day_of_week", "sat-sun", [0, 6]),
        ("day_of_week", "monday", [1]),
        ("day_of_week", "Mon-Fri", [1, 2, 3, 4, 5]),
        ("day_of_week", "tues,thurs", [2, 4]),
        ("day_of_week", "fri-mon", [0, 1, 5, 6]),
        ("day_of_week", "*/2", [0, 2, 4, 6]),
        ("day_of_month", "*/3", [1, 4, 7, 10, 13, 16, 19, 22, 25, 28, 31]),
        ("day_of_month", "1-7,15-21", [*range(1, 8), *range(15, 22)]),
        ("month_of_year", "nov-feb", [1, 2, 11, 12]),
        ("month_of_year", "january,sept", [1, 9]),
        ("month_of_year", "2-12/2", [2, 4, 6, 8, 10, 12]),
    ],
)
def test_field_syntax(field: str, spec: object, expected: list[int]) -> None:
    assert values(field, spec) == expected


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"hour": "5 1"}, r"hour='5 1' is invalid: '5 1' has a space inside; separate values"),
        ({"minute": 61}, r"minute=61 is invalid: 61 is out of range\. minute takes 0-59"),
        ({"minute": -1}, r"minute=-1 is invalid: -1 is out of range"),
        ({"day_of_week": 7}, r"day_of_week=7 is invalid: 7 is out of range\. .*Sunday is 0"),
        ({"day_of_week": "mar"}, r"'mar' is not a number or a day name \(a month name"),
        ({"day_of_week": "monkey"}, r"'monkey' is not a number or a day name"),
        ({"minute": "jan"}, r"minute='jan' is invalid: 'jan' is not a number"),
        ({"minute": "*/0"}, r"a step must be 1 or more"),
        ({"minute": "5/15"}, r"a step needs '\*' or a range before it"),
        ({"minute": "0,,30"}, r"an item of the list is empty"),
        ({"minute": "1-5-7"}, r"'1-5-7' is not a value, a range or a step"),
        ({"minute": "*/"}, r"'\*/' is not a value, a range or a step"),
        ({"minute": []}, r"an empty collection matches nothing"),
        ({"minute": [0, 60]}, r"60 is out of range"),
        ({"minute": ["0"]}, r"'0' is not an int"),
        ({"hour": True}, r"a boolean is not a value"),
        ({"hour": 1.5}, r"a float is not a field"),
        ({"day_of_month": 30, "month_of_year": 2}, r"day_of_month=30 never occurs in"),
    ],
)
def test_malformed_fields_name_the_field_and_the_rule(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        schedules.crontab(**fields)  # type: ignore[arg-type]


def test_errors_say_what_is_accepted() -> None:
    with pytest.raises(cron.CronError) as caught:
        schedules.crontab(hour="25")
    assert "hour takes 0-23, as a value, a range ('9-17'; '22-2' wraps around)" in str(caught.value)


def test_day_of_month_and_day_of_week_are_both_required() -> None:
    friday_13th = schedules.crontab(minute=0, hour=0, day_of_week="fri", day_of_month=13)
    start = datetime.datetime(2026, 1, 1, tzinfo=UTC)
    assert runs(friday_13th, start, 3) == [
        "2026-02-13T00:00:00+00:00",
        "2026-03-13T00:00:00+00:00",
        "2026-11-13T00:00:00+00:00",
    ]


def test_first_and_third_monday() -> None:
    mondays = schedules.crontab(minute=0, hour=9, day_of_week=1, day_of_month="1-7,15-21")
    start = datetime.datetime(2026, 6, 1, 10, tzinfo=UTC)
    assert runs(mondays, start, 3) == [
        "2026-06-15T09:00:00+00:00",
        "2026-07-06T09:00:00+00:00",
        "2026-07-20T09:00:00+00:00",
    ]


def test_the_29th_of_february_waits_for_a_leap_year() -> None:
    leap = schedules.crontab(minute=0, hour=0, day_of_month=29, month_of_year=2)
    assert runs(leap, datetime.datetime(2026, 1, 1, tzinfo=UTC), 2) == [
        "2028-02-29T00:00:00+00:00",
        "2032-02-29T00:00:00+00:00",
    ]


def test_a_wrapping_hour_range_runs_through_midnight() -> None:
    night = schedules.crontab(minute=0, hour="22-2", day_of_week="sat-sun")
    start = datetime.datetime(2026, 12, 4, 12, tzinfo=UTC)  # a Friday
    assert runs(night, start, 6) == [
        "2026-12-05T00:00:00+00:00",
        "2026-12-05T01:00:00+00:00",
        "2026-12-05T02:00:00+00:00",
        "2026-12-05T22:00:00+00:00",
        "2026-12-05T23:00:00+00:00",
        "2026-12-06T00:00:00+00:00",
    ]


def test_the_next_slot_is_after_the_minute_of_the_last_one() -> None:
    every_minute = schedules.crontab()
    moment = datetime.datetime(2026, 1, 1, 8, 0, 30, tzinfo=UTC)
    assert every_minute.next_after(moment) == datetime.datetime(2026, 1, 1, 8, 1, tzinfo=UTC)
    assert every_minute.last_at_or_before(moment) == datetime.datetime(2026, 1, 1, 8, tzinfo=UTC)


def test_from_string_reads_five_fields_and_no_more() -> None:
    weekdays = schedules.Crontab.from_string("*/15 9-17 * * mon-fri", "Europe/Paris")
    assert weekdays == schedules.crontab(
        minute="*/15", hour="9-17", day_of_week="mon-fri", timezone="Europe/Paris"
    )
    with pytest.raises(ValueError, match=r"a cron expression has 5 fields .* not 6"):
        schedules.Crontab.from_string("0 5 1 * * *")


def test_stored_fields_are_text() -> None:
    crontab = schedules.crontab(minute=[30, 0], hour={8}, day_of_week="mon-fri")
    assert crontab.fields() == {
        "minute": "0,30",
        "hour": "8",
        "day_of_week": "mon-fri",
        "day_of_month": "*",
        "month_of_year": "*",
        "timezone": "UTC",
    }
    assert crontab.expression == "0,30 8 * * mon-fri"
    assert schedules.crontab(minute="0, 30") == schedules.Crontab(minute="0, 30")


@pytest.mark.parametrize(
    ("crontab", "words"),
    [
        (schedules.crontab(minute=0, hour=8), "At 08:00 every day, UTC"),
        (schedules.crontab(), "Every minute every day, UTC"),
        (
            schedules.crontab(minute="*/15", hour="9-17"),
            "At minute */15 of hour 9-17 every day, UTC",
        ),
        (
            schedules.crontab(minute=0, hour=0, day_of_week="fri", day_of_month=13),
            "At 00:00 on day 13 of the month when that day is fri, UTC",
        ),
        (
            schedules.crontab(minute=5, month_of_year="jan"),
            "At minute 5 of every hour in month jan, UTC",
        ),
    ],
)
def test_described_in_words(crontab: schedules.Crontab, words: str) -> None:
    assert crontab.describe() == words


# Daylight-saving changes: one run per wall-clock slot --------------------------------
#
# Europe/Paris: on 2026-03-29 the clock goes from 02:00 to 03:00; on 2026-10-25 it goes
# from 03:00 back to 02:00, so 02:00-02:59 happens twice.


def paris(*args: int, fold: int = 0) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=PARIS, fold=fold)  # type: ignore[misc]


def test_every_minute_across_the_spring_gap_skips_no_real_minute() -> None:
    every_minute = schedules.crontab(timezone="Europe/Paris")
    assert runs(every_minute, paris(2026, 3, 29, 1, 58), 4) == [
        "2026-03-29T01:59:00+01:00",
        # 02:00 does not exist: it runs at 02:00 of the old offset, that is 03:00.
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T03:01:00+02:00",
        "2026-03-29T03:02:00+02:00",
    ]


def test_every_minute_across_the_autumn_repeat_runs_each_minute_once() -> None:
    every_minute = schedules.crontab(timezone="Europe/Paris")
    found = runs(every_minute, paris(2026, 10, 25, 1, 58), 63)
    assert found[:3] == [
        "2026-10-25T01:59:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:01:00+02:00",
    ]
    assert len(found) == 63
    assert found[60:] == [
        "2026-10-25T02:59:00+02:00",
        # The second pass of 02:00-02:59 is not run again.
        "2026-10-25T03:00:00+01:00",
        "2026-10-25T03:01:00+01:00",
    ]


def test_skipped_slots_before_the_shifted_one_do_not_run() -> None:
    # 02:00 runs at 03:00 and 02:30 at 03:30, after 03:15: walking on from 03:15 does not
    # go back to 02:30.
    crontab = schedules.crontab(minute="0,15,30", hour="2,3", timezone="Europe/Paris")
    assert runs(crontab, paris(2026, 3, 29, 1), 4) == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T03:15:00+02:00",
        "2026-03-29T03:30:00+02:00",
        "2026-03-30T02:00:00+02:00",
    ]


def test_starting_in_the_second_pass_stays_in_it() -> None:
    quarter = schedules.crontab(minute="*/15", timezone="Europe/Paris")
    assert runs(quarter, paris(2026, 10, 25, 2, 5, fold=1), 2) == [
        "2026-10-25T02:15:00+01:00",
        "2026-10-25T02:30:00+01:00",
    ]


def test_the_latest_slot_near_a_change_is_one_the_walk_reaches() -> None:
    crontab = schedules.crontab(minute="0,15,30", hour="2,3", timezone="Europe/Paris")
    # 03:20 on the spring day: the last run was 02:15's time, shown as 03:15.
    assert crontab.last_at_or_before(paris(2026, 3, 29, 3, 20)) == paris(2026, 3, 29, 3, 15)
    # 03:40: 02:30's time, 03:30.
    assert crontab.last_at_or_before(paris(2026, 3, 29, 3, 40)) == paris(2026, 3, 29, 3, 30)
    every_minute = schedules.crontab(timezone="Europe/Paris")
    # During the second pass, the latest slot is 02:59 of the first pass.
    second = paris(2026, 10, 25, 2, 30, fold=1)
    # (Compared in UTC: a time in a repeated hour never equals one in another zone.)
    assert every_minute.last_at_or_before(second) == paris(2026, 10, 25, 2, 59).astimezone(UTC)


def test_a_zone_with_half_hour_changes() -> None:
    # Lord Howe Island moves its clock by 30 minutes: 02:00 becomes 02:30 in October.
    crontab = schedules.crontab(minute="*/20", hour=2, timezone="Australia/Lord_Howe")
    start = datetime.datetime(2026, 10, 4, 1, tzinfo=zoneinfo.ZoneInfo("Australia/Lord_Howe"))
    assert runs(crontab, start, 3) == [
        "2026-10-04T02:30:00+11:00",
        "2026-10-04T02:40:00+11:00",
        "2026-10-05T02:00:00+11:00",
    ]


ZONES = ("UTC", "Europe/Paris", "America/Santiago", "Australia/Lord_Howe", "America/Havana")
CHANGES = [
    datetime.date(2026, month, day)
    for month, day in ((3, 29), (10, 25), (4, 5), (9, 6), (10, 4), (3, 8), (11, 1))
]


@pytest.mark.parametrize("seed", range(3))
def test_the_latest_slot_is_one_the_walk_reaches_and_the_last_before(seed: int) -> None:
    r = random.Random(seed)
    for _ in range(50):
        crontab = schedules.crontab(
            minute=r.choice(("*", "*/7", "0,30", "15", "*/20")),
            hour=r.choice(("*", "2", "1-3", "22-2", "*/5")),
            day_of_week=r.choice(("*", "sat-sun", "mon")),
            timezone=r.choice(ZONES),
        )
        # Mostly on the days the zones change their clocks.
        day = r.choice(CHANGES) if r.random() < 0.7 else datetime.date(2026, 1, 1)
        midnight = datetime.datetime.combine(day, datetime.time(tzinfo=UTC))
        moment = midnight + datetime.timedelta(
            minutes=r.randrange(-12 * 60, 36 * 60), seconds=r.randint(0, 59)
        )
        found = crontab.last_at_or_before(moment)
        assert found is not None and found <= moment
        following = crontab.next_after(found)
        assert following is not None and following > moment
        # Walking from two days before reaches it.
        slot = crontab.last_at_or_before(moment - datetime.timedelta(days=2))
        assert slot is not None
        while slot < found:
            slot = crontab.next_after(slot)  # type: ignore[assignment]
        assert slot == found, f"{crontab} at {moment}"
