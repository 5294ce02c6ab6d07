"""``AsyncResult``: read a job's state and result, wait for it, revoke or forget it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any, Generic, cast

from djqueue.client import unfinished
from djqueue.client.typevars import R_co
from djqueue.core import conf, exceptions, ids, states
from djqueue.db import broker, schema, waiters
from djqueue.db.models import Group, Job

# Finished states whose error get() raises; an ignored job has no result (None).
_RAISING = frozenset({states.FAILURE, states.REVOKED, states.REJECTED})
_FIELDS = (
    "task_name",
    "state",
    "result",
    "error_type",
    "error_message",
    "traceback",
    "progress",
    "reported_state",
)
# Row states in which the state a task reported with update_state is what users see.
_REPORTING = frozenset({states.RECEIVED, states.STARTED, states.IGNORED})


class AsyncResult(states.StateQueries, Generic[R_co]):
    """A handle on a job by id; every read looks at the job's row.

    ``AsyncResult[int]`` is the result of a task that returns an ``int``: ``get()``
    returns one. Made from an id alone, it is ``AsyncResult[Any]``.
    """

    def __init__(self, id: str | uuid.UUID, parent: Any = None) -> None:
        self.id: uuid.UUID = ids.parse(id)
        # In a workflow: the result of what ran before (a chain's previous task, a
        # chord's header GroupResult). Set when the workflow is sent.
        self.parent: Any = parent

    def __repr__(self) -> str:
        return f"<AsyncResult {self.id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsyncResult) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    # Reading --------------------------------------------------------------------

    def _row(self) -> dict[str, Any]:
        with schema.translated():
            jobs = Job.objects.using(conf.database())
            row = jobs.filter(pk=self.id).values(*_FIELDS).first()
        if row is None:
            raise exceptions.JobNotFound(
                f"no job has id {self.id}: it was never enqueued, its transaction rolled "
                "back or has not committed yet, or it was forgotten or pruned"
            )
        return dict(row)

    @property
    def job(self) -> Job:
        """The job's model instance, freshly read."""
        with schema.translated():
            return Job.objects.using(conf.database()).get(pk=self.id)

    @property
    def state(self) -> str:
        """PENDING, RECEIVED, STARTED, RETRY, SUCCESS, FAILURE, REVOKED, REJECTED or
        IGNORED; or, while the job runs (and after Ignore), the state the task reported
        with ``update_state``."""
        return _shown_state(self._row())

    status = state

    @property
    def name(self) -> str:
        return str(self._row()["task_name"])

    @property
    def result(self) -> Any:
        """The return value; for a failed job the error (not raised); while the task
        reports a state of its own, that state's meta."""
        row = self._row()
        if row["reported_state"] and row["state"] in _REPORTING:
            return row["progress"]
        return _value(row)

    @property
    def info(self) -> Any:
        """The result once finished; while running, the progress or meta the task
        reported."""
        row = self._row()
        if row["state"] in states.HELD or (row["reported_state"] and row["state"] in _REPORTING):
            return row["progress"]
        return _value(row)

    # Whether the job ended is read from its row: a state the task reports while it
    # runs (even "SUCCESS") does not end it.

    def ready(self) -> bool:
        """Whether the job has finished (and will never change again)."""
        return self._row()["state"] in states.READY

    def successful(self) -> bool:
        return bool(self._row()["state"] == states.SUCCESS)

    def failed(self) -> bool:
        return bool(self._row()["state"] == states.FAILURE)

    @property
    def progress(self) -> dict[str, Any] | None:
        """``{"current", "total", "message"}`` as last reported by the task, or None."""
        progress: dict[str, Any] | None = self._row()["progress"]
        return progress

    @property
    def traceback(self) -> str | None:
        """The formatted traceback of a failed job, or None."""
        return self._row()["traceback"] or None

    # Waiting --------------------------------------------------------------------

    def get(
        self, timeout: float | None = None, propagate: bool = True, interval: float = 1.0
    ) -> R_co:
        """Wait until the job is finished and return its result.

        Waiting is woken by the notification a worker sends on finishing (through the
        process's one result listener, :mod:`djqueue.db.waiters`), with a look at the row
        every ``interval`` seconds as a fallback. A failed or revoked job raises
        its error when ``propagate`` (the default).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        row = self._row()
        if row["state"] not in states.READY:
            row = self._wait(deadline, interval, timeout)
        value = _value(row)
        if propagate and row["state"] in _RAISING:
            raise value
        # The row holds what the task returned (or, not propagated, its error).
        return cast("R_co", value)

    async def aget(
        self, timeout: float | None = None, propagate: bool = True, interval: float = 1.0
    ) -> R_co:
        """:meth:`get` for async code: waits in a worker thread, not on the event loop."""
        from asgiref.sync import sync_to_async

        # Not thread-sensitive: a long wait must not hold the thread other sync code
        # of this request runs in.
        wait = sync_to_async(self._get_and_close, thread_sensitive=False)
        return await wait(timeout, propagate, interval)

    def _get_and_close(self, timeout: float | None, propagate: bool, interval: float) -> R_co:
        from django.db import connections

        try:
            return self.get(timeout, propagate, interval)
        finally:
            # The thread is asgiref's: do not leave a connection open in it.
            connections.close_all()

    def _wait(
        self, deadline: float | None, interval: float, timeout: float | None
    ) -> dict[str, Any]:
        if unfinished.sent_in_open_transaction(self.id):
            # No worker can see the job before the caller commits, and the caller
            # cannot commit while it waits here: say so now, not after the timeout.
            raise exceptions.TimeoutError(unfinished.open_transaction_message(self.id))
        with waiters.waiting([self.id]) as waiter:
            while True:
                # Read after registering, and after every wake: no finish is missed.
                row = self._row()
                if row["state"] in states.READY:
                    return row
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise exceptions.TimeoutError(unfinished.explain(self.id, timeout))
                waiter.wait(interval if left is None else min(interval, left))

    # Changing -------------------------------------------------------------------

    def revoke(self, terminate: bool = False) -> bool:
        """Revoke the job: one not started never runs; with ``terminate``, a running one
        is stopped by its worker (within about a second) and ends REVOKED.

        Returns whether anything was done (False for a finished job).
        """
        return broker.revoke(self.id, terminate=terminate)

    def forget(self) -> None:
        """Delete a finished job's row and result."""
        broker.forget(self.id)


def _shown_state(row: dict[str, Any]) -> str:
    if row["reported_state"] and row["state"] in _REPORTING:
        return str(row["reported_state"])
    return str(row["state"])


def _value(row: dict[str, Any]) -> Any:
    state = row["state"]
    if state == states.SUCCESS:
        return row["result"]
    if state == states.REVOKED:
        return exceptions.TaskRevokedError(row["error_message"] or "revoked")
    if row["error_type"] == exceptions.CHORD_ERROR_TYPE:
        return exceptions.ChordError(row["error_message"])
    if state in (states.FAILURE, states.RETRY, states.REJECTED) and row["error_type"]:
        return exceptions.rebuild(row["error_type"], row["error_message"])
    return None


class GroupResult:
    """The results of a group's jobs, in the group's order; restorable by id.

    Reads every job of the group in one query; waiting listens for finishes as
    ``AsyncResult.get`` does.
    """

    def __init__(self, id: str | uuid.UUID, results: list[Any], parent: Any = None) -> None:
        self.id: uuid.UUID = ids.parse(id)
        self.results: list[Any] = list(results)
        self.parent: Any = parent

    def __repr__(self) -> str:
        return f"<GroupResult {self.id} ({len(self.results)} jobs)>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GroupResult) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.results)

    def __getitem__(self, index: int) -> Any:
        return self.results[index]

    @property
    def children(self) -> list[Any]:
        return self.results

    @classmethod
    def restore(cls, id: str | uuid.UUID) -> GroupResult | None:
        """The group with this id, or None if there is none (it was never sent)."""
        row = Group.objects.using(conf.database()).filter(pk=ids.parse(id)).first()
        if row is None:
            return None
        return cls(row.id, [AsyncResult(job_id) for job_id in row.job_ids])

    def save(self) -> GroupResult:
        """Groups are stored when sent; kept for Celery compatibility."""
        return self

    # Reading --------------------------------------------------------------------

    def _stored(self) -> bool:
        return all(isinstance(result, AsyncResult) for result in self.results)

    def _rows(self, ids_: list[uuid.UUID] | None = None) -> dict[uuid.UUID, dict[str, Any]]:
        wanted = [r.id for r in self.results] if ids_ is None else ids_
        found: dict[uuid.UUID, dict[str, Any]] = {}
        for start in range(0, len(wanted), 5000):
            rows = Job.objects.using(conf.database()).filter(pk__in=wanted[start : start + 5000])
            found.update({row["id"]: row for row in rows.values("id", *_FIELDS)})
        missing = set(wanted) - set(found)
        if missing:
            raise exceptions.JobNotFound(
                f"{len(missing)} job(s) of group {self.id} are gone (forgotten or pruned), "
                f"for example {next(iter(missing))}"
            )
        return found

    def _states(self) -> list[str]:
        if not self._stored():
            return [str(result.state) for result in self.results]
        rows = self._rows()
        return [str(rows[result.id]["state"]) for result in self.results]

    def ready(self) -> bool:
        """Whether every job has finished."""
        return all(state in states.READY for state in self._states())

    def successful(self) -> bool:
        """Whether every job succeeded."""
        return all(state == states.SUCCESS for state in self._states())

    def failed(self) -> bool:
        """Whether any job failed."""
        return any(state == states.FAILURE for state in self._states())

    def waiting(self) -> bool:
        """Whether any job has not finished yet."""
        return not self.ready()

    def completed_count(self) -> int:
        """How many jobs succeeded."""
        return sum(state == states.SUCCESS for state in self._states())

    # Waiting --------------------------------------------------------------------

    def get(
        self, timeout: float | None = None, propagate: bool = True, interval: float = 1.0
    ) -> list[Any]:
        """Wait for every job; return their results in the group's order.

        With ``propagate``, the first failed job (in order) raises its error.
        """
        if not self._stored():
            return [result.get(propagate=propagate) for result in self.results]
        deadline = None if timeout is None else time.monotonic() + timeout
        rows = self._wait(deadline, interval, timeout)
        values = [_value(rows[result.id]) for result in self.results]
        if propagate:
            for result, value in zip(self.results, values, strict=True):
                if rows[result.id]["state"] in _RAISING:
                    raise value
        return values

    join = get

    def _wait(
        self, deadline: float | None, interval: float, timeout: float | None
    ) -> dict[uuid.UUID, dict[str, Any]]:
        done: dict[uuid.UUID, dict[str, Any]] = {}
        pending = self._collect([result.id for result in self.results], done)
        if not pending:
            return done
        if unfinished.sent_in_open_transaction(pending[0]):
            why = unfinished.open_transaction_message(pending[0])
            raise exceptions.TimeoutError(self._unfinished(pending, why))
        with waiters.waiting(pending) as waiter:
            while True:
                # Read after registering, and after every wake: no finish is missed.
                pending = self._collect(pending, done)
                if not pending:
                    return done
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    why = unfinished.explain(pending[0], timeout)
                    raise exceptions.TimeoutError(self._unfinished(pending, why))
                waiter.wait(interval if left is None else min(interval, left))

    def _unfinished(self, pending: list[uuid.UUID], why: str) -> str:
        return (
            f"{len(pending)} of the {len(self.results)} jobs of group {self.id} are not "
            f"finished after the timeout; the first of them: {why}"
        )

    def _collect(
        self, pending: list[uuid.UUID], done: dict[uuid.UUID, dict[str, Any]]
    ) -> list[uuid.UUID]:
        """Read the ``pending`` jobs; move finished ones to ``done``; return the rest."""
        for job_id, row in self._rows(pending).items():
            if row["state"] in states.READY:
                done[job_id] = row
        return [job_id for job_id in pending if job_id not in done]

    # Changing -------------------------------------------------------------------

    def revoke(self, terminate: bool = False) -> int:
        """Revoke every job of the group (and what follows each); return how many."""
        return sum(bool(result.revoke(terminate=terminate)) for result in self.results)

    def forget(self) -> None:
        """Delete the finished jobs' rows."""
        for result in self.results:
            result.forget()
