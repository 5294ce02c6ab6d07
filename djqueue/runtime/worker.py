"""The worker loop: claim jobs, run them in a pool, write outcomes back in batches.

Threads: the main thread claims, submits and finishes; a listener thread turns NOTIFY
into wake-ups; a control thread keeps leases and the worker row alive, records which
received jobs started, rescues jobs of dead workers, prunes, and enforces the shutdown
grace period. Everything the main thread waits for arrives on one queue, so it blocks
in exactly one place.

What the worker holds, it knows by id and attempt: the jobs it claimed and has not
written an outcome for. Leases are renewed for exactly those; rows that name the worker
but that it does not hold (a claim whose reply was lost) go back to the queue. Before a
pool starts a job, the worker makes sure the job is still its own: when its leases may
have run out (it was frozen, cut off, or could not renew), it asks the database first.
No data of a job reaches the loop's control flow: a write that fails for any reason but
a lost connection is retried outcome by outcome, and the one bad outcome ends its own
job. The loop exits only when told to.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import TypeVar

from django.db import DatabaseError, InterfaceError, OperationalError, connections

from djqueue.core import conf, executor, registry, signals, states, text
from djqueue.core.limits import Rate
from djqueue.core.records import ClaimedJob, Outcome
from djqueue.db import listener, sessions
from djqueue.db.listener import (
    CONTROL_CHANNEL,
    JOBS_CHANNEL,
    PAUSE_CHANNEL,
    REVOKE_CHANNEL,
    Listener,
)
from djqueue.runtime import pools, remote
from djqueue.runtime.clock import Clock, SystemClock
from djqueue.runtime.interrupt import Window
from djqueue.runtime.pools import isolation
from djqueue.runtime.pools.autoscale import Autoscaler
from djqueue.runtime.pools.base import Inline, Scalable
from djqueue.runtime.pools.child import Limits
from djqueue.runtime.store import DatabaseStore, Store
from djqueue.runtime.supervisor import Supervisor

logger = logging.getLogger("djqueue.worker")

T = TypeVar("T")
WAKE = "wake"
_DB_DOWN = (OperationalError, InterfaceError)
# Every failure of a statement: Django's InterfaceError (a connection already closed) is
# not a DatabaseError, and must not escape a handler that means "the statement failed".
_DB_ERRORS = (DatabaseError, InterfaceError)
# A received job that has run this long (seconds) is recorded as STARTED by the control
# thread; shorter ones are recorded by their outcome, which saves a write per job.
_MARK_AFTER = 0.05
# Seconds the control thread waits for a claim in flight before it renews leases
# without handing back orphans (which must not overlap a claim of its own).
_CLAIM_WAIT = 1.0


@dataclass
class Options:
    """How a worker runs; the command line fills these in."""

    queues: Sequence[str] = ("default",)
    pool: str = pools.DEFAULT
    concurrency: int = 4
    hostname: str = field(default_factory=lambda: f"djqueue@{socket.gethostname()}")
    prefetch_multiplier: int | None = None
    # prefork: a child is replaced after the job that reaches either limit.
    max_tasks_per_child: int | None = None
    max_memory_per_child: int | None = None  # KB
    # (MAX, MIN) slots; the pool starts at MIN and concurrency is MAX.
    autoscale: tuple[int, int] | None = None
    # Seconds the pool stays larger than needed before it shrinks.
    autoscale_keepalive: float = 30.0
    # Time limits for tasks that set none of their own (seconds; None: no limit).
    soft_time_limit: float | None = None
    time_limit: float | None = None


@dataclass(slots=True)
class Held:
    """A job this worker claimed, whether a pool has started it, and whether that start
    is recorded in its row (``Worker.clock`` time of the start)."""

    job: ClaimedJob
    started: bool = False
    started_at: float = 0.0
    marked: bool = False


class JobRunner:
    """How a pool runs a job for the worker: all at once in-process (a call), or in two
    halves around another process (``begin``, then ``report``)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def __call__(self, job: ClaimedJob, window: Window) -> None:
        """Run ``job`` here, through its interrupt window, and report its outcome."""
        if self.begin(job):
            self.report(_execute(job, window))

    def begin(self, job: ClaimedJob) -> bool:
        """Mark ``job`` started; False (and a warning) if it was rescued from this worker."""
        return self.worker.begin(job)

    def report(self, outcome: Outcome) -> None:
        """Queue ``outcome`` for the main thread to write (any thread may call this)."""
        self.worker.events.put(outcome)


class Worker:
    """One worker process. ``run()`` returns when it has shut down.

    It reaches the queue through ``store`` and reads the time through ``clock`` (by
    default, the database and the system clock; unit tests pass fakes of both).
    """

    def __init__(
        self, options: Options, store: Store | None = None, clock: Clock | None = None
    ) -> None:
        self.options = options
        self.store: Store = DatabaseStore() if store is None else store
        self.clock: Clock = SystemClock() if clock is None else clock
        # Before anything is set up, as Celery does: receivers may configure by hostname.
        signals.emit(
            signals.celeryd_init,
            options.hostname,
            instance=self,
            conf={name: conf.get(name) for name in conf.DEFAULTS},
            options=dataclasses.asdict(options),
        )
        self.queues = list(options.queues)
        # The queues not paused: the ones claims take from (replaced, never mutated).
        self.active_queues = list(self.queues)
        self.name = f"{options.hostname}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
        concurrency = options.autoscale[0] if options.autoscale else options.concurrency
        limits = Limits(options.max_tasks_per_child, options.max_memory_per_child)
        self.pool = pools.create(
            options.pool, JobRunner(self), concurrency, limits if limits != Limits() else None
        )
        self.autoscaler = self._autoscaler(options)
        # Solo runs jobs in this loop's thread, when the loop asks it to.
        self._inline = self.pool if isinstance(self.pool, Inline) else None
        multiplier = options.prefetch_multiplier or conf.integer("PREFETCH_MULTIPLIER")
        self.multiplier = max(1, multiplier)
        self.capacity = max(1, self.pool.concurrency * self.multiplier)
        # While jobs are held, claim again only once this many places are free: one
        # round trip then fetches several jobs instead of one per finished job. (With
        # nothing held a claim goes out at once, so pick-up latency is unchanged.)
        self.claim_threshold = max(1, self.capacity // 4)
        self.lease = conf.number("LEASE_SECONDS")
        # A job is started only while the leases are surely still ours: renewed less
        # than this long ago (by the worker's clock); otherwise it asks the database.
        self.trust_leases_for = self.lease / 2
        # Read once: the loop below runs per batch and settings do not change at run time.
        self.claim_batch = conf.integer("CLAIM_BATCH_SIZE")
        self.finish_batch = conf.integer("FINISH_BATCH_SIZE")
        self.flush_after = conf.number("FINISH_FLUSH_MS") / 1000
        self.poll_interval = conf.number("POLL_INTERVAL_SECONDS")
        self.grace = conf.number("SHUTDOWN_GRACE_SECONDS")
        self.events: queue.SimpleQueue[Outcome | str] = queue.SimpleQueue()
        # Guarded by _lock (read by the control, listener and pool threads):
        # jobs claimed whose outcome was not taken yet,
        self.held: dict[uuid.UUID, Held] = {}
        # and jobs whose outcome is taken but not yet written (id -> attempt).
        self.writing: dict[uuid.UUID, int] = {}
        # Held jobs revoke(terminate=True) reached before they started: not to run.
        self.revoked: set[uuid.UUID] = set()
        # Revocations already acted on (notifications and heartbeats both report them).
        self._revoking: set[uuid.UUID] = set()
        self.supervisor = Supervisor(self.pool, options.soft_time_limit, options.time_limit)
        self._timed = _any_time_limit(options)
        self._lock = threading.Lock()
        # Held by the main thread around a claim; the heartbeat takes it to hand back
        # orphans, and a cold shutdown takes it for good so that no claim lands after
        # the hand-back (the claimed jobs would stay held).
        self._claim_lock = threading.Lock()
        # When the leases of every held job were last renewed (self.clock), and the
        # lock that lets one pool thread at a time confirm them.
        self._renewed_at = self.clock.now()
        self._confirm_lock = threading.Lock()
        # Outcomes taken, to be written in batches (guarded by _buffer_lock).
        self.buffer: list[Outcome] = []
        self._buffered_at = 0.0
        self._buffer_lock = threading.Lock()
        self.jobs_done = 0
        self.maybe_more = True
        # When a retry written by this worker becomes due before the next poll.
        self.retry_due = float("inf")
        self.stopping = threading.Event()
        self.hard_stop = threading.Event()
        self.stopped = threading.Event()
        self._stop_requested_at = 0.0
        self._db_failures = 0
        self._loop_failures = 0
        # Jobs done, by task name (control's stats), and rate limits set by control
        # commands, by task name (None: no limit), which claimed jobs must match.
        self.totals: collections.Counter[str] = collections.Counter()
        self.rate_overrides: dict[str, Rate | None] = {}
        # Control commands: acted on in the control thread; all of them at start.
        self.remote = remote.Remote(self)
        self.remote.notified()

    # Life cycle -----------------------------------------------------------------

    def run(self) -> int:
        """Serve until stopped by a signal; return the process exit code."""
        self._install_signal_handlers()
        signals.emit(signals.worker_init, self)
        if not self._start():
            logger.info("Worker %s stopped before it could register.", self.name)
            return 0
        if self._inline is None:
            # This thread's connection serves the loop only (solo runs tasks on it).
            sessions.own_thread()
        # Both restart after any error until the worker stops; their threads are
        # djqueue's own (a statement timeout guards their connections).
        listener.run_forever(self._listen, "djqueue-listener", self.stopping)
        listener.run_forever(self._control_loop, "djqueue-control", self.stopped)
        logger.info(
            "Worker %s ready: pool=%s concurrency=%d queues=%s",
            self.name,
            self.pool.name,
            self.pool.concurrency,
            ",".join(self.queues),
        )
        signals.emit(signals.worker_ready, self)
        try:
            while not self.stopping.is_set():
                self._guarded(self._tick)
            self._drain()
            self._until_db(self.store.worker_stopped, self.name, self.jobs_done)
        finally:
            self.stopped.set()
            self.store.close()
        logger.info("Worker %s stopped after %d job(s).", self.name, self.jobs_done)
        signals.emit(signals.worker_shutdown, self)
        return 0

    def _start(self) -> bool:
        """Register, read the paused queues, start the pool; False if stopped first."""
        if not self._register():
            return False
        self._renewed_at = self.clock.now()
        self._refresh_paused()
        self.pool.start()
        return True

    def stop(self, hard: bool = False) -> None:
        """Stop claiming; running jobs finish within the grace period (``hard``: now).

        Safe to call from a signal handler: it only sets flags. The control thread logs
        and does the hand-back on its own connection, never on the one the main thread
        may be using (logging here could also re-enter a stream the handler interrupted).
        """
        if hard or self.stopping.is_set():
            # Set before ``stopping`` so that the control thread never takes a cold
            # shutdown for a warm one.
            self.hard_stop.set()
        else:
            self._stop_requested_at = time.monotonic()
        # Cold too: the main loop must stop claiming while the jobs are handed back.
        self.stopping.set()
        self.events.put(WAKE)

    def _guarded(self, step: Callable[[], None]) -> None:
        """Run one step of the main loop; log whatever it raises and carry on.

        The worker exits only when told to: an error no other handler expected (a
        database error that is not a lost connection, a bug) costs a pause, not the
        process and every job it holds.
        """
        try:
            step()
        except Exception as exc:
            self._loop_failures += 1
            delay = min(5.0, 0.1 * 2**self._loop_failures)
            logger.exception("Worker loop error (%s); carrying on in %.1fs.", _describe(exc), delay)
            self.store.reset()
            self.clock.wait(self.stopping, delay)
        else:
            self._loop_failures = 0

    def _autoscaler(self, options: Options) -> Autoscaler | None:
        if options.autoscale is None:
            return None
        if not isinstance(self.pool, Scalable):
            raise ValueError(f"the {self.pool.name} pool cannot autoscale")
        high, low = options.autoscale
        self.pool.resize(low)
        return Autoscaler(self.pool, low, high, options.autoscale_keepalive)

    def _register(self) -> bool:
        """Record this worker, waiting out a database outage; False if stopped first."""
        while not self.stopping.is_set():
            registered = self._try_db(
                self.store.register_worker,
                self.name,
                socket.gethostname(),
                os.getpid(),
                self.pool.name,
                self.pool.concurrency,
                self.queues,
            )
            # register_worker returns None: success is told by the failure count.
            if registered is not None or not self._db_failures:
                return True
        return False

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def soft(signum: int, frame: FrameType | None) -> None:
            self.stop()

        def hard(signum: int, frame: FrameType | None) -> None:
            self.stop(hard=True)

        signal.signal(signal.SIGTERM, soft)
        signal.signal(signal.SIGINT, soft)
        signal.signal(signal.SIGQUIT, hard)

    # The main loop --------------------------------------------------------------

    def _tick(self) -> None:
        claimed = self._claim()
        if claimed:
            self._submit(claimed)
        if self._inline is not None:
            self._run_inline(self._inline)
        more_now = self.maybe_more and self._may_claim()
        self._gather(0.0 if more_now else self._wait_time())
        self._flush(force=False)

    def _run_inline(self, pool: Inline) -> None:
        """Solo: run the submitted jobs here, writing outcomes as they come."""
        while not self.stopping.is_set() and pool.run_one():
            self._gather(0.0)
            self._flush(force=False)

    def _free(self) -> int:
        return self.capacity - len(self.held)

    def _may_claim(self) -> bool:
        free = self._free()
        return free > 0 and (free >= self.claim_threshold or not self.held)

    def _claim(self) -> list[ClaimedJob]:
        want = min(self._free(), self.claim_batch)
        if not self._may_claim() or not self.maybe_more:
            return []
        with self._claim_lock:
            if self.hard_stop.is_set():
                return []
            queues = self.active_queues
            if not queues:  # every queue of this worker is paused
                self.maybe_more = False
                return []
            jobs = self._try_db(self._claim_from, queues, want)
            if jobs is None:
                # If the claim was committed but its reply lost, the rows name this
                # worker without it holding them: the next heartbeat hands them back.
                return []
            with self._lock:
                for job in jobs:
                    # A job taken back from this worker and claimed again replaces the
                    # stale copy, which then fails its attempt check and never starts.
                    self.held[job.id] = Held(job)
            for job in jobs:
                # A job sent with a time limit of its own is watched in any worker.
                if self._timed or job.workflow is not None:
                    self.supervisor.watch(job)
        self.maybe_more = len(jobs) == want
        if self.rate_overrides:
            jobs = self._regate(jobs)
        return jobs

    def _regate(self, jobs: list[ClaimedJob]) -> list[ClaimedJob]:
        """Hand back claimed jobs whose rate limit is not the one a control command set
        for their task, with that limit: they are claimed again under it."""
        wrong = [job for job in jobs if _rate_differs(job, self.rate_overrides)]
        if not wrong:
            return jobs
        for job in wrong:
            rate = self.rate_overrides[job.task_name]
            self._until_db(
                self.store.set_claimed_rate_limit,
                job.id,
                job.attempt,
                self.name,
                None if rate is None else (rate.count, rate.period),
            )
            self.supervisor.done(job.id)
        self._release(wrong)
        self.maybe_more = True
        return [job for job in jobs if job not in wrong]

    def _submit(self, jobs: list[ClaimedJob]) -> None:
        for index, job in enumerate(jobs):
            if self.stopping.is_set():
                self._release(jobs[index:])
                return
            self.pool.submit(job)

    def begin(self, job: ClaimedJob) -> bool:
        """Mark ``job`` started; False if it must not run here (any thread may call this).

        It must not when it is no longer this worker's (taken back while the worker was
        frozen or cut off, possibly claimed again since), when its lease cannot be
        confirmed, or when ``revoke(terminate=True)`` reached it first.
        """
        if self.clock.now() - self._renewed_at > self.trust_leases_for and not self._confirm():
            self._drop(job, "its lease could not be confirmed (the database is unreachable)")
            return False
        with self._lock:
            held = self.held.get(job.id)
            if held is None or held.job.attempt != job.attempt:
                mine = False
            else:
                mine = True
                held.started, held.started_at = True, self.clock.now()
            revoked = mine and job.id in self.revoked
            self.revoked.discard(job.id)
        if not mine:
            logger.warning(
                "Not running job %s: it was taken back from this worker while the worker "
                "was unresponsive.",
                job.id,
            )
            return False
        if revoked:
            logger.warning(
                "Task %s[%s] revoked before it started.", text.printable(job.task_name), job.id
            )
            outcome = executor.revoked(job, "revoked before it started")
            executor.announce_revoked(job, outcome)
            self.events.put(outcome)
            return False
        return True

    def _drop(self, job: ClaimedJob, why: str) -> None:
        """Stop holding ``job`` unstarted; its row goes back to the queue (orphan hand-back
        at the next heartbeat, or lease rescue)."""
        with self._lock:
            held = self.held.get(job.id)
            if held is not None and held.job.attempt == job.attempt:
                del self.held[job.id]
        logger.warning("Not starting job %s: %s; it goes back to the queue.", job.id, why)

    def _gather(self, timeout: float) -> None:
        try:
            event = self.events.get(timeout=timeout) if timeout > 0 else self.events.get_nowait()
        except queue.Empty:
            # Nothing arrived: poll, in case a notification was missed or a job got due.
            if timeout > 0 or self.retry_due <= self.clock.now():
                self.maybe_more = True
                self.retry_due = float("inf")
            return
        while True:
            self._take(event)
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return

    def _take(self, event: Outcome | str) -> None:
        if isinstance(event, str):
            self.maybe_more = True
            return
        if event.retry_in is not None:
            # The database dates the retry when the outcome is written, a little later:
            # wake a little after that, not before.
            due = self.clock.now() + event.retry_in + 0.05
            self.retry_due = min(self.retry_due, due)
        with self._buffer_lock:
            if not self.buffer:
                self._buffered_at = self.clock.now()
            self.buffer.append(event)
        with self._lock:
            held = self.held.get(event.job_id)
            # The late outcome of an attempt taken back from this worker must not end
            # the newer attempt it has claimed since (that one would never start).
            newer = held is not None and held.job.attempt != event.attempt
            if not newer:
                self.held.pop(event.job_id, None)
                self._revoking.discard(event.job_id)
            self.writing[event.job_id] = event.attempt
        if (self._timed or self.supervisor.active) and not newer:
            self.supervisor.done(event.job_id)
        self.jobs_done += 1
        self.totals[event.task_name] += 1

    def _wait_time(self) -> float:
        if self.buffer:
            if not self.held:
                return 0.0
            return max(0.0005, self._buffered_at + self.flush_after - self.clock.now())
        return max(0.0, min(self.poll_interval, self.retry_due - self.clock.now()))

    def _flush(self, force: bool) -> None:
        """Write the buffered outcomes if they are due (any thread; solo's control
        thread writes them while the main thread runs a long job)."""
        with self._buffer_lock:
            if not self.buffer:
                return
            due = (
                force
                or not self.held
                or len(self.buffer) >= self.finish_batch
                or self.clock.now() - self._buffered_at >= self.flush_after
            )
            if not due:
                return
            batch, self.buffer = self.buffer, []
        self._write(batch)

    def _write(self, batch: list[Outcome]) -> None:
        try:
            self.store.finish(batch)
        except _DB_DOWN as exc:
            # Keep them: written once the database is back (fencing makes it safe).
            self._rebuffer(batch)
            self._database_down(exc)
            return
        except _DB_ERRORS as exc:
            # Something in the batch cannot be written: find it, one outcome at a time.
            logger.warning(
                "Writing %d outcome(s) failed (%s); writing them one by one.",
                len(batch),
                _describe(exc),
            )
            self.store.reset()
            batch = self._finish_one_by_one(batch)
        self._database_up()
        self._written(batch)

    def _finish_one_by_one(self, batch: list[Outcome]) -> list[Outcome]:
        """Write ``batch`` outcome by outcome; return those done with (written or given up).

        The outcome the database refuses ends its job FAILURE with the reason; outcomes
        not reached because the connection went down stay buffered.
        """
        for index, outcome in enumerate(batch):
            try:
                self.store.finish([outcome])
            except _DB_DOWN as exc:
                self._rebuffer(batch[index:])
                self._database_down(exc)
                return batch[:index]
            except _DB_ERRORS as exc:
                self.store.reset()
                self._finish_refused(outcome, exc)
        return batch

    def _finish_refused(self, outcome: Outcome, exc: DatabaseError | InterfaceError) -> None:
        """End the job whose outcome the database refused, with the database's reason."""
        reason = text.storable(_describe(exc), conf.integer("MAX_ERROR_CHARS"))
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
        except _DB_ERRORS as again:
            # Not even that: the row stays held by nobody and goes back to the queue at
            # the next heartbeat (it is no longer in ``writing``).
            self.store.reset()
            logger.error(
                "Could not record the failure of job %s either (%s); it goes back to the queue.",
                outcome.job_id,
                _describe(again),
            )

    def _rebuffer(self, outcomes: list[Outcome]) -> None:
        with self._buffer_lock:
            self.buffer = outcomes + self.buffer

    def _written(self, outcomes: list[Outcome]) -> None:
        with self._lock:
            for outcome in outcomes:
                if self.writing.get(outcome.job_id) == outcome.attempt:
                    del self.writing[outcome.job_id]

    def _drain(self) -> None:
        """After a warm stop: hand back what never started, wait for the rest."""
        self._release(self.pool.take_waiting())
        while self.held:
            self._guarded(self._drain_step)
        self.pool.stop()
        while self.buffer:
            self._guarded(lambda: self._flush(force=True))
            if self.buffer:
                self.clock.wait(self.hard_stop, 0.5)

    def _drain_step(self) -> None:
        self._gather(0.05)
        self._flush(force=False)

    def _release(self, jobs: Sequence[ClaimedJob]) -> None:
        if not jobs:
            return
        with self._lock:
            for job in jobs:
                self.held.pop(job.id, None)
        self._until_db(self.store.release, self.name, [(j.id, j.attempt, False) for j in jobs])

    # Other threads --------------------------------------------------------------

    def _listen(self) -> None:
        """The listener thread's loop: notices become wake-ups and revocations."""
        # Whatever was missed while nothing listened (a restart): look now.
        self.events.put(WAKE)
        heard = Listener([JOBS_CHANNEL, REVOKE_CHANNEL, PAUSE_CHANNEL, CONTROL_CHANNEL])
        try:
            while not self.stopping.is_set():
                wake = False
                mine = set(self.queues)  # control's add_consumer may change them
                for notice in heard.notices(1.0):
                    if isinstance(notice, listener.RevokeRequested):
                        self._revoke_notified(notice.job_id)
                    elif isinstance(notice, listener.PauseChanged):
                        if notice.queue in mine:
                            # A resumed queue may have jobs waiting: look at once.
                            wake = self._refresh_paused() or wake
                    elif isinstance(notice, listener.NewJobs):
                        wake = wake or notice.queue in mine
                    elif isinstance(notice, listener.ControlSent):
                        self.remote.notified()
                    elif isinstance(notice, listener.Reconnected):
                        self.remote.notified()
                        wake = True
                if wake:
                    self.events.put(WAKE)
        finally:
            heard.close()

    def _revoke_notified(self, job_id: uuid.UUID) -> None:
        """A revoke notification names a job this worker may hold. Any database role can
        send one, so the job's row must say that a revocation was asked for before the
        job is stopped or kept from starting."""
        with self._lock:
            held = self.held.get(job_id)
        if held is None:
            return
        try:
            asked = self.store.revoke_asked(job_id, held.job.attempt, self.name)
        except _DB_ERRORS as exc:
            # The heartbeat reads the same mark from the row, and acts on it then.
            logger.warning("Could not check a revoke request (%s).", _describe(exc))
            self.store.reset()
            return
        if asked:
            self._revoke_requested(job_id)
        else:
            logger.warning(
                "Ignored a revoke notification for job %s: its row asks for no revocation.",
                job_id,
            )

    def _refresh_paused(self, force: bool = False) -> bool:
        """Read which queues are paused; return whether this worker's set changed."""
        try:
            paused = self.store.paused_queues()
        except _DB_ERRORS as exc:
            logger.warning("Could not read paused queues (%s).", _describe(exc))
            self.store.reset()
            return False
        active = [queue for queue in self.queues if queue not in paused]
        if active == self.active_queues:
            return False
        self.maybe_more = True
        if force:
            self.active_queues = active
            return True
        stopped = sorted(set(self.queues) - set(active))
        logger.warning(
            "Paused queues: %s.", text.printable(", ".join(stopped)) if stopped else "none"
        )
        self.active_queues = active  # one assignment: the main thread reads it as is
        return True

    def _revoke_requested(self, job_id: uuid.UUID) -> None:
        """Act on revoke(terminate=True) of a job this worker may hold (any thread)."""
        with self._lock:
            held = self.held.get(job_id)
            if held is None or job_id in self._revoking:
                return
            self._revoking.add(job_id)
            if not held.started:
                # begin() sees this under the same lock: the job will not run.
                self.revoked.add(job_id)
                return
            job = held.job
        self.supervisor.revoke_running(job, self._revoke_signal(job))

    def _revoke_signal(self, job: ClaimedJob) -> int | None:
        """The signal the revocation of running ``job`` asked for (None: the pool's way,
        also when the row cannot be read now: the job is stopped all the same)."""
        try:
            return self.store.revoke_signal(job.id, job.attempt, self.name)
        except _DB_ERRORS as exc:
            logger.warning("Could not read a revocation's signal (%s).", _describe(exc))
            self.store.reset()
            return None

    def _control_loop(self) -> None:
        """The control thread's loop: leases, rescue, pruning, shutdown's grace period."""
        try:
            self._control_ticks()
        finally:
            with contextlib.suppress(Exception):
                connections.close_all()

    def _control_ticks(self) -> None:
        every = conf.number("HEARTBEAT_SECONDS")
        next_beat = 0.0
        next_prune = time.monotonic() + conf.number("PRUNE_INTERVAL_SECONDS")
        rollup_every = conf.optional_number("SERIES_ROLLUP_SECONDS")
        next_rollup = time.monotonic() + (rollup_every or 0)
        # After a restart of this loop, a warm shutdown already announced stays so.
        announced = self.stopping.is_set()
        while not self.stopped.wait(0.2):
            now = time.monotonic()
            if self.hard_stop.is_set():
                logger.warning("Cold shutdown: handing running jobs back now.")
                self._hand_back_and_exit()
            if self.stopping.is_set() and not announced:
                announced = True
                self._announce_warm_shutdown()
            if self.stopping.is_set() and now - self._stop_requested_at > self.grace:
                logger.warning("Grace period over: handing running jobs back.")
                self._hand_back_and_exit()
            if self.autoscaler is not None and not self.stopping.is_set():
                self.autoscaler.tick(now)
            if self._timed or self.supervisor.active:
                self.supervisor.tick(now)
            if self._inline is not None:
                # Solo's main thread is inside a job: outcomes before it must not wait.
                self._flush(force=False)
            if now >= next_beat:
                next_beat = now + every
                self._beat()
                self._serve_control(always=True)
            else:
                self._mark_started_or_log()
                self._serve_control(always=False)
            if rollup_every is not None and now >= next_rollup:
                next_rollup = now + rollup_every
                self._rollup()
            if now >= next_prune:
                next_prune = now + conf.number("PRUNE_INTERVAL_SECONDS")
                self._prune()

    def _serve_control(self, always: bool) -> None:
        """Act on control commands (announced ones; with ``always``, any not seen)."""
        try:
            self.remote.serve(always)
        except DatabaseError as exc:
            logger.warning("Could not read control commands (%s).", _describe(exc))
            self.remote.notified()  # look again at the next turn
            self.store.reset()

    def resize_pool(self, change: int) -> int | None:
        """Grow or shrink the pool by ``change`` slots (control's pool_grow/shrink);
        return the new size, or None when the pool cannot change its size."""
        if not isinstance(self.pool, Scalable):
            return None
        size = max(1, self.pool.load().size + change)
        if self.autoscaler is not None:
            # The autoscaler keeps to its bounds: widen them to take the new size in.
            self.autoscaler.low = min(self.autoscaler.low, size)
            self.autoscaler.high = max(self.autoscaler.high, size)
        self.pool.resize(size)
        # More slots hold more jobs; fewer keep what is held (the pool works it down).
        self.capacity = max(self.capacity, size * self.multiplier)
        self.claim_threshold = max(1, self.capacity // 4)
        logger.warning("Pool resized to %d by a control command.", size)
        self.events.put(WAKE)
        return size

    def consume(self, queue: str, add: bool) -> bool:
        """Start or stop taking jobs from ``queue`` (control's add/cancel_consumer);
        False when nothing changes. A worker keeps at least one queue."""
        if (queue in self.queues) == add or (not add and self.queues == [queue]):
            return False
        queues = [*self.queues, queue] if add else [q for q in self.queues if q != queue]
        self.queues = queues  # one assignment: other threads read it as is
        self._refresh_paused(force=True)
        self.store.set_worker_queues(self.name, queues)
        logger.warning("Queues now %s (control command).", text.printable(",".join(queues)))
        self.events.put(WAKE)
        return True

    def timed(self) -> None:
        """A job may have a time limit from now on (control's time_limit)."""
        self._timed = True

    def _announce_warm_shutdown(self) -> None:
        with self._lock:
            running = sum(1 for held in self.held.values() if held.started)
        logger.warning(
            "Warm shutdown: no new jobs; waiting up to %gs for %d running job(s). "
            "Signal again to stop at once.",
            self.grace,
            running,
        )
        # Jobs waiting in the pool go back now, not when a running one ends (solo runs
        # jobs in the main thread, which is busy until then).
        waiting = self.pool.take_waiting()
        if waiting:
            with self._lock:
                for job in waiting:
                    self.held.pop(job.id, None)
            try:
                self.store.release(self.name, [(j.id, j.attempt, False) for j in waiting])
            except _DB_ERRORS as exc:
                logger.warning(
                    "Could not hand %d waiting job(s) back now (%s); their leases will "
                    "expire and another worker will take them.",
                    len(waiting),
                    _describe(exc),
                )
                self.store.reset()

    def _owned(self) -> list[tuple[uuid.UUID, int]]:
        """``(id, attempt)`` of every job this worker holds: claimed, outcome not written."""
        with self._lock:
            owned = [(job_id, held.job.attempt) for job_id, held in self.held.items()]
            owned += list(self.writing.items())
        return owned

    def _beat(self) -> None:
        try:
            self._renew(orphans=True)
            self.store.worker_heartbeat(self.name, self.jobs_done, _children(self.pool))
            self.store.rescue()
            self._refresh_paused()
        except _DB_ERRORS as exc:
            logger.warning("Heartbeat failed (%s); will try again.", _describe(exc))
            self.store.reset()

    def _renew(self, orphans: bool) -> None:
        """Renew the leases of what this worker holds; forget what was taken from it.

        With ``orphans``, also hand back rows that name this worker but that it does
        not hold, while no claim of its own is in flight (else a claim being answered
        could look like a lost one). A claim hung on a dead link is not waited for.
        """
        locked = orphans and self._claim_lock.acquire(timeout=_CLAIM_WAIT)
        try:
            owned = self._owned()
            renewing_at = self.clock.now()
            renewed = self.store.renew_leases(self.name, self.lease, owned)
            # Lost jobs are forgotten before the renewal counts: a pool thread that
            # trusts the fresh renewal must not find a lost job still held.
            self._forget_lost(owned, renewed)
            self._renewed_at = renewing_at
            if locked:
                self.store.release_orphans(self.name, [job_id for job_id, _ in owned])
        finally:
            if locked:
                self._claim_lock.release()
        self._mark_started()
        # Revocations whose notification this worker missed (it was reconnecting).
        for job_id in [job_id for job_id, asked in renewed.items() if asked]:
            self._revoke_requested(job_id)

    def _confirm(self) -> bool:
        """Before a start, when the leases may have run out: ask the database which held
        jobs are still this worker's (any thread; on a connection of its own)."""
        with self._confirm_lock:
            if self.clock.now() - self._renewed_at <= self.trust_leases_for:
                return True  # another thread confirmed meanwhile
            owned = self._owned()
            confirming_at = self.clock.now()
            try:
                renewed = self.store.confirm_leases(self.name, self.lease, owned)
            except _DB_ERRORS as exc:
                logger.warning("Could not confirm this worker's leases (%s).", _describe(exc))
                return False
            self._forget_lost(owned, renewed)
            self._renewed_at = confirming_at
        return True

    def _forget_lost(
        self, owned: list[tuple[uuid.UUID, int]], renewed: dict[uuid.UUID, bool]
    ) -> None:
        """Drop held jobs whose lease could not be renewed: they are not ours any more."""
        with self._lock:
            lost = [
                job_id
                for job_id, attempt in owned
                if job_id not in renewed
                and job_id in self.held
                and self.held[job_id].job.attempt == attempt
            ]
            for job_id in lost:
                del self.held[job_id]
        if lost:
            logger.warning(
                "%d job(s) held by this worker were taken back after their lease expired "
                "(was the worker frozen or cut off?); those not started will not run here.",
                len(lost),
            )

    def _mark_started_or_log(self) -> None:
        try:
            self._mark_started()
        except _DB_ERRORS as exc:
            logger.warning("Could not record started jobs (%s).", _describe(exc))
            self.store.reset()

    def _mark_started(self) -> None:
        """Record jobs that have run for a while as STARTED (a received job otherwise
        shows as waiting in the worker's buffer, and a rescue would not charge it)."""
        now = self.clock.now()
        with self._lock:
            due = [
                held
                for held in self.held.values()
                if held.started and not held.marked and now - held.started_at >= _MARK_AFTER
            ]
        if not due:
            return
        self.store.mark_started(
            self.name, [(h.job.id, h.job.attempt, now - h.started_at) for h in due]
        )
        for held in due:
            held.marked = True

    def _rollup(self) -> None:
        """The console's time series: off the hot path, on the control thread; the
        store lets one worker of the cluster in at a time."""
        try:
            self.store.rollup()
        except _DB_ERRORS as exc:
            logger.warning("Time series rollup failed (%s); will try again.", _describe(exc))
            self.store.reset()

    def _prune(self) -> None:
        retention = conf.optional_number("RESULT_RETENTION_SECONDS")
        if retention is None:
            return
        try:
            count = self.store.prune(retention)
        except _DB_ERRORS as exc:
            logger.warning("Pruning failed (%s); will try again later.", _describe(exc))
            self.store.reset()
            return
        if count:
            logger.info("Pruned %d finished job(s).", count)
        try:
            self.store.prune_control()
        except DatabaseError as exc:
            logger.warning("Pruning control commands failed (%s).", _describe(exc))
            self.store.reset()

    def _hand_back_and_exit(self) -> None:
        # Wait for a claim in flight, then keep the lock: no claim may follow the
        # hand-back. Bounded, because a claim may hang on a dead database.
        self._claim_lock.acquire(timeout=5)
        # Child processes first: none may go on with a job handed back below.
        pools.kill(self.pool)
        done = self._finished_outcomes()
        with self._lock:
            jobs = [
                (job_id, held.job.attempt, held.started)
                for job_id, held in self.held.items()
                if job_id not in done
            ]
        try:
            if done:
                # Jobs that already finished are recorded, not run again.
                self.store.finish(list(done.values()))
            self.store.release(self.name, jobs)
            self.store.worker_stopped(self.name, self.jobs_done)
        except _DB_ERRORS as exc:
            logger.error(
                "Could not hand %d job(s) back (%s); their leases will expire and another "
                "worker will rescue them.",
                len(jobs),
                _describe(exc),
            )
        logging.shutdown()
        sys.stdout.flush()
        os._exit(1)

    def _finished_outcomes(self) -> dict[uuid.UUID, Outcome]:
        """Outcomes not yet written: buffered, or still queued for the main thread."""
        found = {outcome.job_id: outcome for outcome in list(self.buffer)}
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return found
            if isinstance(event, Outcome):
                found[event.job_id] = event

    # Database trouble -----------------------------------------------------------

    def _claim_from(self, queues: list[str], want: int) -> list[ClaimedJob]:
        return self.store.claim(queues, want, self.name, self.lease, limited=registry.limited())

    def _try_db(self, fn: Callable[..., T], *args: object) -> T | None:
        """Call ``fn``; on a lost database log it, back off, and return None."""
        try:
            value = fn(*args)
        except _DB_DOWN as exc:
            self._database_down(exc)
            return None
        self._database_up()
        return value

    def _database_down(self, exc: BaseException) -> None:
        self._db_failures += 1
        delay = min(5.0, 0.25 * 2**self._db_failures)
        logger.error(
            "Database unavailable (%s); retrying in %.1fs. Running jobs carry on.",
            _describe(exc),
            delay,
        )
        self.store.reset()
        if self.stopping.is_set():
            # Draining: do not spin, but a cold shutdown must not wait for us.
            self.clock.wait(self.hard_stop, delay)
        else:
            self.clock.wait(self.stopping, delay)

    def _database_up(self) -> None:
        if self._db_failures:
            logger.warning("Database reachable again.")
            self._db_failures = 0

    def _until_db(self, fn: Callable[..., T], *args: object) -> T:
        while True:
            value = self._try_db(fn, *args)
            if value is not None or not self._db_failures:
                return value  # type: ignore[return-value]


def _execute(job: ClaimedJob, window: Window) -> Outcome:
    try:
        return isolation.execute(job, window)
    except BaseException as exc:
        # Whatever escapes the executor must still end the job: otherwise it stays
        # held, the heartbeat renews its lease forever and a pool slot is lost.
        logger.exception("Task %s[%s] crashed the executor", text.printable(job.task_name), job.id)
        return executor.failure(job, exc)


def _rate_differs(job: ClaimedJob, overrides: dict[str, Rate | None]) -> bool:
    """Whether ``job`` was claimed under another rate limit than a control command set."""
    if job.task_name not in overrides:
        return False
    rate = overrides[job.task_name]
    wanted = (None, None) if rate is None else (rate.count, rate.period)
    return (job.rate_limit, job.rate_period) != wanted


def _children(pool: object) -> list[dict[str, object]]:
    """A prefork pool's children and the job each runs, for the worker's row."""
    pids = getattr(pool, "pids", None)
    if pids is None:
        return []
    running = {r.pid: str(r.job_id) for r in getattr(pool, "running", list)()}
    return [{"pid": pid, "job": running.get(pid)} for pid in pids()]


def _any_time_limit(options: Options) -> bool:
    """Whether any job may have a time limit (else the loop skips all the bookkeeping)."""
    if options.soft_time_limit is not None or options.time_limit is not None:
        return True
    tasks = (registry.get(name) for name in registry.names())
    return any(t.time_limit is not None or t.soft_time_limit is not None for t in tasks)


def _describe(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
