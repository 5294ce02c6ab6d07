"""The ``Task`` class: calling, signatures, sending, retrying (``@task`` makes one: see
:mod:`djqueue.client.decorator`).

Its other parts are mixins, each in a module of its own: building a job from a call
(:mod:`djqueue.client.building`), reporting progress and state from a running task
(:mod:`djqueue.client.reporting`) and the hooks (:mod:`djqueue.client.hooks`); the checks
of its options are in :mod:`djqueue.client.validators`.
"""

from __future__ import annotations

import datetime
import functools
import uuid
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, Unpack, cast

from django.db import transaction

from djqueue.client import canvas, eager, mapping, publish
from djqueue.client.building import JobBuilding
from djqueue.client.hooks import TaskHooks
from djqueue.client.reporting import StateReporting
from djqueue.client.validators import (
    aware,
    call_signature,
    check_priority,
    check_retry_kwargs,
    check_time_limits,
    exception_types,
    parameter_names,
)
from djqueue.core import conf, context, ids, limits, publishing, signals
from djqueue.core.context import Request
from djqueue.core.exceptions import MaxRetriesExceededError, Retry
from djqueue.core.options import JOB_OPTIONS, JobOptions, check_names
from djqueue.core.records import NewJob
from djqueue.db import broker

if TYPE_CHECKING:
    from djqueue.client.canvas import Signature
    from djqueue.client.eager import EagerResult
    from djqueue.client.result import AsyncResult

P = ParamSpec("P")
R = TypeVar("R")


class Task(JobBuilding, StateReporting, TaskHooks, Generic[P, R]):
    """A function that can run in a worker. Made by ``@djqueue.task``.

    ``Task[P, R]`` takes the parameters ``P`` and returns ``R``: ``delay`` checks its
    arguments against ``P`` and returns an ``AsyncResult[R]``.
    """

    def __init__(
        self,
        fn: Callable[..., R],
        *,
        name: str | None = None,
        queue: str | None = None,
        priority: int = 0,
        bind: bool = False,
        max_retries: int | None = 3,
        default_retry_delay: float = 180,
        autoretry_for: Sequence[type[BaseException]] = (),
        retry_backoff: bool | int = False,
        retry_backoff_max: float = 600,
        retry_jitter: bool = True,
        ignore_result: bool = False,
        expires: float | datetime.timedelta | None = None,
        time_limit: float | None = None,
        soft_time_limit: float | None = None,
        rate_limit: str | None = None,
        concurrency_limit: int | None = None,
        concurrency_key: limits.KeySource | None = None,
        unique_key: limits.KeySource | None = None,
        unique_for: float | None = None,
        acks_late: bool = False,
        retry_kwargs: dict[str, Any] | None = None,
        throws: Sequence[type[BaseException]] = (),
        typing: bool = True,
    ) -> None:
        self.fn = fn
        self.name = name or f"{fn.__module__}.{fn.__qualname__}"
        self.queue = queue
        self.priority = check_priority(priority)
        self.bind = bind
        self.max_retries = max_retries
        self.default_retry_delay = default_retry_delay
        self.autoretry_for = tuple(autoretry_for)
        self.retry_backoff = retry_backoff
        self.retry_backoff_max = retry_backoff_max
        self.retry_jitter = retry_jitter
        self.ignore_result = ignore_result
        self.expires = expires
        self.time_limit, self.soft_time_limit = check_time_limits(
            time_limit, soft_time_limit, self.name
        )
        # Limits are checked here, so that a bad option fails at import, not at send.
        self.rate_limit = rate_limit
        self.rate = None if rate_limit is None else limits.parse_rate(rate_limit)
        self.concurrency_limit = limits.check_concurrency(concurrency_limit, concurrency_key)
        self.concurrency_key = concurrency_key
        self.unique_key = unique_key
        self.unique_for = limits.check_unique(unique_key, unique_for)
        # Accepted for Celery code: jobs are acknowledged when they end, always (see
        # docs/tasks.md, "acks_late").
        self.acks_late = acks_late
        self.retry_kwargs = check_retry_kwargs(retry_kwargs, self.name)
        self.throws = exception_types(throws, "throws", self.name)
        self.typing = typing
        functools.update_wrapper(self, fn)
        self._parameters = parameter_names(fn, bind)
        self._signature = call_signature(fn, bind)

    def __repr__(self) -> str:
        return f"<task {self.name}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the function here and now, as a plain call."""
        return self.run(*args, **kwargs)

    def run(self, *args: Any, **kwargs: Any) -> R:
        """Call the wrapped function (with the task first when ``bind=True``)."""
        if self.bind:
            return self.fn(self, *args, **kwargs)
        return self.fn(*args, **kwargs)

    @property
    def request(self) -> Request:
        """The current invocation's request (empty outside a worker)."""
        return context.current_request()

    # Signatures (docs/canvas.md) -------------------------------------------------

    def s(self, *args: Any, **kwargs: Any) -> Signature[R]:
        """A signature of this task with (some of) its arguments, for workflows."""
        return canvas.Signature(self, args, kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Signature[R]:
        """An immutable signature: it ignores the result of the task before it."""
        return canvas.Signature(self, args, kwargs, immutable=True)

    def signature(
        self, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None, **options: Any
    ) -> Signature[R]:
        """A signature with sending options: ``task.signature((2,), countdown=10)``."""
        return canvas.signature(self, args, kwargs, **options)

    subtask = signature

    def map(self, it: Iterable[Any]) -> mapping.xmap:
        """One job that calls this task's function on every item: ``[f(x) for x in it]``."""
        return mapping.xmap(self, it)

    def starmap(self, it: Iterable[Sequence[Any]]) -> mapping.xstarmap:
        """One job that calls this task's function on every tuple: ``[f(*x) for x in it]``."""
        return mapping.xstarmap(self, it)

    def chunks(self, it: Iterable[Sequence[Any]], n: int) -> mapping.chunks:
        """Split ``it`` (argument tuples) into jobs of ``n`` calls each, sent as a group."""
        return mapping.chunks(self, it, n)

    # Sending --------------------------------------------------------------------

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R]:
        """Enqueue with these arguments; return an ``AsyncResult``."""
        return self.apply_async(args, kwargs)

    def apply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        link: Signature[Any] | Sequence[Signature[Any]] | None = None,
        link_error: Signature[Any] | Sequence[Signature[Any]] | None = None,
        retry: bool = True,
        retry_policy: dict[str, Any] | None = None,
        **options: Unpack[JobOptions],
    ) -> AsyncResult[R]:
        """Enqueue with options; inside ``transaction.atomic()`` the job commits with it.

        ``options`` are Celery's that shape the job (:class:`~djqueue.core.options.JobOptions`):
        ``countdown``, ``eta``, ``expires``, ``queue``, ``priority``, ``task_id``,
        ``headers``, ``shadow``, ``routing_key``, ``ignore_result``, ``time_limit`` and
        ``soft_time_limit``.

        For a task with ``unique_key``/``unique_for``, a duplicate of a waiting job
        returns that job's result instead of enqueueing a second one. ``link`` and
        ``link_error`` take signatures to run with the result on success, or with the
        job's id on failure (see docs/canvas.md).

        Type checkers cannot match ``args`` and ``kwargs`` against the task's parameters
        (``delay``'s are checked); at run time, ``typing`` (on by default) checks them when
        sent: a wrong argument raises ``TypeError`` here.

        ``headers`` are read in the task as ``self.request.headers`` (and as attributes of
        ``self.request``), ``shadow`` is the name the worker logs the job under,
        ``routing_key`` shows in ``self.request.delivery_info``; ``ignore_result``,
        ``time_limit`` and ``soft_time_limit`` override the task's for this call.
        ``retry``/``retry_policy``: outside a transaction, an INSERT that loses its
        connection is tried again on a new one (see docs/calling.md); inside one, never.
        """
        check_names(options, JOB_OPTIONS, "apply_async")
        policy = publish.policy(retry, retry_policy)
        # Imported here: results read the job model, which Django defines only once its app
        # registry is ready, and a task may be declared before that.
        from djqueue.client import result

        if link is not None or link_error is not None:
            return self._apply_linked(args, kwargs, link, link_error, options)

        job = self.prepare(args, kwargs, **options)
        if conf.flag("EAGER"):
            return self._run_eagerly(job)
        [job] = publishing.before([job])
        [job_id] = publish.send(
            lambda: broker.enqueue([job]),
            policy,
            lambda: [job.id] if broker.exists(job.id) else None,
        )
        publishing.after([job])
        signals.emit(signals.task_enqueued, self, job_ids=[str(job_id)])
        return result.AsyncResult(job_id)

    def _apply_linked(
        self,
        args: Sequence[Any] | None,
        kwargs: dict[str, Any] | None,
        link: Signature[Any] | Sequence[Signature[Any]] | None,
        link_error: Signature[Any] | Sequence[Signature[Any]] | None,
        options: JobOptions,
    ) -> AsyncResult[R]:
        """Send as a one-task workflow carrying its callbacks."""
        given = {name: value for name, value in options.items() if value is not None}
        sig = canvas.Signature(self, args or (), kwargs, given)
        return sig.apply_async(link=link, link_error=link_error)

    async def adelay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R]:
        """:meth:`delay` for async code (runs in the thread of the request's sync work,
        so it joins the same transaction as other database work done there)."""
        return await self.aapply_async(args, kwargs)

    async def aapply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> AsyncResult[R]:
        """:meth:`apply_async` for async code."""
        from asgiref.sync import sync_to_async

        return await sync_to_async(self.apply_async, thread_sensitive=True)(args, kwargs, **options)

    def delay_on_commit(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R]:
        """Like :meth:`delay`, but enqueue only once the current transaction commits."""
        return self.apply_async_on_commit(args, kwargs)

    def apply_async_on_commit(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Unpack[JobOptions],
    ) -> AsyncResult[R]:
        """Like :meth:`apply_async`, run at commit; the returned result's id is final."""
        # Imported here: results read the job model, which Django defines only once its app
        # registry is ready, and a task may be declared before that.
        from djqueue.client import result

        task_id = options.get("task_id") or ids.new_id()
        sent: JobOptions = {**options, "task_id": task_id}
        # Validate and encode now, so that bad arguments fail in the caller, not at commit.
        self.prepare(args, kwargs, **sent)
        transaction.on_commit(
            lambda: self.apply_async(args, kwargs, **sent),
            using=conf.database(),
        )
        return result.AsyncResult(ids.parse(task_id))

    def delay_many(
        self, calls: Iterable[Sequence[Any]], **options: Unpack[JobOptions]
    ) -> list[AsyncResult[R]]:
        """Enqueue one job per argument tuple in ``calls``, in one round trip per chunk."""
        return self.apply_many(((args, {}) for args in calls), **options)

    def apply_many(
        self, calls: Iterable[tuple[Sequence[Any], dict[str, Any]]], **options: Unpack[JobOptions]
    ) -> list[AsyncResult[R]]:
        """Enqueue one job per ``(args, kwargs)`` pair, with shared options."""
        # Imported here: results read the job model, which Django defines only once its app
        # registry is ready, and a task may be declared before that.
        from djqueue.client import result

        if options.get("task_id") is not None:
            raise ValueError("task_id names one job; apply_many cannot give it to many")
        jobs = [self.prepare(args, kwargs, **options) for args, kwargs in calls]
        if conf.flag("EAGER"):
            return [self._run_eagerly(job) for job in jobs]
        jobs = publishing.before(jobs)
        job_ids = broker.enqueue(jobs)
        publishing.after(jobs)
        results = [result.AsyncResult(job_id) for job_id in job_ids]
        if signals.task_enqueued.has_listeners(self):  # the ids as text only for receivers
            signals.emit(signals.task_enqueued, self, job_ids=[r.id for r in results])
        return results

    def apply(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        task_id: str | uuid.UUID | None = None,
    ) -> EagerResult[R]:
        """Run here, now, as a worker would; return an ``EagerResult`` (errors kept)."""
        job = self.prepare(args, kwargs, task_id=task_id)
        return eager.run(self, job)

    def _run_eagerly(self, job: NewJob) -> AsyncResult[R]:
        outcome = eager.run(self, job)
        if conf.flag("EAGER_PROPAGATES"):
            outcome.maybe_throw()
        # With EAGER, sending returns the EagerResult, which reads as an AsyncResult does
        # (docs/tasks.md, "Type checking"); the senders are typed for the usual case.
        return cast("AsyncResult[R]", outcome)

    # Retrying -------------------------------------------------------------------

    def retry(
        self,
        exc: BaseException | None = None,
        countdown: float | None = None,
        eta: datetime.datetime | None = None,
        max_retries: int | None = None,
        throw: bool = True,
    ) -> Retry:
        """Ask for this task to run again; use as ``raise self.retry(exc=exc)``.

        With no retries left, re-raises ``exc`` (or ``MaxRetriesExceededError``).
        """
        request = self.request
        limit = self.max_retries if max_retries is None else max_retries
        if limit is not None and request.retries >= limit:
            if exc is not None:
                raise exc
            raise MaxRetriesExceededError(
                f"task {self.name}[{request.id}] has used its {limit} retries"
            )
        if countdown is None and eta is None:
            countdown = self.default_retry_delay
        signal = Retry(exc=exc, countdown=countdown, eta=aware(eta) if eta else None)
        if throw:
            raise signal
        return signal

    # Options ----------------------------------------------------------------------

    def annotate(self, options: dict[str, Any]) -> None:
        """Set ``options`` (from the ``ANNOTATIONS`` setting) over the decorator's."""
        for key, value in options.items():
            setattr(self, key, value)
        if "rate_limit" in options:
            self.rate = None if self.rate_limit is None else limits.parse_rate(self.rate_limit)
        self.priority = check_priority(self.priority)
        self.autoretry_for = tuple(self.autoretry_for)
        self.time_limit, self.soft_time_limit = check_time_limits(
            self.time_limit, self.soft_time_limit, self.name
        )


class AsyncTask(Task[P, R]):
    """A task made from an ``async def`` function, by ``@djqueue.task``.

    It is sent and run as any task; calling it directly gives a coroutine. ``R`` is
    the coroutine's value, which is what the job's result holds.
    """

    if TYPE_CHECKING:
        # Only the types differ from Task's: the same code returns the coroutine that
        # the function made. A Task[P, R] called directly gives R, so this is a
        # knowingly narrower promise for async tasks (docs/tasks.md, "Type checking").
        def __call__(  # type: ignore[override]
            self, *args: P.args, **kwargs: P.kwargs
        ) -> Coroutine[Any, Any, R]: ...

        def run(self, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, R]: ...  # type: ignore[override]
