"""An in-memory queue that keeps the promises of ``djqueue.runtime.store.Store``.

The worker loop's unit tests run a real ``Worker`` against it: rows with the states,
attempts, fences and leases the SQL statements of ``djqueue.db.sql`` give them, timed
by a :class:`~tests.fakes.clock.FakeClock`, and faults injected where a test asks for
them. What a test asserts is what a user would read in the jobs table.

Only what the worker loop uses is modelled: plain jobs (no rate or concurrency
limits, unique keys, workflows or kill counts); ``tests/integration/
test_store_contract.py`` runs the same scenarios against this store and the database.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from django.db import DataError, InterfaceError, OperationalError

from djqueue.core import codec, ids, states
from djqueue.core.records import ClaimedJob, Outcome
from djqueue.db import workers
from djqueue.runtime.store import Store
from tests.fakes.clock import FakeClock

HELD = states.HELD
WAITING = states.WAITING


class Fault(enum.Enum):
    """What goes wrong with one call to the store."""

    # The statement never reached the database: nothing changed, the call raises.
    LOST_CONNECTION = "lost connection"
    # The statement committed, then the connection went: the call raises all the same.
    LOST_REPLY = "lost reply"
    # The connection was already closed when the call began (Django's InterfaceError,
    # which is not a DatabaseError): nothing changed, the call raises.
    CLOSED_CONNECTION = "closed connection"


@dataclasses.dataclass
class Row:
    """One job row, with the columns the worker loop's statements read and write."""

    id: uuid.UUID
    task_name: str
    queue: str
    args: str
    kwargs: str
    priority: int
    max_attempts: int | None
    eta: float
    expires_at: float | None = None
    state: str = "PENDING"
    attempt: int = 0
    retries: int = 0
    worker: str = ""
    lease_expires_at: float | None = None
    claimed_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    result: str | None = None
    error_type: str = ""
    error_message: str = ""
    revoke_requested: bool = False
    revoke_signal: int | None = None
    lost: int = 0
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class WorkerRow:
    """One worker row."""

    name: str
    pool: str
    concurrency: int
    queues: list[str]
    last_heartbeat: float
    jobs_done: int = 0
    stopped: bool = False


class MemoryStore:
    """The queue in a dict. Every call runs under one lock, as one statement would."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.rows: dict[uuid.UUID, Row] = {}
        self.workers: dict[str, WorkerRow] = {}
        self.paused: set[str] = set()
        # Every call, by name, in order (what the worker asked of its store).
        self.calls: list[str] = []
        self.resets = 0
        # Called with each queue a claim said it emptied (a test delivers it to workers
        # as their listener would), and the queues said so, in order.
        self.on_drained: list[Callable[[str], None]] = []
        self.drained: list[str] = []
        self._faults: dict[str, list[Fault]] = {}
        self._during: dict[str, list[Callable[[], None]]] = {}
        self._refused: dict[uuid.UUID, tuple[str, ...]] = {}
        self._lock = threading.RLock()

    # Setting the scene ------------------------------------------------------------

    def send(
        self,
        task_name: str,
        *args: Any,
        queue: str = "default",
        priority: int = 0,
        max_attempts: int | None = 4,
        countdown: float = 0.0,
        **kwargs: Any,
    ) -> uuid.UUID:
        """Enqueue a job as ``broker.enqueue`` would; return its id."""
        job_id = ids.new_id()  # time-ordered: the claim order of equal jobs is FIFO
        with self._lock:
            self.rows[job_id] = Row(
                job_id,
                task_name,
                queue,
                codec.dumps(list(args)),
                codec.dumps(kwargs),
                priority,
                max_attempts,
                eta=self.clock.now() + countdown,
            )
        return job_id

    def fail(self, operation: str, fault: Fault, times: int = 1) -> None:
        """Make the next ``times`` calls of ``operation`` (a method name) fail so."""
        self._faults.setdefault(operation, []).extend([fault] * times)

    def heal(self, operation: str) -> None:
        """Forget the faults still waiting for ``operation``."""
        with self._lock:
            self._faults.pop(operation, None)

    def during(self, operation: str, action: Callable[[], None]) -> None:
        """Run ``action`` inside the next call of ``operation``, before it takes effect
        (a slow statement: the clock moves on, another worker rescues meanwhile)."""
        self._during.setdefault(operation, []).append(action)

    def refuse(self, job_id: uuid.UUID, *refused_states: str) -> None:
        """Refuse, with a ``DataError``, any write of an outcome of ``job_id`` in one of
        ``refused_states`` (all states if none given), and the whole batch with it."""
        self._refused[job_id] = refused_states

    def revoke(self, job_id: uuid.UUID, terminate: bool = False, signum: int | None = None) -> bool:
        """``broker.revoke``: a waiting job ends REVOKED; a held one is asked to stop."""
        with self._lock:
            row = self.rows[job_id]
            if row.state in WAITING:
                row.state, row.finished_at = "REVOKED", self.clock.now()
                row.error_type = "djqueue.exceptions.TaskRevokedError"
                row.error_message, row.lease_expires_at = "revoked", None
                return True
            if terminate and row.state in HELD:
                row.revoke_requested, row.revoke_signal = True, signum
                return True
            return False

    # Reading the table ------------------------------------------------------------

    def row(self, job_id: uuid.UUID) -> Row:
        with self._lock:
            return dataclasses.replace(self.rows[job_id])

    def state(self, job_id: uuid.UUID) -> str:
        return self.row(job_id).state

    def states(self, ids: Sequence[uuid.UUID] | None = None) -> list[str]:
        """The states of ``ids`` (default: every row), in that order."""
        with self._lock:
            return [self.rows[i].state for i in (self.rows if ids is None else ids)]

    def called(self, operation: str) -> int:
        """How many times the worker called ``operation``."""
        return self.calls.count(operation)

    # The Store protocol -----------------------------------------------------------

    def register_worker(
        self, name: str, hostname: str, pid: int, pool: str, concurrency: int, queues: Sequence[str]
    ) -> None:
        with self._call("register_worker"):
            self.workers[name] = WorkerRow(name, pool, concurrency, list(queues), self.clock.now())

    def worker_heartbeat(
        self, name: str, jobs_done: int, children: Sequence[Any], concurrency: int | None = None
    ) -> None:
        with self._call("worker_heartbeat"):
            if name in self.workers:
                worker = self.workers[name]
                worker.last_heartbeat, worker.jobs_done = self.clock.now(), jobs_done

    def worker_stopped(self, name: str, jobs_done: int) -> None:
        with self._call("worker_stopped"):
            if name in self.workers:
                self.workers[name].stopped, self.workers[name].jobs_done = True, jobs_done

    def paused_queues(self) -> set[str]:
        with self._call("paused_queues"):
            return set(self.paused)

    def peers(self, name: str, queues: Sequence[str]) -> int:
        with self._call("peers"):
            oldest = self.clock.now() - workers.live_seconds()
            return sum(
                1
                for row in self.workers.values()
                if row.name != name
                and not row.stopped
                and row.last_heartbeat >= oldest
                and set(row.queues) & set(queues)
            )

    def announce_drained(self, queues: Sequence[str]) -> None:
        with self._call("announce_drained"):
            self.drained.extend(queues)
        # Outside the lock, as a notification reaches listeners after the commit.
        for queue in queues:
            for deliver in self.on_drained:
                deliver(queue)

    def claim(
        self, queues: Sequence[str], limit: int, worker: str, lease: float, *, limited: bool = False
    ) -> list[ClaimedJob]:
        # Limits are not modelled: ``limited`` changes nothing here.
        with self._call("claim"):
            now = self.clock.now()
            due = [
                row
                for row in self.rows.values()
                if row.state in WAITING and row.queue in queues and row.eta <= now
            ]
            due.sort(key=lambda row: (-row.priority, row.eta, row.id))
            claimed = []
            for row in due[:limit]:
                row.state, row.attempt, row.worker = "RECEIVED", row.attempt + 1, worker
                row.started_at, row.claimed_at = None, now
                row.lease_expires_at = now + lease
                claimed.append(self._claimed(row, now))
            return claimed

    def mark_started(self, worker: str, started: Sequence[tuple[uuid.UUID, int, float]]) -> None:
        with self._call("mark_started"):
            for job_id, attempt, ago in started:
                row = self.rows.get(job_id)
                if (
                    row is not None
                    and self._fenced(row, attempt, worker)
                    and row.state == "RECEIVED"
                ):
                    row.state, row.started_at = "STARTED", self.clock.now() - ago

    def finish(self, outcomes: Sequence[Outcome]) -> set[uuid.UUID]:
        with self._call("finish"):
            for outcome in outcomes:
                self._check_storable(outcome)
            return {o.job_id for o in outcomes if not self._finish_one(o)}

    def renew_leases(
        self, worker: str, lease: float, held: Sequence[tuple[uuid.UUID, int]]
    ) -> dict[uuid.UUID, bool]:
        with self._call("renew_leases"):
            return self._renew(worker, lease, held)

    def confirm_leases(
        self, worker: str, lease: float, held: Sequence[tuple[uuid.UUID, int]]
    ) -> dict[uuid.UUID, bool]:
        with self._call("confirm_leases"):
            return self._renew(worker, lease, held)

    def revoke_asked(self, job_id: uuid.UUID, attempt: int, worker: str) -> bool:
        with self._call("revoke_asked"):
            row = self.rows.get(job_id)
            return row is not None and self._fenced(row, attempt, worker) and row.revoke_requested

    def revoke_signal(self, job_id: uuid.UUID, attempt: int, worker: str) -> int | None:
        with self._call("revoke_signal"):
            row = self.rows.get(job_id)
            fenced = row is not None and self._fenced(row, attempt, worker)
            return row.revoke_signal if row is not None and fenced else None

    def release(self, worker: str, jobs: Sequence[tuple[uuid.UUID, int, bool]]) -> int:
        with self._call("release"):
            count = 0
            for job_id, attempt, started in jobs:
                row = self.rows.get(job_id)
                if row is None or not self._fenced(row, attempt, worker):
                    continue
                ran = row.state == "STARTED" or started
                if ran and self._last(row):
                    # Left to the next rescue, which fails it as lost.
                    self._end_lease(row)
                    continue
                self._requeue(row, give_back=not ran)
                count += 1
            return count

    def release_orphans(self, worker: str, held: Sequence[uuid.UUID]) -> int:
        with self._call("release_orphans"):
            count = 0
            keep = set(held)
            for row in self.rows.values():
                if row.worker != worker or row.state not in HELD or row.id in keep:
                    continue
                if row.state == "STARTED" and self._last(row):
                    self._end_lease(row)
                    continue
                row.history.append(self._event(row, "RELEASED"))
                self._requeue(row, give_back=row.state == "RECEIVED")
                count += 1
            return count

    def rescue(self) -> dict[str, int]:
        with self._call("rescue"):
            now = self.clock.now()
            counts: dict[str, int] = {}
            for row in self.rows.values():
                if row.state not in HELD or (row.lease_expires_at or now) >= now:
                    continue
                row.history.append(self._event(row, "LOST"))
                row.lost += 1
                if row.state == "STARTED" and self._last(row):
                    row.state, row.finished_at = "FAILURE", now
                    row.error_type = "djqueue.exceptions.WorkerLostError"
                    row.error_message = (
                        f"worker lost: {row.worker} stopped renewing its lease on attempt "
                        f"{row.attempt} of {row.max_attempts}"
                    )
                    row.worker, row.lease_expires_at = "", None
                else:
                    started = row.started_at if row.state == "STARTED" else None
                    self._requeue(row, give_back=row.state == "RECEIVED")
                    row.started_at = started
                counts[row.state] = counts.get(row.state, 0) + 1
            return counts

    def prune(self, older_than: float) -> int:
        with self._call("prune"):
            cutoff = self.clock.now() - older_than
            old = [
                job_id
                for job_id, row in self.rows.items()
                if row.finished_at is not None and row.finished_at < cutoff
            ]
            for job_id in old:
                del self.rows[job_id]
            return len(old)

    def rollup(self) -> None:
        with self._call("rollup"):
            pass  # the time series lives in PostgreSQL only (tests/integration/test_series.py)

    # Control commands are not modelled: none are ever pending here.

    def set_claimed_rate_limit(
        self, job_id: uuid.UUID, attempt: int, worker: str, rate: tuple[int, float] | None
    ) -> bool:
        return False

    def set_worker_queues(self, name: str, queues: Sequence[str]) -> None:
        with self._call("set_worker_queues"):
            self.workers[name].queues = list(queues)

    def control_pending(self, worker: str) -> list[Any]:
        return []

    def control_answer(self, control_id: uuid.UUID, worker: str, reply: Any) -> None:
        return None

    def prune_control(self) -> int:
        return 0

    def reset(self) -> None:
        self.resets += 1

    def close(self) -> None:
        pass

    # Inside -----------------------------------------------------------------------

    def _call(self, operation: str) -> _Call:
        with self._lock:
            self.calls.append(operation)
            actions = self._take(self._during, operation)
            faults = self._take(self._faults, operation, one=True)
        # Outside the lock: an action may wait for another thread that uses the store.
        for action in actions:
            action()
        return _Call(self._lock, faults[0] if faults else None, operation)

    @staticmethod
    def _take(table: dict[str, list[Any]], operation: str, one: bool = False) -> list[Any]:
        waiting = table.get(operation, [])
        taken = waiting[:1] if one else list(waiting)
        del waiting[: len(taken)]
        return taken

    def _claimed(self, row: Row, now: float) -> ClaimedJob:
        return ClaimedJob(
            id=row.id,
            task_name=row.task_name,
            args=row.args,
            kwargs=row.kwargs,
            attempt=row.attempt,
            retries=row.retries,
            queue=row.queue,
            priority=row.priority,
            eta=self.clock.moment(row.eta),
            expired=row.expires_at is not None and row.expires_at <= now,
            worker=row.worker,
            revoked=row.revoke_requested,
            isolate=row.lost > 0,
        )

    @staticmethod
    def _fenced(row: Row, attempt: int, worker: str) -> bool:
        """Whether a write about ``(row, attempt)`` by ``worker`` passes the fence."""
        return row.attempt == attempt and row.worker == worker and row.state in HELD

    @staticmethod
    def _last(row: Row) -> bool:
        return row.max_attempts is not None and row.attempt >= row.max_attempts

    def _check_storable(self, outcome: Outcome) -> None:
        """Raise ``DataError`` for what PostgreSQL would refuse (a result that is not
        JSON, a NUL character in text) and for what a test made it refuse."""
        refused = self._refused.get(outcome.job_id)
        if refused is not None and (not refused or outcome.state in refused):
            raise DataError(f"invalid input in the outcome of job {outcome.job_id} (refused)")
        if outcome.result is not None:
            try:
                json.loads(outcome.result)
            except ValueError:
                raise DataError("invalid input syntax for type json") from None
            if "\\u0000" in outcome.result:
                raise DataError("unsupported Unicode escape sequence")
        texts = (outcome.error_type, outcome.error_message, outcome.traceback)
        if any("\x00" in text for text in texts):
            raise DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")

    def _finish_one(self, outcome: Outcome) -> bool:
        row = self.rows.get(outcome.job_id)
        if row is None or not self._fenced(row, outcome.attempt, outcome.worker):
            return False
        now = self.clock.now()
        state = outcome.state
        if state == "RETRY" and self._last(row):
            state = "FAILURE"  # retries and lost runs share one budget
        if row.started_at is None:
            row.started_at = now - outcome.runtime
        row.state, row.result = state, outcome.result
        row.error_type, row.error_message = outcome.error_type, outcome.error_message
        row.lease_expires_at = None
        if state == "RETRY":
            row.history.append(self._event(row, "RETRY"))
            row.retries += 1
            row.finished_at = None
            row.eta = now + (outcome.retry_in or 0.0)
        else:
            row.finished_at = now
        return True

    def _renew(
        self, worker: str, lease: float, held: Sequence[tuple[uuid.UUID, int]]
    ) -> dict[uuid.UUID, bool]:
        renewed = {}
        for job_id, attempt in held:
            row = self.rows.get(job_id)
            if row is not None and self._fenced(row, attempt, worker):
                row.lease_expires_at = self.clock.now() + lease
                renewed[job_id] = row.revoke_requested
        return renewed

    def _end_lease(self, row: Row) -> None:
        """Let the next rescue take ``row`` (and fail it: it is out of attempts)."""
        over = self.clock.now() - 1
        row.lease_expires_at = (
            over if row.lease_expires_at is None else min(row.lease_expires_at, over)
        )

    def _requeue(self, row: Row, give_back: bool) -> None:
        """Back to PENDING; a job that never ran gets its attempt back."""
        row.state, row.worker, row.lease_expires_at, row.started_at = "PENDING", "", None, None
        if give_back and row.max_attempts is not None:
            row.max_attempts += 1

    def _event(self, row: Row, outcome: str) -> dict[str, Any]:
        return {"attempt": row.attempt, "worker": row.worker, "outcome": outcome}


class _Call:
    """One call: the store's lock held, and the fault injected for it, if any."""

    def __init__(self, lock: threading.RLock, fault: Fault | None, operation: str) -> None:
        self.lock, self.fault, self.operation = lock, fault, operation

    def __enter__(self) -> None:
        if self.fault is Fault.LOST_CONNECTION:
            raise OperationalError(f"server closed the connection unexpectedly ({self.operation})")
        if self.fault is Fault.CLOSED_CONNECTION:
            raise InterfaceError(f"connection already closed ({self.operation})")
        self.lock.acquire()

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        self.lock.release()
        if kind is None and self.fault is Fault.LOST_REPLY:
            raise OperationalError(f"connection lost after {self.operation} committed")


def _conforms(store: MemoryStore) -> Store:
    """Never called: mypy (which checks ``tests/fakes``) proves the fake a ``Store``."""
    return store
