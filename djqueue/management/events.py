"""``manage.py djqueue events``: a live tail of what the workers do, from LISTEN.

Every finish is announced on a channel (``djqueue_done``, with the job ids), and so are
new jobs per queue, revocations, pauses and control commands; this listens on them and
prints one line per event, reading each finished job's row for its task, state,
worker and runtime. It does not poll the jobs table. Jobs do not announce their start,
so a start is not shown: ``inspect active`` lists what runs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

from django.utils import timezone

from djqueue.core import conf, states
from djqueue.db import listener
from djqueue.db.models import Control, Job, Queue
from djqueue.management.tables import cell

CHANNELS = [
    listener.DONE_CHANNEL,
    listener.JOBS_CHANNEL,
    listener.REVOKE_CHANNEL,
    listener.PAUSE_CHANNEL,
    listener.CONTROL_CHANNEL,
]
# Celery's event names for the states a finish announces.
_EVENT = {
    states.SUCCESS: "task-succeeded",
    states.FAILURE: "task-failed",
    states.RETRY: "task-retried",
    states.REVOKED: "task-revoked",
    states.REJECTED: "task-rejected",
    states.IGNORED: "task-ignored",
    states.PENDING: "task-requeued",
}
# Columns of a line (a stream cannot measure its rows first): widths of the time, the
# event and the id; the rest follows.
_WIDTHS = (12, 15, 36)


def tail(
    write: Callable[[str], None],
    count: int | None = None,
    timeout: float | None = None,
    queue: str | None = None,
) -> int:
    """Print a header once listening, then events as they come, until ``count`` were
    printed or ``timeout`` seconds passed (else until interrupted); return how many
    events were printed."""
    heard = listener.Listener(CHANNELS)
    deadline = None if timeout is None else time.monotonic() + timeout
    printed = 0
    try:
        heard.notices(0.0)  # connects and listens: what happens from now on is heard
        write(_line("TIME", "EVENT", "ID", "DETAIL"))
        while count is None or printed < count:
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                break
            for line in _lines(heard.notices(min(left, 1.0)), queue):
                write(line)
                printed += 1
                if count is not None and printed >= count:
                    break
    finally:
        heard.close()
    return printed


def _lines(notices: list[listener.Notice], queue: str | None) -> Iterator[str]:
    for notice in notices:
        if isinstance(notice, listener.Finished):
            yield from _finished(notice.job_ids, queue)
        elif isinstance(notice, listener.NewJobs) and queue in (None, notice.queue):
            yield _line(_now(), "jobs-waiting", "", f"queue={cell(notice.queue)}")
        elif isinstance(notice, listener.RevokeRequested):
            yield _line(_now(), "revoke-asked", str(notice.job_id), "")
        elif isinstance(notice, listener.PauseChanged) and queue in (None, notice.queue):
            paused = (
                Queue.objects.using(conf.database()).filter(name=notice.queue, paused=True).exists()
            )
            event = "queue-paused" if paused else "queue-resumed"
            yield _line(_now(), event, "", f"queue={cell(notice.queue)}")
        elif isinstance(notice, listener.ControlSent):
            yield _control(notice.control_id)


def _finished(job_ids: frozenset[uuid.UUID] | None, queue: str | None) -> Iterator[str]:
    if job_ids is None:
        yield _line(_now(), "tasks-finished", "", "more than 200 at once (not listed)")
        return
    rows = Job.objects.using(conf.database()).filter(id__in=list(job_ids)).order_by("id")
    if queue is not None:
        rows = rows.filter(queue=queue)
    for job in rows:
        runtime = (
            f" runtime={(job.finished_at - job.started_at).total_seconds():.3f}s"
            if job.finished_at and job.started_at
            else ""
        )
        error = f" error={cell(job.error_type)}" if job.error_type else ""
        detail = (
            f"{cell(job.task_name)} queue={cell(job.queue)} worker={cell(job.worker)}"
            f"{runtime}{error}"
        )
        yield _line(_now(), _EVENT.get(job.state, "task-changed"), str(job.id), detail)


def _control(control_id: uuid.UUID) -> str:
    row = Control.objects.using(conf.database()).filter(id=control_id).first()
    if row is None:
        return _line(_now(), "control", str(control_id), "")
    to = "every worker" if row.destination is None else ",".join(map(str, row.destination))
    return _line(_now(), "control", str(control_id), f"{cell(row.command)} to {cell(to)}")


def _now() -> str:
    return timezone.localtime().strftime("%H:%M:%S.%f")[:12]


def _line(moment: str, event: str, job_id: str, detail: str) -> str:
    first = (
        value.ljust(width) for value, width in zip((moment, event, job_id), _WIDTHS, strict=True)
    )
    return f"{'  '.join(first)}  {detail}".rstrip()
