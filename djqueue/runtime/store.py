"""What the worker loop needs from the data layer, and the real one over ``db.broker``.

The worker reaches the queue only through a :class:`Store`: it claims, writes outcomes,
renews and confirms leases, hands jobs back, rescues, and keeps its worker row. The
real store, :class:`DatabaseStore`, passes each call to the broker unchanged; the unit
tests give the worker an in-memory store instead (``tests/fakes``), which keeps the
same promises, so that the loop can be driven step by step without a database.

How a call fails says what happened: ``django.db.OperationalError`` or
``InterfaceError`` when the connection was lost (the statement may or may not have
committed), another ``django.db.DatabaseError`` (a ``DataError``, say) when the
database refused the statement (nothing was written).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

import psycopg
from django.db import DatabaseError, connections
from django.db import utils as db_errors

from djqueue.core import conf
from djqueue.core.records import ClaimedJob, Outcome
from djqueue.db import broker, control, listener, series


class Store(Protocol):
    """The queue as the worker loop sees it. Writes are fenced by worker, id and attempt:
    a write about a job the worker no longer holds changes nothing."""

    def register_worker(
        self, name: str, hostname: str, pid: int, pool: str, concurrency: int, queues: Sequence[str]
    ) -> None:
        """Record a starting worker."""

    def worker_heartbeat(
        self, name: str, jobs_done: int, children: Sequence[Any], concurrency: int | None = None
    ) -> None:
        """Record that worker ``name`` is alive, its jobs done, its child processes and
        its pool's size."""

    def worker_stopped(self, name: str, jobs_done: int) -> None:
        """Record that worker ``name`` stopped cleanly."""

    def paused_queues(self) -> set[str]:
        """The queues paused now."""

    def peers(self, name: str, queues: Sequence[str]) -> int:
        """How many live workers other than ``name`` take jobs from any of ``queues``."""

    def announce_drained(self, queues: Sequence[str]) -> None:
        """Tell the workers of ``queues`` that a claim just emptied them (a hint)."""

    def claim(
        self, queues: Sequence[str], limit: int, worker: str, lease: float, *, limited: bool
    ) -> list[ClaimedJob]:
        """Take up to ``limit`` due jobs from ``queues``: RECEIVED by ``worker``, leased.

        ``limited``: whether any task has a rate or concurrency limit (jobs of such
        tasks are claimed only as far as their limits allow).
        """

    def mark_started(self, worker: str, started: Sequence[tuple[uuid.UUID, int, float]]) -> None:
        """Record that ``(id, attempt, seconds ago)`` jobs of ``worker`` started."""

    def finish(self, outcomes: Sequence[Outcome]) -> set[uuid.UUID]:
        """Record ``outcomes`` (all or none); return the ids fenced off as stale."""

    def renew_leases(
        self, worker: str, lease: float, held: Sequence[tuple[uuid.UUID, int]]
    ) -> dict[uuid.UUID, bool]:
        """Renew the leases of the ``(id, attempt)`` jobs ``worker`` holds.

        Returns the ids still held, each with whether a revocation was asked for.
        """

    def confirm_leases(
        self, worker: str, lease: float, held: Sequence[tuple[uuid.UUID, int]]
    ) -> dict[uuid.UUID, bool]:
        """:meth:`renew_leases` from any thread, on a connection of the store's own."""

    def revoke_asked(self, job_id: uuid.UUID, attempt: int, worker: str) -> bool:
        """Whether ``revoke(terminate=True)`` was asked for the job ``worker`` holds."""

    def revoke_signal(self, job_id: uuid.UUID, attempt: int, worker: str) -> int | None:
        """The signal ``revoke(terminate=True, signal=...)`` asked for that job (None:
        the pool's own way)."""

    def release(self, worker: str, jobs: Sequence[tuple[uuid.UUID, int, bool]]) -> int:
        """Hand ``(id, attempt, started)`` jobs back to the queue; return how many."""

    def release_orphans(self, worker: str, held: Sequence[uuid.UUID]) -> int:
        """Hand back rows that name ``worker`` but are not among the ``held`` ids."""

    def rescue(self) -> dict[str, int]:
        """Requeue (or fail, when out of attempts) jobs whose lease expired."""

    def prune(self, older_than: float) -> int:
        """Delete jobs finished more than ``older_than`` seconds ago; return how many."""

    def rollup(self) -> None:
        """Bring the console's time series up to date (one process at a time)."""

    def set_claimed_rate_limit(
        self, job_id: uuid.UUID, attempt: int, worker: str, rate: tuple[int, float] | None
    ) -> bool:
        """Give an unstarted job ``worker`` holds the rate limit ``(count, period)``."""

    def set_worker_queues(self, name: str, queues: Sequence[str]) -> None:
        """Record the queues worker ``name`` takes jobs from now."""

    def control_pending(self, worker: str) -> list[control.Command]:
        """Control commands for ``worker`` to look at (lasting, and recent one-shots)."""

    def control_answer(self, control_id: uuid.UUID, worker: str, reply: Any) -> None:
        """Record ``worker``'s reply to a control command."""

    def prune_control(self) -> int:
        """Delete lapsed one-shot control commands and their replies."""

    def reset(self) -> None:
        """Drop the calling thread's connection after an error (the next call reconnects)."""

    def close(self) -> None:
        """Close the connection :meth:`confirm_leases` uses."""


class DatabaseStore:
    """The store in PostgreSQL: each call is the ``djqueue.db.broker`` function of the
    same name, on the calling thread's Django connection."""

    def __init__(self) -> None:
        # The plain connection for confirm_leases (the caller serialises those calls).
        self._confirm_conn: psycopg.Connection[Any] | None = None

    def register_worker(
        self, name: str, hostname: str, pid: int, pool: str, concurrency: int, queues: Sequence[str]
    ) -> None:
        broker.register_worker(name, hostname, pid, pool, concurrency, queues)

    def worker_heartbeat(
        self, name: str, jobs_done: int, children: Sequence[Any], concurrency: int | None = None
    ) -> None:
        broker.worker_heartbeat(name, jobs_done, children, concurrency)

    def worker_stopped(self, name: str, jobs_done: int) -> None:
        broker.worker_stopped(name, jobs_done)

    def paused_queues(self) -> set[str]:
        return broker.paused_queues()

    def peers(self, name: str, queues: Sequence[str]) -> int:
        return broker.peers(name, queues)

    def announce_drained(self, queues: Sequence[str]) -> None:
        broker.announce_drained(queues)

    def claim(
        self, queues: Sequence[str], limit: int, worker: str, lease: float, *, limited: bool
    ) -> list[ClaimedJob]:
        return broker.claim(queues, limit, worker, lease, limited=limited)

    def mark_started(self, worker: str, started: Sequence[tuple[uuid.UUID, int, float]]) -> None:
        broker.mark_started(worker, started)

    def finish(self, outcomes: Sequence[Outcome]) -> set[uuid.UUID]:
        return broker.finish(outcomes)

    def renew_leases(
        self, worker: str, lease: float, held: Sequence[tuple[uuid.UUID, int]]
    ) -> dict[uuid.UUID, bool]:
        return broker.renew_leases(worker, lease, held)

    def confirm_leases(
        self, worker: str, lease: float, held: Sequence[tuple[uuid.UUID, int]]
    ) -> dict[uuid.UUID, bool]:
        # A connection of its own: a pool thread confirms while the loop's thread may be
        # using the Django connection, and Django's connections are per thread anyway.
        try:
            if self._confirm_conn is None or self._confirm_conn.closed:
                self._confirm_conn = listener.connect()
            return broker.renew_leases(worker, lease, held, connection=self._confirm_conn)
        except (psycopg.Error, OSError) as exc:
            self.close()
            raise _as_django(exc) from exc

    def revoke_asked(self, job_id: uuid.UUID, attempt: int, worker: str) -> bool:
        return broker.revoke_asked(job_id, attempt, worker)

    def revoke_signal(self, job_id: uuid.UUID, attempt: int, worker: str) -> int | None:
        return broker.revoke_signal(job_id, attempt, worker)

    def release(self, worker: str, jobs: Sequence[tuple[uuid.UUID, int, bool]]) -> int:
        return broker.release(worker, jobs)

    def release_orphans(self, worker: str, held: Sequence[uuid.UUID]) -> int:
        return broker.release_orphans(worker, held)

    def rescue(self) -> dict[str, int]:
        return broker.rescue()

    def prune(self, older_than: float) -> int:
        return broker.prune(older_than)

    def rollup(self) -> None:
        series.rollup()

    def set_claimed_rate_limit(
        self, job_id: uuid.UUID, attempt: int, worker: str, rate: tuple[int, float] | None
    ) -> bool:
        return broker.set_claimed_rate_limit(job_id, attempt, worker, rate)

    def set_worker_queues(self, name: str, queues: Sequence[str]) -> None:
        broker.set_worker_queues(name, queues)

    def control_pending(self, worker: str) -> list[control.Command]:
        return control.pending(worker)

    def control_answer(self, control_id: uuid.UUID, worker: str, reply: Any) -> None:
        control.answer(control_id, worker, reply)

    def prune_control(self) -> int:
        return control.prune()

    def reset(self) -> None:
        with contextlib.suppress(DatabaseError):
            connections[conf.database()].close()

    def close(self) -> None:
        conn, self._confirm_conn = self._confirm_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


# The Django error classes a psycopg error maps to (by name, as Django's own wrapper
# maps them); anything else, an interface or socket error say, is a lost link.
_DJANGO_ERRORS: tuple[type[DatabaseError], ...] = (
    db_errors.DataError,
    db_errors.IntegrityError,
    db_errors.InternalError,
    db_errors.ProgrammingError,
    db_errors.NotSupportedError,
)


def _as_django(exc: BaseException) -> DatabaseError:
    """``exc`` from a plain psycopg connection as the Django error the worker expects."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    for error in _DJANGO_ERRORS:
        if error.__name__ in names:
            return error(str(exc))
    return db_errors.OperationalError(str(exc))
