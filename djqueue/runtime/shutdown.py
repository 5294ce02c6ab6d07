"""Stopping a worker: signals, the warm shutdown (no new jobs, running ones finish
within the grace period), and the cold one (jobs handed back, the process exits).

A signal handler only sets flags; the control thread does the logging and the
hand-back, on its own connection, never on the one the main thread may be using.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING

from djqueue.core import conf, signals
from djqueue.runtime import pools
from djqueue.runtime.notices import WAKE
from djqueue.runtime.outage import DB_ERRORS, describe

if TYPE_CHECKING:
    from djqueue.runtime.worker import Worker

logger = logging.getLogger("djqueue.worker")


class Shutdown:
    """How one worker stops (the flags it sets are the worker's ``stopping`` and
    ``hard_stop``)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.store = worker.store
        self.grace = conf.number("SHUTDOWN_GRACE_SECONDS")
        self.requested_at = 0.0
        # The signal that asked for each kind of shutdown ("Warm", "Cold"; None: a
        # control command), and the kinds worker_shutting_down was sent for.
        self.signals: dict[str, str | None] = {}
        self._announced: set[str] = set()
        self._lock = threading.Lock()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT: warm shutdown (again: cold); SIGQUIT: cold at once."""
        if threading.current_thread() is not threading.main_thread():
            return

        def soft(signum: int, frame: FrameType | None) -> None:
            self.stop(sig=signal.Signals(signum).name)

        def hard(signum: int, frame: FrameType | None) -> None:
            self.stop(hard=True, sig=signal.Signals(signum).name)

        signal.signal(signal.SIGTERM, soft)
        signal.signal(signal.SIGINT, soft)
        signal.signal(signal.SIGQUIT, hard)

    def stop(self, hard: bool = False, sig: str | None = None) -> None:
        """Stop claiming; running jobs finish within the grace period (``hard``: now).

        Safe to call from a signal handler: it only sets flags. The control thread logs,
        sends ``worker_shutting_down`` (``sig`` names the signal that asked) and does
        the hand-back on its own connection, never on the one the main thread may be
        using (logging here could also re-enter a stream the handler interrupted).
        """
        worker = self.worker
        if hard or worker.stopping.is_set():
            # Set before ``stopping`` so that the control thread never takes a cold
            # shutdown for a warm one.
            self.signals["Cold"] = sig
            worker.hard_stop.set()
        else:
            self.signals["Warm"] = sig
            self.requested_at = time.monotonic()
        # Cold too: the main loop must stop claiming while the jobs are handed back.
        worker.stopping.set()
        worker.events.put(WAKE)

    def shutting_down(self, how: str) -> None:
        """Send ``worker_shutting_down`` as Celery does (``how``: "Warm" or "Cold"), with
        the exit code to come; once for each kind (the control thread sends it as the
        shutdown begins, the main thread if it stopped first)."""
        with self._lock:
            if how in self._announced:
                return
            self._announced.add(how)
        signals.emit(
            signals.worker_shutting_down,
            self.worker.options.hostname,
            sig=self.signals.get(how),
            how=how,
            exitcode=0 if how == "Warm" else 1,
        )

    def grace_over(self, now: float) -> bool:
        """Whether a warm shutdown has outlived its grace period (monotonic ``now``)."""
        return self.worker.stopping.is_set() and now - self.requested_at > self.grace

    def announce_warm(self) -> None:
        """Log the warm shutdown and hand back the jobs waiting in the pool (control
        thread)."""
        worker = self.worker
        with worker.lock:
            running = sum(1 for held in worker.held.values() if held.started)
        logger.warning(
            "Warm shutdown: no new jobs; waiting up to %gs for %d running job(s). "
            "Signal again to stop at once.",
            self.grace,
            running,
        )
        # Jobs waiting in the pool go back now, not when a running one ends (solo runs
        # jobs in the main thread, which is busy until then).
        waiting = worker.pool.take_waiting()
        if waiting:
            with worker.lock:
                for job in waiting:
                    worker.held.pop(job.id, None)
            try:
                self.store.release(worker.name, [(j.id, j.attempt, False) for j in waiting])
            except DB_ERRORS as exc:
                logger.warning(
                    "Could not hand %d waiting job(s) back now (%s); their leases will "
                    "expire and another worker will take them.",
                    len(waiting),
                    describe(exc),
                )
                self.store.reset()

    def drain(self) -> None:
        """After a warm stop (main thread): hand back what never started, wait for the
        rest, write every outcome."""
        worker = self.worker
        worker.claimer.release(worker.pool.take_waiting())
        while worker.held:
            worker.guarded(self._drain_step)
        worker.pool.stop()
        while worker.outcomes.pending():
            worker.guarded(lambda: worker.outcomes.flush(force=True))
            if worker.outcomes.pending():
                # The writer thread's batch, or one kept while the database is away.
                worker.clock.wait(worker.hard_stop, 0.05 if worker.outcomes.in_flight else 0.5)

    def _drain_step(self) -> None:
        self.worker.gather(0.05)
        self.worker.outcomes.flush(force=False)

    def hand_back_and_exit(self) -> None:
        """Cold shutdown (control thread): record what finished, hand back the rest,
        end the process."""
        worker = self.worker
        # Wait for a claim in flight, then keep the lock: no claim may follow the
        # hand-back. Bounded, because a claim may hang on a dead database.
        worker.claim_lock.acquire(timeout=5)
        # Child processes first: none may go on with a job handed back below.
        pools.kill(worker.pool)
        done = worker.outcomes.unwritten()
        with worker.lock:
            jobs = [
                (job_id, held.job.attempt, held.started)
                for job_id, held in worker.held.items()
                if job_id not in done
            ]
        try:
            if done:
                # Jobs that already finished are recorded, not run again.
                self.store.finish(list(done.values()))
            self.store.release(worker.name, jobs)
            self.store.worker_stopped(worker.name, worker.jobs_done)
        except DB_ERRORS as exc:
            logger.error(
                "Could not hand %d job(s) back (%s); their leases will expire and another "
                "worker will rescue them.",
                len(jobs),
                describe(exc),
            )
        logging.shutdown()
        sys.stdout.flush()
        os._exit(1)
