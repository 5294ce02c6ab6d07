"""The solo pool: one job at a time, in the worker's own thread."""

from __future__ import annotations

import collections
import os
import threading
import time
import uuid

from djqueue.core import signals
from djqueue.core.records import ClaimedJob, Outcome
from djqueue.runtime.interrupt import ThreadWindow
from djqueue.runtime.pools.base import Runner, Running


class SoloPool:
    """Runs jobs in the worker loop's own thread, one at a time (see :meth:`run_one`).

    Submitted jobs wait in a deque, so that the worker writes each outcome as it comes
    (not after a whole claimed batch) and a warm shutdown hands back the waiting ones at
    once, from another thread, while the running one ends.
    """

    name = "solo"

    def __init__(self, runner: Runner, concurrency: int = 1) -> None:
        self.runner = runner
        self.concurrency = 1
        self._lock = threading.Lock()
        self._waiting: collections.deque[ClaimedJob] = collections.deque()
        # (job id, start, interrupt window) of the job running now.
        self._current: tuple[uuid.UUID, float, ThreadWindow] | None = None

    def start(self) -> None:
        # Jobs run in this very process: it is the pool's process, as in Celery.
        signals.emit(signals.worker_process_init, None)

    def submit(self, job: ClaimedJob) -> None:
        with self._lock:
            self._waiting.append(job)

    def run_one(self) -> bool:
        """Run the next waiting job here; False if none was waiting."""
        window = ThreadWindow()
        with self._lock:
            if not self._waiting:
                return False
            job = self._waiting.popleft()
            self._current = (job.id, time.monotonic(), window)
        try:
            self.runner(job, window)
        finally:
            with self._lock:
                self._current = None
        return True

    def take_waiting(self) -> list[ClaimedJob]:
        with self._lock:
            jobs = list(self._waiting)
            self._waiting.clear()
        return jobs

    def stop(self) -> None:
        pass

    def terminate(self, job_id: uuid.UUID, outcome: Outcome | None = None) -> bool:
        """The job runs in the worker's own thread and cannot be stopped: always False."""
        return False

    def running(self) -> list[Running]:
        """The job running now, if any, with its start time."""
        with self._lock:
            if self._current is None:
                return []
            job_id, started, _ = self._current
            return [Running(job_id, started, os.getpid())]

    def interrupt(self, job_id: uuid.UUID, error: type[BaseException]) -> bool:
        """Raise ``error`` in the job's code (at its next Python bytecode)."""
        with self._lock:
            current = self._current
        return current is not None and current[0] == job_id and current[2].deliver(error)

    def kill(self) -> None:
        """Nothing to do: the job ends with the process."""
