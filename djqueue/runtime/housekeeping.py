"""The worker's control thread: heartbeats and leases, marks of started jobs, rescue,
pruning, the console's rollup, control commands, autoscaling, time limits, and the
shutdown's grace period. Nothing here runs per job on the main thread's path.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING

from django.db import DatabaseError, connections

from djqueue.core import conf
from djqueue.runtime.outage import DB_ERRORS, describe
from djqueue.runtime.pools import child
from djqueue.runtime.pools.base import Pool, Scalable

if TYPE_CHECKING:
    from djqueue.runtime.worker import Worker

logger = logging.getLogger("djqueue.worker")


class Housekeeping:
    """The control thread of one worker."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.store = worker.store

    def run(self) -> None:
        """The control thread's loop, until the worker has stopped."""
        try:
            self._ticks()
        finally:
            with contextlib.suppress(Exception):
                connections.close_all()

    def _ticks(self) -> None:
        worker = self.worker
        shutdown = worker.shutdown
        every = conf.number("HEARTBEAT_SECONDS")
        next_beat = 0.0
        next_prune = time.monotonic() + conf.number("PRUNE_INTERVAL_SECONDS")
        rollup_every = conf.optional_number("SERIES_ROLLUP_SECONDS")
        next_rollup = time.monotonic() + (rollup_every or 0)
        # After a restart of this loop, a warm shutdown already announced stays so.
        announced = worker.stopping.is_set()
        while not worker.stopped.wait(0.2):
            now = time.monotonic()
            if worker.hard_stop.is_set():
                logger.warning("Cold shutdown: handing running jobs back now.")
                shutdown.shutting_down("Cold")
                shutdown.hand_back_and_exit()
            if worker.stopping.is_set() and not announced:
                announced = True
                shutdown.shutting_down("Warm")
                shutdown.announce_warm()
            if shutdown.grace_over(now):
                logger.warning("Grace period over: handing running jobs back.")
                shutdown.hand_back_and_exit()
            if worker.autoscaler is not None and not worker.stopping.is_set():
                worker.autoscaler.tick(now)
            if worker.time_limited or worker.supervisor.active:
                worker.supervisor.tick(now)
            if worker.inline is not None:
                # Solo's main thread is inside a job: outcomes before it must not wait.
                worker.outcomes.flush(force=False)
            if now >= next_beat:
                next_beat = now + every
                self.beat()
                self.serve_control(always=True)
            else:
                worker.leases.mark_started_or_log()
                self.serve_control(always=False)
            if rollup_every is not None and now >= next_rollup:
                next_rollup = now + rollup_every
                self._rollup()
            if now >= next_prune:
                next_prune = now + conf.number("PRUNE_INTERVAL_SECONDS")
                self._prune()

    def beat(self) -> None:
        """Renew leases, hand back orphans, update the worker row, rescue, read pauses."""
        worker = self.worker
        try:
            worker.leases.renew(orphans=True)
            self.store.worker_heartbeat(
                worker.name,
                worker.jobs_done,
                _children(worker.pool),
                concurrency=_size(worker.pool),
            )
            self.store.rescue()
            worker.notices.refresh_paused()
            if worker.wakeups.base > 0:
                worker.wakeups.peers = self.store.peers(worker.name, worker.queues)
        except DB_ERRORS as exc:
            logger.warning("Heartbeat failed (%s); will try again.", describe(exc))
            self.store.reset()

    def serve_control(self, always: bool) -> None:
        """Act on control commands (announced ones; with ``always``, any not seen)."""
        remote = self.worker.remote
        try:
            remote.serve(always)
        except DatabaseError as exc:
            logger.warning("Could not read control commands (%s).", describe(exc))
            remote.notified()  # look again at the next turn
            self.store.reset()

    def _rollup(self) -> None:
        """The console's time series: off the hot path, on the control thread; the
        store lets one worker of the cluster in at a time."""
        try:
            self.store.rollup()
        except DB_ERRORS as exc:
            logger.warning("Time series rollup failed (%s); will try again.", describe(exc))
            self.store.reset()

    def _prune(self) -> None:
        retention = conf.optional_number("RESULT_RETENTION_SECONDS")
        if retention is None:
            return
        try:
            count = self.store.prune(retention)
        except DB_ERRORS as exc:
            logger.warning("Pruning failed (%s); will try again later.", describe(exc))
            self.store.reset()
            return
        if count:
            logger.info("Pruned %d finished job(s).", count)
        try:
            self.store.prune_control()
        except DatabaseError as exc:
            logger.warning("Pruning control commands failed (%s).", describe(exc))
            self.store.reset()


def _children(pool: object) -> list[dict[str, object]]:
    """A prefork pool's children, the job each runs and its resident memory (KB, None
    where unknown), for the worker's row."""
    pids = getattr(pool, "pids", None)
    if pids is None:
        return []
    running = {r.pid: str(r.job_id) for r in getattr(pool, "running", list)()}
    return [
        {"pid": pid, "job": running.get(pid), "memory_kb": child.memory_kb_of(pid)}
        for pid in pids()
    ]


def _size(pool: Pool) -> int:
    """The pool's size now (control commands and the autoscaler change it)."""
    return pool.load().size if isinstance(pool, Scalable) else pool.concurrency
