"""Who serves which queue, as every page, command and explanation reads it: the live
workers (the rule is :func:`djqueue.db.workers.live_seconds`), the queues they serve, and
the paused queues.

Apart from :mod:`djqueue.db.workers` (a worker's writes of its own row) because these
reads use the models, which a module the broker imports cannot: tasks may be declared,
and so the broker imported, before Django's apps are ready.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from django.db.models import Expression
from django.db.models.functions import Now
from django.utils import timezone

from djqueue.core import conf
from djqueue.db.models import Queue, Worker
from djqueue.db.workers import live_seconds


def live_since() -> Expression:
    """The oldest last heartbeat of a live worker, on the database's clock (for queries)."""
    return Now() - datetime.timedelta(seconds=live_seconds())


def is_alive(last_heartbeat: datetime.datetime, stopped_at: datetime.datetime | None) -> bool:
    """Whether a worker row read earlier tells of a live worker (by this process's clock)."""
    age = timezone.now() - last_heartbeat
    return stopped_at is None and age <= datetime.timedelta(seconds=live_seconds())


def live_workers(using: str | None = None) -> list[Worker]:
    """The live workers' rows, by name, read through alias ``using`` (the queue's
    database by default)."""
    return list(
        Worker.objects.using(using or conf.database())
        .filter(stopped_at__isnull=True, last_heartbeat__gte=live_since())
        .order_by("name")
    )


def serving(live: Iterable[Worker]) -> dict[str, list[str]]:
    """Per queue, the names of the workers in ``live`` that take jobs from it (a queue
    no live worker serves is not in it)."""
    found: dict[str, list[str]] = {}
    for worker in live:
        for queue in worker.queues or []:
            found.setdefault(str(queue), []).append(worker.name)
    return found


def paused_queues(using: str | None = None) -> set[str]:
    """The names of the queues paused now, read through alias ``using`` (the queue's
    database by default). The worker reads them with their limits instead
    (``broker.paused_queues``)."""
    return set(
        Queue.objects.using(using or conf.database())
        .filter(paused=True)
        .values_list("name", flat=True)
    )
