"""``manage.py djqueue import-beat``: a django_celery_beat schedule and CELERY_BEAT_SCHEDULE
become djqueue periodic tasks that fire as Celery's would."""

from __future__ import annotations

import datetime
import io
import zoneinfo
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from djqueue.beat import scheduler as beat
from djqueue.db.models import PeriodicRun, PeriodicTask

pytestmark = pytest.mark.django_db

NOOP = "tests.testapp.tasks.noop"
ADD = "tests.testapp.tasks.add"
PARIS = zoneinfo.ZoneInfo("Europe/Paris")

# The tables as django_celery_beat's migrations leave them on PostgreSQL (its 0019).
SCHEMA = """
CREATE TABLE django_celery_beat_intervalschedule (
    id serial PRIMARY KEY, every integer NOT NULL, period varchar(24) NOT NULL);
CREATE TABLE django_celery_beat_crontabschedule (
    id serial PRIMARY KEY, minute varchar(240) NOT NULL, hour varchar(96) NOT NULL,
    day_of_week varchar(64) NOT NULL, day_of_month varchar(124) NOT NULL,
    month_of_year varchar(64) NOT NULL, timezone varchar(63) NOT NULL);
CREATE TABLE django_celery_beat_solarschedule (
    id serial PRIMARY KEY, event varchar(24) NOT NULL, latitude numeric(9, 6) NOT NULL,
    longitude numeric(9, 6) NOT NULL, UNIQUE (event, latitude, longitude));
CREATE TABLE django_celery_beat_clockedschedule (
    id serial PRIMARY KEY, clocked_time timestamp with time zone NOT NULL);
CREATE TABLE django_celery_beat_periodictasks (
    ident smallint PRIMARY KEY, last_update timestamp with time zone NOT NULL);
CREATE TABLE django_celery_beat_periodictask (
    id serial PRIMARY KEY,
    name varchar(200) NOT NULL UNIQUE,
    task varchar(200) NOT NULL,
    args text NOT NULL,
    kwargs text NOT NULL,
    queue varchar(200) NULL,
    exchange varchar(200) NULL,
    routing_key varchar(200) NULL,
    expires timestamp with time zone NULL,
    enabled boolean NOT NULL,
    last_run_at timestamp with time zone NULL,
    total_run_count integer NOT NULL CHECK (total_run_count >= 0),
    date_changed timestamp with time zone NOT NULL,
    description text NOT NULL,
    crontab_id integer NULL REFERENCES django_celery_beat_crontabschedule (id),
    interval_id integer NULL REFERENCES django_celery_beat_intervalschedule (id),
    solar_id integer NULL REFERENCES django_celery_beat_solarschedule (id),
    one_off boolean NOT NULL,
    start_time timestamp with time zone NULL,
    priority integer NULL CHECK (priority >= 0),
    headers text NOT NULL,
    clocked_id integer NULL REFERENCES django_celery_beat_clockedschedule (id),
    expire_seconds integer NULL CHECK (expire_seconds >= 0));
"""

INSERT_TASK = """
INSERT INTO django_celery_beat_periodictask
    (name, task, args, kwargs, queue, exchange, routing_key, expires, enabled, last_run_at,
     total_run_count, date_changed, description, crontab_id, interval_id, solar_id, one_off,
     start_time, priority, headers, clocked_id, expire_seconds)
VALUES (%(name)s, %(task)s, %(args)s, %(kwargs)s, %(queue)s, %(exchange)s, NULL, NULL,
        %(enabled)s, %(last_run_at)s, %(count)s, now(), '', %(crontab)s, %(interval)s,
        %(solar)s, false, NULL, %(priority)s, '{}', %(clocked)s, %(expire_seconds)s)
"""

LAST_RUN = datetime.datetime(2026, 11, 30, 9, 0, tzinfo=datetime.UTC)


def _insert(table: str, values: dict[str, Any]) -> int:
    columns = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO django_celery_beat_{table} ({columns}) VALUES ({marks}) RETURNING id",
            list(values.values()),
        )
        return int(cursor.fetchone()[0])


def _task(name: str, task: str = NOOP, **given: Any) -> None:
    values = {
        "name": name,
        "task": task,
        "args": "[]",
        "kwargs": "{}",
        "queue": None,
        "exchange": None,
        "enabled": True,
        "last_run_at": None,
        "count": 0,
        "crontab": None,
        "interval": None,
        "solar": None,
        "priority": None,
        "clocked": None,
        "expire_seconds": None,
        **given,
    }
    with connection.cursor() as cursor:
        cursor.execute(INSERT_TASK, values)


@pytest.fixture
def celery_beat_tables() -> None:
    """A Celery project's schedule, as django_celery_beat stored it."""
    with connection.cursor() as cursor:
        cursor.execute(SCHEMA)
    every_ten = _insert("intervalschedule", {"every": 10, "period": "minutes"})
    weekdays = _insert(
        "crontabschedule",
        {
            "minute": "0",
            "hour": "8",
            "day_of_week": "1-5",
            "day_of_month": "*",
            "month_of_year": "*",
            "timezone": "Europe/Paris",
        },
    )
    sunrise = _insert("solarschedule", {"event": "sunrise", "latitude": 48.85, "longitude": 2.35})
    once = _insert("clockedschedule", {"clocked_time": LAST_RUN + datetime.timedelta(hours=1)})
    _task(
        "sum every ten minutes",
        ADD,
        args="[2, 3]",
        queue="maths",
        interval=every_ten,
        last_run_at=LAST_RUN,
        count=12,
    )
    _task("weekday mornings", crontab=weekdays, exchange="direct", priority=200)
    _task("paris sunrise", solar=sunrise, enabled=False)
    _task("one time", clocked=once, expire_seconds=60)
    _task("celery.backend_cleanup", "celery.backend_cleanup", crontab=weekdays)
    _task("broken arguments", args="not json", interval=every_ten)


def import_beat(*args: str) -> str:
    out = io.StringIO()
    call_command("djqueue", "import-beat", *args, stdout=out)
    return out.getvalue()


def test_import_reports_what_it_imported_and_what_it_could_not(celery_beat_tables: None) -> None:
    output = import_beat()
    assert "django_celery_beat: 4 new, 0 updated, 0 unchanged, 2 not imported." in output
    assert "Imported 'sum every ten minutes' (new)" in output
    assert "note: exchange and routing_key have no effect" in output
    assert "note: priority 200 is outside -100..100" in output
    assert "Not imported 'celery.backend_cleanup': unregistered task" in output
    assert "Not imported 'broken arguments': 'not json' is not JSON" in output
    rows = {row.name: row for row in PeriodicTask.objects.all()}
    assert set(rows) == {"sum every ten minutes", "weekday mornings", "paris sunrise", "one time"}
    summed = rows["sum every ten minutes"]
    assert (summed.task, summed.args, summed.queue) == (ADD, [2, 3], "maths")
    assert (summed.last_run_at, summed.total_run_count) == (LAST_RUN, 12)
    assert summed.interval is not None and summed.interval.seconds == 600
    assert rows["weekday mornings"].crontab is not None
    assert rows["weekday mornings"].crontab.timezone == "Europe/Paris"
    assert rows["weekday mornings"].priority is None
    assert not rows["paris sunrise"].enabled and rows["paris sunrise"].solar is not None
    assert rows["one time"].expire_seconds == 60


def test_importing_again_changes_nothing(celery_beat_tables: None) -> None:
    import_beat()
    first = {row.name: row.date_changed for row in PeriodicTask.objects.all()}
    output = import_beat()
    assert "0 new, 0 updated, 4 unchanged, 2 not imported." in output
    assert {row.name: row.date_changed for row in PeriodicTask.objects.all()} == first


def test_a_changed_row_is_updated_and_keeps_its_runs(celery_beat_tables: None) -> None:
    import_beat()
    later = LAST_RUN + datetime.timedelta(hours=5)
    PeriodicTask.objects.filter(name="sum every ten minutes").update(last_run_at=later)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE django_celery_beat_periodictask SET args = '[5, 5]' "
            "WHERE name = 'sum every ten minutes'"
        )
    assert "Imported 'sum every ten minutes' (updated)" in import_beat()
    row = PeriodicTask.objects.get(name="sum every ten minutes")
    assert (row.args, row.last_run_at) == ([5, 5], later)


def test_dry_run_changes_nothing(celery_beat_tables: None) -> None:
    output = import_beat("--dry-run")
    assert "Would import 'weekday mornings' (new)" in output
    assert output.strip().endswith("Dry run: nothing was changed.")
    assert not PeriodicTask.objects.exists()


def test_without_the_tables(settings: Any) -> None:
    output = import_beat()
    assert "No django_celery_beat tables in the database." in output


def test_celery_beat_schedule_is_imported(settings: Any) -> None:
    settings.CELERY_BEAT_SCHEDULE = {
        "every-minute": {"task": NOOP, "schedule": 60.0},
        "typo": {"task": "tests.testapp.tasks.nop", "schedule": 60.0},
    }
    output = import_beat()
    assert "BEAT_SCHEDULE: 1 new, 0 updated, 1 not imported." in output
    assert "did you mean 'tests.testapp.tasks.noop'?" in output
    row = PeriodicTask.objects.get(name="every-minute")
    assert row.from_settings and row.interval is not None and row.interval.seconds == 60


def test_imported_rows_fire_as_celery_beat_would(celery_beat_tables: None) -> None:
    import_beat()
    scheduler = beat.Scheduler(beat.DatabaseStore())
    scheduler.load()
    # The interval continues from its last run; the clocked time is due once.
    now = LAST_RUN
    while now <= LAST_RUN + datetime.timedelta(minutes=70):
        scheduler.tick(now)
        now += datetime.timedelta(minutes=1)
    # The crontab never ran: its first slot is the first weekday 08:00 in Paris after the
    # import; a Saturday at 08:00 is not one.
    weekday = PeriodicTask.objects.get(name="weekday mornings")
    first = _next_weekday_eight(weekday.anchor)
    saturday = first + datetime.timedelta(days=(5 - first.weekday()) % 7 or 7)
    scheduler.tick(first.astimezone(datetime.UTC) + datetime.timedelta(seconds=30))
    scheduler.tick(saturday.astimezone(datetime.UTC) + datetime.timedelta(seconds=30))
    slots = {
        name: sorted(run.slot for run in PeriodicRun.objects.filter(periodic_task__name=name))
        for name in ("sum every ten minutes", "one time", "weekday mornings", "paris sunrise")
    }
    assert slots["sum every ten minutes"][:7] == [
        LAST_RUN + datetime.timedelta(minutes=10 * step) for step in range(1, 8)
    ]
    assert slots["one time"] == [LAST_RUN + datetime.timedelta(hours=1)]
    assert slots["weekday mornings"][0] == first
    assert all(slot.astimezone(PARIS).weekday() < 5 for slot in slots["weekday mornings"])
    assert slots["paris sunrise"] == []


def _next_weekday_eight(after: datetime.datetime) -> datetime.datetime:
    day = after.astimezone(PARIS).date()
    while True:
        candidate = datetime.datetime.combine(day, datetime.time(8), tzinfo=PARIS)
        if candidate > after and candidate.weekday() < 5:
            return candidate
        day += datetime.timedelta(days=1)
