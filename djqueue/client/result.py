"""Results: ``AsyncResult``, a handle on one job.

Every read looks at the job's row; waiting is woken by the process's one result listener
(:mod:`djqueue.db.waiters`). Ids are handed out as strings, as Celery's are. The results
of several jobs are in :mod:`djqueue.client.result_set`.
"""

from __future__ import annotations

import datetime
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, cast

from djqueue.client import joining, promises, result_rows, unfinished
from djqueue.client.identity import ById
from djqueue.client.typevars import R_co
from djqueue.core import conf, exceptions, ids, signums, states
from djqueue.db import broker, guard, models, waiters
from djqueue.db.models import Job
from djqueue.db.sql import parts

# The eta of a workflow step not released yet.
_WAITING = datetime.datetime.fromisoformat(parts.WAITING_ETA)


class AsyncResult(ById, states.StateQueries, Generic[R_co]):
    """A handle on a job by id; every read looks at the job's row.

    ``AsyncResult[int]`` is the result of a task that returns an ``int``: ``get()``
    returns one. Made from an id alone, it is ``AsyncResult[Any]``. ``id`` is the job id
    as a string (``"0193…"``), which compares, hashes and serialises as one.
    """

    def __init__(self, id: str | uuid.UUID, parent: Any = None) -> None:
        self._uuid = ids.parse(id)
        self.id: str = str(self._uuid)
        # In a workflow: the result of what ran before (a chain's previous task, a
        # chord's header GroupResult). Set when the workflow is sent.
        self.parent: Any = parent

    def __repr__(self) -> str:
        return f"<AsyncResult: {self.id}>"

    # Reading --------------------------------------------------------------------

    def _row(self, fields: Sequence[str] = result_rows.FIELDS) -> dict[str, Any]:
        with guard.statements():
            jobs = Job.objects.using(conf.database())
            row = jobs.filter(pk=self._uuid).values(*fields).first()
        if row is None:
            raise exceptions.JobNotFound(
                f"no job has id {self.id}: it was never enqueued, its transaction rolled "
                "back or has not committed yet, or it was forgotten or pruned"
            )
        return dict(row)

    def exists(self) -> bool:
        """Whether the job's row exists (it was sent and is not forgotten or pruned)."""
        with guard.statements():
            return Job.objects.using(conf.database()).filter(pk=self._uuid).exists()

    @property
    def job(self) -> Job:
        """The job's model instance, freshly read."""
        with guard.statements():
            return Job.objects.using(conf.database()).get(pk=self._uuid)

    @property
    def state(self) -> str:
        """PENDING, RECEIVED, STARTED, RETRY, SUCCESS, FAILURE, REVOKED, REJECTED or
        IGNORED; or, while the job runs (and after Ignore), the state the task reported
        with ``update_state``."""
        return result_rows.shown_state(self._row(("state", "reported_state")))

    status = state

    @property
    def name(self) -> str:
        """The task's name."""
        return str(self._row(("task_name",))["task_name"])

    @property
    def args(self) -> list[Any]:
        """The positional arguments the job runs (or ran) with."""
        args: list[Any] = self._row(("args",))["args"]
        return args

    @property
    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments the job runs (or ran) with."""
        kwargs: dict[str, Any] = self._row(("kwargs",))["kwargs"]
        return kwargs

    @property
    def date_done(self) -> datetime.datetime | None:
        """When the job finished (an aware datetime in UTC), or None while it has not."""
        done: datetime.datetime | None = self._row(("finished_at",))["finished_at"]
        return None if done is None else done.astimezone(datetime.UTC)

    @property
    def retries(self) -> int:
        """How many retries the task asked for so far."""
        return int(self._row(("retries",))["retries"])

    @property
    def queue(self) -> str:
        """The queue the job was sent to."""
        return str(self._row(("queue",))["queue"])

    @property
    def worker(self) -> str | None:
        """The worker that ran it (or runs it now), or None before one took it."""
        return self._row(("worker",))["worker"] or None

    @property
    def result(self) -> Any:
        """The return value; for a failed job the error (not raised); while the task
        reports a state of its own, that state's meta."""
        row = self._row()
        if row["reported_state"] and row["state"] in result_rows.REPORTING:
            return row["progress"]
        return result_rows.value(row)

    @property
    def info(self) -> Any:
        """The result once finished; while running, the progress or meta the task
        reported."""
        row = self._row()
        if row["state"] in states.HELD or (
            row["reported_state"] and row["state"] in result_rows.REPORTING
        ):
            return row["progress"]
        return result_rows.value(row)

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
    def children(self) -> list[AsyncResult[Any]]:
        """The jobs this one started, in the order they were sent, as Celery lists them:
        jobs sent from its task while it ran, the next step of its chain once this one
        released it, and its link callbacks once it succeeded (not its errbacks)."""
        with guard.statements():
            started = (
                Job.objects.using(conf.database())
                .filter(workflow__isnull=False)
                .annotate(started_by=models.parent_expression())
                .filter(started_by=self.id)
                # A later step that was never released (still waiting, or ended with a
                # failure before it) was not started by this job.
                .exclude(eta=_WAITING)
                .order_by("id")
                .values_list("id", flat=True)
            )
            return [AsyncResult(job_id) for job_id in started]

    @property
    def progress(self) -> dict[str, Any] | None:
        """``{"current", "total", "message"}`` as last reported by the task, or None."""
        progress: dict[str, Any] | None = self._row(("progress",))["progress"]
        return progress

    @property
    def traceback(self) -> str | None:
        """The formatted traceback of a failed job, or None."""
        return self._row(("traceback",))["traceback"] or None

    def maybe_throw(
        self, propagate: bool = True, callback: Callable[[str, Any], Any] | None = None
    ) -> Any:
        """Raise the job's error if it failed or was revoked (with ``propagate``);
        otherwise return its value, after passing ``(id, value)`` to ``callback``."""
        row = self._row()
        value = result_rows.value(row)
        if propagate and row["state"] in result_rows.RAISING:
            raise value
        if callback is not None:
            callback(self.id, value)
        return value

    maybe_reraise = maybe_throw

    # Waiting --------------------------------------------------------------------

    def get(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        interval: float = 1.0,
        no_ack: bool = True,
        follow_parents: bool = True,
        callback: Callable[[str, Any], Any] | None = None,
        on_interval: Callable[[], Any] | None = None,
        disable_sync_subtasks: bool = True,
    ) -> R_co:
        """Wait until the job is finished and return its result.

        A failed or revoked job raises its error when ``propagate`` (the default); with
        ``follow_parents``, the error of a failed job before it in its workflow comes
        first (the earliest), as the reason this one did not succeed. Inside a task
        that a worker runs, waiting raises ``RuntimeError`` unless
        ``disable_sync_subtasks=False`` (see :func:`assert_will_not_block`).

        Waiting is woken by the notification a worker sends on finishing, with a look at
        the row every ``interval`` seconds as a fallback; ``on_interval`` is called at
        each such look. ``callback(id, value)`` receives the outcome instead of nobody.
        ``no_ack`` is accepted for Celery's sake and means nothing here.
        """
        if disable_sync_subtasks:
            joining.assert_will_not_block()
        parents = _parent_jobs(self) if propagate and follow_parents else []
        if parents:
            _raise_failed(parents)
        deadline = None if timeout is None else time.monotonic() + timeout
        row = self._row()
        if row["state"] not in states.READY:
            row = self._wait(deadline, interval, timeout, parents, on_interval)
        value = result_rows.value(row)
        if propagate and row["state"] in result_rows.RAISING:
            if parents:
                _raise_failed(parents)
            raise value
        if callback is not None:
            callback(self.id, value)
        # The row holds what the task returned (or, not propagated, its error).
        return cast("R_co", value)

    wait = get

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
        self,
        deadline: float | None,
        interval: float,
        timeout: float | None,
        parents: list[list[AsyncResult[Any]]],
        on_interval: Callable[[], Any] | None,
    ) -> dict[str, Any]:
        if unfinished.sent_in_open_transaction(self._uuid):
            # No worker can see the job before the caller commits, and the caller
            # cannot commit while it waits here: say so now, not after the timeout.
            raise exceptions.TimeoutError(unfinished.open_transaction_message(self._uuid))
        watched = [self._uuid, *(parent._uuid for node in parents for parent in node)]
        with waiters.waiting(watched) as waiter:
            while True:
                # Read after registering, and after every wake: no finish is missed.
                row = self._row()
                if row["state"] in states.READY:
                    return row
                if parents:
                    _raise_failed(parents)
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise exceptions.TimeoutError(unfinished.explain(self._uuid, timeout))
                woken = waiter.wait(interval if left is None else min(interval, left))
                if not woken and on_interval is not None:
                    on_interval()

    def then(
        self,
        callback: Callable[[AsyncResult[R_co]], Any],
        on_error: Callable[[BaseException], Any] | None = None,
        weak: bool = False,
    ) -> promises.Promise:
        """Call ``callback(self)`` once the job has finished, from this process's
        result thread; return a future of what the callback returns.

        An error the callback raises goes to ``on_error`` when given (and to the
        future either way). ``weak`` is accepted for Celery's sake.
        """
        return promises.when_ready(self, [self._uuid], callback, on_error)

    # Changing -------------------------------------------------------------------

    def revoke(
        self,
        connection: Any = None,
        terminate: bool = False,
        signal: Any = None,
        wait: bool = False,
        timeout: float | None = None,
    ) -> bool:
        """Revoke the job: one not started never runs; with ``terminate``, a running one
        is stopped by its worker (within about a second) and ends REVOKED.

        Returns whether anything was done (False for a finished job). The revocation is
        written to the database before this returns, so ``wait`` has nothing to wait
        for; ``connection`` and ``timeout`` are accepted for Celery's sake. ``signal``
        (``"SIGTERM"``, a number; SIGKILL by default) is what a prefork worker sends to
        the child running the job; other pools stop a job their own way
        (docs/stopping.md).
        """
        signum = signums.parse(signal)
        return broker.revoke(self._uuid, terminate=terminate, signum=signum)

    def forget(self) -> None:
        """Delete the rows of this finished job and of the jobs before it (``parent``)."""
        if self.parent is not None:
            self.parent.forget()
        broker.forget(self._uuid)


def _parent_jobs(result: Any) -> list[list[AsyncResult[Any]]]:
    """The stored jobs of each result up ``result``'s ``parent`` links, earliest first."""
    nodes: list[list[AsyncResult[Any]]] = []
    node = getattr(result, "parent", None)
    while node is not None:
        nodes.append(list(_leaves(node)))
        node = getattr(node, "parent", None)
    nodes.reverse()
    return [node for node in nodes if node]


def _leaves(node: Any) -> Iterator[AsyncResult[Any]]:
    if isinstance(node, AsyncResult):
        yield node
    else:  # a ResultSet's members (an eager result has none)
        for member in getattr(node, "results", ()):
            yield from _leaves(member)


def _raise_failed(nodes: list[list[AsyncResult[Any]]]) -> None:
    """Raise the error of the earliest failed or revoked job of ``nodes``, if any."""
    wanted = [job._uuid for node in nodes for job in node]
    with guard.statements():
        rows = Job.objects.using(conf.database()).filter(
            pk__in=wanted, state__in=result_rows.RAISING
        )
        failed = {row["id"]: row for row in rows.values("id", *result_rows.FIELDS)}
    for node in nodes:
        for job in node:
            if job._uuid in failed:
                raise result_rows.value(failed[job._uuid])
