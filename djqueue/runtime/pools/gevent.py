"""The gevent pool: up to ``concurrency`` greenlets in one process, for I/O-bound work.

Only usable when gevent's monkey-patching was applied before Django and psycopg were
imported (see :mod:`djqueue.runtime.gevent_patch`): then blocking calls such as
``time.sleep``, sockets and psycopg's waits for the server yield to other greenlets,
and the worker's own threads are greenlets too.
"""

from __future__ import annotations

import collections
import logging
import selectors
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import gevent
import gevent.pool
from django.core.management.base import CommandError
from django.db import close_old_connections, connections

from djqueue.core import endings, text
from djqueue.core.records import ClaimedJob, Outcome
from djqueue.runtime import gevent_patch
from djqueue.runtime.pools import isolation
from djqueue.runtime.pools.base import Load, Runner, Running

logger = logging.getLogger("djqueue.worker")

T = TypeVar("T")

_NOT_STOPPED = object()

HOW_TO_PATCH = (
    "Start the worker from the command line (manage.py runworker --pool gevent starts "
    "itself again with the patching applied first), or with\n"
    "    python -m djqueue.gevent_worker --settings=<settings module> [options]\n"
    "or put these two lines at the very top of manage.py, before Django is imported:\n"
    "    from djqueue import gevent_patch\n"
    "    gevent_patch.patch_if_requested()\n"
    "and start it as before with: manage.py runworker --pool gevent"
)


class GreenletWindow:
    """When a task in a greenlet may be interrupted: while its own code runs.

    Greenlets switch only where they wait, so this needs no lock: an exception is
    thrown from the hub at a moment when the target greenlet is suspended, and only if
    it is suspended inside the task's code at that moment. Throwing at once (as
    ``Greenlet.kill`` does when it runs) could reach a greenlet that has meanwhile
    returned from the task and waits in the worker's bookkeeping instead.
    """

    def __init__(self) -> None:
        self._inside: Any = None  # the greenlet running the task's code, while it does

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` with the window open."""
        self._inside = gevent.getcurrent()
        try:
            return fn()
        finally:
            self._inside = None

    def deliver(self, error: type[BaseException]) -> bool:
        """Throw ``error`` into the task where it next waits; False if the window is shut."""
        target = self._inside
        if target is None:
            return False
        gevent.get_hub().loop.run_callback(self._throw, target, error)
        return True

    def _throw(self, target: Any, error: type[BaseException]) -> None:
        if self._inside is target and not target.dead:
            target.throw(error)


class NotPatchedError(CommandError):
    """``--pool gevent`` was chosen but monkey-patching did not happen early enough."""


class GeventPool:
    """Each job runs in a greenlet; jobs beyond ``concurrency`` wait in a deque.

    A greenlet that finishes a job takes the next waiting one, and ends when none is
    left: greenlets are cheap to start, and an idle pool holds no connections.
    """

    name = "gevent"

    def __init__(self, runner: Runner, concurrency: int) -> None:
        require_patching()
        self.runner = runner
        self.concurrency = max(1, concurrency)
        self._waiting: collections.deque[ClaimedJob] = collections.deque()
        # job id -> (greenlet, time.monotonic() when it started, its interrupt window)
        self._running: dict[uuid.UUID, tuple[Any, float, GreenletWindow]] = {}
        # Outcomes given to terminate(), reported instead of the killed job's own.
        self._endings: dict[uuid.UUID, Outcome | None] = {}
        self._killed = False
        # Counted here, not by the group: a greenlet leaves the group a moment after it
        # ends, and a job submitted meanwhile would wait for a greenlet that is gone.
        self._serving = 0
        # Greenlets aimed for: --autoscale moves it between its bounds.
        self._size = self.concurrency
        self._group: Any = gevent.pool.Group()

    def start(self) -> None:
        pass

    def submit(self, job: ClaimedJob) -> None:
        # All greenlets share one OS thread and switch only when they block: no lock is
        # needed between this check and the spawn.
        if self._serving < self._size:
            self._spawn(job)
        else:
            self._waiting.append(job)

    def take_waiting(self) -> list[ClaimedJob]:
        jobs = list(self._waiting)
        self._waiting.clear()
        return jobs

    def stop(self) -> None:
        self._group.join()

    def terminate(self, job_id: uuid.UUID, outcome: Outcome | None = None) -> bool:
        """Kill the greenlet running ``job_id`` at its next switch; False if not running.

        ``GreenletExit`` is raised where the task waits. The job ends with ``outcome``
        when given and the runner reports in two halves (``begin``/``report``);
        otherwise as a job whose greenlet died. A task that computes without ever
        yielding cannot be stopped.
        """
        found = self._running.get(job_id)
        if found is None:
            return False
        self._endings[job_id] = outcome
        if found[2].deliver(gevent.GreenletExit):
            return True
        del self._endings[job_id]
        return False

    def interrupt(self, job_id: uuid.UUID, error: type[BaseException]) -> bool:
        """Raise ``error`` in the greenlet running ``job_id`` where it next waits."""
        found = self._running.get(job_id)
        return found is not None and found[2].deliver(error)

    def running(self) -> list[Running]:
        """The jobs the greenlets run now, with their start time (``time.monotonic()``)."""
        return [Running(job_id, started, 0) for job_id, (_, started, _) in self._running.items()]

    def resize(self, size: int) -> None:
        """Aim for ``size`` greenlets: waiting jobs start now; surplus ones end when idle."""
        self._size = max(1, size)
        while self._waiting and self._serving < self._size:
            self._spawn(self._waiting.popleft())

    def load(self) -> Load:
        """Greenlets aimed for, jobs running, jobs waiting for a greenlet."""
        return Load(self._size, len(self._running), len(self._waiting))

    def kill(self) -> None:
        """Kill every running greenlet and report nothing (a cold shutdown hands back)."""
        self._killed = True
        self._waiting.clear()
        for greenlet, _, _ in list(self._running.values()):
            greenlet.kill(block=False)

    def _spawn(self, job: ClaimedJob) -> None:
        self._serving += 1
        self._group.spawn(self._serve, job)

    def _serve(self, job: ClaimedJob) -> None:
        next_job: ClaimedJob | None = job
        try:
            while next_job is not None:
                self._run(next_job)
                more = self._waiting and self._serving <= self._size
                next_job = self._waiting.popleft() if more else None
        finally:
            # Before anything that may switch: from now on, submit() must spawn anew.
            self._serving -= 1
            # Django's connections belong to this greenlet and would leak with it.
            connections.close_all()

    def _run(self, job: ClaimedJob) -> None:
        window = GreenletWindow()
        self._running[job.id] = (gevent.getcurrent(), time.monotonic(), window)
        try:
            self._call_runner(job, window)
        except gevent.GreenletExit:
            # Stopped outside the task itself: the caller owns the job's outcome.
            pass
        finally:
            del self._running[job.id]
            if self._endings.pop(job.id, _NOT_STOPPED) is not _NOT_STOPPED:
                # A query may have been cut short: the connection cannot be trusted.
                connections.close_all()
            # Tasks may use the ORM: let Django retire stale connections, as threads do.
            close_old_connections()

    def _call_runner(self, job: ClaimedJob, window: GreenletWindow) -> None:
        begin = getattr(self.runner, "begin", None)
        report = getattr(self.runner, "report", None)
        if begin is None or report is None:
            self.runner(job, window)
        elif begin(job):
            outcome = self._execute(job, window)
            if outcome is not None:
                report(outcome)

    def _execute(self, job: ClaimedJob, window: GreenletWindow) -> Outcome | None:
        """The job's outcome; when it was stopped, the one asked for (None: report none)."""
        try:
            return isolation.execute(job, window)
        except gevent.GreenletExit as exc:
            if self._killed:
                return None
            given = self._endings.get(job.id)
            return given if given is not None else endings.failure(job, exc)
        except BaseException as exc:
            # Whatever escapes the executor must still end the job, or it stays held.
            logger.exception(
                "Task %s[%s] crashed the executor", text.printable(job.task_name), job.id
            )
            return endings.failure(job, exc)


def require_patching() -> None:
    """Raise :class:`NotPatchedError` unless patching came before psycopg was imported."""
    if not gevent_patch.is_patched():
        raise NotPatchedError(
            "--pool gevent needs gevent's monkey-patching, applied before Django and "
            "psycopg are imported, and it was not applied.\n" + HOW_TO_PATCH
        )
    if _psycopg_blocks():
        raise NotPatchedError(
            "--pool gevent: gevent's monkey-patching was applied after psycopg was "
            "imported, so database calls would block every greenlet. Patch first.\n" + HOW_TO_PATCH
        )


def _psycopg_blocks() -> bool:
    """Whether psycopg, imported before patching, kept waits that would block the hub.

    psycopg chooses when first imported: its C wait function (which gevent cannot make
    cooperative) unless ``select`` is patched, and the selector it connects with.
    """
    waiting = sys.modules.get("psycopg.waiting")
    if waiting is None:
        return False
    if getattr(waiting, "wait_c", None) is waiting.wait:
        return True
    return getattr(waiting, "DefaultSelector", None) is not selectors.DefaultSelector
