"""Periodic tasks as the scheduler sees them: entries read from their rows, the jobs
they send, and firing a slot (recorded by :mod:`djqueue.db.periodic`)."""

from __future__ import annotations

import datetime
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError

from djqueue.core import conf, publishing, registry, schedules
from djqueue.core.exceptions import DjqueueError
from djqueue.core.records import NewJob
from djqueue.db import broker, periodic
from djqueue.db.models import PeriodicTask, aware

logger = logging.getLogger("djqueue.beat")


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
        raise EntryError(f"periodic task {item.name!r} cannot be sent: {reason(exc)}") from None


def fire(item: Entry, decision: schedules.Decision, finish: bool) -> bool:
    """Record ``decision`` for ``item``, enqueueing its job when it runs.

    Returns whether this call enqueued the job: False when the slot was passed over, or
    when another scheduler had enqueued it already. ``finish`` disables the task.
    """
    made = job(item) if decision.run else None
    try:
        return periodic.record_run(item.id, decision.slot, made, finish)
    except IntegrityError:
        # The task was deleted since it was read (its deletion's notification will
        # make the scheduler read the tasks again): the run's foreign key fails.
        logger.info("Periodic task %r was deleted; nothing sent for it.", item.name)
        return False


def run_now(row: PeriodicTask) -> uuid.UUID:
    """Enqueue ``row``'s task now, outside its schedule (the admin's "run now")."""
    [made] = publishing.before([job(entry(row))])
    [job_id] = broker.enqueue([made])
    publishing.after([made])
    return job_id


def next_run(row: PeriodicTask) -> datetime.datetime | None:
    """When ``row`` runs next (a past moment: overdue, runs as soon as a scheduler leads)."""
    if not row.enabled:
        return None
    try:
        return entry(row).next_slot()
    except ValueError:
        return None


def _alias() -> str:
    return conf.database()


def reason(exc: BaseException) -> str:
    """The text of a validation error, as shown to the user."""
    # KeyError (NotRegistered) quotes its message in str(); the first arg is the text.
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc)
