"""Starting a claimed job and reporting its outcome: what a pool calls for each job.

A job starts only while it is still the worker's own (not taken back while the worker
was frozen or cut off, its lease confirmed when it may have run out) and no
``revoke(terminate=True)`` reached it first. Whatever escapes the executor still ends
the job.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from djqueue.core import endings, reporting, text
from djqueue.core.records import ClaimedJob, Outcome
from djqueue.runtime.interrupt import Window
from djqueue.runtime.pools import isolation

if TYPE_CHECKING:
    from djqueue.runtime.worker import Worker

logger = logging.getLogger("djqueue.worker")


class JobRunner:
    """How a pool runs a job for the worker: all at once in-process (a call), or in two
    halves around another process (``begin``, then ``report``)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def __call__(self, job: ClaimedJob, window: Window) -> None:
        """Run ``job`` here, through its interrupt window, and report its outcome."""
        if self.begin(job):
            self.report(_execute(job, window))

    def begin(self, job: ClaimedJob) -> bool:
        """Mark ``job`` started; False if it must not run here (any thread may call this).

        It must not when it is no longer the worker's (taken back while the worker was
        frozen or cut off, possibly claimed again since), when its lease cannot be
        confirmed, or when ``revoke(terminate=True)`` reached it first.
        """
        worker = self.worker
        leases = worker.leases
        now = worker.clock.now()
        if now - leases.renewed_at > leases.trust_for:
            if not leases.confirm():
                self._drop(job, "its lease could not be confirmed (the database is unreachable)")
                return False
            now = worker.clock.now()  # after the confirmation's round trip
        with worker.lock:
            held = worker.held.get(job.id)
            if held is None or held.job.attempt != job.attempt:
                mine = False
            else:
                mine = True
                held.started, held.started_at = True, now
            revoked = mine and job.id in worker.revoked
            worker.revoked.discard(job.id)
        if not mine:
            logger.warning(
                "Not running job %s: it was taken back from this worker while the worker "
                "was unresponsive.",
                job.id,
            )
            return False
        if revoked:
            logger.warning(
                "Task %s[%s] revoked before it started.", text.printable(job.task_name), job.id
            )
            outcome = endings.revoked(job, "revoked before it started")
            reporting.announce_revoked(job, outcome)
            worker.events.put(outcome)
            return False
        return True

    def report(self, outcome: Outcome) -> None:
        """Queue ``outcome`` for the main thread to write (any thread may call this)."""
        self.worker.events.put(outcome)

    def _drop(self, job: ClaimedJob, why: str) -> None:
        """Stop holding ``job`` unstarted; its row goes back to the queue (orphan hand-back
        at the next heartbeat, or lease rescue)."""
        worker = self.worker
        with worker.lock:
            held = worker.held.get(job.id)
            if held is not None and held.job.attempt == job.attempt:
                del worker.held[job.id]
        logger.warning("Not starting job %s: %s; it goes back to the queue.", job.id, why)


def _execute(job: ClaimedJob, window: Window) -> Outcome:
    try:
        return isolation.execute(job, window)
    except BaseException as exc:
        # Whatever escapes the executor must still end the job: otherwise it stays
        # held, the heartbeat renews its lease forever and a pool slot is lost.
        logger.exception("Task %s[%s] crashed the executor", text.printable(job.task_name), job.id)
        return endings.failure(job, exc)
