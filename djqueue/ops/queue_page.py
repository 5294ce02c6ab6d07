"""The queues page's rows: per queue, its depth and the age of its oldest due job, what
workers hold of it, its throughput over the last hour, the live workers serving it and
whether it is paused (docs/monitoring.md#queues).

Depths are read live through the partial indexes of waiting and held jobs (as the
overview's), throughput from the per-minute time series, so the page costs the same on a
table of a hundred jobs as on one of a hundred million.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from djqueue.core import conf, states
from djqueue.db import fleet
from djqueue.db.models import JobMinute, Queue
from djqueue.ops import durations, links, stats

# The window throughput is counted over.
WINDOW = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class Row:
    """One queue as the page shows it."""

    name: str
    waiting: int
    oldest: datetime.timedelta | None
    scheduled: int
    reserved: int
    running: int
    ended: int
    failed: int
    workers: list[str]
    paused: bool
    known: bool  # it has a row of its own (paused or limited once), which can be edited
    concurrency_limit: int | None = None
    rate: str = ""

    @property
    def per_minute(self) -> float:
        return self.ended / (WINDOW.total_seconds() / 60)

    @property
    def limits(self) -> str:
        """Its limits in words ("2 at once, 100/m"), "" for none."""
        parts = [f"{self.concurrency_limit} at once"] if self.concurrency_limit else []
        return ", ".join([*parts, self.rate] if self.rate else parts)

    @property
    def unserved(self) -> bool:
        return not self.workers and not self.paused and self.waiting > 0

    def urls(self, start: datetime.datetime, end: datetime.datetime) -> dict[str, str]:
        name = self.name
        return {
            "waiting": links.waiting(name),
            "held": links.jobs(state__in=links.HELD, queue__exact=name),
            "ended": links.jobs(queue__exact=name, finished_at__gte=start, finished_at__lt=end),
            "failed": links.outcome(states.FAILURE, start, end, queue__exact=name),
        }


def rows() -> list[Row]:
    """Every queue that has jobs waiting or held, ended some within the window, is
    served by a live worker, or has a row (paused now or once), by name."""
    end = timezone.now()
    depths = {depth.queue: depth for depth in stats.queue_depths()}
    known = {row.name: row for row in Queue.objects.using(conf.database())}
    serving = fleet.serving(stats.live_workers())
    ended, failed = _ended(end - WINDOW, end)
    names = sorted({*depths, *known, *serving, *ended})
    found = []
    for name in names:
        depth = depths.get(name) or stats.QueueDepth(name, 0, 0, None, 0, 0)
        found.append(
            Row(
                name=name,
                waiting=depth.waiting,
                oldest=depth.oldest_wait,
                scheduled=depth.scheduled,
                reserved=depth.reserved,
                running=depth.running,
                ended=ended.get(name, 0),
                failed=failed.get(name, 0),
                workers=serving.get(name, []),
                paused=name in known and known[name].paused,
                known=name in known,
                concurrency_limit=known[name].concurrency_limit if name in known else None,
                rate=rate_text(known[name]) if name in known else "",
            )
        )
    return found


def rate_text(row: Queue) -> str:
    """A queue row's rate limit as it is written (``"100/m"``); "" for none."""
    if row.rate_limit is None or row.rate_period is None:
        return ""
    units = {1.0: "s", 60.0: "m", 3600.0: "h"}
    unit = units.get(row.rate_period)
    return f"{row.rate_limit}/{unit}" if unit else f"{row.rate_limit}/{row.rate_period:g}s"


def _ended(
    start: datetime.datetime, end: datetime.datetime
) -> tuple[dict[str, int], dict[str, int]]:
    """Jobs that ended per queue in ``[start, end)``, and those that failed, from the
    time series (minutes rolled up so far)."""
    totals = (
        JobMinute.objects.using(conf.monitoring_database())
        .filter(minute__gte=start, minute__lt=end)
        .exclude(outcome=states.RETRY)
        .values_list("queue", "outcome")
        .annotate(n=Sum("count"))
    )
    ended: dict[str, int] = {}
    failed: dict[str, int] = {}
    for queue, outcome, n in totals:
        ended[queue] = ended.get(queue, 0) + int(n or 0)
        if outcome == states.FAILURE:
            failed[queue] = failed.get(queue, 0) + int(n or 0)
    return ended, failed


def context(found: Sequence[Row]) -> dict[str, Any]:
    """The rows and their links, for the template."""
    end = timezone.now()
    start = end - WINDOW
    return {
        "queue_rows": [
            {
                "row": row,
                "urls": row.urls(start, end),
                "oldest": durations.words(row.oldest) if row.oldest is not None else "-",
                "per_minute": f"{row.per_minute:.1f}",
            }
            for row in found
        ],
        "window_minutes": int(WINDOW.total_seconds() // 60),
    }
