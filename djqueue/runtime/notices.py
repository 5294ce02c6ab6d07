"""What a worker hears and acts on between claims: the listener thread's notifications
(new jobs, revocations, paused queues, control commands), revoke requests, and which of
its queues are paused.

A notification is a hint, never an order: any database role can send one, so what it
announces is read from the database before anything is done about it.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from djqueue.core import text
from djqueue.core.records import ClaimedJob
from djqueue.db import listener
from djqueue.db.listener import (
    CONTROL_CHANNEL,
    DRAINED_CHANNEL,
    JOBS_CHANNEL,
    PAUSE_CHANNEL,
    REVOKE_CHANNEL,
    Listener,
)
from djqueue.runtime.outage import DB_ERRORS, describe

if TYPE_CHECKING:
    from djqueue.runtime.worker import Worker

logger = logging.getLogger("djqueue.worker")

# The events that reach the main loop besides outcomes: look for jobs now; new jobs were
# announced (a claim now answers them); a follower's claim is due later (wait less).
WAKE = "wake"
JOBS = "jobs"
LATER = "later"


class Notices:
    """Turns notifications into wake-ups and acts on revocations and pauses."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.store = worker.store

    def listen(self) -> None:
        """The listener thread's loop: notices become wake-ups and revocations."""
        worker = self.worker
        # Whatever was missed while nothing listened (a restart): look now.
        worker.events.put(WAKE)
        heard = Listener(
            [JOBS_CHANNEL, DRAINED_CHANNEL, REVOKE_CHANNEL, PAUSE_CHANNEL, CONTROL_CHANNEL]
        )
        try:
            while not worker.stopping.is_set():
                mine = set(worker.queues)  # control's add_consumer may change them
                events = {self.act(notice, mine) for notice in heard.notices(1.0)}
                for event in (WAKE, JOBS, LATER):
                    if event in events:
                        worker.events.put(event)
        finally:
            heard.close()

    def act(self, notice: listener.Notice, mine: set[str]) -> str | None:
        """Act on one notice (listener thread); return the event it gives the main loop."""
        worker = self.worker
        if isinstance(notice, listener.NewJobs):
            if notice.queue in mine:
                return JOBS if worker.wakeups.heard(notice.queue) else LATER
        elif isinstance(notice, listener.Drained):
            worker.wakeups.drained(notice.queue)
        elif isinstance(notice, listener.RevokeRequested):
            self.revoke_notified(notice.job_id)
        elif isinstance(notice, listener.PauseChanged):
            # A resumed queue may have jobs waiting: look at once.
            if notice.queue in mine and self.refresh_paused():
                return WAKE
        elif isinstance(notice, listener.ControlSent):
            worker.remote.notified()
        elif isinstance(notice, listener.Reconnected):
            worker.remote.notified()
            return WAKE
        return None

    def revoke_notified(self, job_id: uuid.UUID) -> None:
        """A revoke notification names a job this worker may hold. Any database role can
        send one, so the job's row must say that a revocation was asked for before the
        job is stopped or kept from starting."""
        worker = self.worker
        with worker.lock:
            held = worker.held.get(job_id)
        if held is None:
            return
        try:
            asked = self.store.revoke_asked(job_id, held.job.attempt, worker.name)
        except DB_ERRORS as exc:
            # The heartbeat reads the same mark from the row, and acts on it then.
            logger.warning("Could not check a revoke request (%s).", describe(exc))
            self.store.reset()
            return
        if asked:
            self.revoke_requested(job_id)
        else:
            logger.warning(
                "Ignored a revoke notification for job %s: its row asks for no revocation.",
                job_id,
            )

    def revoke_requested(self, job_id: uuid.UUID) -> None:
        """Act on revoke(terminate=True) of a job this worker may hold (any thread)."""
        worker = self.worker
        with worker.lock:
            held = worker.held.get(job_id)
            if held is None or job_id in worker.revoking:
                return
            worker.revoking.add(job_id)
            if not held.started:
                # The start sees this under the same lock: the job will not run.
                worker.revoked.add(job_id)
                return
            job = held.job
        worker.supervisor.revoke_running(job, self._revoke_signal(job))

    def _revoke_signal(self, job: ClaimedJob) -> int | None:
        """The signal the revocation of running ``job`` asked for (None: the pool's way,
        also when the row cannot be read now: the job is stopped all the same)."""
        try:
            return self.store.revoke_signal(job.id, job.attempt, self.worker.name)
        except DB_ERRORS as exc:
            logger.warning("Could not read a revocation's signal (%s).", describe(exc))
            self.store.reset()
            return None

    def refresh_paused(self, force: bool = False) -> bool:
        """Read which queues are paused; return whether this worker's set changed."""
        worker = self.worker
        try:
            paused = self.store.paused_queues()
        except DB_ERRORS as exc:
            logger.warning("Could not read paused queues (%s).", describe(exc))
            self.store.reset()
            return False
        active = [queue for queue in worker.queues if queue not in paused]
        if active == worker.active_queues:
            return False
        worker.maybe_more = True
        if force:
            worker.active_queues = active
            return True
        stopped = sorted(set(worker.queues) - set(active))
        logger.warning(
            "Paused queues: %s.", text.printable(", ".join(stopped)) if stopped else "none"
        )
        worker.active_queues = active  # one assignment: the main thread reads it as is
        return True
