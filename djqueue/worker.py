"""The worker loop: claim jobs, run them in a pool, write outcomes back in batches.

Threads: the main thread claims, submits and finishes; a listener thread turns NOTIFY
into wake-ups; a control thread keeps leases and the worker row alive, rescues jobs of
dead workers, prunes, and enforces the shutdown grace period. Everything the main
thread waits for arrives on one queue, so it blocks in exactly one place.
"""

from __future__ import annotations

import contextlib
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

from djqueue import broker, conf, executor, pools, registry, signals
from djqueue.listener import JOBS_CHANNEL, PAUSE_CHANNEL, REVOKE_CHANNEL, Listener
from djqueue.pools.autoscale import Autoscaler
from djqueue.pools.base import Scalable
from djqueue.pools.child import Limits
from djqueue.records import ClaimedJob, Outcome
from djqueue.supervisor import Supervisor

logger = logging.getLogger("djqueue.worker")

T = TypeVar("T")
WAKE = "wake"
_DB_DOWN = (OperationalError, InterfaceError)


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
    """A job this worker claimed, and whether a pool has started it."""

    job: ClaimedJob
    started: bool = False


class JobRunner:
    """How a pool runs a job for the worker: all at once in-process (a call), or in two
    halves around another process (``begin``, then ``report``)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def __call__(self, job: ClaimedJob) -> None:
        """Run ``job`` here and report its outcome."""
        if self.begin(job):
            self.report(_execute(job))

    def begin(self, job: ClaimedJob) -> bool:
        """Mark ``job`` started; False (and a warning) if it was rescued from this worker."""
        return self.worker.begin(job)

    def report(self, outcome: Outcome) -> None:
        """Queue ``outcome`` for the main thread to write (any thread may call this)."""
        self.worker.events.put(outcome)


class Worker:
    """One worker process. ``run()`` returns when it has shut down."""

    def __init__(self, options: Options) -> None:
        self.options = options
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
        multiplier = options.prefetch_multiplier or int(conf.get("PREFETCH_MULTIPLIER"))
        self.capacity = max(1, self.pool.concurrency * max(1, multiplier))
        # While jobs are held, claim again only once this many places are free: one
        # round trip then fetches several jobs instead of one per finished job. (With
        # nothing held a claim goes out at once, so pick-up latency is unchanged.)
        self.claim_threshold = max(1, self.capacity // 4)
        self.lease = float(conf.get("LEASE_SECONDS"))
        # Read once: the loop below runs per batch and settings do not change at run time.
        self.claim_batch = int(conf.get("CLAIM_BATCH_SIZE"))
        self.finish_batch = int(conf.get("FINISH_BATCH_SIZE"))
        self.flush_after = float(conf.get("FINISH_FLUSH_MS")) / 1000
        self.poll_interval = float(conf.get("POLL_INTERVAL_SECONDS"))
        self.grace = float(conf.get("SHUTDOWN_GRACE_SECONDS"))
        self.events: queue.SimpleQueue[Outcome | str] = queue.SimpleQueue()
        # Guarded by _lock (read by the control and listener threads).
        self.held: dict[uuid.UUID, Held] = {}
        # Held jobs another worker rescued while this one was unresponsive: not to run.
        self.lost: set[uuid.UUID] = set()
        # Held jobs revoke(terminate=True) reached before they started: not to run.
        self.revoked: set[uuid.UUID] = set()
        # Revocations already acted on (notifications and heartbeats both report them).
        self._revoking: set[uuid.UUID] = set()
        self.supervisor = Supervisor(self.pool, options.soft_time_limit, options.time_limit)
        self._timed = _any_time_limit(options)
        self._lock = threading.Lock()
        # Held by the main thread around a claim; a cold shutdown takes it for good so
        # that no claim lands after the hand-back (the claimed jobs would stay STARTED).
        self._claim_lock = threading.Lock()
        self.buffer: list[Outcome] = []
        self._buffered_at = 0.0
        self.jobs_done = 0
        self.maybe_more = True
        # When a retry written by this worker becomes due before the next poll.
        self.retry_due = float("inf")
        self.stopping = threading.Event()
        self.hard_stop = threading.Event()
        self.stopped = threading.Event()
        self._stop_requested_at = 0.0
        self._db_failures = 0

    # Life cycle -----------------------------------------------------------------

    def run(self) -> int:
        """Serve until stopped by a signal; return the process exit code."""
        self._install_signal_handlers()
        if not self._register():
            logger.info("Worker %s stopped before it could register.", self.name)
            return 0
        self._refresh_paused()
        self.pool.start()
        threads = [
            threading.Thread(target=self._listen, name="djqueue-listener", daemon=True),
            threading.Thread(target=self._control, name="djqueue-control", daemon=True),
        ]
        for thread in threads:
            thread.start()
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
                self._tick()
            self._drain()
            self._until_db(broker.worker_stopped, self.name, self.jobs_done)
        finally:
            self.stopped.set()
        logger.info("Worker %s stopped after %d job(s).", self.name, self.jobs_done)
        signals.emit(signals.worker_shutdown, self)
        return 0

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
                broker.register_worker,
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
        more_now = self.maybe_more and self._may_claim()
        self._gather(0.0 if more_now else self._wait_time())
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
            jobs = self._try_db(broker.claim, queues, want, self.name, self.lease)
            if jobs is None:
                return []
            with self._lock:
                for job in jobs:
                    self.held[job.id] = Held(job)
            if self._timed:
                for job in jobs:
                    self.supervisor.watch(job)
        self.maybe_more = len(jobs) == want
        return jobs

    def _submit(self, jobs: list[ClaimedJob]) -> None:
        for index, job in enumerate(jobs):
            if self.stopping.is_set():
                self._release(jobs[index:])
                return
            self.pool.submit(job)

    def begin(self, job: ClaimedJob) -> bool:
        """Mark ``job`` started; False if it was rescued meanwhile and must not run here."""
        with self._lock:
            held = self.held.get(job.id)
            if held is not None:
                held.started = True
            lost = job.id in self.lost
            self.lost.discard(job.id)
            revoked = job.id in self.revoked
            self.revoked.discard(job.id)
        if revoked:
            logger.warning("Task %s[%s] revoked before it started.", job.task_name, job.id)
            self.events.put(executor.revoked(job, "revoked before it started"))
            return False
        if lost:
            logger.warning(
                "Not running job %s: it was rescued while this worker was unresponsive.",
                job.id,
            )
        return not lost

    def _gather(self, timeout: float) -> None:
        try:
            event = self.events.get(timeout=timeout) if timeout > 0 else self.events.get_nowait()
        except queue.Empty:
            # Nothing arrived: poll, in case a notification was missed or a job got due.
            if timeout > 0 or self.retry_due <= time.monotonic():
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
            due = time.monotonic() + event.retry_in + 0.05
            self.retry_due = min(self.retry_due, due)
        if not self.buffer:
            self._buffered_at = time.monotonic()
        self.buffer.append(event)
        with self._lock:
            self.held.pop(event.job_id, None)
            self._revoking.discard(event.job_id)
        if self._timed:
            self.supervisor.done(event.job_id)
        self.jobs_done += 1

    def _wait_time(self) -> float:
        if self.buffer:
            if not self.held:
                return 0.0
            return max(0.0005, self._buffered_at + self.flush_after - time.monotonic())
        return max(0.0, min(self.poll_interval, self.retry_due - time.monotonic()))

    def _flush(self, force: bool) -> None:
        if not self.buffer:
            return
        due = (
            force
            or not self.held
            or len(self.buffer) >= self.finish_batch
            or time.monotonic() - self._buffered_at >= self.flush_after
        )
        if not due:
            return
        batch, self.buffer = self.buffer, []
        if self._try_db(broker.finish, batch) is None:
            # Keep them: written once the database is back (fencing makes it safe).
            self.buffer = batch + self.buffer

    def _drain(self) -> None:
        """After a warm stop: hand back what never started, wait for the rest."""
        self._release(self.pool.take_waiting())
        while self.held:
            self._gather(0.05)
            self._flush(force=False)
        self.pool.stop()
        while self.buffer:
            self._flush(force=True)
            if self.buffer:
                time.sleep(0.5)

    def _release(self, jobs: Sequence[ClaimedJob]) -> None:
        if not jobs:
            return
        with self._lock:
            for job in jobs:
                self.held.pop(job.id, None)
        self._until_db(broker.release, self.name, [(j.id, j.attempt, False) for j in jobs])

    # Other threads --------------------------------------------------------------

    def _listen(self) -> None:
        listener = Listener([JOBS_CHANNEL, REVOKE_CHANNEL, PAUSE_CHANNEL])
        mine = set(self.queues)
        try:
            while not self.stopping.is_set():
                wake = False
                for channel, payload in listener.wait_channels(1.0):
                    if channel == REVOKE_CHANNEL:
                        self._revoke_requested(uuid.UUID(payload))
                    elif channel == PAUSE_CHANNEL and payload in mine:
                        # A resumed queue may have jobs waiting: look at once.
                        wake = self._refresh_paused() or wake
                    elif not channel or payload in mine:
                        wake = True
                if wake:
                    self.events.put(WAKE)
        finally:
            listener.close()

    def _refresh_paused(self) -> bool:
        """Read which queues are paused; return whether this worker's set changed."""
        try:
            paused = broker.paused_queues()
        except DatabaseError as exc:
            logger.warning("Could not read paused queues (%s).", _describe(exc))
            _reset_connection()
            return False
        active = [queue for queue in self.queues if queue not in paused]
        if active == self.active_queues:
            return False
        stopped = sorted(set(self.queues) - set(active))
        logger.warning("Paused queues: %s.", ", ".join(stopped) if stopped else "none")
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
        self.supervisor.revoke_running(job)

    def _control(self) -> None:
        every = float(conf.get("HEARTBEAT_SECONDS"))
        next_beat = 0.0
        next_prune = time.monotonic() + float(conf.get("PRUNE_INTERVAL_SECONDS"))
        announced = False
        try:
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
                if self._timed:
                    self.supervisor.tick(now)
                if now >= next_beat:
                    next_beat = now + every
                    self._beat()
                if now >= next_prune:
                    next_prune = now + float(conf.get("PRUNE_INTERVAL_SECONDS"))
                    self._prune()
        finally:
            connections.close_all()

    def _announce_warm_shutdown(self) -> None:
        with self._lock:
            running = sum(1 for held in self.held.values() if held.started)
        logger.warning(
            "Warm shutdown: no new jobs; waiting up to %gs for %d running job(s). "
            "Signal again to stop at once.",
            self.grace,
            running,
        )

    def _beat(self) -> None:
        try:
            with self._lock:
                held = set(self.held)
            renewed = broker.extend_leases(self.name, self.lease)
            self._forget_lost(held - renewed.keys())
            # Revocations whose notification this worker missed (it was reconnecting).
            for job_id in [job_id for job_id, asked in renewed.items() if asked]:
                self._revoke_requested(job_id)
            broker.worker_heartbeat(self.name, self.jobs_done, _children(self.pool))
            broker.rescue()
            self._refresh_paused()
        except DatabaseError as exc:
            logger.warning("Heartbeat failed (%s); will try again.", _describe(exc))
            _reset_connection()

    def _forget_lost(self, unrenewed: set[uuid.UUID]) -> None:
        """Drop held jobs whose lease could not be renewed: they are not ours any more."""
        with self._lock:
            # Jobs that finished meanwhile were not renewed either; they are gone already.
            lost = {job_id for job_id in unrenewed if job_id in self.held}
            for job_id in lost:
                self.held.pop(job_id)
            self.lost |= lost
        if lost:
            logger.warning(
                "%d job(s) held by this worker were rescued after their lease expired "
                "(was the worker frozen?); those not started yet will not run here.",
                len(lost),
            )

    def _prune(self) -> None:
        retention = conf.get("RESULT_RETENTION_SECONDS")
        if retention is None:
            return
        try:
            count = broker.prune(float(retention))
        except DatabaseError as exc:
            logger.warning("Pruning failed (%s); will try again later.", _describe(exc))
            _reset_connection()
            return
        if count:
            logger.info("Pruned %d finished job(s).", count)

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
                broker.finish(list(done.values()))
            broker.release(self.name, jobs)
            broker.worker_stopped(self.name, self.jobs_done)
        except DatabaseError as exc:
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

    def _try_db(self, fn: Callable[..., T], *args: object) -> T | None:
        """Call ``fn``; on a lost database log it, back off, and return None."""
        try:
            value = fn(*args)
        except _DB_DOWN as exc:
            self._db_failures += 1
            delay = min(5.0, 0.25 * 2**self._db_failures)
            logger.error(
                "Database unavailable (%s); retrying in %.1fs. Running jobs carry on.",
                _describe(exc),
                delay,
            )
            _reset_connection()
            if self.stopping.is_set():
                # Draining: do not spin, but a cold shutdown must not wait for us.
                self.hard_stop.wait(delay)
            else:
                self.stopping.wait(delay)
            return None
        if self._db_failures:
            logger.warning("Database reachable again.")
            self._db_failures = 0
        return value

    def _until_db(self, fn: Callable[..., T], *args: object) -> T:
        while True:
            value = self._try_db(fn, *args)
            if value is not None or not self._db_failures:
                return value  # type: ignore[return-value]


def _execute(job: ClaimedJob) -> Outcome:
    try:
        return executor.execute(job)
    except BaseException as exc:
        # Whatever escapes the executor must still end the job: otherwise it stays
        # held, the heartbeat renews its lease forever and a pool slot is lost.
        logger.exception("Task %s[%s] crashed the executor", job.task_name, job.id)
        return executor.failure(job, exc)


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


def _reset_connection() -> None:
    with contextlib.suppress(DatabaseError):
        connections[conf.get("DATABASE")].close()


def _describe(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
