"""Periodic task state: every statement and write on periodic tasks, schedules and runs.

The scheduler (:mod:`djqueue.beat`), the BEAT_SCHEDULE sync and the admin read the
models; whatever they change goes through here. The jobs of periodic tasks are enqueued
through :mod:`djqueue.db.broker`, in the transaction that records their run.
"""

from __future__ import annotations

import contextlib
import datetime
from typing import Any

import psycopg
from django.db import connections, models, transaction
from django.utils import timezone

from djqueue.core import conf, publishing
from djqueue.core.records import NewJob
from djqueue.db import broker, sessions, sql
from djqueue.db.models import PeriodicTask

# Notified (empty payload) whenever a periodic task or a schedule changes.
CHANNEL = sql.CHANNEL


# Firing --------------------------------------------------------------------------


def record_run(task_id: int, slot: datetime.datetime, made: NewJob | None, finish: bool) -> bool:
    """Record that ``slot`` of periodic task ``task_id`` was handled, in one transaction.

    ``made``: the job to enqueue for the slot (None: the slot is passed over). Returns
    whether this call enqueued it: False when another scheduler had already. ``finish``
    disables the task. Raises IntegrityError when the task was deleted meanwhile.
    """
    alias = _alias()
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        inserted = made is not None and _insert_run(cursor, task_id, slot, made)
        cursor.execute(sql.ADVANCE, [slot, int(inserted), finish, task_id])
    return inserted


def _insert_run(cursor: Any, task_id: int, slot: datetime.datetime, made: NewJob) -> bool:
    cursor.execute(sql.INSERT_RUN, [task_id, slot, made.id])
    row = cursor.fetchone()
    if row is None:
        return False
    [made] = publishing.before([made])
    [job_id] = broker.enqueue([made])
    publishing.after([made])
    if job_id != made.id:
        cursor.execute(sql.RUN_JOB, [job_id, row[0]])
    return True


def db_now() -> datetime.datetime:
    """The database's current time (all scheduling decisions use it)."""
    with connections[_alias()].cursor() as cursor:
        cursor.execute(sql.NOW)
        (seconds,) = cursor.fetchone()
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC)


def prune_runs(older_than: float) -> int:
    """Delete run records older than ``older_than`` seconds; return how many."""
    with connections[_alias()].cursor() as cursor:
        cursor.execute(sql.PRUNE_RUNS, [older_than])
        return int(cursor.rowcount)


# Leadership (on the scheduler's own psycopg connections) ---------------------------


def leader_connection() -> psycopg.Connection[Any]:
    """A connection of the scheduler's own for the leader lock, to ``DATABASES`` (through
    a transaction-mode pooler too: the lock lives in a transaction, see ``TRY_LEAD``)."""
    return sessions.connect_database(autocommit=False)


def try_lead(conn: psycopg.Connection[Any]) -> bool:
    """Take the leader lock on ``conn`` if nobody holds it; True if it is now held.

    ``conn`` is not in autocommit mode. When the lock is taken, its transaction stays
    open (the lock with it) until ``conn`` is rolled back or closed; otherwise it is
    rolled back at once (a pooler's server connection goes back to its pool).
    """
    try:
        sessions.guard_transaction(conn)
        row = conn.execute(sql.TRY_LEAD, [sql.LEADER_LOCK]).fetchone()
    except BaseException:
        _rollback_quietly(conn)
        raise
    if row and row[0]:
        return True
    conn.rollback()
    return False


def ping(conn: psycopg.Connection[Any]) -> None:
    """Raise psycopg.Error when ``conn`` (so the lock its transaction holds) is gone."""
    conn.execute(sql.PING)


def listen(conn: psycopg.Connection[Any]) -> None:
    """Subscribe ``conn`` (in autocommit mode) to change notifications."""
    conn.execute(sql.LISTEN)


def _rollback_quietly(conn: psycopg.Connection[Any]) -> None:
    with contextlib.suppress(psycopg.Error):
        conn.rollback()


# Writes of periodic tasks and schedules --------------------------------------------


def lock_sync() -> None:
    """Serialize BEAT_SCHEDULE syncs; call inside the sync's transaction."""
    with connections[_alias()].cursor() as cursor:
        cursor.execute(sql.LOCK_SYNC, [sql.SYNC_LOCK])


def create_task(name: str, fields: dict[str, Any]) -> None:
    """Create the periodic task ``name`` of a BEAT_SCHEDULE entry."""
    PeriodicTask.objects.using(_alias()).create(name=name, from_settings=True, **fields)


def create_imported_task(name: str, fields: dict[str, Any]) -> None:
    """Create the periodic task ``name`` imported from another scheduler's schedule."""
    PeriodicTask.objects.using(_alias()).create(name=name, from_settings=False, **fields)


def update_task(row: PeriodicTask, fields: dict[str, Any]) -> list[str]:
    """Set ``fields`` on ``row`` and save it if any changed; return the changed names."""
    changed = [key for key, value in fields.items() if getattr(row, key) != value]
    if changed:
        for key in changed:
            setattr(row, key, fields[key])
        row.save()
    return changed


def disable_from_settings(keep: list[str]) -> list[str]:
    """Disable the enabled tasks from settings not named in ``keep``; return their names."""
    alias = _alias()
    stale = PeriodicTask.objects.using(alias).filter(from_settings=True, enabled=True)
    names = sorted(stale.exclude(name__in=keep).values_list("name", flat=True))
    if names:
        stale.filter(name__in=names).update(enabled=False)
        notify_changed(alias)
    return names


def schedule_row(model: type[models.Model], **values: Any) -> Any:
    """A schedule row with ``values``, reused when one exists (duplicates are allowed)."""
    manager = model._default_manager.using(_alias())
    return manager.filter(**values).order_by("pk").first() or manager.create(**values)


def set_enabled(rows: models.QuerySet[PeriodicTask], enabled: bool) -> list[PeriodicTask]:
    """Enable or disable ``rows``; return the ones that changed."""
    changed = list(rows.exclude(enabled=enabled))
    rows.filter(pk__in=[row.pk for row in changed]).update(
        enabled=enabled, date_changed=timezone.now()
    )
    # A bulk update sends no save signal: wake the scheduler here.
    notify_changed(rows.db)
    return changed


def save(row: models.Model) -> None:
    """Save a periodic task or schedule edited in the admin (its signal wakes schedulers)."""
    row.save()


def delete(row: models.Model) -> None:
    """Delete a periodic task or schedule (and what depends on it)."""
    row.delete()


def delete_rows(rows: models.QuerySet[Any]) -> None:
    """Delete ``rows`` and what depends on them (each deletion wakes schedulers)."""
    rows.delete()


# Change notifications ----------------------------------------------------------------


def notify_changed(using: str | None = None) -> None:
    """Tell running schedulers to read the periodic tasks again (at commit)."""
    with connections[using or _alias()].cursor() as cursor:
        cursor.execute(sql.NOTIFY_SCHEDULES, [sql.CHANNEL])


def schedules_changed(sender: type[models.Model], using: str, **kwargs: Any) -> None:
    """Signal receiver: a periodic task or a schedule was saved or deleted."""
    notify_changed(using)


def _alias() -> str:
    return conf.database()
