"""What the job list reads on a big table (docs/monitoring.md#the-job-list).

A filter or search that an index serves reads a page of jobs at once; one that no index
serves (a rare task, queue or worker; a state without an index of its own; the task
names a search matches) would read the whole table looking for a page of matches. The
list asks the planner first: when a page would cost more than COSTLY, it looks at a
window of the newest WINDOW jobs only (or of those before the id in ``?before=``), and
links to the window before it (a list filtered to an enqueued window long ago starts
at the window's end: ids are time-ordered). The planner cannot know that the matches of a filter on
a column the ids do not follow (a time long ago, say) are all old, so a page it thought
cheap gets PAGE_MILLISECONDS, and a window when that runs out. A filtered count that
would read too many rows is the planner's estimate.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from djqueue.core import ids
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


# Job ids are UUIDv7 (core.ids): their first 48 bits are when the job was sent, in ms.
_MS_SHIFT = 80
# How much later than a moment a job's id may say it was sent (clocks of the machines
# that send jobs and of the database apart, and the time from sending to the INSERT).
CLOCK_SLACK = datetime.timedelta(minutes=1)


def sent_at(job_id: uuid.UUID) -> datetime.datetime | None:
    """When a job with a time-ordered id was sent (None for another kind of id)."""
    if job_id.version != 7:
        return None
    return datetime.datetime.fromtimestamp((job_id.int >> _MS_SHIFT) / 1000, tz=datetime.UTC)


def sent_before(value: str | datetime.datetime | None) -> uuid.UUID | None:
    """The smallest time-ordered id of a job sent CLOCK_SLACK after a moment (an
    enqueued window's end, from the URL): a window of the ids below it holds the jobs
    enqueued just before that moment. None when there is no moment."""
    moment = value if isinstance(value, datetime.datetime) else parse_datetime(value or "")
    if moment is None:
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    ms = int((moment + CLOCK_SLACK).timestamp() * 1000)
    return uuid.UUID(int=(ms << _MS_SHIFT) | (0x7 << 76) | (0b10 << 62))


def before(request_value: str | None) -> uuid.UUID | None:
    """The id of ``?before=``, None when absent or not an id."""
    try:
        return uuid.UUID(request_value) if request_value else None
    except ValueError:
        return None


class OlderFilter(admin.SimpleListFilter):
    """The window before an id (``?before=``), which a windowed list links to; shown
    only while chosen."""

    title = "window"
    parameter_name = BEFORE

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        chosen = before(self.value())
        return [] if chosen is None else [(str(chosen), f"sent before …{ids.short(chosen)}")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Job]) -> QuerySet[Job]:
        chosen = before(self.value())
        return queryset if chosen is None else queryset.filter(id__lt=chosen)
