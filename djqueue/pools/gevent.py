"""The gevent pool: up to ``concurrency`` greenlets in one process, for I/O-bound work.

Only usable when gevent's monkey-patching was applied before Django and psycopg were
imported (see :mod:`djqueue.gevent_patch`): then blocking calls such as
``time.sleep``, sockets and psycopg's waits for the server yield to other greenlets,
and the worker's own threads are greenlets too.
"""

from __future__ import annotations

import collections
import selectors
import sys
import uuid
from typing import Any

import gevent
import gevent.pool
from django.core.management.base import CommandError
from django.db import close_old_connections, connections

from djqueue import gevent_patch
from djqueue.pools.base import Runner
from djqueue.records import ClaimedJob

HOW_TO_PATCH = (
    "Start the worker with\n"
    "    python -m djqueue.gevent_worker --settings=<settings module> [options]\n"
    "or put these two lines at the very top of manage.py, before Django is imported:\n"
    "    from djqueue import gevent_patch\n"
    "    gevent_patch.patch_if_requested()\n"
    "and start it as before with: manage.py runworker --pool gevent"
)


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
        self._running: dict[uuid.UUID, Any] = {}
        # Counted here, not by the group: a greenlet leaves the group a moment after it
        # ends, and a job submitted meanwhile would wait for a greenlet that is gone.
        self._serving = 0
        self._group: Any = gevent.pool.Group()

    def start(self) -> None:
        pass

    def submit(self, job: ClaimedJob) -> None:
        # All greenlets share one OS thread and switch only when they block: no lock is
        # needed between this check and the spawn.
        if self._serving < self.concurrency:
            self._serving += 1
            self._group.spawn(self._serve, job)
        else:
            self._waiting.append(job)

    def take_waiting(self) -> list[ClaimedJob]:
        jobs = list(self._waiting)
        self._waiting.clear()
        return jobs

    def stop(self) -> None:
        self._group.join()

    def terminate(self, job_id: uuid.UUID) -> bool:
        """Kill the greenlet running ``job_id`` at its next switch; False if not running.

        ``GreenletExit`` is raised where the task waits, and the runner sees it as the
        job's end. A task that computes without ever yielding cannot be stopped.
        """
        greenlet = self._running.get(job_id)
        if greenlet is None:
            return False
        greenlet.kill(block=False)
        return True

    def _serve(self, job: ClaimedJob) -> None:
        next_job: ClaimedJob | None = job
        try:
            while next_job is not None:
                self._run(next_job)
                next_job = self._waiting.popleft() if self._waiting else None
        finally:
            # Before anything that may switch: from now on, submit() must spawn anew.
            self._serving -= 1
            # Django's connections belong to this greenlet and would leak with it.
            connections.close_all()

    def _run(self, job: ClaimedJob) -> None:
        self._running[job.id] = gevent.getcurrent()
        try:
            self.runner(job)
        except gevent.GreenletExit:
            # Terminated outside the task itself; the caller owns the job's outcome. A
            # query may have been cut short: its connection cannot be trusted.
            connections.close_all()
        finally:
            del self._running[job.id]
            # Tasks may use the ORM: let Django retire stale connections, as threads do.
            close_old_connections()


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
