"""Stopping running jobs: soft and hard time limits, and ``revoke(terminate=True)``.

What can be stopped depends on the pool. A prefork child is killed and replaced; a
gevent greenlet is killed where it waits. A thread (threads, solo) cannot be killed:
an exception is raised inside it instead, which takes effect at the task's next Python
bytecode, so a task blocked in a C call (``time.sleep``, a socket read) runs on until
that call returns. Soft limits raise ``SoftTimeLimitExceeded`` in the task everywhere.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from djqueue.core import endings, options, registry, reporting, signums
from djqueue.core.exceptions import (
    NotRegistered,
    SoftTimeLimitExceeded,
    TaskRevokedError,
    TimeLimitExceeded,
)
from djqueue.core.records import ClaimedJob, Outcome
from djqueue.runtime.pools.base import Interrupting, Signalling, Terminating

logger = logging.getLogger("djqueue.worker")


@dataclass
class _Watched:
    job: ClaimedJob
    soft: float | None
    hard: float | None
    soft_sent: bool = False
    hard_sent: bool = False


class Supervisor:
    """Watches running jobs with time limits and stops jobs on request."""

    def __init__(self, pool: Any, soft_default: float | None, hard_default: float | None):
        self.pool = pool
        self.soft_default = soft_default
        self.hard_default = hard_default
        self._watched: dict[uuid.UUID, _Watched] = {}
        self._lock = threading.Lock()
        # Limits set by control.time_limit, by task name: (soft, hard); they win over
        # the task's own options and the worker's defaults.
        self.overrides: dict[str, tuple[float | None, float | None]] = {}

    # Time limits --------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """Whether any job is watched now."""
        return bool(self._watched)

    def watch(self, job: ClaimedJob) -> None:
        """Start watching ``job`` if it has a time limit (its call's, its task's, or the
        worker's)."""
        soft, hard = self.limits(job.task_name)
        if job.workflow is not None:
            carried = options.read(job.workflow)
            soft = carried.soft_time_limit if carried.soft_time_limit is not None else soft
            hard = carried.time_limit if carried.time_limit is not None else hard
        if soft is None and hard is None:
            return
        with self._lock:
            self._watched[job.id] = _Watched(job, soft, hard)

    def done(self, job_id: uuid.UUID) -> None:
        """Stop watching ``job_id`` (it finished, or was handed back)."""
        if self._watched:
            with self._lock:
                self._watched.pop(job_id, None)

    def limits(self, task_name: str) -> tuple[float | None, float | None]:
        """``(soft, hard)`` seconds for a task: set by a control command, else its own
        options, else the worker's."""
        override = self.overrides.get(task_name)
        if override is not None:
            return override
        try:
            task = registry.get(task_name)
        except NotRegistered:
            return None, None
        soft = task.soft_time_limit if task.soft_time_limit is not None else self.soft_default
        hard = task.time_limit if task.time_limit is not None else self.hard_default
        return soft, hard

    def override(self, task_name: str, soft: float | None, hard: float | None) -> None:
        """Use these limits for jobs of ``task_name`` from now on (running ones keep theirs)."""
        self.overrides[task_name] = (soft, hard)

    def tick(self, now: float | None = None) -> None:
        """Enforce the limits of the jobs running now (called a few times a second)."""
        if not self._watched:
            return
        now = time.monotonic() if now is None else now
        for running in _running(self.pool):
            with self._lock:
                watched = self._watched.get(running.job_id)
            if watched is None:
                continue
            elapsed = now - running.started
            if watched.hard is not None and elapsed >= watched.hard and not watched.hard_sent:
                watched.hard_sent = True
                self._stop_hard(watched)
            elif watched.soft is not None and elapsed >= watched.soft and not watched.soft_sent:
                watched.soft_sent = True
                self._stop_soft(watched)

    def _stop_soft(self, watched: _Watched) -> None:
        job = watched.job
        logger.warning(
            "Task %s[%s] passed its soft time limit of %gs: raising SoftTimeLimitExceeded.",
            job.task_name,
            job.id,
            watched.soft,
        )
        self.interrupt(job.id, SoftTimeLimitExceeded)

    def _stop_hard(self, watched: _Watched) -> None:
        job = watched.job
        error = TimeLimitExceeded(f"the task ran past its time limit of {watched.hard:g}s")
        ended = endings.failure(job, error)
        if self.terminate(job.id, ended):
            reporting.announce_stopped(job, ended, self._kill_signal())
            logger.error(
                "Task %s[%s] passed its time limit of %gs and was stopped.",
                job.task_name,
                job.id,
                watched.hard,
            )
        elif self.interrupt(job.id, TimeLimitExceeded):
            logger.error(
                "Task %s[%s] passed its time limit of %gs; the %s pool cannot kill it, so "
                "TimeLimitExceeded was raised inside it (a call blocked in C finishes first).",
                job.task_name,
                job.id,
                watched.hard,
                getattr(self.pool, "name", "?"),
            )

    # Stopping -----------------------------------------------------------------------

    def terminate(self, job_id: uuid.UUID, outcome: Outcome) -> bool:
        """Kill the job's process or greenlet; the job ends with ``outcome``."""
        return isinstance(self.pool, Terminating) and self.pool.terminate(job_id, outcome)

    def _kill_signal(self) -> int | None:
        """The signal a terminated job's process got (a killed greenlet got none)."""
        return int(signal.SIGKILL) if getattr(self.pool, "name", "") == "prefork" else None

    def interrupt(self, job_id: uuid.UUID, error: type[BaseException]) -> bool:
        """Raise ``error`` inside the running job."""
        return isinstance(self.pool, Interrupting) and self.pool.interrupt(job_id, error)

    def revoke_running(self, job: ClaimedJob, signum: int | None = None) -> None:
        """Stop a running job that ``revoke(terminate=True)`` asked to stop; a prefork
        child gets ``signum`` when given (other pools cannot send a signal to a job)."""
        outcome = endings.revoked(job, "revoked while running (terminated)")
        if (
            signum is not None
            and signum != signal.SIGKILL
            and isinstance(self.pool, Signalling)
            and self.pool.terminate_with(job.id, outcome, signum)
        ):
            reporting.announce_stopped(job, outcome, signum)
            logger.warning(
                "Task %s[%s] revoked: sent %s to its process.",
                job.task_name,
                job.id,
                signums.name(signum),
            )
        elif self.terminate(job.id, outcome):
            reporting.announce_stopped(job, outcome, self._kill_signal())
            logger.warning("Task %s[%s] revoked: stopped.", job.task_name, job.id)
        elif self.interrupt(job.id, TaskRevokedError):
            logger.warning(
                "Task %s[%s] revoked: TaskRevokedError raised inside it (the %s pool "
                "cannot kill it; a call blocked in C finishes first).",
                job.task_name,
                job.id,
                getattr(self.pool, "name", "?"),
            )
        else:
            logger.warning(
                "Task %s[%s] revoked, but it is not running in this worker's pool now.",
                job.task_name,
                job.id,
            )


def _running(pool: Any) -> list[Any]:
    running = getattr(pool, "running", None)
    return list(running()) if running is not None else []
