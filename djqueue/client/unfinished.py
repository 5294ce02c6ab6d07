"""Why a job is not finished: what ``AsyncResult.get()`` says when it stops waiting.

Three answers, most useful first: the job was sent in the caller's still-open
transaction (no worker can see it before that commits); no live worker serves its
queue (or the queue is paused); otherwise its state and since when.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from django.db import connections
from django.db.models.functions import Now

from djqueue.core import conf, states
from djqueue.db import fleet, visibility
from djqueue.db.models import Job

# The eta of a job that waits for an earlier job of its workflow (sql.parts.WAITING_ETA).
_WAITING_YEAR = 9999
_FIELDS = (
    "task_name",
    "state",
    "queue",
    "eta",
    "enqueued_at",
    "claimed_at",
    "started_at",
    "retried_at",
    "worker",
)


def sent_in_open_transaction(job_id: uuid.UUID) -> bool:
    """Whether the job was sent in this thread's transaction, which is still open.

    Then no worker can see it, and waiting for it here can only end in a timeout.
    Costs a connection of its own, and only inside ``transaction.atomic()``.
    """
    if not connections[_alias()].in_atomic_block:
        return False
    return not visibility.seen_elsewhere(job_id)


def open_transaction_message(job_id: uuid.UUID) -> str:
    """What to do about a job :func:`sent_in_open_transaction`."""
    row = _row(job_id) or {"task_name": "?", "state": states.PENDING}
    return (
        f"job {job_id} ({row['task_name']}) is still {row['state']} and cannot finish while "
        "this waits: it was sent inside the transaction that is still open here, and no "
        "worker can see it before that transaction commits. Send it with delay_on_commit() "
        "(or transaction.on_commit(lambda: task.delay(...))) and wait after the commit, or "
        "do not wait for it inside transaction.atomic()"
    )


def explain(job_id: uuid.UUID, timeout: float | None) -> str:
    """One line on why job ``job_id`` did not finish within ``timeout`` seconds."""
    row = _row(job_id)
    if row is None:
        return f"job {job_id} did not finish within the timeout, and is gone now"
    head = f"job {job_id} ({row['task_name']}) is still {row['state']} after the timeout"
    if timeout is not None:
        head += f" ({timeout:g}s)"
    return f"{head}: {_why(row)}"


def _why(row: dict[str, Any]) -> str:
    state = row["state"]
    if state in states.WAITING:
        return _unserved(row["queue"]) or _waiting(row)
    if state == states.RECEIVED:
        claimed = _ago(row["claimed_at"], row["now"])
        return f"worker {row['worker']} claimed it {claimed} and has not started it yet"
    if state == states.STARTED:
        since = _at(row["started_at"], row["now"])
        return f"it has been running on worker {row['worker']} since {since}"
    return f"it is {state}"


def _waiting(row: dict[str, Any]) -> str:
    """Why a PENDING or RETRY job that a live worker could take has not been taken."""
    state, eta, now = row["state"], row["eta"], row["now"]
    since = _since(state, row, now)
    if eta.year >= _WAITING_YEAR:
        return "it waits for an earlier job of its workflow to finish"
    if eta > now:
        return f"it is not due before {_at(eta, now)}{since}"
    if state == states.RETRY:
        return f"it waits for its next attempt{since}"
    return f"it is due and waits for a free worker{since}"


def _unserved(queue: str) -> str | None:
    """Why no worker takes jobs from ``queue`` now, or None when one does."""
    if queue in fleet.paused_queues():
        return (
            f"queue {queue!r} is paused; resume it in the admin or with "
            f"`python manage.py djqueue resume {queue}`"
        )
    served = fleet.serving(fleet.live_workers())
    if queue in served:
        return None
    if served:
        others = f"live workers serve {', '.join(repr(name) for name in sorted(served))}"
    else:
        others = "no worker is running"
    return (
        f"no live worker serves queue {queue!r} ({others}); start one with "
        f"`python manage.py runworker -Q {queue}`"
    )


def _row(job_id: uuid.UUID) -> dict[str, Any] | None:
    jobs = Job.objects.using(_alias()).filter(pk=job_id)
    row = jobs.annotate(now=Now()).values(*_FIELDS, "now").first()
    return None if row is None else dict(row)


def _since(state: str, row: dict[str, Any], now: datetime.datetime) -> str:
    moment = row["retried_at"] if state == states.RETRY else row["enqueued_at"]
    if moment is None:
        return ""
    return f"; {state} since {_at(moment, now)}"


def _at(moment: datetime.datetime, now: datetime.datetime) -> str:
    utc = moment.astimezone(datetime.UTC) if moment.tzinfo else moment
    return f"{utc:%Y-%m-%d %H:%M:%S} UTC ({_ago(moment, now)})"


def _ago(moment: datetime.datetime, now: datetime.datetime) -> str:
    seconds = (now - moment).total_seconds()
    if seconds >= 0:
        return f"{_span(seconds)} ago"
    return f"in {_span(-seconds)}"


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _alias() -> str:
    return conf.database()
