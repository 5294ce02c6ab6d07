"""What the job list reads on a big table (docs/monitoring.md#the-job-list).

A filter or search that an index serves reads a page of jobs at once; one that no index
serves (a rare task, queue or worker; a state without an index of its own; the task
names a search matches) would read the whole table looking for a page of matches. The
list asks the planner first: when a page would cost more than COSTLY, it looks at a
window of the newest WINDOW jobs only (or of those before the id in ``?before=``), and
links to the window before it. The planner cannot know that the matches of a filter on
a column the ids do not follow (a time long ago, say) are all old, so a page it thought
cheap gets PAGE_MILLISECONDS, and a window when that runs out. A filtered count that
would read too many rows is the planner's estimate.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from djqueue.db import counts
from djqueue.db.models import Job

# Jobs a window holds: reading them with a filter takes some tens of milliseconds.
WINDOW = 100_000
# Planner cost units above which a page or a count is not read as it is: about what
# reading a few hundred thousand rows costs (a window reads less).
COSTLY = 20_000.0
# Milliseconds a page the planner thought cheap may take to read (with its count).
PAGE_MILLISECONDS = 150
# The URL parameter of an older window: the id its jobs come before.
BEFORE = "before"


def costly(queryset: QuerySet[Any]) -> bool:
    """Whether reading ``queryset`` would cost more than COSTLY."""
    return counts.plan(queryset).cost > COSTLY


@dataclass(frozen=True)
class Window:
    """The jobs a windowed list looks at: ids from ``oldest`` up to (not including)
    ``before`` (None: up to the newest)."""

    oldest: uuid.UUID
    before: uuid.UUID | None


def window(using: str, before: uuid.UUID | None) -> Window | None:
    """The window of the WINDOW newest jobs (before ``before``); None when it would hold
    every job there is (the list then reads them all, which is as cheap)."""
    jobs = Job.objects.using(using).order_by("-id")
    if before is not None:
        jobs = jobs.filter(id__lt=before)
    oldest = next(iter(jobs.values_list("id", flat=True)[WINDOW - 1 : WINDOW]), None)
    return None if oldest is None else Window(oldest, before)


def before(request_value: str | None) -> uuid.UUID | None:
    """The id of ``?before=``, None when absent or not an id."""
    try:
        return uuid.UUID(request_value) if request_value else None
    except ValueError:
        return None
