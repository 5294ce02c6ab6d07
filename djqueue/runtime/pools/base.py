"""The interface every pool offers the worker loop, and the optional extras some offer.

Every pool is built as ``factory(runner, concurrency)`` and offers :class:`Pool`. A pool
that runs jobs in this process calls the ``runner`` for each job with the job's
interrupt window (:class:`djqueue.runtime.interrupt.Window`): it runs the job to its end and
reports the outcome. A pool that runs jobs in other processes (prefork) is given a
:class:`Host` instead, whose ``begin`` and ``report`` are the two halves of the runner's
work that stay in the worker process.

Optional extras, checked with ``isinstance`` by the worker:

- :class:`Terminating`: ``terminate(job_id)`` stops one running job now (hard time
  limits, ``revoke(terminate=True)``); ``kill()`` stops every running job now (cold
  shutdown).
- :class:`Signalling`: ``terminate_with(job_id, outcome, signum)`` stops a running job
  with a given signal (``revoke(terminate=True, signal=...)``; prefork).
- :class:`Scalable`: ``resize(size)`` and ``load()`` for ``--autoscale``.
- :class:`Interrupting`: ``interrupt(job_id, error)`` raises an exception inside a
  running job (soft time limits; revocation where a job cannot be killed).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from djqueue.core.records import ClaimedJob, Outcome
from djqueue.runtime.interrupt import Window

# Runs one job to its end and reports the outcome; supplied by the worker. The pool
# gives the window through which interrupts reach the job (and only the job's code).
Runner = Callable[[ClaimedJob, Window], None]


@runtime_checkable
class Host(Protocol):
    """The worker's side of a job run out of process, in two halves."""

    def begin(self, job: ClaimedJob) -> bool:
        """Mark ``job`` as running; False if it must not run (it is not ours any more)."""

    def report(self, outcome: Outcome) -> None:
        """Hand the outcome of a job to the worker loop (thread-safe)."""


class Pool(Protocol):
    """Runs submitted jobs with up to ``concurrency`` at a time."""

    name: str
    concurrency: int

    def start(self) -> None:
        """Get ready to run jobs (start threads, fork children)."""

    def submit(self, job: ClaimedJob) -> None:
        """Run ``job`` as soon as a slot is free; never blocks on a busy pool."""

    def take_waiting(self) -> list[ClaimedJob]:
        """Remove and return submitted jobs that have not started yet."""

    def stop(self) -> None:
        """Stop after the running jobs; jobs not started must be taken first."""


@dataclass(frozen=True, slots=True)
class Running:
    """A job running in a pool: where, and since when (``time.monotonic()``)."""

    job_id: uuid.UUID
    started: float
    pid: int


@runtime_checkable
class Terminating(Protocol):
    """A pool that can stop a running job without stopping the worker."""

    def terminate(self, job_id: uuid.UUID, outcome: Outcome | None = None) -> bool:
        """Stop job ``job_id`` now; False if this pool cannot or does not run it.

        The job ends with ``outcome`` when given (for example ``REVOKED`` or
        ``TimeLimitExceeded``), otherwise as a job whose process died.
        """

    def running(self) -> list[Running]:
        """The jobs running now, with their start time (for hard time limits)."""

    def kill(self) -> None:
        """Stop every running job now, reporting nothing (cold shutdown hands them back)."""


@runtime_checkable
class Signalling(Protocol):
    """A pool whose jobs run in processes of their own, which can be sent a signal."""

    def terminate_with(self, job_id: uuid.UUID, outcome: Outcome, signum: int) -> bool:
        """Send ``signum`` to the process running ``job_id``; kill it if it still runs
        that job a while later. It ends with ``outcome`` if it dies, else with what it
        reports. False if this pool does not run that job."""


@runtime_checkable
class Interrupting(Protocol):
    """A pool that can raise an exception inside a running job."""

    def interrupt(self, job_id: uuid.UUID, error: type[BaseException]) -> bool:
        """Raise ``error`` in job ``job_id`` where it runs; False if it does not run here."""


@dataclass(frozen=True, slots=True)
class Load:
    """How busy a pool is: slots, jobs running, jobs submitted and waiting for a slot."""

    size: int
    busy: int
    waiting: int


@runtime_checkable
class Inline(Protocol):
    """A pool whose jobs run in the worker's own loop (solo): it runs them one at a time
    when asked, so that the loop can write outcomes between them."""

    def run_one(self) -> bool:
        """Run the next submitted job, if any; False when none was waiting."""


@runtime_checkable
class Scalable(Protocol):
    """A pool whose number of slots can change while it runs (``--autoscale``)."""

    def resize(self, size: int) -> None:
        """Aim for ``size`` slots; slots busy with a job leave after it."""

    def load(self) -> Load:
        """Slots, busy slots and waiting jobs right now."""
