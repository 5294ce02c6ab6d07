"""Results: ``AsyncResult`` (one job), ``ResultSet`` and ``GroupResult`` (many).

Every read looks at the jobs' rows; waiting is woken by the process's one result
listener (:mod:`djqueue.db.waiters`). Ids are handed out as strings, as Celery's are.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Generic, cast

from djqueue.client import promises, unfinished
from djqueue.client.identity import ById
from djqueue.client.typevars import R_co
from djqueue.core import conf, context, exceptions, ids, signums, states
from djqueue.db import broker, models, schema, waiters
from djqueue.db.models import Group, Job
from djqueue.db.sql import parts

# The eta of a workflow step not released yet.
_WAITING = datetime.datetime.fromisoformat(parts.WAITING_ETA)
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

# Whether get() may wait inside a running task: None follows the rule (not in a task a
# worker runs), True and False are set by allow_join_result() and denied_join_result().
_join_allowed: contextvars.ContextVar[bool | None] = contextvars.ContextVar(
    "djqueue_join_allowed", default=None
)


def assert_will_not_block() -> None:
    """Raise ``RuntimeError`` if waiting for a result here could deadlock a worker."""
    allowed = _join_allowed.get()
    if allowed:
        return
    request = context.current_request()
    in_task = request.id is not None and not request.is_eager
    if allowed is None and not in_task:
        return
    where = f"inside task {request.task}[{request.id}]" if in_task else "here"
    raise RuntimeError(
        f"get() on a result was called {where}: a task that waits for another job holds "
        "its worker slot while it waits, and once every slot waits, no job can finish. "
        "Make the work a workflow instead (first.s() | second.s(), or a chord), or, if "
        "the job cannot be waiting on this one, pass disable_sync_subtasks=False or wait "
        "inside djqueue.result.allow_join_result()"
    )


@contextlib.contextmanager
def allow_join_result() -> Iterator[None]:
    """Let ``get()`` wait inside a task (at the risk of a deadlock; see docs/results.md)."""
    token = _join_allowed.set(True)
    try:
        yield
    finally:
        _join_allowed.reset(token)


@contextlib.contextmanager
def denied_join_result() -> Iterator[None]:
    """Make ``get()`` raise ``RuntimeError`` here, as it does inside a task."""
    token = _join_allowed.set(False)
    try:
        yield
    finally:
        _join_allowed.reset(token)


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

    def _row(self, fields: Sequence[str] = _FIELDS) -> dict[str, Any]:
        with schema.translated():
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
        with schema.translated():
            return Job.objects.using(conf.database()).filter(pk=self._uuid).exists()

    @property
    def job(self) -> Job:
        """The job's model instance, freshly read."""
        with schema.translated():
            return Job.objects.using(conf.database()).get(pk=self._uuid)

    @property
    def state(self) -> str:
        """PENDING, RECEIVED, STARTED, RETRY, SUCCESS, FAILURE, REVOKED, REJECTED or
        IGNORED; or, while the job runs (and after Ignore), the state the task reported
        with ``update_state``."""
        return _shown_state(self._row(("state", "reported_state")))

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
    def children(self) -> list[AsyncResult[Any]]:
        """The jobs this one started, in the order they were sent, as Celery lists them:
        jobs sent from its task while it ran, the next step of its chain once this one
        released it, and its link callbacks once it succeeded (not its errbacks)."""
        with schema.translated():
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
        value = _value(row)
        if propagate and row["state"] in _RAISING:
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
            assert_will_not_block()
        parents = _parent_jobs(self) if propagate and follow_parents else []
        if parents:
            _raise_failed(parents)
        deadline = None if timeout is None else time.monotonic() + timeout
        row = self._row()
        if row["state"] not in states.READY:
            row = self._wait(deadline, interval, timeout, parents, on_interval)
        value = _value(row)
        if propagate and row["state"] in _RAISING:
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
    elif isinstance(node, ResultSet):
        for member in node.results:
            yield from _leaves(member)


def _raise_failed(nodes: list[list[AsyncResult[Any]]]) -> None:
    """Raise the error of the earliest failed or revoked job of ``nodes``, if any."""
    wanted = [job._uuid for node in nodes for job in node]
    with schema.translated():
        rows = Job.objects.using(conf.database()).filter(pk__in=wanted, state__in=_RAISING)
        failed = {row["id"]: row for row in rows.values("id", *_FIELDS)}
    for node in nodes:
        for job in node:
            if job._uuid in failed:
                raise _value(failed[job._uuid])


class ResultSet:
    """Results of several jobs, in order: wait for all, ask how many are done.

    Reads the rows of its stored jobs in one query; waiting listens for finishes as
    ``AsyncResult.get`` does.
    """

    def __init__(self, results: Iterable[Any], **kwargs: Any) -> None:
        self.results: list[Any] = list(results)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: [{', '.join(str(r.id) for r in self.results)}]>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ResultSet):
            return other.results == self.results
        return NotImplemented

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.results)

    def __getitem__(self, index: int) -> Any:
        return self.results[index]

    # Membership -----------------------------------------------------------------

    def add(self, result: Any) -> None:
        """Add ``result`` unless it is a member already."""
        if result not in self.results:
            self.results.append(result)

    def remove(self, result: Any) -> None:
        """Remove ``result`` (or the result with this id); ``KeyError`` if not a member."""
        if isinstance(result, str | uuid.UUID):
            result = AsyncResult(result)
        try:
            self.results.remove(result)
        except ValueError:
            raise KeyError(result) from None

    def discard(self, result: Any) -> None:
        """Remove ``result`` if it is a member."""
        with contextlib.suppress(KeyError):
            self.remove(result)

    def update(self, results: Iterable[Any]) -> None:
        """Add every one of ``results`` that is not a member yet."""
        self.results.extend(r for r in results if r not in self.results)

    def clear(self) -> None:
        """Remove every member."""
        self.results[:] = []

    # Reading --------------------------------------------------------------------

    def _stored(self) -> bool:
        return all(isinstance(result, AsyncResult) for result in self.results)

    def _uuids(self) -> list[uuid.UUID]:
        return [result._uuid for result in self.results]

    def _rows(self, wanted: list[uuid.UUID] | None = None) -> dict[uuid.UUID, dict[str, Any]]:
        wanted = self._uuids() if wanted is None else wanted
        found: dict[uuid.UUID, dict[str, Any]] = {}
        for start in range(0, len(wanted), 5000):
            rows = Job.objects.using(conf.database()).filter(pk__in=wanted[start : start + 5000])
            found.update({row["id"]: row for row in rows.values("id", *_FIELDS)})
        missing = set(wanted) - set(found)
        if missing:
            raise exceptions.JobNotFound(
                f"{len(missing)} job(s) of {self._label()} are gone (forgotten or pruned), "
                f"for example {next(iter(missing))}"
            )
        return found

    def _label(self) -> str:
        return "this result set"

    def _states(self) -> list[str]:
        if not self._stored():
            return [str(result.state) for result in self.results]
        rows = self._rows()
        return [str(rows[result._uuid]["state"]) for result in self.results]

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

    def maybe_throw(
        self, callback: Callable[[str, Any], Any] | None = None, propagate: bool = True
    ) -> None:
        """Raise the error of the first member, in order, that failed or was revoked."""
        for result in self.results:
            result.maybe_throw(callback=callback, propagate=propagate)

    maybe_reraise = maybe_throw

    # Waiting --------------------------------------------------------------------

    def get(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        interval: float = 1.0,
        callback: Callable[[str, Any], Any] | None = None,
        no_ack: bool = True,
        on_message: None = None,
        disable_sync_subtasks: bool = True,
        on_interval: Callable[[], Any] | None = None,
    ) -> list[Any]:
        """Wait for every job; return their results in order.

        With ``propagate``, the first member (in order) that failed or was revoked
        raises its error. With ``callback``, each ``(id, value)`` goes to it and the
        list returned is empty. Inside a task, see :meth:`AsyncResult.get`.
        """
        if on_message is not None:
            raise TypeError("on_message is not supported: results are rows, not messages")
        if disable_sync_subtasks:
            assert_will_not_block()
        if not self._stored():
            values = [
                result.get(propagate=propagate, disable_sync_subtasks=False)
                for result in self.results
            ]
        else:
            deadline = None if timeout is None else time.monotonic() + timeout
            rows = self._wait(deadline, interval, timeout, on_interval)
            values = [_value(rows[result._uuid]) for result in self.results]
            if propagate:
                for result, value in zip(self.results, values, strict=True):
                    if rows[result._uuid]["state"] in _RAISING:
                        raise value
        if callback is None:
            return values
        for result, value in zip(self.results, values, strict=True):
            callback(result.id, value)
        return []

    def join(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        interval: float = 1.0,
        callback: Callable[[str, Any], Any] | None = None,
        no_ack: bool = True,
        on_message: None = None,
        disable_sync_subtasks: bool = True,
        on_interval: Callable[[], Any] | None = None,
    ) -> list[Any]:
        """The same as :meth:`get` (Celery's name)."""
        return self.get(
            timeout,
            propagate,
            interval,
            callback,
            no_ack,
            on_message,
            disable_sync_subtasks,
            on_interval,
        )

    join_native = join

    def _wait(
        self,
        deadline: float | None,
        interval: float,
        timeout: float | None,
        on_interval: Callable[[], Any] | None,
    ) -> dict[uuid.UUID, dict[str, Any]]:
        done: dict[uuid.UUID, dict[str, Any]] = {}
        pending = self._collect(self._uuids(), done)
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
                woken = waiter.wait(interval if left is None else min(interval, left))
                if not woken and on_interval is not None:
                    on_interval()

    def _unfinished(self, pending: list[uuid.UUID], why: str) -> str:
        return (
            f"{len(pending)} of the {len(self.results)} jobs of {self._label()} are not "
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

    def then(
        self,
        callback: Callable[[Any], Any],
        on_error: Callable[[BaseException], Any] | None = None,
        weak: bool = False,
    ) -> promises.Promise:
        """Call ``callback(self)`` once every job has finished; see
        :meth:`AsyncResult.then`."""
        if not self._stored():
            raise TypeError("then() needs results of sent jobs (AsyncResult members)")
        return promises.when_ready(self, self._uuids(), callback, on_error)

    # Changing -------------------------------------------------------------------

    def revoke(
        self,
        connection: Any = None,
        terminate: bool = False,
        signal: Any = None,
        wait: bool = False,
        timeout: float | None = None,
    ) -> int:
        """Revoke every job (and what follows each in its workflow); return how many
        were revoked. See :meth:`AsyncResult.revoke`."""
        signums.parse(signal)  # checked once, before any job is revoked
        return sum(
            bool(result.revoke(terminate=terminate, signal=signal)) for result in self.results
        )

    def forget(self) -> None:
        """Delete the finished jobs' rows."""
        for result in self.results:
            result.forget()


class GroupResult(ResultSet):
    """The results of a group's jobs, in the group's order; restorable by id."""

    def __init__(
        self,
        id: str | uuid.UUID | None = None,
        results: Iterable[Any] | None = None,
        parent: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(results or [])
        self.id: str = str(ids.new_id() if id is None else ids.parse(id))
        self.parent: Any = parent

    def __repr__(self) -> str:
        members = ", ".join(str(r.id) for r in self.results)
        return f"<GroupResult: {self.id} [{members}]>"

    def __str__(self) -> str:
        return self.id

    def __eq__(self, other: object) -> bool:
        if isinstance(other, GroupResult):
            return (
                other.id == self.id
                and other.results == self.results
                and other.parent == self.parent
            )
        if isinstance(other, str):
            return other == self.id
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.id)

    def __bool__(self) -> bool:
        return True

    def _label(self) -> str:
        return f"group {self.id}"

    @property
    def children(self) -> list[Any]:
        """The members' results (Celery's name for ``results`` here)."""
        return self.results

    @classmethod
    def restore(
        cls, id: str | uuid.UUID, backend: Any = None, app: Any = None
    ) -> GroupResult | None:
        """The group with this id, or None if there is none (never sent nor saved)."""
        group_id = ids.parse(id)
        row = Group.objects.using(conf.database()).filter(pk=group_id).first()
        if row is None:
            return None
        return cls(group_id, [AsyncResult(job_id) for job_id in row.job_ids])

    def save(self, backend: Any = None) -> GroupResult:
        """Store the group so that :meth:`restore` finds it by id in any process.

        Groups that were sent are stored already; this is for a ``GroupResult`` made
        here from sent jobs' results.
        """
        if not self._stored():
            raise TypeError("only a group of sent jobs' results (AsyncResult members) can be saved")
        broker.save_group(ids.parse(self.id), self._uuids())
        return self

    def delete(self, backend: Any = None) -> None:
        """Delete the stored group (its jobs stay; see :meth:`forget`)."""
        broker.delete_group(ids.parse(self.id))
