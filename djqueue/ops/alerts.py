"""What needs a human, for the top of the overview: each alert says what is wrong and
links to the jobs concerned.

- a queue with due jobs and no live worker serving it;
- a paused queue;
- a worker that stopped heartbeating while it holds jobs (shown to users who may view
  workers);
- a task whose failure rate spiked (``ALERT_FAILURE_RATE``, ``ALERT_FAILURE_MIN_JOBS``);
- a queue whose oldest due job has waited longer than ``ALERT_WAIT_SECONDS``.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db.models import Count
from django.utils import timezone

from djqueue.core import conf, states
from djqueue.db import fleet, series
from djqueue.db.models import Job, Worker
from djqueue.ops import durations, links, stats

ERROR, WARNING = "error", "warning"
# The failure-rate window: the latest rolled-up minutes, against the hour before them.
RECENT = datetime.timedelta(minutes=5)
BASELINE = datetime.timedelta(hours=1)
# Lost workers looked at: the most recently heard from (rows of long-gone workers are
# pruned with finished jobs).
LOST_WORKERS_SHOWN = 20


@dataclass(frozen=True)
class Alert:
    level: str  # ERROR or WARNING
    kind: str  # no-worker, paused, lost-worker, failure-spike, long-wait
    text: str
    url: str


def current(
    depths: Sequence[stats.QueueDepth],
    paused: set[str],
    live: Sequence[Worker],
    until: datetime.datetime | None,
    see_workers: bool,
) -> list[Alert]:
    """The alerts now, most urgent first."""
    found = [
        *_unserved(depths, live, paused),
        *_paused(paused, depths),
        *(_lost_workers() if see_workers else []),
        *(_failure_spikes(until) if until is not None else []),
        *_long_waits(depths),
    ]
    return sorted(found, key=lambda alert: alert.level != ERROR)


def _unserved(
    depths: Iterable[stats.QueueDepth], live: Sequence[Worker], paused: set[str]
) -> list[Alert]:
    served = fleet.serving(live)
    return [
        Alert(
            ERROR,
            "no-worker",
            f"Queue {depth.queue!r}: {depth.waiting} job(s) due and no live worker serves it.",
            links.waiting(depth.queue),
        )
        for depth in depths
        if depth.waiting and depth.queue not in served and depth.queue not in paused
    ]


def _paused(paused: set[str], depths: Iterable[stats.QueueDepth]) -> list[Alert]:
    waiting = {depth.queue: depth.waiting for depth in depths}
    return [
        Alert(
            WARNING,
            "paused",
            f"Queue {name!r} is paused: {waiting.get(name, 0)} job(s) due wait for it "
            "to be resumed.",
            links.waiting(name),
        )
        for name in sorted(paused)
    ]


def _lost_workers() -> list[Alert]:
    lost = list(
        Worker.objects.using(conf.monitoring_database())
        .filter(stopped_at__isnull=True, last_heartbeat__lt=fleet.live_since())
        .order_by("-last_heartbeat")
        .values_list("name", "last_heartbeat")[:LOST_WORKERS_SHOWN]
    )
    if not lost:
        return []
    holding = dict(
        Job.objects.using(conf.monitoring_database())
        .filter(state__in=states.HELD, worker__in=[name for name, _ in lost])
        .values("worker")
        .annotate(n=Count("id"))
        .values_list("worker", "n")
    )
    return [
        Alert(
            ERROR,
            "lost-worker",
            f"Worker {name!r} has sent no heartbeat since "
            f"{durations.moment(beat)} and holds {holding[name]} job(s); "
            "they go back to their queue when their lease runs out.",
            links.held_by(name),
        )
        for name, beat in lost
        if holding.get(name)
    ]


def _failure_spikes(until: datetime.datetime) -> list[Alert]:
    recent = _failures(until - RECENT, until)
    before = _failures(until - RECENT - BASELINE, until - RECENT)
    rate = conf.number("ALERT_FAILURE_RATE")
    least = conf.integer("ALERT_FAILURE_MIN_JOBS")
    alerts = []
    for task, (failed, ended) in sorted(recent.items()):
        failed_before, ended_before = before.get(task, (0, 0))
        now_rate = failed / ended
        was = failed_before / ended_before if ended_before else 0.0
        if failed >= least and now_rate >= rate and now_rate >= 2 * was:
            alerts.append(
                Alert(
                    ERROR,
                    "failure-spike",
                    f"Task {task!r}: {failed} of {ended} job(s) failed in the last "
                    f"{RECENT.seconds // 60} minutes ({now_rate:.0%}; {was:.0%} in the hour "
                    "before).",
                    links.outcome(states.FAILURE, until - RECENT, until, task=task),
                )
            )
    return alerts


def _failures(start: datetime.datetime, end: datetime.datetime) -> dict[str, tuple[int, int]]:
    """Per task: (failed, ended) jobs in ``[start, end)``, from the time series."""
    found: dict[str, tuple[int, int]] = {}
    for total in series.task_totals(start, end):
        if total.outcome == states.RETRY:
            continue
        failed, ended = found.get(total.task_name, (0, 0))
        failed += total.count if total.outcome == states.FAILURE else 0
        found[total.task_name] = (failed, ended + total.count)
    return found


def _long_waits(depths: Iterable[stats.QueueDepth]) -> list[Alert]:
    limit = datetime.timedelta(seconds=conf.number("ALERT_WAIT_SECONDS"))
    now = timezone.now()
    return [
        Alert(
            WARNING,
            "long-wait",
            f"Queue {depth.queue!r}: a job due {_span(depth.oldest_wait)} ago has not started "
            f"(the threshold is {_span(limit)}).",
            links.waiting(depth.queue, due_before=now - limit),
        )
        for depth in depths
        if depth.oldest_wait is not None and depth.oldest_wait > limit
    ]


def _span(span: datetime.timedelta) -> str:
    return durations.duration(span.total_seconds(), whole=True)
