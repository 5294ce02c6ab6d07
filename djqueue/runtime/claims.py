"""Claiming: how many jobs a worker asks for, when, and handing them to its pool (or
back to the queue).

A claim goes out at once when the worker holds nothing; while it holds jobs, only once
a quarter of its places are free, so that one round trip fetches several jobs instead
of one per finished job. Outcomes still to be written take places too, beyond one
capacity's worth, so that claims run at most one batch ahead of the writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from djqueue.core import conf, job_request, registry, signals
from djqueue.core.limits import Rate
from djqueue.core.records import ClaimedJob
from djqueue.runtime.held import Held

if TYPE_CHECKING:
    from djqueue.runtime.worker import Worker


class Claimer:
    """The main loop's claims for one worker."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.store = worker.store
        # Read once: the loop runs per batch and settings do not change at run time.
        self.batch_size = conf.integer("CLAIM_BATCH_SIZE")

    def free(self) -> int:
        """Places free: jobs the worker may hold on top of those it holds.

        Outcomes not yet written count too, beyond one capacity's worth: the writer
        thread may lag a batch behind the claims, not more (a lagging write would grow,
        and a larger write costs more per outcome)."""
        worker = self.worker
        held = len(worker.held)
        return min(worker.capacity - held, 2 * worker.capacity - held - len(worker.writing))

    def may_claim(self) -> bool:
        """Whether enough places are free for a claim to go out."""
        free = self.free()
        return free > 0 and (free >= self.worker.claim_threshold or not self.worker.held)

    def claim(self) -> list[ClaimedJob]:
        """Claim what fits (nothing if stopping, paused, or told there is no more)."""
        worker = self.worker
        want = min(self.free(), self.batch_size)
        if not self.may_claim() or not worker.maybe_more:
            return []
        with worker.claim_lock:
            if worker.hard_stop.is_set():
                return []
            queues = worker.active_queues
            if not queues:  # every queue of this worker is paused
                worker.maybe_more = False
                return []
            jobs = worker.outage.attempt(self._claim_from, queues, want)
            if jobs is None:
                # If the claim was committed but its reply lost, the rows name this
                # worker without it holding them: the next heartbeat hands them back.
                return []
            with worker.lock:
                for job in jobs:
                    # A job taken back from this worker and claimed again replaces the
                    # stale copy, which then fails its attempt check and never starts.
                    worker.held[job.id] = Held(job)
            for job in jobs:
                # A job sent with a time limit of its own is watched in any worker.
                if worker.time_limited or job.workflow is not None:
                    worker.supervisor.watch(job)
        worker.maybe_more = len(jobs) == want
        if worker.wakeups.answering:
            worker.wakeups.answered(queues, want, len(jobs))
        if worker.rate_overrides:
            jobs = self._regate(jobs)
        return jobs

    def submit(self, jobs: list[ClaimedJob]) -> None:
        """Hand claimed jobs to the pool; once stopping, back to the queue instead."""
        worker = self.worker
        received = signals.task_received.has_listeners()
        for index, job in enumerate(jobs):
            if worker.stopping.is_set():
                self.release(jobs[index:])
                return
            if received:
                signals.emit(signals.task_received, worker, request=job_request.of(job))
            worker.pool.submit(job)

    def release(self, jobs: Sequence[ClaimedJob]) -> None:
        """Stop holding ``jobs`` (none started) and hand them back to the queue."""
        if not jobs:
            return
        worker = self.worker
        with worker.lock:
            for job in jobs:
                worker.held.pop(job.id, None)
        worker.outage.until_up(
            self.store.release, worker.name, [(j.id, j.attempt, False) for j in jobs]
        )

    def _claim_from(self, queues: list[str], want: int) -> list[ClaimedJob]:
        worker = self.worker
        return self.store.claim(
            queues, want, worker.name, worker.leases.seconds, limited=registry.limited()
        )

    def _regate(self, jobs: list[ClaimedJob]) -> list[ClaimedJob]:
        """Hand back claimed jobs whose rate limit is not the one a control command set
        for their task, with that limit: they are claimed again under it."""
        worker = self.worker
        wrong = [job for job in jobs if _rate_differs(job, worker.rate_overrides)]
        if not wrong:
            return jobs
        for job in wrong:
            rate = worker.rate_overrides[job.task_name]
            worker.outage.until_up(
                self.store.set_claimed_rate_limit,
                job.id,
                job.attempt,
                worker.name,
                None if rate is None else (rate.count, rate.period),
            )
            worker.supervisor.done(job.id)
        self.release(wrong)
        worker.maybe_more = True
        return [job for job in jobs if job not in wrong]


def _rate_differs(job: ClaimedJob, overrides: dict[str, Rate | None]) -> bool:
    """Whether ``job`` was claimed under another rate limit than a control command set."""
    if job.task_name not in overrides:
        return False
    rate = overrides[job.task_name]
    wanted = (None, None) if rate is None else (rate.count, rate.period)
    return (job.rate_limit, job.rate_period) != wanted
