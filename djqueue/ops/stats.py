"""Read-only figures about the queue for the dashboard and the command line.

They are read from the monitoring database (``MONITORING_DATABASE``, a standby if the
project has one), which may lag the primary by a moment.

Every query is bounded by an index or a time window, so that a page stays fast on a
table of millions of jobs: waiting jobs come from the partial ready index, finished
ones from the finished_at index over a recent window only.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.db.models import (
    Aggregate,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Min,
    Q,
)
from django.db.models.functions import TruncMinute
from django.utils import timezone

from djqueue.core import conf, states
from djqueue.db import fleet
from djqueue.db.models import Job, Worker


class _Percentile(Aggregate):
    """PostgreSQL's ``percentile_cont(p) WITHIN GROUP (ORDER BY expression)``."""

    function = "percentile_cont"
    template = "%(function)s(%(percentile)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, percentile: float) -> None:
        super().__init__(expression, percentile=percentile)


@dataclass(frozen=True)
class QueueDepth:
    queue: str
    waiting: int  # due now
    scheduled: int  # due later (countdown, eta, retries)
    oldest_wait: datetime.timedelta | None  # age of the oldest due job
    running: int
    reserved: int = 0  # claimed, waiting in a worker's buffer (RECEIVED)


@dataclass(frozen=True)
class Minute:
    at: datetime.datetime
    succeeded: int
    failed: int
    retried: int = 0


@dataclass(frozen=True)
class TaskFigures:
    task_name: str
    finished: int
    failed: int
    runtime_p50: float | None
    runtime_p95: float | None
    wait_p50: float | None
    wait_p95: float | None

    @property
    def failure_rate(self) -> float:
        return self.failed / self.finished if self.finished else 0.0


def _jobs() -> Any:
    return Job.objects.using(conf.monitoring_database())


def queue_depths() -> list[QueueDepth]:
    """Waiting, scheduled, reserved and running jobs per queue, with the oldest due
    job's age."""
    now = timezone.now()
    waiting: dict[str, tuple[int, int, datetime.datetime | None]] = {}
    # Limited (gated) and other waiting jobs apart: each is read through its own partial
    # index (djqueue_job_gated, djqueue_job_ready); together no index holds them, and the
    # whole table would be read.
    for gated in (False, True):
        rows = (
            _jobs()
            .filter(state__in=states.WAITING, gated=gated)
            .values("queue")
            .annotate(
                due=Count("id", filter=Q(eta__lte=now)),
                later=Count("id", filter=Q(eta__gt=now)),
                oldest=Min("eta", filter=Q(eta__lte=now)),
            )
        )
        for row in rows:
            due, later, oldest = waiting.get(row["queue"], (0, 0, None))
            if row["oldest"] is not None:
                oldest = row["oldest"] if oldest is None else min(oldest, row["oldest"])
            waiting[row["queue"]] = (due + row["due"], later + row["later"], oldest)
    held = {
        row["queue"]: (row["running"], row["reserved"])
        for row in _jobs()
        .filter(state__in=states.HELD)
        .values("queue")
        .annotate(
            running=Count("id", filter=Q(state=states.STARTED)),
            reserved=Count("id", filter=Q(state=states.RECEIVED)),
        )
    }
    found = {
        queue: QueueDepth(
            queue, due, later, now - oldest if oldest else None, *held.pop(queue, (0, 0))
        )
        for queue, (due, later, oldest) in waiting.items()
    }
    for queue, (running, reserved) in held.items():
        found[queue] = QueueDepth(queue, 0, 0, None, running, reserved)
    return sorted(found.values(), key=lambda depth: depth.queue)


def throughput(hours: float = 3.0) -> list[Minute]:
    """Jobs finished (succeeded, failed) and retried per minute over the last ``hours``.

    Every minute of the window is listed, with zeros where nothing finished, so that a
    chart of it has a true time axis.
    """
    now = timezone.now().replace(second=0, microsecond=0)
    since = now - datetime.timedelta(hours=hours)
    rows = (
        _jobs()
        .filter(finished_at__gte=since)
        .annotate(minute=TruncMinute("finished_at"))
        .values("minute")
        .annotate(
            succeeded=Count("id", filter=Q(state=states.SUCCESS)),
            failed=Count("id", filter=Q(state=states.FAILURE)),
        )
        .order_by("minute")
    )
    counts = {row["minute"]: (row["succeeded"], row["failed"]) for row in rows}
    retried = dict(
        _jobs()
        .filter(retried_at__gte=since)
        .annotate(minute=TruncMinute("retried_at"))
        .values("minute")
        .annotate(n=Count("id"))
        .values_list("minute", "n")
    )
    minutes = int(hours * 60)
    return [
        Minute(at, *counts.get(at, (0, 0)), retried=retried.get(at, 0))
        for at in (since + datetime.timedelta(minutes=n) for n in range(minutes + 1))
    ]


def task_figures(hours: float = 1.0) -> list[TaskFigures]:
    """Per task over the last ``hours``: counts, failure rate, runtime and wait percentiles."""
    since = timezone.now() - datetime.timedelta(hours=hours)
    runtime = _seconds(F("finished_at") - F("started_at"))
    wait = _seconds(F("started_at") - F("eta"))
    rows = (
        _jobs()
        .filter(finished_at__gte=since, started_at__isnull=False)
        .values("task_name")
        .annotate(
            finished=Count("id"),
            failed=Count("id", filter=Q(state=states.FAILURE)),
            runtime_p50=_Percentile(runtime, 0.5),
            runtime_p95=_Percentile(runtime, 0.95),
            wait_p50=_Percentile(wait, 0.5),
            wait_p95=_Percentile(wait, 0.95),
        )
        .order_by("task_name")
    )
    return [TaskFigures(**row) for row in rows]


def _seconds(interval: Any) -> Any:
    # EXTRACT(EPOCH FROM interval) as seconds, for percentiles over durations.
    from django.db.models import Func

    return Func(
        ExpressionWrapper(interval, output_field=DurationField()),
        template="EXTRACT(EPOCH FROM %(expressions)s)",
        output_field=FloatField(),
    )


def live_workers() -> list[Worker]:
    """The live workers (:mod:`djqueue.db.fleet`), read from the monitoring database."""
    return fleet.live_workers(conf.monitoring_database())


def paused_queues() -> set[str]:
    """The paused queues (:mod:`djqueue.db.fleet`), read from the monitoring database."""
    return fleet.paused_queues(conf.monitoring_database())
