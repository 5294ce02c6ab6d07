"""Outcomes on their way from the pool to the database: taken in, buffered, written in
batches.

An outcome is written with others in one statement, once ``FINISH_BATCH_SIZE`` are
waiting, ``FINISH_FLUSH_MS`` has passed since the first, or the worker holds nothing
else. A running worker writes them in a thread of its own (:meth:`OutcomeWriter.run`,
on a connection of its own), so that the main loop claims while a batch is written
instead of after it (solo, and a loop driven step by step, write them in the main loop).

No data of a job reaches the loop's control flow: a batch that fails for any reason but
a lost connection is written again outcome by outcome, and the one outcome the database
refuses ends its own job.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import uuid
from typing import TYPE_CHECKING

from django.db import DatabaseError, InterfaceError, connections

from djqueue.core import conf, states, text
from djqueue.core.records import Outcome
from djqueue.runtime.notices import LATER
from djqueue.runtime.outage import DB_DOWN, DB_ERRORS, Outage, describe

if TYPE_CHECKING:
    from djqueue.runtime.worker import Worker

logger = logging.getLogger("djqueue.worker")


class OutcomeWriter:
    """The buffer of outcomes a worker has taken and not written yet."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.store = worker.store
        self.clock = worker.clock
        # Read once: settings do not change at run time.
        self.batch_size = conf.integer("FINISH_BATCH_SIZE")
        self.flush_after = conf.number("FINISH_FLUSH_MS") / 1000
        # Outcomes taken, to be written in batches (guarded by ``lock``), and when the
        # oldest of them was taken.
        self.buffer: list[Outcome] = []
        self.buffered_at = 0.0
        self.lock = threading.Lock()
        # Signalled when an outcome is taken: the writer thread looks whether one is due.
        self.taken = threading.Condition(self.lock)
        # The batch being written now (for a cold shutdown's hand-back).
        self.in_flight: list[Outcome] = []
        # Whether the writer thread runs (else the main loop writes).
        self.threaded = False
        # Its own back-off: the main thread's counts claims that failed, and ``until_up``
        # must not see another thread's success as its own.
        self.outage = Outage(worker.store, worker.clock, worker.stopping, worker.hard_stop)

    def run(self) -> None:
        """The writer thread: write batches as they come due, until the worker stopped."""
        worker = self.worker
        self.threaded = True
        try:
            while not worker.stopped.is_set():
                with self.taken:
                    due = self.due_in()
                    if due is None or due > 0:
                        # Woken by a take; the timeout looks at ``stopped`` now and then.
                        self.taken.wait(0.5 if due is None else due)
                        continue
                self.flush(force=False)
        finally:
            self.threaded = False
            with contextlib.suppress(Exception):
                connections.close_all()

    def take(self, outcome: Outcome) -> None:
        """Stop holding the job of ``outcome`` and buffer the outcome (main thread)."""
        worker = self.worker
        if outcome.retry_in is not None:
            # The database dates the retry when the outcome is written, a little later:
            # wake a little after that, not before.
            due = self.clock.now() + outcome.retry_in + 0.05
            worker.retry_due = min(worker.retry_due, due)
        with self.taken:
            if not self.buffer:
                self.buffered_at = self.clock.now()
            self.buffer.append(outcome)
            if len(self.buffer) == 1 or len(self.buffer) == self.batch_size:
                self.taken.notify()  # a batch begins (its timer) or is full
        with worker.lock:
            held = worker.held.get(outcome.job_id)
            # The late outcome of an attempt taken back from this worker must not end
            # the newer attempt it has claimed since (that one would never start).
            newer = held is not None and held.job.attempt != outcome.attempt
            if not newer:
                worker.held.pop(outcome.job_id, None)
                worker.revoking.discard(outcome.job_id)
            worker.writing[outcome.job_id] = outcome.attempt
        if (worker.time_limited or worker.supervisor.active) and not newer:
            worker.supervisor.done(outcome.job_id)
        worker.jobs_done += 1
        worker.totals[outcome.task_name] += 1
        if not worker.held and self.threaded:
            # Nothing else held: the buffer is due now (see ``due_in``).
            with self.taken:
                self.taken.notify()

    def due_in(self) -> float | None:
        """Seconds until the buffer is due to be written; None when it is empty."""
        if not self.buffer:
            return None
        if not self.worker.held:
            return 0.0
        return max(0.0005, self.buffered_at + self.flush_after - self.clock.now())

    def flush(self, force: bool) -> None:
        """Write the buffered outcomes if they are due (any thread; solo's control
        thread writes them while the main thread runs a long job)."""
        with self.lock:
            if not self.buffer:
                return
            due = (
                force
                or not self.worker.held
                or len(self.buffer) >= self.batch_size
                or self.clock.now() - self.buffered_at >= self.flush_after
            )
            if not due:
                return
            # At most FINISH_BATCH_SIZE in one statement; the rest are due at once after.
            batch, self.buffer = self.buffer[: self.batch_size], self.buffer[self.batch_size :]
            self.in_flight = batch
        try:
            self._write(batch)
        finally:
            with self.lock:
                self.in_flight = []

    def pending(self) -> bool:
        """Whether any outcome taken is not written yet (buffered or being written)."""
        return bool(self.buffer or self.in_flight)

    def unwritten(self) -> dict[uuid.UUID, Outcome]:
        """Outcomes not yet written: buffered, or still queued for the main thread."""
        found = {o.job_id: o for o in [*self.in_flight, *self.buffer]}
        while True:
            try:
                event = self.worker.events.get_nowait()
            except queue.Empty:
                return found
            if isinstance(event, Outcome):
                found[event.job_id] = event

    def _write(self, batch: list[Outcome]) -> None:
        outage = self.outage
        try:
            self.store.finish(batch)
        except DB_DOWN as exc:
            # Keep them: written once the database is back (fencing makes it safe).
            self._rebuffer(batch)
            outage.down(exc)
            return
        except DB_ERRORS as exc:
            # Something in the batch cannot be written: find it, one outcome at a time.
            logger.warning(
                "Writing %d outcome(s) failed (%s); writing them one by one.",
                len(batch),
                describe(exc),
            )
            self.store.reset()
            batch = self._finish_one_by_one(batch)
        outage.up()
        self._written(batch)

    def _finish_one_by_one(self, batch: list[Outcome]) -> list[Outcome]:
        """Write ``batch`` outcome by outcome; return those done with (written or given up).

        The outcome the database refuses ends its job FAILURE with the reason; outcomes
        not reached because the connection went down stay buffered.
        """
        for index, outcome in enumerate(batch):
            try:
                self.store.finish([outcome])
            except DB_DOWN as exc:
                self._rebuffer(batch[index:])
                self.outage.down(exc)
                return batch[:index]
            except DB_ERRORS as exc:
                self.store.reset()
                self._finish_refused(outcome, exc)
        return batch

    def _finish_refused(self, outcome: Outcome, exc: DatabaseError | InterfaceError) -> None:
        """End the job whose outcome the database refused, with the database's reason."""
        reason = text.storable(describe(exc), conf.integer("MAX_ERROR_CHARS"))
        logger.error(
            "The outcome of %s[%s] could not be stored (%s); the job ends FAILURE.",
            text.printable(outcome.task_name),
            outcome.job_id,
            text.printable(reason),
        )
        refused = Outcome(
            outcome.job_id,
            outcome.attempt,
            outcome.task_name,
            states.FAILURE,
            error_type="djqueue.exceptions.OutcomeNotStored",
            error_message=(
                f"the job ended {outcome.state}, but the database refused to store that "
                f"outcome: {reason}"
            ),
            worker=outcome.worker,
            runtime=outcome.runtime,
        )
        try:
            self.store.finish([refused])
        except DB_ERRORS as again:
            # Not even that: the row stays held by nobody and goes back to the queue at
            # the next heartbeat (it is no longer in ``writing``).
            self.store.reset()
            logger.error(
                "Could not record the failure of job %s either (%s); it goes back to the queue.",
                outcome.job_id,
                describe(again),
            )

    def _rebuffer(self, outcomes: list[Outcome]) -> None:
        with self.lock:
            self.buffer = outcomes + self.buffer

    def _written(self, outcomes: list[Outcome]) -> None:
        worker = self.worker
        with worker.lock:
            for outcome in outcomes:
                if worker.writing.get(outcome.job_id) == outcome.attempt:
                    del worker.writing[outcome.job_id]
        if self.threaded and worker.maybe_more:
            # The main loop may have held a claim back for this write (see
            # ``Claimer.free``): let it look again now rather than at its next poll.
            worker.events.put(LATER)
