"""The threads pool: ``concurrency`` threads, for I/O-bound work."""

from __future__ import annotations

import collections
import logging
import threading
import time
import uuid

from django.db import close_old_connections

from djqueue.core.records import ClaimedJob, Outcome
from djqueue.runtime.interrupt import ThreadWindow
from djqueue.runtime.pools.base import Load, Runner, Running

logger = logging.getLogger("djqueue.worker")


class ThreadPool:
    """Jobs wait in a deque; each thread takes the next one when it is free."""

    name = "threads"

    def __init__(self, runner: Runner, concurrency: int) -> None:
        self.runner = runner
        self.concurrency = max(1, concurrency)
        # None tells the thread that takes it to leave (stop, or a shrink).
        self._waiting: collections.deque[ClaimedJob | None] = collections.deque()
        self._ready = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._size = self.concurrency
        # job id -> (start, interrupt window), guarded by _ready.
        self._busy: dict[uuid.UUID, tuple[float, ThreadWindow]] = {}
        self._started = False
        self._made = 0

    def start(self) -> None:
        with self._ready:
            self._started = True
            self._add_threads(self._size)

    def submit(self, job: ClaimedJob) -> None:
        with self._ready:
            self._waiting.append(job)
            self._ready.notify()

    def take_waiting(self) -> list[ClaimedJob]:
        with self._ready:
            jobs = [job for job in self._waiting if job is not None]
            # Keep the leave requests of a shrink: only jobs are taken.
            leaving = len(self._waiting) - len(jobs)
            self._waiting.clear()
            self._waiting.extend([None] * leaving)
        return jobs

    def stop(self) -> None:
        with self._ready:
            self._waiting.extend([None] * len(self._threads))
            self._ready.notify_all()
            threads = list(self._threads)
        for thread in threads:
            thread.join()

    # Extras -------------------------------------------------------------------------

    def terminate(self, job_id: uuid.UUID, outcome: Outcome | None = None) -> bool:
        """Threads cannot be stopped from outside: always False."""
        return False

    def running(self) -> list[Running]:
        """The jobs the threads run now, with their start time."""
        with self._ready:
            return [Running(job_id, started, 0) for job_id, (started, _) in self._busy.items()]

    def interrupt(self, job_id: uuid.UUID, error: type[BaseException]) -> bool:
        """Raise ``error`` in the thread running ``job_id`` (at its next Python bytecode)."""
        with self._ready:
            found = self._busy.get(job_id)
        return found is not None and found[1].deliver(error)

    def kill(self) -> None:
        """Nothing to do: the threads end with the process."""

    def resize(self, size: int) -> None:
        """Aim for ``size`` threads: start more now; surplus ones leave once idle."""
        with self._ready:
            self._size = max(1, size)
            if not self._started:
                return
            # Leave requests of an earlier shrink are replaced by this one.
            self._waiting = collections.deque(job for job in self._waiting if job is not None)
            change = self._size - len(self._threads)
            if change > 0:
                self._add_threads(change)
            elif change < 0:
                # At the front: idle threads leave before the next job is taken.
                self._waiting.extendleft([None] * -change)
                self._ready.notify(-change)

    def load(self) -> Load:
        """Threads aimed for, threads busy, jobs waiting for a thread."""
        with self._ready:
            waiting = sum(1 for job in self._waiting if job is not None)
            return Load(self._size, len(self._busy), waiting)

    # Inside -------------------------------------------------------------------------

    def _add_threads(self, count: int) -> None:
        for _ in range(count):
            self._made += 1
            thread = threading.Thread(
                target=self._serve, name=f"djqueue-thread-{self._made - 1}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _serve(self) -> None:
        # One window per thread: it is shut between jobs.
        window = ThreadWindow()
        while True:
            with self._ready:
                while not self._waiting:
                    self._ready.wait()
                job = self._waiting.popleft()
                if job is None:
                    self._threads.remove(threading.current_thread())
                else:
                    self._busy[job.id] = (time.monotonic(), window)
            if job is None:
                close_old_connections()
                return
            try:
                # Interrupts reach the job only through its window: none can land here.
                self.runner(job, window)
            except Exception:
                # The runner ends every job itself; this only keeps the thread alive.
                logger.exception("The runner failed for job %s", job.id)
            finally:
                with self._ready:
                    self._busy.pop(job.id, None)
            try:
                # Tasks may use the ORM: let Django retire stale connections per thread.
                close_old_connections()
            except Exception:
                logger.exception("Closing this thread's database connections failed")
