"""``manage.py djqueue events``: a live tail of what the workers do, from LISTEN.

Every finish is announced on a channel (``djqueue_done``, with the job ids), and so are
starts (``djqueue_started``, as a worker records them), new jobs per queue,
revocations, pauses and control commands; this listens on them and prints one line per
event, reading each job's row for its task, state, worker and runtime. It does not poll
the jobs table. A worker records a start once the job has run for a moment (jobs that
end sooner are recorded by their outcome): the start of a job that ended before its
start was announced is printed just before its end, at the moment it started.
"""

from __future__ import annotations

import datetime
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator

from django.utils import timezone

from djqueue.core import conf, states
from djqueue.db import listener
from djqueue.db.models import Control, Job, Queue
from djqueue.management.tables import cell

CHANNELS = [
    listener.DONE_CHANNEL,
    listener.STARTED_CHANNEL,
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
# Starts printed, remembered so that a job's end does not print its start again.
REMEMBERED_STARTS = 10_000
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
        starts = _Starts(timezone.now())
        write(_line("TIME", "EVENT", "ID", "DETAIL"))
        while count is None or printed < count:
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                break
            for line in _lines(heard.notices(min(left, 1.0)), queue, starts):
                write(line)
                printed += 1
                if count is not None and printed >= count:
                    break
    finally:
        heard.close()
    return printed


class _Starts:
    """The attempts whose start was printed (the latest :data:`REMEMBERED_STARTS`), and
    since when the tail listens."""

    def __init__(self, since: datetime.datetime) -> None:
        self.since = since
        self._printed: OrderedDict[tuple[uuid.UUID, int], None] = OrderedDict()

    def printed(self, job: Job) -> None:
        self._printed[(job.id, job.attempt)] = None
        while len(self._printed) > REMEMBERED_STARTS:
            self._printed.popitem(last=False)

    def unseen(self, job: Job) -> bool:
        """Whether ``job``, just ended, started while the tail listened and its start
        has not been printed."""
        started = job.started_at
        seen = (job.id, job.attempt) in self._printed
        return started is not None and started >= self.since and not seen


def _lines(notices: list[listener.Notice], queue: str | None, starts: _Starts) -> Iterator[str]:
    for notice in notices:
        if isinstance(notice, listener.Started):
            yield from _started(notice.job_ids, queue, starts)
        elif isinstance(notice, listener.Finished):
            yield from _finished(notice.job_ids, queue, starts)
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


def _rows(job_ids: frozenset[uuid.UUID], queue: str | None) -> Iterable[Job]:
    rows = Job.objects.using(conf.database()).filter(id__in=list(job_ids)).order_by("id")
    return rows if queue is None else rows.filter(queue=queue)


def _started(
    job_ids: frozenset[uuid.UUID] | None, queue: str | None, starts: _Starts
) -> Iterator[str]:
    if job_ids is None:
        yield _line(_now(), "tasks-started", "", "more than 200 at once (not listed)")
        return
    for job in _rows(job_ids, queue):
        starts.printed(job)
        yield _start_line(job, _now())


def _start_line(job: Job, moment: str) -> str:
    detail = f"{cell(job.task_name)} queue={cell(job.queue)} worker={cell(job.worker)}"
    return _line(moment, "task-started", str(job.id), f"{detail} attempt={job.attempt}")


def _finished(
    job_ids: frozenset[uuid.UUID] | None, queue: str | None, starts: _Starts
) -> Iterator[str]:
    if job_ids is None:
        yield _line(_now(), "tasks-finished", "", "more than 200 at once (not listed)")
        return
    for job in _rows(job_ids, queue):
        if starts.unseen(job):
            # It ended before its worker recorded its start: shown at its start's moment.
            assert job.started_at is not None
            starts.printed(job)
            yield _start_line(job, _clock(job.started_at))
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
    return _clock(timezone.now())


def _clock(moment: datetime.datetime) -> str:
    return timezone.localtime(moment).strftime("%H:%M:%S.%f")[:12]


def _line(moment: str, event: str, job_id: str, detail: str) -> str:
    first = (
        value.ljust(width) for value, width in zip((moment, event, job_id), _WIDTHS, strict=True)
    )
    return f"{'  '.join(first)}  {detail}".rstrip()
