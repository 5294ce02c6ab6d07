"""Schedule state: periodic tasks as the scheduler reads and fires them, the sync of
``DJQUEUE["BEAT_SCHEDULE"]``, change notifications, and scheduler leadership.

Jobs are enqueued through :mod:`djqueue.db.broker` only. Every SQL statement with a lock or
a trick is in the "Statements" section, with the reason for it.
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.db import IntegrityError, connections, transaction

from djqueue.core import conf, registry, schedules
from djqueue.core.exceptions import DjqueueError
from djqueue.core.records import NewJob
from djqueue.db import broker, listener
from djqueue.db import periodic as periodic_state
from djqueue.db.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
    aware,
)

logger = logging.getLogger("djqueue.beat")

# Advisory lock keys (any fixed 64-bit numbers, unlikely to collide with a project's).
LEADER_LOCK = 0x646A_7175_6265_6174  # "djqubeat"
SYNC_LOCK = 0x646A_7175_7379_6E63  # "djqusync"

# Statements ----------------------------------------------------------------------

# The leader lock is a session-level advisory lock on the scheduler's own connection:
# held for as long as that connection lives, and released by the server when it ends,
# however it ends (kill -9 included), so a follower's next attempt succeeds. "try" never
# waits, so followers stay responsive to shutdown.
TRY_LEAD = "SELECT pg_try_advisory_lock(%s)"

# Serializes BEAT_SCHEDULE syncs of schedulers starting together, so that two of them
# never both create the same periodic task; released at the end of the transaction.
LOCK_SYNC = "SELECT pg_advisory_xact_lock(%s)"

# The arbiter of double firing. Two leaders (or a stale one) that compute the same slot
# both try this insert; the unique (periodic_task_id, slot) index lets one in, and an
# insert racing an uncommitted one waits for it, then does nothing. The job is enqueued
# only when a row comes back, in the same transaction: a slot has a job iff it has a run.
INSERT_RUN = """
INSERT INTO djqueue_periodicrun (periodic_task_id, slot, job_id, enqueued_at)
VALUES (%s, %s, %s, now())
ON CONFLICT (periodic_task_id, slot) DO NOTHING
RETURNING id
"""

# A unique task's duplicate was not inserted: the run points at the job that stood in.
RUN_JOB = "UPDATE djqueue_periodicrun SET job_id = %s WHERE id = %s"

# GREATEST: a scheduler working from an older view never moves a task's last slot back
# (GREATEST ignores the NULL of a task that never ran). A finished task (one-off, or a
# schedule with no more slots) is disabled in the same statement.
ADVANCE = """
UPDATE djqueue_periodictask
SET last_run_at = GREATEST(last_run_at, %s),
    total_run_count = total_run_count + %s,
    enabled = enabled AND NOT %s
WHERE id = %s
"""

# The database's clock, as seconds since the epoch: a float needs no time-zone
# conversion, whatever USE_TZ says about how Django reads timestamps.
NOW = "SELECT extract(epoch FROM statement_timestamp())::float8"

PRUNE_RUNS = "DELETE FROM djqueue_periodicrun WHERE enqueued_at < now() - make_interval(secs => %s)"


# Entries -------------------------------------------------------------------------


class EntryError(DjqueueError):
    """A periodic task that cannot be sent as it is (unknown task, bad arguments...)."""


@dataclass(frozen=True)
class Entry:
    """A periodic task as the scheduler sees it: a snapshot of its row."""

    id: int
    name: str
    task: str
    schedule: schedules.Schedule
    # The last slot handled (run, or passed over under "skip"), or the task's start.
    after: datetime.datetime
    catch_up: str = schedules.CATCH_UP_ONCE
    one_off: bool = False
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue: str = ""
    priority: int | None = None
    expires: datetime.datetime | float | None = None
    # Changes whenever the row changes: an entry that failed is retried once it did.
    version: str = ""

    @property
    def once(self) -> bool:
        """Whether the task is done after one run (one-off, or a clocked time)."""
        return self.one_off or isinstance(self.schedule, schedules.Clocked)

    def next_slot(self) -> datetime.datetime | None:
        """The next slot after the last one handled (None: no more)."""
        return self.schedule.next_after(self.after)


def entry(row: PeriodicTask) -> Entry:
    """The scheduler's view of ``row``; raises ValueError when its schedule is invalid."""
    schedule = row.schedule()
    after = aware(row.last_run_at) if row.last_run_at is not None else row.anchor
    if row.last_run_at is None and isinstance(schedule, schedules.Clocked):
        # A clocked time before the task was made still runs (once, late).
        after = min(after, schedule.at - datetime.timedelta(microseconds=1))
    expires: datetime.datetime | float | None = None
    if row.expires is not None:
        expires = aware(row.expires)
    elif row.expire_seconds is not None:
        expires = float(row.expire_seconds)
    return Entry(
        id=row.pk,
        name=row.name,
        task=row.task,
        schedule=schedule,
        after=after,
        catch_up=row.catch_up,
        one_off=row.one_off,
        args=list(row.args or []),
        kwargs=dict(row.kwargs or {}),
        queue=row.queue,
        priority=row.priority,
        expires=expires,
        version=row.date_changed.isoformat() if row.date_changed else "",
    )


def load() -> tuple[list[Entry], dict[int, tuple[str, str]]]:
    """Enabled periodic tasks as entries, and the invalid ones: id -> (version, error)."""
    rows = PeriodicTask.objects.using(_alias()).filter(enabled=True)
    entries, invalid = [], {}
    for row in rows.select_related("interval", "crontab", "solar", "clocked"):
        try:
            entries.append(entry(row))
        except ValueError as exc:
            invalid[row.pk] = (row.date_changed.isoformat(), f"{row.name!r}: {exc}")
    return entries, invalid


def job(item: Entry) -> NewJob:
    """The job to enqueue for ``item``; raises EntryError when it cannot be made."""
    try:
        task = registry.get(item.task)
        return task.prepare(
            item.args,
            item.kwargs,
            queue=item.queue or None,
            priority=item.priority,
            expires=item.expires,
        )
    except (DjqueueError, KeyError, ValueError, TypeError) as exc:
        raise EntryError(f"periodic task {item.name!r} cannot be sent: {_message(exc)}") from None


def fire(item: Entry, decision: schedules.Decision, finish: bool) -> bool:
    """Record ``decision`` for ``item``, enqueueing its job when it runs.

    Returns whether this call enqueued the job: False when the slot was passed over, or
    when another scheduler had enqueued it already. ``finish`` disables the task.
    """
    made = job(item) if decision.run else None
    alias = _alias()
    try:
        with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
            inserted = made is not None and _insert_run(cursor, item, decision.slot, made)
            cursor.execute(ADVANCE, [decision.slot, int(inserted), finish, item.id])
    except IntegrityError:
        # The task was deleted since it was read (its deletion's notification will
        # make the scheduler read the tasks again): the run's foreign key fails.
        logger.info("Periodic task %r was deleted; nothing sent for it.", item.name)
        return False
    return inserted


def _insert_run(cursor: Any, item: Entry, slot: datetime.datetime, made: NewJob) -> bool:
    cursor.execute(INSERT_RUN, [item.id, slot, made.id])
    row = cursor.fetchone()
    if row is None:
        return False
    [job_id] = broker.enqueue([made])
    if job_id != made.id:
        cursor.execute(RUN_JOB, [job_id, row[0]])
    return True


def run_now(row: PeriodicTask) -> uuid.UUID:
    """Enqueue ``row``'s task now, outside its schedule (the admin's "run now")."""
    [job_id] = broker.enqueue([job(entry(row))])
    return job_id


def next_run(row: PeriodicTask) -> datetime.datetime | None:
    """When ``row`` runs next (a past moment: overdue, runs as soon as a scheduler leads)."""
    if not row.enabled:
        return None
    try:
        return entry(row).next_slot()
    except ValueError:
        return None


def db_now() -> datetime.datetime:
    """The database's current time (all scheduling decisions use it)."""
    with connections[_alias()].cursor() as cursor:
        cursor.execute(NOW)
        (seconds,) = cursor.fetchone()
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC)


def prune_runs(older_than: float) -> int:
    """Delete run records older than ``older_than`` seconds; return how many."""
    with connections[_alias()].cursor() as cursor:
        cursor.execute(PRUNE_RUNS, [older_than])
        return int(cursor.rowcount)


# Leadership ----------------------------------------------------------------------


class Link:
    """The scheduler's own connection: holds the leader lock and LISTENs for changes.

    One connection does both, so that losing it loses leadership and notifications
    together, and a new leader always listens.
    """

    def __init__(self) -> None:
        self._conn: psycopg.Connection[Any] | None = None
        self.leading = False

    def try_lead(self) -> bool:
        """Become the leader if nobody is; True if this process now leads."""
        if self.leading:
            return True
        if self._conn is None or self._conn.closed:
            self._conn = listener.connect()
            self._conn.execute(f"LISTEN {periodic_state.CHANNEL}")
        row = self._conn.execute(TRY_LEAD, [LEADER_LOCK]).fetchone()
        self.leading = bool(row and row[0])
        return self.leading

    def check(self) -> None:
        """Raise psycopg.OperationalError when the connection (so the lock) is gone."""
        if self._conn is None or self._conn.closed:
            raise psycopg.OperationalError("the scheduler's connection is closed")
        self._conn.execute("SELECT 1")

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a change notification; True if one came."""
        if self._conn is None or self._conn.closed:
            raise psycopg.OperationalError("the scheduler's connection is closed")
        heard = False
        if timeout > 0:
            for _ in self._conn.notifies(timeout=timeout, stop_after=1):
                heard = True
        # Drain the ones that arrived together, without waiting.
        for _ in self._conn.notifies(timeout=0):
            heard = True
        return heard

    def close(self) -> None:
        """Close the connection, giving up leadership."""
        self.leading = False
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(psycopg.Error):
                conn.close()


# BEAT_SCHEDULE sync ----------------------------------------------------------------

SPEC_KEYS = {"task", "schedule", "args", "kwargs", "options", "catch_up", "description", "enabled"}
OPTION_KEYS = {"queue", "priority", "expires"}


@dataclass
class SyncReport:
    """What a sync did, by entry name."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def sync(spec: Mapping[str, Any] | None = None) -> SyncReport:
    """Create or update the periodic tasks of ``BEAT_SCHEDULE``; disable removed ones.

    Rows made in the admin are never touched. An entry that is invalid gets an error
    naming it in the report, and its row (if an earlier sync made one) is disabled, so
    nothing is enqueued for it.
    """
    spec = conf.get("BEAT_SCHEDULE") if spec is None else spec
    report = SyncReport()
    if not isinstance(spec, Mapping):
        report.errors["BEAT_SCHEDULE"] = f"must be a dict of entries, not {type(spec).__name__}"
        spec = {}
    alias = _alias()
    with transaction.atomic(using=alias):
        with connections[alias].cursor() as cursor:
            cursor.execute(LOCK_SYNC, [SYNC_LOCK])
        kept = [name for name, value in spec.items() if _sync_one(str(name), value, report)]
        stale = PeriodicTask.objects.using(alias).filter(from_settings=True, enabled=True)
        report.disabled = sorted(stale.exclude(name__in=kept).values_list("name", flat=True))
        if report.disabled:
            stale.filter(name__in=report.disabled).update(enabled=False)
            periodic_state.notify_changed(alias)
    for name, error in report.errors.items():
        logger.error("BEAT_SCHEDULE entry %r is invalid and will not run: %s", name, error)
    return report


def _sync_one(name: str, value: Any, report: SyncReport) -> bool:
    """Sync one entry; return whether its row now exists and is enabled."""
    try:
        with transaction.atomic(using=_alias()):
            fields = _fields(value)
            return _upsert(name, fields, report)
    except (DjqueueError, KeyError, ValueError, TypeError) as exc:
        report.errors[name] = _message(exc)
        return False


def _upsert(name: str, fields: dict[str, Any], report: SyncReport) -> bool:
    row = PeriodicTask.objects.using(_alias()).filter(name=name).first()
    if row is None:
        PeriodicTask.objects.using(_alias()).create(name=name, from_settings=True, **fields)
        report.created.append(name)
        return bool(fields["enabled"])
    if not row.from_settings:
        raise ValueError(
            f"a periodic task named {name!r} was made in the admin; the settings entry "
            "leaves it alone (rename one of them)"
        )
    changed = [key for key, value in fields.items() if getattr(row, key) != value]
    if changed:
        for key in changed:
            setattr(row, key, fields[key])
        row.save()
        report.updated.append(name)
    return bool(fields["enabled"])


def check_entry(value: Any) -> None:
    """Raise as a sync would on a bad BEAT_SCHEDULE entry, without touching the database.

    ``NotRegistered`` for an unknown task, ``ValueError``/``TypeError`` for the rest.
    """
    if not isinstance(value, Mapping):
        raise TypeError(f"an entry must be a dict with 'task' and 'schedule', not {value!r}")
    unknown = sorted(set(value) - SPEC_KEYS)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown}; entries take {sorted(SPEC_KEYS)}")
    for required in ("task", "schedule"):
        if required not in value:
            raise ValueError(f"the entry has no {required!r}")
    options = dict(value.get("options") or {})
    unknown = sorted(set(options) - OPTION_KEYS)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown}; options are {sorted(OPTION_KEYS)}")
    catch_up = value.get("catch_up", schedules.CATCH_UP_ONCE)
    if catch_up not in schedules.CATCH_UP_POLICIES:
        raise ValueError(f"catch_up must be one of {schedules.CATCH_UP_POLICIES}, not {catch_up!r}")
    check_schedule(value["schedule"])
    # Validates the task name, the arguments (JSON, size) and the options as a send would.
    registry.get(value["task"]).prepare(value.get("args", []), value.get("kwargs", {}), **options)


def check_schedule(schedule: Any) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``schedule`` can be an entry's schedule."""
    kinds = (schedules.Crontab, schedules.Solar, schedules.Clocked, schedules.Interval)
    if isinstance(schedule, kinds):
        return  # each validates itself when it is made
    if isinstance(schedule, datetime.timedelta | int | float) and not isinstance(schedule, bool):
        _interval(schedule)
        return
    raise TypeError(
        f"schedule must be crontab(...), schedule(run_every), seconds, a timedelta, "
        f"solar(...) or schedules.Clocked(...), not {schedule!r}"
    )


def _fields(value: Any) -> dict[str, Any]:
    """An entry of BEAT_SCHEDULE as PeriodicTask field values; raises on bad input."""
    check_entry(value)
    options = dict(value.get("options") or {})
    expires = options.get("expires")
    return {
        "task": value["task"],
        "args": list(value.get("args", [])),
        "kwargs": dict(value.get("kwargs", {})),
        "queue": options.get("queue") or "",
        "priority": options.get("priority"),
        "expires": expires if isinstance(expires, datetime.datetime) else None,
        "expire_seconds": None if expires is None else _expire_seconds(expires),
        "catch_up": value.get("catch_up", schedules.CATCH_UP_ONCE),
        "description": str(value.get("description", "")),
        "enabled": bool(value.get("enabled", True)),
        **_schedule_fields(value["schedule"]),
    }


def _expire_seconds(expires: Any) -> int | None:
    if isinstance(expires, datetime.datetime):
        return None
    seconds = expires.total_seconds() if isinstance(expires, datetime.timedelta) else expires
    return max(1, round(float(seconds)))


def _schedule_fields(schedule: Any) -> dict[str, Any]:
    """The four schedule foreign keys, exactly one set, for a schedule from settings."""
    found: dict[str, Any] = {"interval": None, "crontab": None, "solar": None, "clocked": None}
    if isinstance(schedule, schedules.Crontab):
        found["crontab"] = _get_or_create(CrontabSchedule, **schedule.fields())
    elif isinstance(schedule, schedules.Solar):
        found["solar"] = _get_or_create(
            SolarSchedule,
            event=schedule.event,
            latitude=_degrees(schedule.latitude),
            longitude=_degrees(schedule.longitude),
        )
    elif isinstance(schedule, schedules.Clocked):
        found["clocked"] = _get_or_create(ClockedSchedule, clocked_time=schedule.at)
    elif isinstance(schedule, schedules.Interval):
        every, period = _interval(schedule.run_every)
        found["interval"] = _get_or_create(IntervalSchedule, every=every, period=period)
    elif isinstance(schedule, datetime.timedelta | int | float) and not isinstance(schedule, bool):
        every, period = _interval(schedule)
        found["interval"] = _get_or_create(IntervalSchedule, every=every, period=period)
    else:
        raise TypeError(
            f"schedule must be crontab(...), schedule(run_every), seconds, a timedelta, "
            f"solar(...) or schedules.Clocked(...), not {schedule!r}"
        )
    return found


def _interval(value: datetime.timedelta | float) -> tuple[int, str]:
    """(every, period) for an interval: the largest period it is a whole number of."""
    step = value if isinstance(value, datetime.timedelta) else datetime.timedelta(seconds=value)
    micros = step // datetime.timedelta(microseconds=1)
    if micros <= 0:
        raise ValueError(f"an interval must be positive, not {value!r}")
    for period, size in IntervalSchedule.PERIOD_MICROSECONDS.items():
        if micros % size == 0:
            return micros // size, period
    raise AssertionError("every interval divides by 1 microsecond")  # pragma: no cover


def _degrees(value: float) -> decimal.Decimal:
    return decimal.Decimal(str(value)).quantize(decimal.Decimal("0.000001"))


def _get_or_create(model: Any, **values: Any) -> Any:
    """A schedule row with ``values``, reused when one exists (duplicates are allowed)."""
    manager = model.objects.using(_alias())
    return manager.filter(**values).order_by("pk").first() or manager.create(**values)


def _alias() -> str:
    return str(conf.get("DATABASE"))


def _message(exc: BaseException) -> str:
    # KeyError (NotRegistered) quotes its message in str(); the first arg is the text.
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc)
