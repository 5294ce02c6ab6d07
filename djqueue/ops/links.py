"""Links from the console's figures to the admin's job list, filtered to what they count.

Each uses a filter of the job list: ``state__exact``, ``queue__exact`` and ``task``
(its sidebar filters), ``finished_at__gte``/``__lt`` (the "finished" date filter, which
shows any other window as the window it is), and plain field lookups the admin accepts
in a URL (``state__in``, ``worker__exact``, ``retried_at__gte``, ``eta__lt``).
"""

from __future__ import annotations

import datetime
from urllib.parse import urlencode

from django.urls import reverse

from djqueue.core import states

WAITING = ",".join(sorted(states.WAITING))
HELD = ",".join(sorted(states.HELD))
# The column an outcome is dated by in the time series.
TIME_FIELD = {states.RETRY: "retried_at"}


def jobs(**filters: str | datetime.datetime | None) -> str:
    """The job list filtered by ``filters`` (None values left out)."""
    query = {
        key: value.isoformat() if isinstance(value, datetime.datetime) else value
        for key, value in filters.items()
        if value is not None
    }
    url = reverse("admin:djqueue_job_changelist")
    return f"{url}?{urlencode(query)}" if query else url


def outcome(
    name: str,
    start: datetime.datetime | None = None,
    end: datetime.datetime | None = None,
    **filters: str | None,
) -> str:
    """Jobs that ended ``name`` (or were retried, for RETRY) within ``[start, end)``."""
    field = time_field(name)
    window = {f"{field}__gte": start, f"{field}__lt": end}
    state = {"state__exact": name} if name != states.RETRY else {}
    return jobs(**state, **window, **filters)


def time_field(outcome: str) -> str:
    """The column the time series dates ``outcome`` by."""
    return TIME_FIELD.get(outcome, "finished_at")


def waiting(queue: str | None = None, due_before: datetime.datetime | None = None) -> str:
    """Jobs waiting in ``queue``, those due before ``due_before`` only when given."""
    return jobs(state__in=WAITING, queue__exact=queue, eta__lt=due_before)


def held_by(worker: str) -> str:
    """Jobs that ``worker`` holds (claimed or running)."""
    return jobs(state__in=HELD, worker__exact=worker)
