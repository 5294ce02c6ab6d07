"""The solo pool: one job at a time, in the worker's own thread."""

from __future__ import annotations

import os
import threading
import time
import uuid

from djqueue import interrupt
from djqueue.pools.base import Runner, Running
from djqueue.records import ClaimedJob, Outcome


class SoloPool:
    """Runs each job inline when submitted. No overhead, no concurrency."""

    name = "solo"

    def __init__(self, runner: Runner, concurrency: int = 1) -> None:
        self.runner = runner
        self.concurrency = 1
        self._lock = threading.Lock()
        self._current: tuple[uuid.UUID, float, int] | None = None

    def start(self) -> None:
        pass

    def submit(self, job: ClaimedJob) -> None:
        with self._lock:
            self._current = (job.id, time.monotonic(), threading.get_ident())
        try:
            self.runner(job)
        finally:
            with self._lock:
                self._current = None
                # An interrupt that came too late for the job must not hit the worker.
                interrupt.clear(threading.get_ident())

    def take_waiting(self) -> list[ClaimedJob]:
        return []

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
        """Raise ``error`` in the job (at its next Python bytecode)."""
        with self._lock:
            current = self._current
            return (
                current is not None
                and current[0] == job_id
                and interrupt.raise_in(current[2], error)
            )

    def kill(self) -> None:
        """Nothing to do: the job ends with the process."""
