"""Periodic tasks on real PostgreSQL: firing, the unique slot, BEAT_SCHEDULE sync."""

from __future__ import annotations

import datetime
import socket
import threading
import time
import uuid
import zoneinfo
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connections, transaction
from django.test import override_settings

from djqueue.beat import beat_schedule, entries, leadership
from djqueue.core import schedules
from djqueue.db import broker, sql
from djqueue.db.models import CrontabSchedule, IntervalSchedule, Job, PeriodicRun, PeriodicTask

UTC = datetime.UTC
NOOP = "tests.testapp.tasks.noop"
ADD = "tests.testapp.tasks.add"


def every(seconds: int = 1, **fields: Any) -> PeriodicTask:
    interval = IntervalSchedule.objects.create(every=seconds, period=IntervalSchedule.SECONDS)
    fields.setdefault("name", f"every-{uuid.uuid4().hex[:8]}")
    fields.setdefault("task", ADD)
    fields.setdefault("args", [1, 2])
    return PeriodicTask.objects.create(interval=interval, **fields)


def first_slot(row: PeriodicTask) -> schedules.Decision:
    slot = entries.entry(row).next_slot()
    assert slot is not None
    return schedules.Decision(slot, run=True)


@pytest.mark.django_db
def test_firing_a_slot_enqueues_its_job_and_moves_the_task_on() -> None:
    row = every(10, queue="reports", priority=5)
    item = entries.entry(row)
    decision = first_slot(row)
    assert entries.fire(item, decision, finish=False) is True
    job = Job.objects.get()
    assert (job.task_name, job.args, job.queue, job.priority) == (ADD, [1, 2], "reports", 5)
    run = PeriodicRun.objects.get()
    assert (run.periodic_task_id, run.slot, run.job_id) == (row.pk, decision.slot, job.id)
    row.refresh_from_db()
    assert (row.last_run_at, row.total_run_count, row.enabled) == (decision.slot, 1, True)
    # The same slot again (a stale leader): nothing more is enqueued.
    assert entries.fire(item, decision, finish=False) is False
    assert Job.objects.count() == 1


@pytest.mark.django_db
def test_an_older_slot_never_moves_last_run_at_back() -> None:
    row = every(1)
    item = entries.entry(row)
    later = first_slot(row).slot + datetime.timedelta(seconds=5)
    entries.fire(item, schedules.Decision(later, run=True), finish=False)
    entries.fire(item, first_slot(row), finish=False)
    row.refresh_from_db()
    assert row.last_run_at == later
    assert row.total_run_count == 2


@pytest.mark.django_db
def test_a_one_off_disables_itself_when_it_fires() -> None:
    row = every(1, one_off=True)
    entries.fire(entries.entry(row), first_slot(row), finish=True)
    row.refresh_from_db()
    assert not row.enabled


@pytest.mark.django_db(transaction=True)
def test_two_leaders_firing_the_same_slot_at_once_enqueue_one_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    row = every(1)
    item, decision = entries.entry(row), first_slot(row)
    real_enqueue = broker.enqueue

    def slow_enqueue(jobs: Any) -> Any:
        # Keep the winner's transaction open, so that the other insert meets an
        # uncommitted run row and has to wait for it.
        ids = real_enqueue(jobs)
        time.sleep(0.3)
        return ids

    monkeypatch.setattr(broker, "enqueue", slow_enqueue)
    barrier = threading.Barrier(2)
    results: list[bool] = []
    errors: list[BaseException] = []

    def leader() -> None:
        try:
            barrier.wait()
            results.append(entries.fire(item, decision, finish=False))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=leader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert sorted(results) == [False, True]
    assert Job.objects.count() == 1
    assert PeriodicRun.objects.count() == 1
    row.refresh_from_db()
    assert row.total_run_count == 1


@pytest.mark.django_db
def test_exactly_one_schedule_is_enforced_by_the_database() -> None:
    interval = IntervalSchedule.objects.create(every=1, period="seconds")
    crontab = CrontabSchedule.objects.create(minute="0")
    with pytest.raises(IntegrityError), transaction.atomic():
        PeriodicTask.objects.create(name="two", task=NOOP, interval=interval, crontab=crontab)
    with pytest.raises(IntegrityError), transaction.atomic():
        PeriodicTask.objects.create(name="none", task=NOOP)


@pytest.mark.django_db
def test_an_unregistered_task_cannot_be_sent() -> None:
    row = every(1, task="nowhere.missing")
    with pytest.raises(entries.EntryError, match=r"'nowhere\.missing'"):
        entries.fire(entries.entry(row), first_slot(row), finish=False)
    assert Job.objects.count() == 0


@pytest.mark.django_db
def test_load_reads_enabled_tasks_and_reports_invalid_rows() -> None:
    good = every(1)
    every(1, enabled=False)
    bad_cron = CrontabSchedule.objects.create(minute="99")  # saved without validation
    bad = PeriodicTask.objects.create(name="bad", task=NOOP, crontab=bad_cron)
    loaded, invalid = entries.load()
    assert [item.id for item in loaded] == [good.pk]
    assert list(invalid) == [bad.pk]
    assert "crontab minute='99' is invalid" in invalid[bad.pk][1]


@pytest.mark.django_db
def test_next_run_is_the_slot_after_the_last_one() -> None:
    row = every(60)
    # Counted from the creation, in whole seconds.
    assert row.anchor == row.date_created.replace(microsecond=0)
    assert entries.next_run(row) == row.anchor + datetime.timedelta(seconds=60)
    row.last_run_at = row.anchor + datetime.timedelta(minutes=5)
    assert entries.next_run(row) == row.anchor + datetime.timedelta(minutes=6)
    row.enabled = False
    assert entries.next_run(row) is None


# BEAT_SCHEDULE sync ----------------------------------------------------------------


def declared(**spec: Any) -> Any:
    return override_settings(DJQUEUE={"BEAT_SCHEDULE": spec})


@pytest.mark.django_db
def test_sync_creates_updates_and_disables_never_duplicating() -> None:
    spec = {
        "report": {
            "task": ADD,
            "schedule": schedules.crontab(minute=0, hour=8, timezone="Europe/Paris"),
            "args": [1, 2],
            "options": {"queue": "reports", "priority": 3, "expires": 60},
        },
        "tick": {"task": NOOP, "schedule": datetime.timedelta(minutes=5)},
        "sun": {"task": NOOP, "schedule": schedules.solar("sunrise", 48.8566, 2.3522)},
    }
    first = beat_schedule.sync(spec)
    assert sorted(first.created) == ["report", "sun", "tick"]
    report = PeriodicTask.objects.get(name="report")
    assert report.from_settings and report.enabled
    assert report.schedule().describe() == "At 08:00 every day, Europe/Paris"
    assert (report.queue, report.priority, report.expire_seconds) == ("reports", 3, 60)
    assert str(PeriodicTask.objects.get(name="tick").interval) == "every 5 minutes"

    again = beat_schedule.sync(spec)
    assert (again.created, again.updated, again.disabled) == ([], [], [])
    assert PeriodicTask.objects.count() == 3

    spec["report"]["args"] = [5, 6]
    del spec["sun"]
    changed = beat_schedule.sync(spec)
    assert (changed.updated, changed.disabled) == (["report"], ["sun"])
    assert PeriodicTask.objects.get(name="report").args == [5, 6]
    assert not PeriodicTask.objects.get(name="sun").enabled
    assert PeriodicTask.objects.count() == 3


@pytest.mark.django_db
def test_sync_never_touches_rows_made_in_the_admin() -> None:
    mine = every(30, name="made-by-hand")
    report = beat_schedule.sync({"made-by-hand": {"task": NOOP, "schedule": 10}})
    assert "was made in the admin" in report.errors["made-by-hand"]
    mine.refresh_from_db()
    assert (mine.task, mine.enabled, mine.interval.every) == (ADD, True, 30)  # type: ignore[union-attr]
    assert beat_schedule.sync({}).disabled == []


@pytest.mark.django_db
def test_sync_reports_bad_entries_by_name_and_sends_nothing_for_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    beat_schedule.sync({"nightly": {"task": NOOP, "schedule": 60}})
    report = beat_schedule.sync(
        {
            "nightly": {"task": "nowhere.missing", "schedule": 60},
            "cron": {"task": NOOP, "schedule": "0 8 * * *"},
            "args": {"task": ADD, "schedule": 60, "args": [object(), 2]},
            "typo": {"task": NOOP, "schedule": 60, "kwarg": {}},
            "misspelt": {"task": ADD + "s", "schedule": 60},
        }
    )
    assert "unregistered task 'nowhere.missing'" in report.errors["nightly"]
    assert f"did you mean {ADD!r}?" in report.errors["misspelt"]
    assert "schedule must be crontab(...)" in report.errors["cron"]
    assert "JSON cannot carry" in report.errors["args"]
    assert "unknown key(s) ['kwarg']" in report.errors["typo"]
    # The row an earlier, valid version made is disabled: nothing runs for the entry.
    assert report.disabled == ["nightly"]
    assert list(PeriodicTask.objects.values_list("name", "enabled")) == [("nightly", False)]
    assert "BEAT_SCHEDULE entry 'nightly' is invalid" in caplog.text


@pytest.mark.django_db
def test_sync_reads_the_setting() -> None:
    with declared(tick={"task": NOOP, "schedule": 2}):
        assert beat_schedule.sync().created == ["tick"]


@pytest.mark.django_db(transaction=True)
def test_saving_a_periodic_task_wakes_the_scheduler() -> None:
    link = leadership.Link()
    try:
        assert link.try_lead()
        assert not link.wait(0)
        row = every(5)
        assert link.wait(2)
        row.delete()
        assert link.wait(2)
    finally:
        link.close()


@pytest.mark.django_db(transaction=True)
def test_one_leader_at_a_time_and_a_follower_takes_over() -> None:
    first, second = leadership.Link(), leadership.Link()
    try:
        assert first.try_lead()
        assert not second.try_lead()
        first.close()  # as when the leader's process dies: its session ends
        # The server lets the lock go when it has ended the closed session, a moment
        # after the close: a follower keeps trying, as runbeat's do.
        deadline = time.monotonic() + 10
        while not second.try_lead():
            assert time.monotonic() < deadline, "the follower never took over"
            time.sleep(0.01)
    finally:
        first.close()
        second.close()


@pytest.mark.django_db(transaction=True)
def test_the_leader_lock_lives_in_a_transaction_that_holds_back_no_vacuum() -> None:
    link = leadership.Link()
    try:
        assert link.try_lead()
        link.check()
        key = sql.LEADER_LOCK
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "SELECT a.state, a.backend_xmin IS NULL, a.xact_start IS NOT NULL"
                " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s"
                " AND l.objid = %s AND l.objsubid = 1 AND a.datname = current_database()",
                [key >> 32, key & 0xFFFF_FFFF],
            )
            held = cursor.fetchall()
        # A transaction (so it keeps its server connection through a pooler) with no
        # snapshot between its statements.
        assert held == [("idle in transaction", True, True)]
    finally:
        link.close()


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_listen_dsn_does_not_keep_a_scheduler_from_leading(
    settings: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.DJQUEUE = {**settings.DJQUEUE, "LISTEN_DSN": f"host=127.0.0.1 port={port}"}
    attempts = []
    connect = leadership.listener.connect

    def counted() -> Any:
        attempts.append(time.monotonic())
        return connect()

    monkeypatch.setattr(leadership.listener, "connect", counted)
    link = leadership.Link()
    try:
        assert link.try_lead()  # the lock is on DATABASES
        assert not link.wait(0.2)  # no notification: the leader polls
        assert not link.wait(0.2)
    finally:
        link.close()
    # One attempt at the LISTEN_DSN, not one per wait: the next comes 10 s later.
    assert len(attempts) == 1
    warnings = [r.getMessage() for r in caplog.records if "cannot LISTEN" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "trying again in 10s" in warnings[0]


@pytest.mark.django_db
@override_settings(USE_TZ=False, TIME_ZONE="Europe/Paris")
def test_with_use_tz_off_naive_times_are_local_time() -> None:
    from djqueue.db.models import aware

    row = every(60)
    assert row.date_created.tzinfo is None
    item = entries.entry(row)
    assert abs(item.after - datetime.datetime.now(UTC)) < datetime.timedelta(seconds=5)
    decision = first_slot(row)
    assert entries.fire(item, decision, finish=False)
    row.refresh_from_db()
    assert row.last_run_at is not None and row.last_run_at.tzinfo is None
    assert aware(row.last_run_at) == decision.slot


# Django's foreign keys are checked at commit: the test needs real commits.
@pytest.mark.django_db(transaction=True)
def test_a_task_deleted_since_it_was_read_is_not_sent() -> None:
    row = every(1)
    item, decision = entries.entry(row), first_slot(row)
    row.delete()
    assert entries.fire(item, decision, finish=False) is False
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_settings_schedules_are_stored_with_their_celery_semantics() -> None:
    spec = {
        "half-second": {
            "task": NOOP,
            "schedule": schedules.schedule(run_every=datetime.timedelta(seconds=1.5)),
        },
        "quarter": {"task": NOOP, "schedule": 0.25},
        "friday-13th": {
            "task": NOOP,
            "schedule": schedules.crontab(
                minute=[0, 30], hour=0, day_of_week="fri", day_of_month=13
            ),
        },
        "night": {"task": NOOP, "schedule": schedules.crontab(minute=0, hour="22-2")},
        "melbourne": {"task": NOOP, "schedule": schedules.solar("sunset", -37.81, 144.96)},
        "paris-dawn": {"task": NOOP, "schedule": schedules.solar("dawn", 48.8566, 2.3522)},
    }
    beat_schedule.sync(spec)
    rows = {row.name: row for row in PeriodicTask.objects.select_related("interval", "crontab")}
    assert rows["half-second"].interval is not None
    assert (rows["half-second"].interval.every, rows["half-second"].interval.period) == (
        1_500_000,
        IntervalSchedule.MICROSECONDS,
    )
    assert rows["half-second"].interval.seconds == 1.5
    assert rows["quarter"].interval is not None and rows["quarter"].interval.seconds == 0.25
    # The stored rows read back as the same schedules, with the same next runs.
    friday = rows["friday-13th"].crontab
    assert friday is not None and (friday.minute, friday.day_of_week) == ("0,30", "fri")
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    assert rows["friday-13th"].schedule().next_after(start) == spec["friday-13th"][
        "schedule"
    ].next_after(start)
    assert rows["friday-13th"].schedule().next_after(start) == datetime.datetime(
        2026, 2, 13, tzinfo=datetime.UTC
    )
    assert rows["night"].schedule() == spec["night"]["schedule"]
    assert rows["melbourne"].schedule() == spec["melbourne"]["schedule"]
    assert PeriodicTask.objects.get(name="paris-dawn").solar.event == "dawn_civil"  # type: ignore[union-attr]
    # An interval row counts from the task's start, to the microsecond.
    row = rows["half-second"]
    anchor = row.anchor
    assert row.schedule().next_after(anchor) == anchor + datetime.timedelta(seconds=1.5)


@pytest.mark.django_db
def test_a_stored_crontab_that_cron_would_read_as_six_fields_is_refused() -> None:
    row = CrontabSchedule(minute="0", hour="5 1")
    with pytest.raises(ValidationError, match="hour='5 1' is invalid"):
        row.full_clean()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("night", "expected"),
    [
        # Spring: 02:00 becomes 03:00; 02:30 runs at 03:30, and no hour is skipped.
        (
            datetime.datetime(2026, 3, 29),
            [
                "00:30+01:00",
                "01:30+01:00",
                "03:30+02:00",
                "04:30+02:00",
                "05:30+02:00",
                "06:30+02:00",
            ],
        ),
        # Autumn: 03:00 becomes 02:00; 02:30 runs once, on its first pass.
        (
            datetime.datetime(2026, 10, 25),
            ["00:30+02:00", "01:30+02:00", "02:30+02:00", "03:30+01:00", "04:30+01:00"],
        ),
    ],
)
def test_the_scheduler_fires_an_hourly_crontab_once_per_slot_across_dst(
    night: datetime.datetime, expected: list[str]
) -> None:
    from djqueue.beat import scheduler as beat

    paris = zoneinfo.ZoneInfo("Europe/Paris")
    start = night.replace(tzinfo=paris)
    crontab = CrontabSchedule.objects.create(minute="30", timezone="Europe/Paris")
    row = PeriodicTask.objects.create(name="hourly", task=NOOP, crontab=crontab, start_time=start)
    scheduler = beat.Scheduler(beat.DatabaseStore())
    scheduler.load()
    now = start.astimezone(datetime.UTC)
    while now < start.astimezone(datetime.UTC) + datetime.timedelta(hours=6):
        scheduler.tick(now)
        now += datetime.timedelta(minutes=1)
    slots = PeriodicRun.objects.filter(periodic_task=row).order_by("slot")
    # Six real hours from midnight.
    assert [run.slot.astimezone(paris).isoformat()[11:] for run in slots] == [
        f"{time[:5]}:00{time[5:]}" for time in expected
    ]
    assert Job.objects.filter(task_name=NOOP).count() == slots.count()


@pytest.mark.django_db(transaction=True)
def test_the_scheduler_sends_beat_init_first_as_celerys() -> None:
    from djqueue.beat import scheduler
    from djqueue.core import signals

    heard: list[tuple[Any, dict[str, Any]]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        heard.append((sender, kwargs))

    stopped = threading.Event()
    stopped.set()  # run() returns once started, as when a stop came before it did
    made = scheduler.Beat("beat@test", stop=stopped)
    signals.beat_init.connect(receiver, weak=False)
    try:
        thread = threading.Thread(target=made.run)
        thread.start()
        thread.join(20)
    finally:
        signals.beat_init.disconnect(receiver)
    assert [sender for sender, _ in heard] == [made]
    assert heard[0][1]["signal"] is signals.beat_init
