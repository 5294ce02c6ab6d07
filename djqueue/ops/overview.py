"""The overview's figures as one JSON-ready dict: what the page shows first and what its
script fetches every few seconds (docs/monitoring.md).

Charts and per-task figures come from the time series (``djqueue.db.series``), so
they cost the same on a table of a hundred jobs as on one of a hundred million; queue
depths, workers and alerts are read live, through the partial indexes of waiting and
held jobs.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from djqueue.core import histogram, states
from djqueue.db import fleet, series
from djqueue.ops import access, alerts, links, stats

# Range name -> (length, seconds per chart bin): about 60 to 170 bars per chart.
RANGES: dict[str, tuple[datetime.timedelta, int]] = {
    "hour": (datetime.timedelta(hours=1), 60),
    "day": (datetime.timedelta(days=1), 600),
    "week": (datetime.timedelta(days=7), 3600),
}
DEFAULT_RANGE = "hour"
# Outcomes in chart order, with their colours (from the code, never from data).
OUTCOMES = [
    (states.SUCCESS, "#3a7d44"),
    (states.FAILURE, "#ba2121"),
    (states.RETRY, "#d98c00"),
    (states.REVOKED, "#777777"),
    (states.REJECTED, "#8e44ad"),
    (states.IGNORED, "#b0b0b0"),
]
PERCENTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
MINUTE = datetime.timedelta(minutes=1)


def build(request: HttpRequest, range_name: str) -> dict[str, Any]:
    """Everything the overview shows, for the range ``range_name`` (hour, day, week)."""
    length, step = RANGES[range_name]
    mark = series.mark()
    end = mark or timezone.now().replace(second=0, microsecond=0)
    start = end - length
    if step % 3600 == 0:
        # Bins of whole hours start on an hour, so that the chart reads the hours table
        # (db.series); the range then reaches up to an hour further back.
        start = start.astimezone(datetime.UTC).replace(minute=0)
    depths = stats.queue_depths()
    paused = stats.paused_queues()
    # Only what the user may open elsewhere (ops.access).
    see_workers = access.Visible.to(request.user).workers
    live = stats.live_workers()
    totals = series.task_totals(start, end)
    return {
        "now": timezone.now().isoformat(),
        "range": range_name,
        "ranges": list(RANGES),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "rolled_up": mark is not None,
        "alerts": [
            vars(alert) for alert in alerts.current(depths, paused, live, mark, see_workers)
        ],
        "figures": _figures(totals, start, end),
        "throughput": _throughput(start, end, step),
        "depth": _depth(start, end, step),
        "queues": _queues(depths, paused, live),
        "tasks": _tasks(totals, start, end),
        "workers": _workers(live) if see_workers else None,
    }


def _bins(start: datetime.datetime, end: datetime.datetime, step: int) -> list[datetime.datetime]:
    # The last bin may be partial (a range that starts on an hour).
    count = math.ceil((end - start).total_seconds() / step)
    return [start + datetime.timedelta(seconds=step * n) for n in range(count)]


def _throughput(start: datetime.datetime, end: datetime.datetime, step: int) -> dict[str, Any]:
    bins = _bins(start, end, step)
    index = {at: n for n, at in enumerate(bins)}
    values: dict[str, list[int]] = {}
    for at, outcome, count in series.outcomes_by_bin(start, end, step):
        values.setdefault(outcome, [0] * len(bins))[index[at]] += count
    return {
        "bins": [at.isoformat() for at in bins],
        "step": step,
        "series": [
            {
                "name": outcome,
                "colour": colour,
                "values": values[outcome],
                "url": links.outcome(outcome),
                "field": links.time_field(outcome),
            }
            for outcome, colour in OUTCOMES
            if outcome in values
        ],
    }


def _depth(start: datetime.datetime, end: datetime.datetime, step: int) -> dict[str, Any]:
    """Peak due jobs per bin, per queue; None where no sample was taken."""
    bins = _bins(start, end, step)
    index = {at: n for n, at in enumerate(bins)}
    sampled: set[int] = set()
    waiting: dict[str, list[int | None]] = {}
    for at, queue, peak, _running, _oldest in series.depth_by_bin(start, end, step):
        if queue == "":
            sampled.add(index[at])
            continue
        waiting.setdefault(queue, [None] * len(bins))[index[at]] = peak
    for line in waiting.values():
        for n in sampled:
            if line[n] is None:
                line[n] = 0  # sampled, and the queue had nothing waiting
    return {
        "bins": [at.isoformat() for at in bins],
        "step": step,
        "series": [
            {"name": queue, "values": line, "url": links.waiting(queue)}
            for queue, line in sorted(waiting.items())
        ],
    }


def _durations(ran: Sequence[series.TaskTotal], kind: str) -> dict[str, float | None]:
    """Percentiles of ``kind`` ("runtime" or "wait") over the jobs of ``ran``."""
    buckets = histogram.added(getattr(t, f"{kind}_buckets") for t in ran)
    peaks = [getattr(t, f"{kind}_max") for t in ran]
    peak = max((p for p in peaks if p is not None), default=None)
    return {name: histogram.percentile(buckets, p, peak) for name, p in PERCENTILES}


def _figures(
    totals: Sequence[series.TaskTotal], start: datetime.datetime, end: datetime.datetime
) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for total in totals:
        counts[total.outcome] = counts.get(total.outcome, 0) + total.count
    ended = sum(n for outcome, n in counts.items() if outcome != states.RETRY)
    ran = [t for t in totals if t.outcome != states.RETRY]
    return {
        "outcomes": [
            {
                "name": outcome,
                "count": counts.get(outcome, 0),
                "url": links.outcome(outcome, start, end),
            }
            for outcome, _ in OUTCOMES
            if outcome in counts or outcome in (states.SUCCESS, states.FAILURE)
        ],
        "failure_rate": counts.get(states.FAILURE, 0) / ended if ended else None,
        "failure_url": links.outcome(states.FAILURE, start, end),
        "runtime": _durations(ran, "runtime"),
        "wait": _durations(ran, "wait"),
        "ended_url": links.jobs(finished_at__gte=start, finished_at__lt=end),
    }


def _tasks(
    totals: Sequence[series.TaskTotal], start: datetime.datetime, end: datetime.datetime
) -> list[dict[str, Any]]:
    by_task: dict[str, list[series.TaskTotal]] = {}
    for total in totals:
        by_task.setdefault(total.task_name, []).append(total)
    rows = []
    for task, parts in sorted(by_task.items()):
        ran = [t for t in parts if t.outcome != states.RETRY]
        ended = sum(t.count for t in ran)
        failed = sum(t.count for t in ran if t.outcome == states.FAILURE)
        rows.append(
            {
                "task": task,
                "ended": ended,
                "ended_url": links.jobs(task=task, finished_at__gte=start, finished_at__lt=end),
                "failed": failed,
                "failed_url": links.outcome(states.FAILURE, start, end, task=task),
                "failure_rate": failed / ended if ended else None,
                "runtime": _durations(ran, "runtime"),
                "wait": _durations(ran, "wait"),
            }
        )
    return rows


def _queues(
    depths: Sequence[stats.QueueDepth], paused: set[str], live: Sequence[Any]
) -> list[dict[str, Any]]:
    serving = fleet.serving(live)
    names = sorted({depth.queue for depth in depths} | paused)
    by_name = {depth.queue: depth for depth in depths}
    rows = []
    for name in names:
        depth = by_name.get(name) or stats.QueueDepth(name, 0, 0, None, 0, 0)
        rows.append(
            {
                "queue": name,
                "waiting": depth.waiting,
                "waiting_url": links.waiting(name, due_before=None),
                "oldest_seconds": depth.oldest_wait.total_seconds() if depth.oldest_wait else None,
                "scheduled": depth.scheduled,
                "reserved": depth.reserved,
                "running": depth.running,
                "held_url": links.jobs(state__in=links.HELD, queue__exact=name),
                "paused": name in paused,
                "workers": len(serving.get(name, [])),
            }
        )
    return rows


def _workers(live: Sequence[Any]) -> dict[str, Any]:
    return {"live": len(live), "url": reverse("admin:djqueue_worker_changelist")}
