"""A real ``Worker`` on an in-memory store and a fake clock, driven one step at a time.

``Worker.run()`` turns its loops in threads: the main loop (claim, submit, gather
outcomes), the writer (outcomes written in batches), the control loop (heartbeat,
marks, warm shutdown, and for solo the flush of outcomes while a job runs) and the
listener (wake-ups, revocations). Here the test's thread takes each step itself, in the
order the test chooses, and the main loop writes the outcomes unless a test starts the
writer thread (``start_writer``); the pool runs jobs as it would in ``run()`` (solo in
the calling thread, threads in its own threads). Each method names the step of
``run()`` it stands for.

Steps are not guarded as ``run()`` guards them: an error the loop did not expect fails
the test instead of being logged and outlived.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from djqueue.core import states
from djqueue.db import listener
from djqueue.runtime.notices import WAKE
from djqueue.runtime.worker import Options, Worker
from tests.fakes.clock import FakeClock
from tests.fakes.store import MemoryStore

HOSTNAME = "test@host"
# Seconds of real time a driven loop may take to get done before the test fails.
PATIENCE = 30.0


class WorkerDriver:
    """One worker, its store and its clock."""

    def __init__(
        self,
        pool: str = "solo",
        concurrency: int = 1,
        queues: Sequence[str] = ("default",),
        clock: FakeClock | None = None,
        store: MemoryStore | None = None,
        **options: Any,
    ) -> None:
        self.clock = clock or FakeClock()
        self.store = store or MemoryStore(self.clock)
        self.worker = Worker(
            Options(
                queues=queues, pool=pool, concurrency=concurrency, hostname=HOSTNAME, **options
            ),
            store=self.store,
            clock=self.clock,
        )
        self.name = self.worker.name
        self.writer: threading.Thread | None = None

    # run(), before its loops --------------------------------------------------------

    def start(self) -> None:
        """Register and start the pool."""
        assert self.worker.start(), "the worker was stopped before it started"

    def start_writer(self) -> None:
        """The writer thread of ``run()``: outcomes written while the main loop turns."""
        self.writer = threading.Thread(target=self.worker.outcomes.run, daemon=True)
        self.writer.start()
        deadline = time.monotonic() + PATIENCE
        while not self.worker.outcomes.threaded:
            assert time.monotonic() < deadline, "the writer thread did not start"
            time.sleep(0.001)

    # The main loop ------------------------------------------------------------------

    def step(self) -> None:
        """One turn of the main loop."""
        self.worker.tick()

    def step_without_waiting(self) -> None:
        """One turn of the main loop that takes in what arrived but waits for nothing
        more (a wait that ran out would be a poll)."""
        self.worker._wait_time = lambda: 0.0  # type: ignore[method-assign]
        try:
            self.worker.tick()
        finally:
            del self.worker._wait_time

    def run_until(self, done: Callable[[], bool]) -> None:
        """Turn the main loop until ``done()``.

        A turn with nothing to do waits for an event up to ``POLL_INTERVAL_SECONDS``
        of real time (the pool's threads, or a child process running an isolated job,
        report there). ``PATIENCE`` bounds the whole so that a test that cannot end
        fails instead of hanging; no test comes near it.
        """
        deadline = time.monotonic() + PATIENCE
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"not done after {PATIENCE}s; rows: {self.describe()}")
            self.step()

    def run_all(self, ids: Sequence[uuid.UUID]) -> None:
        """Turn the main loop until every job of ``ids`` has ended in the table and the
        worker has no outcome left to write."""

        def done() -> bool:
            ended = all(state in states.READY for state in self.store.states(ids))
            return ended and not self.worker.outcomes.buffer and not self.worker.writing

        self.run_until(done)

    def drain(self) -> None:
        """After a stop: what ``run()`` does once its main loop ends."""
        self.worker.shutdown.drain()
        self.worker.outage.until_up(self.store.worker_stopped, self.name, self.worker.jobs_done)

    # The control loop ---------------------------------------------------------------

    def heartbeat(self) -> None:
        """Renew leases, hand back orphans, update the worker row, rescue, read pauses."""
        self.worker.housekeeping.beat()

    def mark_started(self) -> None:
        """Between heartbeats: record jobs that have run a while as STARTED."""
        self.worker.leases.mark_started_or_log()

    def flush(self) -> None:
        """Solo: write the outcomes that are due while the main thread runs a job."""
        self.worker.outcomes.flush(force=False)

    def stop_warm(self) -> None:
        """SIGTERM, then the control loop's announcement: waiting jobs go back now."""
        self.worker.stop()
        self.worker.shutdown.announce_warm()

    # The listener -------------------------------------------------------------------

    def wake(self) -> None:
        """A notification of new jobs."""
        self.worker.events.put(WAKE)

    def hear(self, notice: listener.Notice) -> None:
        """A notification: acted on as the listener acts on it, with its wake-up."""
        event = self.worker.notices.act(notice, set(self.worker.queues))
        if event is not None:
            self.worker.events.put(event)

    def revoke_notified(self, job_id: uuid.UUID) -> None:
        """A notification that ``revoke(terminate=True)`` asked to stop ``job_id``."""
        self.worker.notices.revoke_notified(job_id)

    # Looking ------------------------------------------------------------------------

    def held(self) -> set[uuid.UUID]:
        """The jobs the worker holds (claimed, outcome not taken)."""
        with self.worker.lock:
            return set(self.worker.held)

    def describe(self) -> str:
        rows = self.store.rows.values()
        return ", ".join(f"{row.id.hex[:6]}:{row.state}/{row.attempt}" for row in rows)

    def close(self) -> None:
        """Stop the pool's threads (after a test, whatever it left running)."""
        self.worker.stopping.set()
        self.worker.pool.take_waiting()
        self.worker.pool.stop()
        if self.writer is not None:
            self.worker.stopped.set()
            with self.worker.outcomes.taken:
                self.worker.outcomes.taken.notify()
            self.writer.join(PATIENCE)
