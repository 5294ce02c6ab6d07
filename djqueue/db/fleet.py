"""The live workers, as every page, command and explanation reads them (the rule is
:func:`djqueue.db.workers.live_seconds`).

Apart from :mod:`djqueue.db.workers` (a worker's writes of its own row) because these
reads use the models, which a module the broker imports cannot: tasks may be declared,
and so the broker imported, before Django's apps are ready.
"""

from __future__ import annotations

import datetime

from django.db.models import Expression
from django.db.models.functions import Now
from django.utils import timezone

from djqueue.core import conf
from djqueue.db.models import Worker
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
