"""The worker loop: claim jobs, run them in a pool, write outcomes back in batches.

Threads: the main thread claims, submits and takes outcomes in; a writer thread writes
them (solo: the main thread, between jobs); a listener thread turns NOTIFY into
wake-ups; a control thread keeps leases and the worker row alive, records which
received jobs started, rescues jobs of dead workers, prunes, and enforces the shutdown
grace period. Everything the main thread waits for arrives on one queue, so it blocks
in exactly one place. The loop exits only when told to.

``Worker`` holds what its threads share (the jobs it holds, the flags, the settings it
read) and the main loop; each part has a module of its own:

- ``claims``: how many jobs to claim, when, and handing them to the pool;
- ``runner``: what a pool calls to start a job and report its outcome;
- ``outcomes``: outcomes taken in, buffered and written in batches;
- ``leases``: renewing and confirming leases, recording starts;
- ``notices``: the listener thread, revocations, paused queues;
- ``wakeups``: which notifications of new jobs are answered at once (the herd kept small);
- ``housekeeping``: the control thread (heartbeat, rescue, pruning, control commands);
- ``shutdown``: signals, warm and cold shutdown;
- ``outage``: waiting out a lost database.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import queue
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from djqueue.core import conf, registry, signals, text
from djqueue.core.limits import Rate
from djqueue.core.records import Outcome
from djqueue.db import listener, sessions
from djqueue.runtime import pools, remote
from djqueue.runtime.claims import Claimer
from djqueue.runtime.clock import Clock, SystemClock
from djqueue.runtime.held import Held
from djqueue.runtime.housekeeping import Housekeeping
from djqueue.runtime.leases import Leases
from djqueue.runtime.notices import JOBS, LATER, WAKE, Notices
from djqueue.runtime.outage import Outage, describe
from djqueue.runtime.outcomes import OutcomeWriter
from djqueue.runtime.pools.autoscale import Autoscaler
from djqueue.runtime.pools.base import Inline, Scalable
from djqueue.runtime.pools.child import Limits
from djqueue.runtime.runner import JobRunner
from djqueue.runtime.shutdown import Shutdown
from djqueue.runtime.store import DatabaseStore, Store
from djqueue.runtime.supervisor import Supervisor
from djqueue.runtime.wakeups import Wakeups

logger = logging.getLogger("djqueue.worker")


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
        self.inline = self.pool if isinstance(self.pool, Inline) else None
        multiplier = options.prefetch_multiplier or conf.integer("PREFETCH_MULTIPLIER")
        self.multiplier = max(1, multiplier)
        self.capacity = max(1, self.pool.concurrency * self.multiplier)
        # While jobs are held, claim again only once this many places are free: one
        # round trip then fetches several jobs instead of one per finished job. (With
        # nothing held a claim goes out at once, so pick-up latency is unchanged.)
        self.claim_threshold = max(1, self.capacity // 4)
        # Read once: the loop below runs per batch and settings do not change at run time.
        self.poll_interval = conf.number("POLL_INTERVAL_SECONDS")
        self.events: queue.SimpleQueue[Outcome | str] = queue.SimpleQueue()
        # Guarded by ``lock`` (read by the control, listener and pool threads):
        # jobs claimed whose outcome was not taken yet,
        self.held: dict[uuid.UUID, Held] = {}
        # and jobs whose outcome is taken but not yet written (id -> attempt).
        self.writing: dict[uuid.UUID, int] = {}
        # Held jobs revoke(terminate=True) reached before they started: not to run.
        self.revoked: set[uuid.UUID] = set()
        # Revocations already acted on (notifications and heartbeats both report them).
        self.revoking: set[uuid.UUID] = set()
        self.supervisor = Supervisor(self.pool, options.soft_time_limit, options.time_limit)
        # Whether any job may have a time limit (else the loop skips the bookkeeping).
        self.time_limited = _any_time_limit(options)
        self.lock = threading.Lock()
        # Held by the main thread around a claim; the heartbeat takes it to hand back
        # orphans, and a cold shutdown takes it for good so that no claim lands after
        # the hand-back (the claimed jobs would stay held).
        self.claim_lock = threading.Lock()
        self.jobs_done = 0
        self.maybe_more = True
        # When a retry written by this worker becomes due before the next poll.
        self.retry_due = float("inf")
        self.stopping = threading.Event()
        self.hard_stop = threading.Event()
        self.stopped = threading.Event()
        self._loop_failures = 0
        # Jobs done, by task name (control's stats), and rate limits set by control
        # commands, by task name (None: no limit), which claimed jobs must match.
        self.totals: collections.Counter[str] = collections.Counter()
        self.rate_overrides: dict[str, Rate | None] = {}
        self.outage = Outage(self.store, self.clock, self.stopping, self.hard_stop)
        self.leases = Leases(self)
        self.claimer = Claimer(self)
        self.outcomes = OutcomeWriter(self)
        self.notices = Notices(self)
        self.wakeups = Wakeups(self)
        self.shutdown = Shutdown(self)
        self.housekeeping = Housekeeping(self)
        # Control commands: acted on in the control thread; all of them at start.
        self.remote = remote.Remote(self)
        self.remote.notified()

    # Life cycle -----------------------------------------------------------------

    def run(self) -> int:
        """Serve until stopped by a signal; return the process exit code."""
        self.shutdown.install_signal_handlers()
        signals.emit(signals.worker_init, self)
        if not self.start():
            logger.info("Worker %s stopped before it could register.", self.name)
            return 0
        if self.inline is None:
            # This thread's connection serves the loop only (solo runs tasks on it).
            sessions.own_thread()
        # Both restart after any error until the worker stops; their threads are
        # djqueue's own (a statement timeout guards their connections).
        listener.run_forever(self.notices.listen, "djqueue-listener", self.stopping)
        listener.run_forever(self.housekeeping.run, "djqueue-control", self.stopped)
        if self.inline is None:
            # Outcomes are written while the main loop claims (solo: this thread runs
            # the jobs, and writes between them).
            listener.run_forever(self.outcomes.run, "djqueue-writer", self.stopped)
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
                self.guarded(self.tick)
            if not self.hard_stop.is_set():
                self.shutdown.shutting_down("Warm")
            self.shutdown.drain()
            self.outage.until_up(self.store.worker_stopped, self.name, self.jobs_done)
        finally:
            self.stopped.set()
            self.store.close()
        logger.info("Worker %s stopped after %d job(s).", self.name, self.jobs_done)
        signals.emit(signals.worker_shutdown, self)
        return 0

    def start(self) -> bool:
        """Register, read the paused queues, start the pool; False if stopped first."""
        if not self._register():
            return False
        self.leases.renewed_at = self.clock.now()
        self.notices.refresh_paused()
        self.pool.start()
        return True

    def stop(self, hard: bool = False) -> None:
        """Stop claiming; running jobs finish within the grace period (``hard``: now).
        Safe to call from a signal handler (see ``Shutdown.stop``)."""
        self.shutdown.stop(hard)

    def guarded(self, step: Callable[[], None]) -> None:
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
            logger.exception("Worker loop error (%s); carrying on in %.1fs.", describe(exc), delay)
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
            registered = self.outage.attempt(
                self.store.register_worker,
                self.name,
                socket.gethostname(),
                os.getpid(),
                self.pool.name,
                self.pool.concurrency,
                self.queues,
            )
            # register_worker returns None: success is told by the failure count.
            if registered is not None or not self.outage.failures:
                return True
        return False

    # The main loop --------------------------------------------------------------

    def tick(self) -> None:
        """One turn of the main loop: claim, submit, wait for outcomes, write them."""
        if self.wakeups.take_due():
            self.maybe_more = self.wakeups.answering = True
        claimed = self.claimer.claim()
        if claimed:
            self.claimer.submit(claimed)
        self.wakeups.announce()
        if self.inline is not None:
            self._run_inline(self.inline)
        more_now = self.maybe_more and self.claimer.may_claim()
        self.gather(0.0 if more_now else self._wait_time())
        if not self.outcomes.threaded:
            self.outcomes.flush(force=False)

    def _run_inline(self, pool: Inline) -> None:
        """Solo: run the submitted jobs here, writing outcomes as they come."""
        while not self.stopping.is_set() and pool.run_one():
            self.gather(0.0)
            self.outcomes.flush(force=False)

    def gather(self, timeout: float) -> None:
        """Take in what arrived (outcomes, wake-ups), waiting up to ``timeout`` for it."""
        try:
            event = self.events.get(timeout=timeout) if timeout > 0 else self.events.get_nowait()
        except queue.Empty:
            # Nothing arrived: poll, in case a notification was missed or a job got due.
            if timeout > 0 or self.retry_due <= self.clock.now():
                self.maybe_more = True
                self.retry_due = float("inf")
            return
        take = self.outcomes.take
        while True:
            if isinstance(event, str):
                if event != LATER:  # only cuts the wait short: its end is due sooner
                    self.maybe_more = True
                    self.wakeups.answering = self.wakeups.answering or event == JOBS
            else:
                take(event)
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return

    def _wait_time(self) -> float:
        due = None if self.outcomes.threaded else self.outcomes.due_in()
        if due is not None:
            return due
        wait = min(self.poll_interval, self.retry_due - self.clock.now())
        staggered = self.wakeups.due_in()
        return max(0.0, wait if staggered is None else min(wait, staggered))

    # Control commands (served by ``remote`` in the control thread) ----------------

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
        self.notices.refresh_paused(force=True)
        self.store.set_worker_queues(self.name, queues)
        logger.warning("Queues now %s (control command).", text.printable(",".join(queues)))
        self.events.put(WAKE)
        return True

    def timed(self) -> None:
        """A job may have a time limit from now on (control's time_limit)."""
        self.time_limited = True


def _any_time_limit(options: Options) -> bool:
    """Whether any job may have a time limit (else the loop skips all the bookkeeping)."""
    if options.soft_time_limit is not None or options.time_limit is not None:
        return True
    tasks = (registry.get(name) for name in registry.names())
    return any(t.time_limit is not None or t.soft_time_limit is not None for t in tasks)
