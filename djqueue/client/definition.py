"""Task definitions: the ``Task`` class, the ``@task`` decorator, and sending."""

from __future__ import annotations

import dataclasses
import datetime
import functools
import inspect
import json
import uuid
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Generic,
    Literal,
    ParamSpec,
    Protocol,
    TypeVar,
    cast,
    overload,
)

from django.db import transaction
from django.utils import timezone

from djqueue.client import annotation, canvas, eager, mapping, publish, routing
from djqueue.core import (
    codec,
    conf,
    context,
    executor,
    ids,
    limits,
    publishing,
    registry,
    signals,
    text,
)
from djqueue.core.context import Request
from djqueue.core.exceptions import MaxRetriesExceededError, PayloadTooLarge, Retry
from djqueue.core.records import Continuation, NewJob
from djqueue.db import broker

if TYPE_CHECKING:
    from djqueue.client.canvas import Signature
    from djqueue.client.eager import EagerResult
    from djqueue.client.result import AsyncResult

P = ParamSpec("P")
R = TypeVar("R")

PRIORITY_RANGE = (-100, 100)


class Task(Generic[P, R]):
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
        self.priority = _check_priority(priority)
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
        self.retry_kwargs = _check_retry_kwargs(retry_kwargs, self.name)
        self.throws = _exception_types(throws, "throws", self.name)
        self.typing = typing
        functools.update_wrapper(self, fn)
        self._parameters = _parameter_names(fn, bind)
        self._signature = _call_signature(fn, bind)

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

    # Hooks: override in a Task subclass given as ``base=`` (docs/tasks.md) ----------
    # They run in the process that runs the job (the worker, or the caller when eager),
    # with Celery's arguments; what they return is ignored.

    def before_start(self, task_id: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Called before the task's function, inside its run (an error fails the job)."""

    def on_success(
        self, retval: Any, task_id: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """Called when the task returned."""

    def on_failure(
        self,
        exc: BaseException,
        task_id: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: Any,
    ) -> None:
        """Called when the job fails (``einfo``: an ``ExceptionInfo`` with the traceback)."""

    def on_retry(
        self,
        exc: BaseException | None,
        task_id: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: Any,
    ) -> None:
        """Called when the job will run again (``exc``: the error that asked for it)."""

    def after_return(
        self,
        status: str,
        retval: Any,
        task_id: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: Any,
    ) -> None:
        """Called after the job succeeded or failed (not after a retry, reject or ignore)."""

    # Sending --------------------------------------------------------------------

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R]:
        """Enqueue with these arguments; return an ``AsyncResult``."""
        return self.apply_async(args, kwargs)

    def apply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        countdown: float | None = None,
        eta: datetime.datetime | None = None,
        expires: float | datetime.timedelta | datetime.datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
        task_id: str | uuid.UUID | None = None,
        link: Signature[Any] | Sequence[Signature[Any]] | None = None,
        link_error: Signature[Any] | Sequence[Signature[Any]] | None = None,
        headers: dict[str, Any] | None = None,
        shadow: str | None = None,
        routing_key: str | None = None,
        ignore_result: bool | None = None,
        time_limit: float | None = None,
        soft_time_limit: float | None = None,
        retry: bool = True,
        retry_policy: dict[str, Any] | None = None,
    ) -> AsyncResult[R]:
        """Enqueue with options; inside ``transaction.atomic()`` the job commits with it.

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
        extra: dict[str, Any] = {
            "headers": headers,
            "shadow": shadow,
            "routing_key": routing_key,
            "ignore_result": ignore_result,
            "time_limit": time_limit,
            "soft_time_limit": soft_time_limit,
        }
        policy = publish.policy(retry, retry_policy)
        # Imported here: results read the job model, which Django defines only once its app
        # registry is ready, and a task may be declared before that.
        from djqueue.client import result

        if link is not None or link_error is not None:
            return self._apply_linked(
                args,
                kwargs,
                link,
                link_error,
                countdown=countdown,
                eta=eta,
                expires=expires,
                queue=queue,
                priority=priority,
                task_id=task_id,
                **extra,
            )

        job = self.prepare(
            args,
            kwargs,
            countdown=countdown,
            eta=eta,
            expires=expires,
            queue=queue,
            priority=priority,
            task_id=task_id,
            **extra,
        )
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
        **options: Any,
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
        **options: Any,
    ) -> AsyncResult[R]:
        """Like :meth:`apply_async`, run at commit; the returned result's id is final."""
        # Imported here: results read the job model, which Django defines only once its app
        # registry is ready, and a task may be declared before that.
        from djqueue.client import result

        task_id = options.pop("task_id", None) or ids.new_id()
        # Validate and encode now, so that bad arguments fail in the caller, not at commit.
        self.prepare(args, kwargs, task_id=task_id, **options)
        transaction.on_commit(
            lambda: self.apply_async(args, kwargs, task_id=task_id, **options),
            using=conf.database(),
        )
        return result.AsyncResult(ids.parse(task_id))

    def delay_many(self, calls: Iterable[Sequence[Any]], **options: Any) -> list[AsyncResult[R]]:
        """Enqueue one job per argument tuple in ``calls``, in one round trip per chunk."""
        return self.apply_many(((args, {}) for args in calls), **options)

    def apply_many(
        self, calls: Iterable[tuple[Sequence[Any], dict[str, Any]]], **options: Any
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
        signals.emit(signals.task_enqueued, self, job_ids=[str(i) for i in job_ids])
        return [result.AsyncResult(job_id) for job_id in job_ids]

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

    # Progress ---------------------------------------------------------------------

    def update_progress(
        self, current: float, total: float | None = None, message: str = ""
    ) -> None:
        """Report how far the running job is (``bind=True`` tasks: ``self.update_progress``).

        Stored in the job's row at once (outside any transaction the task holds open, it
        is seen by others right away) and shown by the admin, ``AsyncResult.progress``
        and ``AsyncResult.info``. Does nothing outside a worker (plain calls, eager runs).
        """
        for label, value in (("current", current), ("total", total)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise TypeError(f"progress {label} must be a number, not {value!r}")
        request = self.request
        if request.id is None or request.is_eager:
            return
        broker.update_progress(
            ids.parse(request.id),
            request.attempt,
            request.hostname or "",
            {"current": current, "total": total, "message": text.storable(str(message), 1000)},
        )

    def update_state(
        self,
        task_id: str | uuid.UUID | None = None,
        state: str | None = None,
        meta: Any = None,
        **kwargs: Any,
    ) -> None:
        """Report the running job's state (any name: ``"PROGRESS"``) and its meta.

        ``AsyncResult(id).state`` shows ``state`` and ``.info`` shows ``meta`` while the
        job runs, and after the task raises ``Ignore``; when the job ends, its final
        state replaces them. Stored in the job's row at once, like ``update_progress``.
        A task reports its own state only: ``task_id`` may name nothing else. Does
        nothing outside a worker (plain calls, eager runs).
        """
        if not isinstance(state, str) or not state or len(state) > 100:
            raise ValueError(
                f"update_state takes a state name of 1 to 100 characters, not {state!r}"
            )
        request = self.request
        if task_id is not None and (
            request.id is None or ids.parse(task_id) != ids.parse(request.id)
        ):
            raise ValueError(
                f"update_state can only report the state of the running job "
                f"({request.id}), not of {task_id}: another job's state is its own worker's"
            )
        try:
            encoded = codec.dumps(meta)
        except TypeError as exc:
            raise TypeError(f"the meta of update_state must be JSON data: {exc}") from None
        cap = int(conf.get("MAX_PAYLOAD_BYTES"))
        if len(encoded) > cap:
            raise PayloadTooLarge(
                f"the meta of update_state is {len(encoded)} bytes as JSON, over the "
                f"MAX_PAYLOAD_BYTES limit of {cap}"
            )
        if request.id is None or request.is_eager:
            return
        from djqueue.db import broker

        broker.update_state(
            ids.parse(request.id), request.attempt, request.hostname or "", state, encoded
        )

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
        signal = Retry(exc=exc, countdown=countdown, eta=_aware(eta) if eta else None)
        if throw:
            raise signal
        return signal

    # Building jobs --------------------------------------------------------------

    def prepare(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        countdown: float | None = None,
        eta: datetime.datetime | None = None,
        expires: float | datetime.timedelta | datetime.datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
        task_id: str | uuid.UUID | None = None,
        partial: bool = False,
        headers: dict[str, Any] | None = None,
        shadow: str | None = None,
        routing_key: str | None = None,
        ignore_result: bool | None = None,
        time_limit: float | None = None,
        soft_time_limit: float | None = None,
    ) -> NewJob:
        """Validate and encode a call into a :class:`NewJob`; raise on bad input.

        ``partial``: the job will get one more argument first when it is released (a
        workflow step given the result before it), which the argument check allows for.
        The per-call options (``headers`` to ``soft_time_limit``), and the sending task's
        ids when sent from inside one, travel in the job's continuation (see
        :mod:`djqueue.core.options`).
        """
        carried = self._carried(
            headers, shadow, routing_key, ignore_result, time_limit, soft_time_limit
        )
        args = () if args is None else args
        kwargs = {} if kwargs is None else kwargs
        if not isinstance(args, list | tuple):
            raise TypeError(f"args of {self.name} must be a list or tuple, not {type(args)}")
        if not isinstance(kwargs, dict):
            raise TypeError(f"kwargs of {self.name} must be a dict, not {type(kwargs)}")
        if self.typing:
            self.check_arguments(args, kwargs, partial=partial)
        args_json, kwargs_json = self._encode(args, kwargs)
        if countdown is not None and eta is not None:
            raise ValueError("give countdown or eta, not both")
        expires = self.expires if expires is None else expires
        queue, priority = self._destination(queue, priority, args, kwargs)
        job = NewJob(
            id=ids.new_id() if task_id is None else ids.parse(task_id),
            task_name=self.name,
            queue=_check_queue(queue),
            priority=_check_priority(priority),
            args=args_json,
            kwargs=kwargs_json,
            max_attempts=self._max_attempts(),
            eta=_aware(eta) if eta is not None else None,
            countdown=_seconds(countdown, "countdown") if countdown is not None else None,
            expires_at=_aware(expires) if isinstance(expires, datetime.datetime) else None,
            expires_in=(
                _seconds(expires, "expires")
                if expires is not None and not isinstance(expires, datetime.datetime)
                else None
            ),
        )
        if carried:
            options = Continuation(options=json.dumps(carried))
            job = dataclasses.replace(job, workflow=options)
        if not self._limited:
            return job
        if not self._unique:
            # Rate and concurrency limits travel with the continuation (and in workflows).
            return self._limit(job, args, kwargs)
        if set(carried) - {"root_id", "parent_id"}:
            raise ValueError(
                f"{self.name} has a unique key; such tasks cannot be sent with "
                f"{', '.join(sorted(set(carried) - {'root_id', 'parent_id'}))} yet"
            )
        # A unique job keeps no continuation: the ids of the task that sent it are lost.
        return self._limit(dataclasses.replace(job, workflow=None), args, kwargs)

    def _carried(
        self,
        headers: dict[str, Any] | None,
        shadow: str | None,
        routing_key: str | None,
        ignore_result: bool | None,
        time_limit: float | None,
        soft_time_limit: float | None,
    ) -> dict[str, Any]:
        """The per-call options given, checked, plus the ids of the task sending this."""
        carried: dict[str, Any] = {}
        if headers:
            if not isinstance(headers, dict) or not all(isinstance(k, str) for k in headers):
                raise TypeError(f"headers must be a dict with str keys, not {headers!r}")
            try:
                carried["headers"] = json.loads(codec.dumps(headers))
            except TypeError as exc:
                raise TypeError(f"headers must be JSON data: {exc}") from None
        for label, value in (("shadow", shadow), ("routing_key", routing_key)):
            if value is not None:
                if not isinstance(value, str) or len(value) > 255:
                    raise TypeError(f"{label} must be a str of at most 255 characters: {value!r}")
                carried[label] = value
        if ignore_result is not None:
            carried["ignore_result"] = bool(ignore_result)
        if time_limit is not None or soft_time_limit is not None:
            hard, soft = check_time_limits(time_limit, soft_time_limit, f"this call of {self.name}")
            carried.update({"time_limit": hard, "soft_time_limit": soft})
        sender = context.current_request()
        if sender.id is not None:
            carried["root_id"] = str(sender.root_id or sender.id)
            carried["parent_id"] = str(sender.id)
        return carried

    def check_arguments(
        self, args: Sequence[Any], kwargs: dict[str, Any], *, partial: bool = False
    ) -> None:
        """Raise ``TypeError`` if the function cannot take these arguments (``typing``)."""
        if self._signature is None:
            return
        given = (None, *args) if partial else tuple(args)
        try:
            self._signature.bind(*given, **kwargs)
        except TypeError as exc:
            parameters = ", ".join(
                str(p.replace(annotation=p.empty)) for p in self._signature.parameters.values()
            )
            raise TypeError(
                f"{self.name}() cannot take these arguments: {exc} (it takes "
                f"({parameters})); fix the call, or give the task typing=False to send "
                "calls unchecked"
            ) from None

    def _max_attempts(self) -> int | None:
        """Claims a job may have: its retries (``retry_kwargs`` may allow more) plus one."""
        limits_ = [self.max_retries, self.retry_kwargs.get("max_retries", self.max_retries)]
        if any(limit is None for limit in limits_):
            return None
        return max(int(limit) for limit in limits_ if limit is not None) + 1

    def annotate(self, options: dict[str, Any]) -> None:
        """Set ``options`` (from the ``ANNOTATIONS`` setting) over the decorator's."""
        for key, value in options.items():
            setattr(self, key, value)
        if "rate_limit" in options:
            self.rate = None if self.rate_limit is None else limits.parse_rate(self.rate_limit)
        self.priority = _check_priority(self.priority)
        self.autoretry_for = tuple(self.autoretry_for)
        self.time_limit, self.soft_time_limit = check_time_limits(
            self.time_limit, self.soft_time_limit, self.name
        )

    def _destination(
        self,
        queue: str | None,
        priority: int | None,
        args: Sequence[Any],
        kwargs: dict[str, Any],
    ) -> tuple[str, int]:
        """The queue and priority of a call: the call's, the task's, the ``ROUTES``
        route's, then the defaults, in that order (as Celery merges them)."""
        found = routing.route(self.name, args, kwargs, self)
        if queue is None:
            queue = self.queue or (found and found.queue) or conf.string("DEFAULT_QUEUE")
        if priority is None:
            routed = found.priority if found is not None else None
            priority = self.priority if self.priority or routed is None else routed
        return str(queue), priority

    @property
    def gated(self) -> bool:
        """Whether jobs of this task wait for a rate or concurrency limit."""
        return self.rate is not None or self.concurrency_limit is not None

    @property
    def _limited(self) -> bool:
        return self.rate is not None or self.concurrency_limit is not None or self._unique

    @property
    def _unique(self) -> bool:
        return self.unique_key is not None or self.unique_for is not None

    def _limit(self, job: NewJob, args: Sequence[Any], kwargs: dict[str, Any]) -> NewJob:
        """``job`` with this task's limits and this call's keys filled in."""
        concurrency_key = None
        if self.concurrency_limit is not None:
            concurrency_key = (
                self.name
                if self.concurrency_key is None
                else self._key(self.concurrency_key, "concurrency_key", args, kwargs)
            )
        unique_key = None
        if self.unique_key is not None:
            unique_key = self._key(self.unique_key, "unique_key", args, kwargs)
        elif self.unique_for is not None:
            unique_key = limits.call_key(self.name, job.args, job.kwargs)
        return dataclasses.replace(
            job,
            rate_limit=None if self.rate is None else self.rate.count,
            rate_period=None if self.rate is None else self.rate.period,
            concurrency_key=concurrency_key,
            concurrency_limit=self.concurrency_limit,
            unique_key=unique_key,
            unique_for=self.unique_for,
        )

    def _key(
        self, source: limits.KeySource, label: str, args: Sequence[Any], kwargs: dict[str, Any]
    ) -> str:
        return limits.compute_key(source, label, self.name, self._signature, args, kwargs)

    def _encode(self, args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[str, str]:
        try:
            args_json, kwargs_json = codec.dumps(list(args)), codec.dumps(kwargs)
        except TypeError as exc:
            raise TypeError(self._unencodable(args, kwargs, exc)) from None
        size = len(args_json) + len(kwargs_json)
        cap = conf.integer("MAX_PAYLOAD_BYTES")
        if size > cap:
            raise PayloadTooLarge(
                f"arguments of {self.name} are {size} bytes as JSON, over the "
                f"MAX_PAYLOAD_BYTES limit of {cap}; store large data elsewhere (a model "
                "row, a file) and pass its key"
            )
        return args_json, kwargs_json

    def _unencodable(self, args: Sequence[Any], kwargs: dict[str, Any], exc: Exception) -> str:
        labelled = [(self._label(index), value) for index, value in enumerate(args)] + [
            (f"argument {key!r}", value) for key, value in kwargs.items()
        ]
        for label, value in labelled:
            found = codec.describe_unencodable(value)
            if found:
                path, problem = found
                return (
                    f"cannot send {self.name}: {label}{path} {problem}, which JSON cannot "
                    "carry; pass plain data instead (ids, strings, numbers, lists, dicts, "
                    "dates and times, Decimal, UUID)"
                )
        return f"cannot send {self.name}: {exc}"

    def _label(self, index: int) -> str:
        if index < len(self._parameters):
            return f"argument {self._parameters[index]!r} (args[{index}])"
        return f"args[{index}]"


# Hooks a subclass does not override are skipped by the executor, at no cost.
for _hook in ("before_start", "on_success", "on_failure", "on_retry", "after_return"):
    setattr(getattr(Task, _hook), executor.DEFAULT_HOOK, True)


def _parameter_names(fn: Callable[..., Any], bind: bool) -> list[str]:
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return []
    positional = [
        p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return positional[1:] if bind else positional


def _call_signature(fn: Callable[..., Any], bind: bool) -> inspect.Signature | None:
    """``fn``'s signature as callers see it (without the task itself when bound)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    if not bind:
        return signature
    return signature.replace(parameters=list(signature.parameters.values())[1:])


def check_time_limits(
    hard: float | None,
    soft: float | None,
    owner: str,
    names: tuple[str, str] = ("time_limit", "soft_time_limit"),
) -> tuple[float | None, float | None]:
    """Validate a hard and a soft time limit (seconds); return them as floats.

    ``names`` are what the caller calls the two limits (task options, or worker flags),
    so that an error names what the user wrote.
    """
    hard_name, soft_name = names
    for label, value in ((hard_name, hard), (soft_name, soft)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
        ):
            raise ValueError(
                f"{label} of {owner} must be a positive number of seconds, not {value!r}"
            )
    if hard is not None and soft is not None and soft >= hard:
        raise ValueError(
            f"{soft_name} of {owner} ({soft}s) must be below its {hard_name} ({hard}s), "
            "so that the task can clean up before it is stopped"
        )
    return (
        None if hard is None else float(hard),
        None if soft is None else float(soft),
    )


_RETRY_KWARGS = frozenset({"countdown", "eta", "max_retries"})


def _check_retry_kwargs(given: dict[str, Any] | None, owner: str) -> dict[str, Any]:
    """``retry_kwargs``: what ``autoretry_for`` passes to ``retry()``."""
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise TypeError(f"retry_kwargs of {owner} must be a dict, not {given!r}")
    unknown = set(given) - _RETRY_KWARGS
    if unknown:
        raise TypeError(
            f"retry_kwargs of {owner} has unknown key(s) {', '.join(sorted(unknown))}; "
            f"it takes {', '.join(sorted(_RETRY_KWARGS))}"
        )
    return dict(given)


def _exception_types(
    given: Sequence[type[BaseException]], label: str, owner: str
) -> tuple[type[BaseException], ...]:
    types = tuple(given) if isinstance(given, list | tuple) else (given,)
    for item in types:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise TypeError(f"{label} of {owner} must list exception classes, not {item!r}")
    return types


def _check_priority(priority: int) -> int:
    low, high = PRIORITY_RANGE
    if not isinstance(priority, int) or isinstance(priority, bool) or not low <= priority <= high:
        raise ValueError(f"priority must be a whole number from {low} to {high}, not {priority!r}")
    return priority


def _check_queue(queue: str) -> str:
    if not isinstance(queue, str) or not queue or len(queue) > 100:
        raise ValueError(f"queue must be a non-empty name of at most 100 characters: {queue!r}")
    return queue


def _seconds(value: float | datetime.timedelta, label: str) -> float:
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{label} must be seconds (a number) or a timedelta, not {value!r}")
    return float(value)


def _aware(moment: datetime.datetime) -> datetime.datetime:
    if not isinstance(moment, datetime.datetime):
        raise TypeError(f"expected a datetime, not {moment!r}")
    if timezone.is_naive(moment):
        # A naive moment means local time (the current time zone), as in the rest of Django.
        return timezone.make_aware(moment, timezone.get_current_timezone())
    return moment


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


class TaskDecorator(Protocol):
    """What ``@djqueue.task(...)`` with options gives: it makes the task."""

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> AsyncTask[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, R], /) -> Task[P, R]: ...


class BoundTaskDecorator(Protocol):
    """What ``@djqueue.task(bind=True, ...)`` gives: the function's first parameter is
    the task itself, so callers pass the parameters after it."""

    @overload
    def __call__(
        self, fn: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]], /
    ) -> AsyncTask[P, R]: ...

    @overload
    def __call__(self, fn: Callable[Concatenate[Any, P], R], /) -> Task[P, R]: ...


@overload
def task(fn: Callable[P, Coroutine[Any, Any, R]], /) -> AsyncTask[P, R]: ...


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...


@overload
def task(fn: None = None, /, *, bind: Literal[True], **options: Any) -> BoundTaskDecorator: ...


@overload
def task(fn: None = None, /, *, bind: Literal[False] = False, **options: Any) -> TaskDecorator: ...


@overload
def task(
    fn: None = None, /, *, bind: bool, **options: Any
) -> Callable[[Callable[..., Any]], Task[..., Any]]: ...


def task(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Make ``fn`` a task: ``@task`` or ``@task(name=..., queue=..., ...)``.

    ``base=`` names a ``Task`` subclass to make it with: its hooks run, and the options
    it sets as class attributes are defaults that the decorator's options override.
    """
    base = options.pop("base", None)
    if base is not None and not (isinstance(base, type) and issubclass(base, Task)):
        raise TypeError(f"base must be a subclass of djqueue.Task, not {base!r}")
    if base is not None:
        options = {**_class_options(base), **options}

    def decorate(function: Callable[..., Any]) -> Task[..., Any]:
        kind = base or (AsyncTask if inspect.iscoroutinefunction(function) else Task)
        made: Task[..., Any] = kind(function, **options)
        made.annotate(annotation.options_for(made))
        registry.register(made)
        return made

    if fn is not None:
        return decorate(fn)
    return decorate


def _class_options(base: type[Task[Any, Any]]) -> dict[str, Any]:
    """Options a ``Task`` subclass sets as class attributes (the nearest class wins)."""
    names = set(inspect.signature(Task.__init__).parameters) - {"self", "fn"}
    found: dict[str, Any] = {}
    for klass in base.__mro__:
        if klass is Task:
            break
        for name in names & set(vars(klass)):
            found.setdefault(name, vars(klass)[name])
    return found


shared_task = task
