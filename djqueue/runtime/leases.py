"""The leases of the jobs a worker holds: renewed, confirmed before a start, and the
starts recorded.

What the worker holds, it knows by id and attempt: the jobs it claimed and has not
written an outcome for. Leases are renewed for exactly those; rows that name the worker
but that it does not hold (a claim whose reply was lost) go back to the queue. Before a
pool starts a job, the worker makes sure the job is still its own: when its leases may
have run out (it was frozen, cut off, or could not renew), it asks the database first.
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import TYPE_CHECKING

from djqueue.core import conf
from djqueue.runtime.outage import DB_ERRORS, describe

if TYPE_CHECKING:
    from djqueue.runtime.worker import Worker

logger = logging.getLogger("djqueue.worker")

# A received job that has run this long (seconds) is recorded as STARTED by the control
# thread; shorter ones are recorded by their outcome, which saves a write per job.
MARK_AFTER = 0.05
# Seconds the control thread waits for a claim in flight before it renews leases
# without handing back orphans (which must not overlap a claim of its own).
CLAIM_WAIT = 1.0


class Leases:
    """Keeps the leases of one worker's jobs (renewals from the control thread,
    confirmations from any thread that is about to start a job)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.store = worker.store
        self.clock = worker.clock
        self.seconds = conf.number("LEASE_SECONDS")
        # A job is started only while the leases are surely still ours: renewed less
        # than this long ago (by the worker's clock); otherwise it asks the database.
        self.trust_for = self.seconds / 2
        # When the leases of every held job were last renewed (worker's clock), and the
        # lock that lets one pool thread at a time confirm them.
        self.renewed_at = self.clock.now()
        self._confirm_lock = threading.Lock()

    def owned(self) -> list[tuple[uuid.UUID, int]]:
        """``(id, attempt)`` of every job the worker holds: claimed, outcome not written."""
        worker = self.worker
        with worker.lock:
            owned = [(job_id, held.job.attempt) for job_id, held in worker.held.items()]
            owned += list(worker.writing.items())
        return owned

    def renew(self, orphans: bool) -> None:
        """Renew the leases of what the worker holds; forget what was taken from it.

        With ``orphans``, also hand back rows that name the worker but that it does
        not hold, while no claim of its own is in flight (else a claim being answered
        could look like a lost one). A claim hung on a dead link is not waited for.
        """
        worker = self.worker
        locked = orphans and worker.claim_lock.acquire(timeout=CLAIM_WAIT)
        try:
            owned = self.owned()
            renewing_at = self.clock.now()
            renewed = self.store.renew_leases(worker.name, self.seconds, owned)
            # Lost jobs are forgotten before the renewal counts: a pool thread that
            # trusts the fresh renewal must not find a lost job still held.
            self._forget_lost(owned, renewed)
            self.renewed_at = renewing_at
            if locked:
                self.store.release_orphans(worker.name, [job_id for job_id, _ in owned])
        finally:
            if locked:
                worker.claim_lock.release()
        self.mark_started()
        # Revocations whose notification the worker missed (it was reconnecting).
        for job_id in [job_id for job_id, asked in renewed.items() if asked]:
            worker.notices.revoke_requested(job_id)

    def confirm(self) -> bool:
        """Before a start, when the leases may have run out: ask the database which held
        jobs are still the worker's (any thread; on a connection of its own)."""
        with self._confirm_lock:
            if self.clock.now() - self.renewed_at <= self.trust_for:
                return True  # another thread confirmed meanwhile
            owned = self.owned()
            confirming_at = self.clock.now()
            try:
                renewed = self.store.confirm_leases(self.worker.name, self.seconds, owned)
            except DB_ERRORS as exc:
                logger.warning("Could not confirm this worker's leases (%s).", describe(exc))
                return False
            self._forget_lost(owned, renewed)
            self.renewed_at = confirming_at
        return True

    def _forget_lost(
        self, owned: list[tuple[uuid.UUID, int]], renewed: dict[uuid.UUID, bool]
    ) -> None:
        """Drop held jobs whose lease could not be renewed: they are not ours any more."""
        held = self.worker.held
        with self.worker.lock:
            lost = [
                job_id
                for job_id, attempt in owned
                if job_id not in renewed and job_id in held and held[job_id].job.attempt == attempt
            ]
            for job_id in lost:
                del held[job_id]
        if lost:
            logger.warning(
                "%d job(s) held by this worker were taken back after their lease expired "
                "(was the worker frozen or cut off?); those not started will not run here.",
                len(lost),
            )

    def mark_started_or_log(self) -> None:
        """``mark_started``, logging a failure (the control thread tries again soon)."""
        try:
            self.mark_started()
        except DB_ERRORS as exc:
            logger.warning("Could not record started jobs (%s).", describe(exc))
            self.store.reset()

    def mark_started(self) -> None:
        """Record jobs that have run for a while as STARTED (a received job otherwise
        shows as waiting in the worker's buffer, and a rescue would not charge it)."""
        now = self.clock.now()
        with self.worker.lock:
            due = [
                held
                for held in self.worker.held.values()
                if held.started and not held.marked and now - held.started_at >= MARK_AFTER
            ]
        if not due:
            return
        self.store.mark_started(
            self.worker.name, [(h.job.id, h.job.attempt, now - h.started_at) for h in due]
        )
        for held in due:
            held.marked = True
