"""The prefork pool: child processes, one job at a time each, for CPU-bound work.

A supervisor thread forks every child (so children start with none of the worker's
database connections: a new thread has none), reads their outcomes, and replaces
children that retire or die. The worker's main thread hands jobs to idle children.

Parent and child talk over two pipes per child, one JSON line a message (see
:mod:`djqueue.runtime.pools.messages`). A child that dies mid-job leaves its job to the rule
of :func:`~djqueue.runtime.pools.lost.lost_outcome`: ``RETRY`` soon while the task has
retries left, else ``FAILURE`` with :class:`~djqueue.core.exceptions.WorkerLostError`.

Why it is longer than 400 lines: it is one class, the parent's side,
whose state (the children, the jobs waiting for one, the outcomes read from them, the
jobs being stopped) is guarded by one lock that the worker's threads and the supervisor
thread share, often changing several parts at once. Split in two, every method of
either half would reach into the other's locked state. What does not need that lock
lives elsewhere: the child's side in ``child``, the protocol in ``messages``, what a
death means for its job in ``lost``.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import mmap
import os
import selectors
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field

from djqueue.core import text
from djqueue.core.exceptions import SoftTimeLimitExceeded
from djqueue.core.records import ClaimedJob, Outcome
from djqueue.runtime.pools import child as child_process
from djqueue.runtime.pools import messages
from djqueue.runtime.pools.base import Host, Load, Runner, Running
from djqueue.runtime.pools.lost import describe_exit, lost_outcome

logger = logging.getLogger("djqueue.worker")

# Seconds the supervisor sleeps at most between looks for dead children.
_TICK = 0.2
# A child that dies before running any job is replaced only after this many seconds, so
# that a broken environment does not turn into a fork loop.
_RESPAWN_PAUSE = 1.0
# Seconds an outcome may wait for others to be handed to the worker with it, while other
# jobs are in flight. Each hand-over wakes the worker's main thread, which then claims
# as many jobs as slots came free: one outcome at a time means one claim per job.
_REPORT_WINDOW = 0.002
# Outcomes handed over at once at most, whatever the window.
_REPORT_BATCH = 64
# Seconds a child sent another signal than SIGKILL by revoke(terminate=True, signal=...)
# may still run its job (handling the signal, or in a C call that defers it) before it
# is killed with SIGKILL: a revoked job always ends.
TERMINATE_GRACE_SECONDS = 5.0


@dataclass(eq=False)
class _Child:
    """The parent's view of one child process."""

    pid: int
    index: int
    jobs_fd: int  # write end: jobs for the child
    outcomes_fd: int  # read end: outcomes from the child
    born: float
    # Shared with the child: the signal revoke(terminate=True, signal=...) asks for.
    slot: mmap.mmap | None = None
    job: ClaimedJob | None = None
    started: float = 0.0
    jobs_done: int = 0
    # Takes no new job: retiring, surplus after a shrink, or the pool is stopping.
    leaving: bool = False
    # What its job ends with if the child dies (set by terminate()).
    fate: Outcome | None = None
    # When it is killed if it still runs its job (set by terminate_with(); 0: never).
    kill_at: float = 0.0
    buffer: bytearray = field(default_factory=bytearray)
    at_eof: bool = False


class PreforkPool:
    """``concurrency`` child processes, forked after Django is set up and supervised."""

    name = "prefork"

    def __init__(
        self, runner: Runner, concurrency: int, limits: child_process.Limits | None = None
    ) -> None:
        host: object = runner
        if not isinstance(host, Host):
            raise TypeError("the prefork pool needs a runner with begin() and report()")
        self.host: Host = host
        self.concurrency = max(1, concurrency)
        self.limits = limits or child_process.Limits()
        self._target = self.concurrency
        self._lock = threading.Lock()
        self._children: dict[int, _Child] = {}
        self._waiting: collections.deque[ClaimedJob] = collections.deque()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        self._closing = False
        self._killed = False
        self._spawned = 0
        self._respawn_at = 0.0
        self._ready = threading.Event()
        # Outcomes read from children, not yet handed to the worker (guarded by _lock).
        self._reports: list[Outcome] = []
        self._reports_due = 0.0
        self._thread = threading.Thread(target=self._supervise, name="djqueue-prefork", daemon=True)

    # The Pool interface ----------------------------------------------------------

    def start(self) -> None:
        """Fork the children (from the supervisor thread) and wait until they exist."""
        os.set_blocking(self._wake_r, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread.start()
        self._ready.wait()

    def submit(self, job: ClaimedJob) -> None:
        """Queue ``job`` for the next idle child."""
        with self._lock:
            self._waiting.append(job)
            self._dispatch()

    def take_waiting(self) -> list[ClaimedJob]:
        """Remove and return the jobs no child has taken yet."""
        with self._lock:
            jobs = list(self._waiting)
            self._waiting.clear()
        return jobs

    def stop(self) -> None:
        """Let every child finish its job and exit; wait for them."""
        with self._lock:
            self._closing = True
            for each in self._children.values():
                each.leaving = True
            self._close_idle()
        self._wake()
        if self._thread.is_alive():
            self._thread.join()

    # Extras: terminate, running, kill, resize, load ---------------------------------

    def terminate(self, job_id: uuid.UUID, outcome: Outcome | None = None) -> bool:
        """Kill the child running ``job_id`` (it is replaced); the job ends with ``outcome``.

        Without ``outcome`` the job ends as any job whose child died (:func:`lost_outcome`).
        """
        with self._lock:
            found = next((c for c in self._children.values() if _runs(c, job_id)), None)
            if found is None:
                return False
            found.fate = outcome
            found.leaving = True
            _signal(found.pid, signal.SIGKILL)
        logger.warning("Killed child process %d to stop job %s.", found.pid, job_id)
        return True

    def terminate_with(self, job_id: uuid.UUID, outcome: Outcome, signum: int) -> bool:
        """Send ``signum`` to the child running ``job_id`` (it is replaced afterwards).

        The job ends with ``outcome`` if the child dies of it, else with what the child
        reports (a task may handle the signal, as in Celery: SIGUSR1 raises
        ``SoftTimeLimitExceeded`` in it). A child still running the job
        ``TERMINATE_GRACE_SECONDS`` later is killed with SIGKILL.
        """
        with self._lock:
            found = next((c for c in self._children.values() if _runs(c, job_id)), None)
            if found is None or found.slot is None:
                return False
            found.fate = outcome
            found.leaving = True
            found.kill_at = time.monotonic() + TERMINATE_GRACE_SECONDS
            if signum == child_process.SOFT_LIMIT_SIGNAL:
                _signal(found.pid, signum)
            else:
                child_process.ask(found.slot, signum)
                _signal(found.pid, child_process.DELIVER_SIGNAL)
        logger.warning(
            "Sent signal %d to child process %d to stop job %s (killed if it still runs it "
            "in %gs).",
            signum,
            found.pid,
            job_id,
            TERMINATE_GRACE_SECONDS,
        )
        return True

    def interrupt(self, job_id: uuid.UUID, error: type[BaseException]) -> bool:
        """Raise ``SoftTimeLimitExceeded`` in the child running ``job_id`` (by SIGUSR1).

        Only that error can be sent to a child; other stops kill it (:meth:`terminate`).
        """
        if error is not SoftTimeLimitExceeded:
            return False
        with self._lock:
            found = next((c for c in self._children.values() if _runs(c, job_id)), None)
            if found is None:
                return False
            _signal(found.pid, child_process.SOFT_LIMIT_SIGNAL)
        return True

    def running(self) -> list[Running]:
        """The job of every busy child, with its start time (``time.monotonic()``)."""
        with self._lock:
            return [
                Running(c.job.id, c.started, c.pid)
                for c in self._children.values()
                if c.job is not None
            ]

    def kill(self) -> None:
        """SIGKILL every child at once and report nothing (a cold shutdown hands back)."""
        with self._lock:
            self._killed = self._closing = True
            for each in self._children.values():
                _signal(each.pid, signal.SIGKILL)
            # Jobs that finished are recorded, not handed back to run again.
            held, self._reports = self._reports, []
        for outcome in held:
            self.host.report(outcome)
        self._wake()

    def resize(self, size: int) -> None:
        """Aim for ``size`` children: fork more now; surplus ones leave once idle."""
        with self._lock:
            self._target = max(1, size)
            self._close_idle()
        self._wake()

    def load(self) -> Load:
        """Children aimed for, children busy, jobs waiting for a child."""
        with self._lock:
            busy = sum(1 for c in self._children.values() if c.job is not None)
            return Load(self._target, busy, len(self._waiting))

    def pids(self) -> list[int]:
        """Process ids of the children alive now."""
        with self._lock:
            return sorted(self._children)

    # Handing out jobs (callers hold the lock) ----------------------------------------

    def _dispatch(self) -> None:
        for each in list(self._children.values()):
            if not self._waiting:
                return
            if each.job is None and not each.leaving:
                self._give(each)

    def _give(self, to: _Child) -> None:
        while self._waiting:
            job = self._waiting.popleft()
            if not self.host.begin(job):
                continue
            to.job, to.started = job, time.monotonic()
            try:
                _write_all(to.jobs_fd, messages.job_line(job))
            except OSError:
                # The child died meanwhile: another one takes the job.
                self._waiting.appendleft(job)
                to.job, to.leaving = None, True
            return

    def _close_idle(self) -> None:
        """Send end of file to leaving children without a job; mark the surplus leaving."""
        staying = [c for c in self._children.values() if not c.leaving]
        surplus = len(staying) - self._target
        for each in sorted(staying, key=lambda c: c.job is not None)[: max(0, surplus)]:
            each.leaving = True
        for each in self._children.values():
            if each.leaving and each.job is None and each.jobs_fd >= 0:
                os.close(each.jobs_fd)
                each.jobs_fd = -1

    # The supervisor thread ------------------------------------------------------------

    def _supervise(self) -> None:
        try:
            while True:
                self._spawn_missing()
                self._ready.set()
                for key, _ in self._selector.select(self._select_timeout()):
                    if key.data is None:
                        _drain(self._wake_r)
                    else:
                        self._read(key.data)
                self._reap()
                self._kill_overdue()
                self._hand_over(force=False)
                with self._lock:
                    if self._closing and not self._children:
                        break
            self._hand_over(force=True)
        except Exception:
            logger.exception("The prefork supervisor failed; the worker cannot go on.")
            raise
        finally:
            self._ready.set()

    def _spawn_missing(self) -> None:
        with self._lock:
            if self._closing or time.monotonic() < self._respawn_at:
                return
            missing = self._target - sum(1 for c in self._children.values() if not c.leaving)
        for _ in range(missing):
            self._spawn()

    def _kill_overdue(self) -> None:
        """SIGKILL children still running the job a signal was sent to stop, past the grace."""
        now = time.monotonic()
        with self._lock:
            for each in self._children.values():
                if each.kill_at and now >= each.kill_at and each.job is not None:
                    each.kill_at = 0.0
                    _signal(each.pid, signal.SIGKILL)
                    logger.warning(
                        "Child process %d still ran job %s %gs after its signal: killed.",
                        each.pid,
                        each.job.id,
                        TERMINATE_GRACE_SECONDS,
                    )

    def _spawn(self) -> None:
        jobs_r, jobs_w = os.pipe()
        outcomes_r, outcomes_w = os.pipe()
        slot = mmap.mmap(-1, child_process.SLOT_SIZE)
        with self._lock:
            inherited = [self._wake_r, self._wake_w, self._selector_fd(), jobs_w, outcomes_r]
            for each in self._children.values():
                inherited += [fd for fd in (each.jobs_fd, each.outcomes_fd) if fd >= 0]
            self._spawned += 1
            index = self._spawned
        pid = child_process.fork()
        if pid == 0:
            child_process.serve(jobs_r, outcomes_w, self.limits, index, inherited, slot)
        os.close(jobs_r)
        os.close(outcomes_w)
        os.set_blocking(outcomes_r, False)
        born = _Child(pid, index, jobs_w, outcomes_r, time.monotonic(), slot)
        self._selector.register(outcomes_r, selectors.EVENT_READ, born)
        with self._lock:
            self._children[pid] = born
            logger.info(
                "Child process %d started; %d child process(es) now.", pid, len(self._children)
            )
            self._dispatch()

    def _selector_fd(self) -> int:
        fileno = getattr(self._selector, "fileno", None)
        return int(fileno()) if fileno is not None else -1

    def _read(self, source: _Child) -> bool:
        """Take what ``source`` wrote; False when there was nothing to read now."""
        try:
            data = os.read(source.outcomes_fd, 65536)
        except BlockingIOError:
            return False
        if not data:
            self._selector.unregister(source.outcomes_fd)
            source.at_eof = True
            return False
        source.buffer += data
        while (end := source.buffer.find(b"\n")) >= 0:
            line = bytes(source.buffer[:end])
            del source.buffer[: end + 1]
            self._finished(source, line)
        return True

    def _finished(self, source: _Child, line: bytes) -> None:
        outcome, retire = messages.read_outcome(line)
        with self._lock:
            source.job = None
            source.jobs_done += 1
            if retire:
                source.leaving = True
            if self._killed:
                return
            if not self._reports:
                self._reports_due = time.monotonic() + _REPORT_WINDOW
            self._reports.append(outcome)
            self._close_idle()
            self._dispatch()
        if retire:
            logger.info("Child process %d retires: %s.", source.pid, retire)

    def _select_timeout(self) -> float:
        with self._lock:
            if not self._reports:
                return _TICK
            return max(0.0, min(_TICK, self._reports_due - time.monotonic()))

    def _hand_over(self, force: bool) -> None:
        """Hand the outcomes read so far to the worker, when they have waited long enough.

        At once when no other job is in flight: nothing would join them, and an idle
        worker writes an outcome as soon as it has it.
        """
        with self._lock:
            if not self._reports:
                return
            due = (
                force
                or len(self._reports) >= _REPORT_BATCH
                or time.monotonic() >= self._reports_due
                or not (self._waiting or any(c.job is not None for c in self._children.values()))
            )
            if not due:
                return
            batch, self._reports = self._reports, []
        for outcome in batch:
            self.host.report(outcome)

    def _reap(self) -> None:
        for each in list(self._children.values()):
            try:
                pid, status = os.waitpid(each.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = each.pid, 0
            if pid:
                self._gone(each, status)

    def _gone(self, dead: _Child, status: int) -> None:
        while not dead.at_eof and self._read(dead):
            pass  # what it wrote before dying still counts
        if not dead.at_eof:
            self._selector.unregister(dead.outcomes_fd)
        os.close(dead.outcomes_fd)
        with self._lock:
            del self._children[dead.pid]
            if dead.slot is not None:
                dead.slot.close()  # under the lock: terminate_with() writes to it
            if dead.jobs_fd >= 0:
                os.close(dead.jobs_fd)
            job, fate, quiet = dead.job, dead.fate, self._killed
            if job is None and not dead.leaving and dead.jobs_done == 0:
                self._respawn_at = time.monotonic() + _RESPAWN_PAUSE
        how = describe_exit(status)
        if quiet:
            return
        if job is not None:
            ended = fate or lost_outcome(job, how)
            logger.error(
                "Child process %d %s while running %s[%s]; the job ends %s. Replacing it.",
                dead.pid,
                how,
                text.printable(job.task_name),
                job.id,
                ended.state,
            )
            self.host.report(ended)
        elif not dead.leaving:
            logger.error("Child process %d %s; replacing it.", dead.pid, how)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")


def _runs(candidate: _Child, job_id: uuid.UUID) -> bool:
    return candidate.job is not None and candidate.job.id == job_id


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 4096):
            pass


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
