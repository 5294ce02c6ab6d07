"""Building a job from a call: ``Task.prepare`` and its checks (arguments against the
function's signature, options, payload size, JSON encoding, routing, limits and keys).

A mixin of :class:`djqueue.client.definition.Task`, which sets the attributes it reads.
"""

from __future__ import annotations

import dataclasses
import datetime
import inspect
import json
import sys
from collections.abc import Sequence
from typing import Any, Unpack

from djqueue.client import routing
from djqueue.client.validators import aware, check_priority, check_queue, check_time_limits, seconds
from djqueue.core import codec, conf, context, ids, limits
from djqueue.core.exceptions import PayloadTooLarge
from djqueue.core.options import JOB_OPTIONS, JobOptions, check_names
from djqueue.core.records import Continuation, NewJob


class JobBuilding:
    """How a task turns a call into a :class:`NewJob`, checking what it is given."""

    # Set by Task.__init__ (and Task.annotate).
    name: str
    queue: str | None
    priority: int
    expires: float | datetime.timedelta | None
    max_retries: int | None
    retry_kwargs: dict[str, Any]
    typing: bool
    rate: limits.Rate | None
    concurrency_limit: int | None
    concurrency_key: limits.KeySource | None
    unique_key: limits.KeySource | None
    unique_for: float | None
    _parameters: list[str]
    _signature: inspect.Signature | None
    # The signature's (signature, fewest, most) positional arguments, once worked out.
    _arity: tuple[inspect.Signature, int, int] | None = None

    def prepare(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        partial: bool = False,
        **options: Unpack[JobOptions],
    ) -> NewJob:
        """Validate and encode a call into a :class:`NewJob`; raise on bad input.

        ``partial``: the job will get one more argument first when it is released (a
        workflow step given the result before it), which the argument check allows for.
        ``options`` are those of ``apply_async`` that shape a job (:class:`JobOptions`);
        the per-call ones (``headers`` to ``soft_time_limit``), and the sending task's ids
        when sent from inside one, travel in the job's continuation (see
        :mod:`djqueue.core.options`).
        """
        check_names(options, JOB_OPTIONS, "prepare")
        carried = self._carried(options)
        args = () if args is None else args
        kwargs = {} if kwargs is None else kwargs
        if not isinstance(args, list | tuple):
            raise TypeError(f"args of {self.name} must be a list or tuple, not {type(args)}")
        if not isinstance(kwargs, dict):
            raise TypeError(f"kwargs of {self.name} must be a dict, not {type(kwargs)}")
        if self.typing:
            self.check_arguments(args, kwargs, partial=partial)
        args_json, kwargs_json = self._encode(args, kwargs)
        countdown, eta = options.get("countdown"), options.get("eta")
        if countdown is not None and eta is not None:
            raise ValueError("give countdown or eta, not both")
        expires = options.get("expires")
        expires = self.expires if expires is None else expires
        queue, priority = self._destination(
            options.get("queue"), options.get("priority"), args, kwargs
        )
        task_id = options.get("task_id")
        job = NewJob(
            id=ids.new_id() if task_id is None else ids.parse(task_id),
            task_name=self.name,
            queue=check_queue(queue),
            priority=check_priority(priority),
            args=args_json,
            kwargs=kwargs_json,
            max_attempts=self._max_attempts(),
            eta=aware(eta) if eta is not None else None,
            countdown=seconds(countdown, "countdown") if countdown is not None else None,
            expires_at=aware(expires) if isinstance(expires, datetime.datetime) else None,
            expires_in=(
                seconds(expires, "expires")
                if expires is not None and not isinstance(expires, datetime.datetime)
                else None
            ),
        )
        if carried:
            job = dataclasses.replace(job, workflow=Continuation(options=json.dumps(carried)))
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

    def _carried(self, options: JobOptions) -> dict[str, Any]:
        """The per-call options given, checked, plus the ids of the task sending this."""
        carried: dict[str, Any] = {}
        if options:  # most calls give none: delay() never does
            self._check_carried(options, carried)
        sender = context.current_request()
        if sender.id is not None:
            carried["root_id"] = str(sender.root_id or sender.id)
            carried["parent_id"] = str(sender.id)
        return carried

    def _check_carried(self, options: JobOptions, carried: dict[str, Any]) -> None:
        """Put the per-call options of ``options`` into ``carried``, checked."""
        headers = options.get("headers")
        if headers:
            if not isinstance(headers, dict) or not all(isinstance(k, str) for k in headers):
                raise TypeError(f"headers must be a dict with str keys, not {headers!r}")
            try:
                carried["headers"] = json.loads(codec.dumps(headers))
            except TypeError as exc:
                raise TypeError(f"headers must be JSON data: {exc}") from None
        for label, value in (
            ("shadow", options.get("shadow")),
            ("routing_key", options.get("routing_key")),
        ):
            if value is not None:
                if not isinstance(value, str) or len(value) > 255:
                    raise TypeError(f"{label} must be a str of at most 255 characters: {value!r}")
                carried[label] = value
        ignore_result = options.get("ignore_result")
        if ignore_result is not None:
            carried["ignore_result"] = bool(ignore_result)
        time_limit, soft_time_limit = options.get("time_limit"), options.get("soft_time_limit")
        if time_limit is not None or soft_time_limit is not None:
            hard, soft = check_time_limits(time_limit, soft_time_limit, f"this call of {self.name}")
            carried.update({"time_limit": hard, "soft_time_limit": soft})

    def check_arguments(
        self, args: Sequence[Any], kwargs: dict[str, Any], *, partial: bool = False
    ) -> None:
        """Raise ``TypeError`` if the function cannot take these arguments (``typing``)."""
        signature = self._signature
        if signature is None:
            return
        count = len(args) + (1 if partial else 0)
        if not kwargs:
            arity = self._arity
            if arity is None or arity[0] is not signature:
                arity = self._arity = (signature, *_positional_arity(signature))
            if arity[1] <= count <= arity[2]:
                return  # what bind() would accept, without building its mapping
        given = (None, *args) if partial else tuple(args)
        try:
            signature.bind(*given, **kwargs)
        except TypeError as exc:
            parameters = ", ".join(
                str(p.replace(annotation=p.empty)) for p in signature.parameters.values()
            )
            raise TypeError(
                f"{self.name}() cannot take these arguments: {exc} (it takes "
                f"({parameters})); fix the call, or give the task typing=False to send "
                "calls unchecked"
            ) from None

    def _max_attempts(self) -> int | None:
        """Claims a job may have: its retries (``retry_kwargs`` may allow more) plus one."""
        task = self.max_retries
        given = self.retry_kwargs.get("max_retries", task) if self.retry_kwargs else task
        if task is None or given is None:
            return None
        return max(int(task), int(given)) + 1

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


def _positional_arity(signature: inspect.Signature) -> tuple[int, int]:
    """The fewest and most positional arguments that, given alone, ``signature`` takes.

    ``(1, 0)`` (never: always ask ``bind``) when a keyword-only parameter has no default.
    """
    fewest = most = 0
    for parameter in signature.parameters.values():
        kind = parameter.kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            most = sys.maxsize
        elif kind is inspect.Parameter.KEYWORD_ONLY:
            if parameter.default is inspect.Parameter.empty:
                return 1, 0
        elif kind is not inspect.Parameter.VAR_KEYWORD:
            most += 1
            if parameter.default is inspect.Parameter.empty:
                fewest = most
    return fewest, most
