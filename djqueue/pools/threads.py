"""The threads pool: ``concurrency`` threads, for I/O-bound work."""

from __future__ import annotations

import collections
import threading

from django.db import close_old_connections

from djqueue.pools.base import Runner
from djqueue.records import ClaimedJob


class ThreadPool:
    """Jobs wait in a deque; each thread takes the next one when it is free."""

    name = "threads"

    def __init__(self, runner: Runner, concurrency: int) -> None:
        self.runner = runner
        self.concurrency = max(1, concurrency)
        self._waiting: collections.deque[ClaimedJob | None] = collections.deque()
        self._ready = threading.Condition()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for index in range(self.concurrency):
            thread = threading.Thread(
                target=self._serve, name=f"djqueue-thread-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def submit(self, job: ClaimedJob) -> None:
        with self._ready:
            self._waiting.append(job)
            self._ready.notify()

    def take_waiting(self) -> list[ClaimedJob]:
        with self._ready:
            jobs = [job for job in self._waiting if job is not None]
            self._waiting.clear()
        return jobs

    def stop(self) -> None:
        with self._ready:
            self._waiting.extend([None] * len(self._threads))
            self._ready.notify_all()
        for thread in self._threads:
            thread.join()

    def _serve(self) -> None:
        while True:
            with self._ready:
                while not self._waiting:
                    self._ready.wait()
                job = self._waiting.popleft()
            if job is None:
                close_old_connections()
                return
            try:
                self.runner(job)
            finally:
                # Tasks may use the ORM: let Django retire stale connections per thread.
                close_old_connections()
