"""Workflows: signatures, chain, group, chord and link/link_error callbacks.

A workflow is sent as rows: every job it will run exists from the start (the ones that
wait for another have an eta in the year 9999), each carrying its continuation as JSON in
``Job.workflow``: the waiting jobs its success releases (``next``), callbacks to insert
(``link``, ``link_error``), the waiting jobs its failure revokes (``cancel``) and the chord
it counts toward. The statement that records a job's outcome acts on that continuation
(``sql.parts.FOLLOW_UP``), so the workflow lives in PostgreSQL and survives any worker.
"""

from __future__ import annotations

import copy
import datetime
import functools
import inspect
import itertools
import json
import logging
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, Union, cast, overload

from djqueue.client.typevars import R, T
from djqueue.core import conf, context, ids, publishing, registry
from djqueue.core.records import NewJob
from djqueue.db import broker

if TYPE_CHECKING:
    from typing_extensions import TypeVar as DefaultedTypeVar

    from djqueue.client.definition import Task
    from djqueue.client.eager import EagerResult
    from djqueue.client.result import AsyncResult, GroupResult

    # What sending a chain or a chord gives: the result of its last step (``H``), or of
    # the step put after it (``N``). Unknown, it is either kind.
    H = DefaultedTypeVar(
        "H", bound="AsyncResult[Any] | GroupResult", default="AsyncResult[Any] | GroupResult"
    )
    N = DefaultedTypeVar(
        "N", bound="AsyncResult[Any] | GroupResult", default="AsyncResult[Any] | GroupResult"
    )
else:
    H = TypeVar("H")
    N = TypeVar("N")

_OPTIONS = (
    "queue",
    "priority",
    "countdown",
    "eta",
    "expires",
    "task_id",
    # Per-call options, carried in the job's continuation (djqueue.core.options).
    "headers",
    "shadow",
    "routing_key",
    "ignore_result",
    "time_limit",
    "soft_time_limit",
)
logger = logging.getLogger("djqueue.canvas")

# Options a chain, group or chord passes down to its tasks (which may override them).
_DEFAULTS = ("queue", "priority")


class Signature(Generic[R]):
    """A task with (some of) its arguments and options: ``task.s(...)``, ``task.si(...)``.

    Partial: applied in a workflow, the result of the job before it comes first in its
    arguments, unless it is immutable (``si``). ``Signature[int]`` is a signature of a
    task that returns an ``int``; of a task given by name, ``Signature[Any]``.
    """

    def __init__(
        self,
        task: Task[Any, R] | str,
        args: Iterable[Any] = (),
        kwargs: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        immutable: bool = False,
    ) -> None:
        self.task: Task[Any, R] = registry.get(task) if isinstance(task, str) else task
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        self.options: dict[str, Any] = {}
        self.immutable = immutable
        self.set(**(options or {}))

    def __repr__(self) -> str:
        shown = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.task.name}{'!' if self.immutable else ''}({', '.join(shown)})"

    def set(self, **options: Any) -> Self:
        """Set sending options (``queue``, ``priority``, ``countdown``, ``eta``,
        ``expires``, ``task_id``) in place; return the signature."""
        unknown = set(options) - set(_OPTIONS) - {"link", "link_error"}
        if unknown:
            raise TypeError(f"unknown signature option(s): {', '.join(sorted(unknown))}")
        for name in ("link", "link_error"):
            for callback in _callbacks(options.pop(name, None)):
                getattr(self, name)(callback)
        self.options.update(options)
        return self

    def clone(self, args: Iterable[Any] = (), kwargs: dict[str, Any] | None = None) -> Self:
        """A copy with ``args`` put first and ``kwargs`` merged (ignored when immutable)."""
        made = copy.copy(self)
        made.options = {
            key: list(value) if isinstance(value, list) else value
            for key, value in self.options.items()
        }
        if not self.immutable:
            made.args = (*args, *self.args)
            made.kwargs = {**self.kwargs, **(kwargs or {})}
        return made

    def link(self, callback: Signature[T]) -> Signature[T]:
        """Run ``callback`` with this job's result when it succeeds; return ``callback``."""
        self.options.setdefault("link", []).append(_signature(callback))
        return callback

    def link_error(self, errback: Signature[T]) -> Signature[T]:
        """Run ``errback`` when the job fails (with its id, or its request, error and
        traceback: docs/canvas.md); return ``errback``."""
        self.options.setdefault("link_error", []).append(_signature(errback))
        return errback

    def on_error(self, errback: Signature[Any]) -> Self:
        """:meth:`link_error` that returns this signature, to send it in one line."""
        self.link_error(errback)
        return self

    @overload
    def __or__(self, other: Signature[T]) -> chain[AsyncResult[T]]: ...

    @overload
    def __or__(self, other: group) -> chain[GroupResult]: ...

    @overload
    def __or__(self, other: chain[N] | chord[N]) -> chain[N]: ...

    def __or__(self, other: Any) -> chain[Any]:
        return chain(self, other)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the task's function here and now, with the partial arguments."""
        made = self.clone(args, kwargs)
        return made.task.run(*made.args, **made.kwargs)

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult[R]:
        """Send it with these extra arguments."""
        return self.apply_async(args, kwargs)

    def apply_async(
        self, args: Iterable[Any] = (), kwargs: dict[str, Any] | None = None, **options: Any
    ) -> AsyncResult[R]:
        """Send it (extra ``args`` first, ``options`` over its own); return its result."""
        # apply() gives the result of the node's last step: here, this task's.
        return cast("AsyncResult[R]", apply(self.clone(args, kwargs).set(**options)))

    def apply(
        self, args: Iterable[Any] = (), kwargs: dict[str, Any] | None = None, **options: Any
    ) -> EagerResult[R]:
        """Run it here and now, as sending it does in eager mode (Celery's ``apply``);
        return its ``EagerResult``."""
        return cast("EagerResult[R]", _run_eagerly(self.clone(args, kwargs).set(**options)))


class _Composite(Generic[H]):
    """What chain, group and chord share: options, callbacks, and ``delay()``.

    ``H`` is what sending it gives: an ``AsyncResult`` or a ``GroupResult``.
    """

    options: dict[str, Any]

    def set(self, **options: Any) -> Self:
        """Set ``queue`` or ``priority`` for its tasks (theirs win); ``link``, ``link_error``."""
        _set(self, options)
        return self

    def link(self, callback: Signature[T]) -> Signature[T]:
        return _link(self, "link", callback)

    def link_error(self, errback: Signature[T]) -> Signature[T]:
        return _link(self, "link_error", errback)

    def on_error(self, errback: Signature[Any]) -> Self:
        """:meth:`link_error` that returns this workflow, to send it in one line."""
        self.link_error(errback)
        return self

    def delay(self, *args: Any, **kwargs: Any) -> H:
        return self.apply_async(args, kwargs)

    def apply_async(
        self, args: Iterable[Any] = (), kwargs: dict[str, Any] | None = None, **options: Any
    ) -> H:
        raise NotImplementedError

    def apply(self, args: Iterable[Any] = (), kwargs: dict[str, Any] | None = None) -> H:
        """Run it here and now, as sending it does in eager mode (Celery's ``apply``);
        return its result."""
        return cast("H", _run_eagerly(_partial(cast("Canvas", self), args, kwargs)))


class chain(_Composite[H]):  # Celery's lower-case name
    """Run tasks one after the other, each given the result of the one before.

    Returns, when sent, the last task's result, whose ``.parent`` is the one before.
    ``chain[AsyncResult[int]]`` ends with a task that returns an ``int``; a chain that
    ends with a group is a ``chain[GroupResult]``.
    """

    # Typed by the last step, which gives the chain's result.
    @overload
    def __init__(
        self: chain[AsyncResult[T]], *tasks: *tuple[*tuple[Canvas, ...], Signature[T]]
    ) -> None: ...

    @overload
    def __init__(self: chain[GroupResult], *tasks: *tuple[*tuple[Canvas, ...], group]) -> None: ...

    @overload
    def __init__(self, *tasks: *tuple[*tuple[Canvas, ...], chain[H] | chord[H]]) -> None: ...

    @overload
    def __init__(self: chain[AsyncResult[T]], *tasks: Signature[T]) -> None: ...

    @overload
    def __init__(self: chain[AsyncResult[T]], tasks: Iterable[Signature[T]], /) -> None: ...

    @overload
    def __init__(self: chain[AsyncResult[Any] | GroupResult], *tasks: Any) -> None: ...

    def __init__(self, *given: object) -> None:
        # (``object``: mypy checks the overloads' unpacked ``*tasks`` against it only so.)
        tasks: tuple[Any, ...] = given
        if len(tasks) == 1 and not isinstance(tasks[0], Signature | chain | group | chord):
            tasks = tuple(tasks[0])
        flat: list[Canvas] = []
        for task in tasks:
            # A chain in a chain with no options of its own is the same as its steps.
            flat.extend(task.tasks if isinstance(task, chain) and not task.options else [task])
        if not flat:
            raise ValueError("a chain needs at least one task")
        self.tasks: list[Canvas] = [_node(task) for task in flat]
        self.options: dict[str, Any] = {}

    def __repr__(self) -> str:
        return " | ".join(repr(task) for task in self.tasks)

    @overload
    def __or__(self, other: Signature[T]) -> chain[AsyncResult[T]]: ...

    @overload
    def __or__(self, other: group) -> chain[GroupResult]: ...

    @overload
    def __or__(self, other: chain[N] | chord[N]) -> chain[N]: ...

    def __or__(self, other: Any) -> chain[Any]:
        return chain(*self.tasks, other) if not self.options else chain(self, other)

    def apply_async(
        self, args: Iterable[Any] = (), kwargs: dict[str, Any] | None = None, **options: Any
    ) -> H:
        """Send the chain (extra ``args`` go to the first task); return the last result."""
        made = chain(_partial(self.tasks[0], args, kwargs), *self.tasks[1:])
        made.options = {**self.options}
        # apply() gives the result of the last step, which H describes.
        return cast("H", apply(_set(made, options)))

    def __call__(self, *args: Any, **kwargs: Any) -> H:
        return self.apply_async(args, kwargs)


class group(_Composite["GroupResult"]):  # Celery's lower-case name
    """Run tasks in parallel; sent, returns a ``GroupResult`` (results in this order)."""

    def __init__(self, *tasks: Any) -> None:
        if len(tasks) == 1 and not isinstance(tasks[0], Signature | chain | group | chord):
            tasks = tuple(tasks[0])  # a list, tuple or generator
        self.tasks: list[Canvas] = [_node(task) for task in tasks]
        for task in self.tasks:
            # A group in a group is unrolled (its tasks become members, as in Celery); any
            # other member must give one result: a task, or a chain or chord ending in one.
            if not isinstance(task, group) and not _single(task):
                raise TypeError(
                    "a group member must be a signature, a group, or a chain or chord "
                    f"whose last step is a signature, not {task!r}"
                )
        self.options: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"group({', '.join(repr(task) for task in self.tasks)})"

    @overload
    def __or__(self, other: Signature[T]) -> chord[AsyncResult[T]]: ...

    @overload
    def __or__(self, other: group) -> chord[GroupResult]: ...

    @overload
    def __or__(self, other: chain[N] | chord[N]) -> chord[N]: ...

    def __or__(self, other: Any) -> chord[Any]:
        # A group followed by a task is a chord: the task gets the list of results.
        return chord(self, other)

    def apply_async(
        self, args: Iterable[Any] = (), kwargs: dict[str, Any] | None = None, **options: Any
    ) -> GroupResult:
        """Send every member (extra ``args`` go to each); return a ``GroupResult``."""
        made = group([_partial(task, args, kwargs) for task in self.tasks])
        made.options = {**self.options}
        # apply() gives a group's GroupResult.
        return cast("GroupResult", apply(_set(made, options)))

    def __call__(self, *args: Any, **kwargs: Any) -> GroupResult:
        return self.apply_async(args, kwargs)


class chord(_Composite[H]):  # Celery's lower-case name
    """Run a group (the header), then the body once with the list of their results.

    The body runs exactly once, after every header task ended; if one failed, the body
    does not run and its result raises ``ChordError`` naming that task. Sent, it gives
    the body's result: ``chord[AsyncResult[int]]`` has a body that returns an ``int``.
    """

    # Typed by the body, which gives the chord's result.
    @overload
    def __init__(self: chord[AsyncResult[T]], header: Any, body: Signature[T]) -> None: ...

    @overload
    def __init__(self: chord[GroupResult], header: Any, body: group) -> None: ...

    @overload
    def __init__(self, header: Any, body: chain[H] | chord[H]) -> None: ...

    @overload
    def __init__(self, header: Any, body: None = None) -> None: ...

    def __init__(self, header: Any, body: Any = None) -> None:
        self.header = header if isinstance(header, group) else group(header)
        self.body: Canvas | None = None if body is None else _node(body)
        self.options: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"chord({self.header!r}, {self.body!r})"

    @overload
    def __or__(self, other: Signature[T]) -> chord[AsyncResult[T]]: ...

    @overload
    def __or__(self, other: group) -> chord[GroupResult]: ...

    @overload
    def __or__(self, other: chain[N] | chord[N]) -> chord[N]: ...

    def __or__(self, other: Any) -> chord[Any]:
        # As Celery: what follows a chord runs after its body, so it joins the body.
        made: chord[Any] = chord(self.header, other if self.body is None else self.body | other)
        made.options = {**self.options}
        return made

    def apply_async(
        self, args: Iterable[Any] = (), kwargs: dict[str, Any] | None = None, **options: Any
    ) -> H:
        """Send it (extra ``args`` go to each header task); return the body's result."""
        if self.body is None:
            raise TypeError("a chord needs a body: chord(header, body) or chord(header)(body)")
        made = chord(group([_partial(t, args, kwargs) for t in self.header.tasks]), self.body)
        made.options = {**self.options}
        # apply() gives the result of the body, which H describes.
        return cast("H", apply(_set(made, options)))

    @overload
    def __call__(self, body: Signature[T], **options: Any) -> AsyncResult[T]: ...

    @overload
    def __call__(self, body: group, **options: Any) -> GroupResult: ...

    @overload
    def __call__(self, body: chain[N] | chord[N], **options: Any) -> N: ...

    @overload
    def __call__(self, body: None = None, **options: Any) -> H: ...

    def __call__(self, body: Any = None, **options: Any) -> Any:
        """``chord(header)(body)``: send with this body."""
        made = chord(self.header, body if body is not None else self.body)
        made.options = {**self.options}
        return made.apply_async(**options)


Canvas = Union[Signature[Any], chain[Any], group, chord[Any]]  # noqa: UP007 - a runtime alias


def signature(
    task: Task[Any, R] | str,
    args: Iterable[Any] = (),
    kwargs: dict[str, Any] | None = None,
    **options: Any,
) -> Signature[R]:
    """A signature of ``task`` (a task or a registered task name)."""
    immutable = bool(options.pop("immutable", False))
    return Signature(task, args, kwargs, options, immutable=immutable)


def _single(node: Canvas) -> bool:
    """Whether sending ``node`` gives one job's result (not a group's)."""
    if isinstance(node, Signature):
        return True
    if isinstance(node, chain):
        return _single(list(_chords_in(node.tasks))[-1])
    if isinstance(node, chord):
        return node.body is not None and _single(node.body)
    return False


def _node(value: Any) -> Canvas:
    if isinstance(value, Signature | chain | group | chord):
        return value
    raise TypeError(f"expected a signature, chain, group or chord, not {value!r}")


def _signature(value: Any) -> Signature:
    if not isinstance(value, Signature):
        raise TypeError(f"a callback must be a signature (task.s(...)), not {value!r}")
    return value


def _callbacks(value: Any) -> list[Signature]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [_signature(item) for item in value]
    return [_signature(value)]


def _partial(node: Canvas, args: Iterable[Any], kwargs: dict[str, Any] | None) -> Canvas:
    """``node`` with extra arguments for its first task(s)."""
    args = tuple(args)
    if not args and not kwargs:
        return node
    if isinstance(node, Signature):
        return node.clone(args, kwargs)
    if isinstance(node, chain):
        made = chain(_partial(node.tasks[0], args, kwargs), *node.tasks[1:])
    elif isinstance(node, group):
        made = group([_partial(task, args, kwargs) for task in node.tasks])  # type: ignore[assignment]
    else:
        made = chord(_partial(node.header, args, kwargs), node.body)  # type: ignore[assignment]
    made.options = {**node.options}
    return made


def _set(node: Any, options: dict[str, Any]) -> Any:
    for name in ("link", "link_error"):
        for callback in _callbacks(options.pop(name, None)):
            _link(node, name, callback)
    # countdown and eta delay what starts the node: a chain's first task, a group's
    # tasks, a chord's header (as Celery applies them).
    if options.get("countdown") is not None and options.get("eta") is not None:
        raise ValueError("give countdown or eta, not both")
    unknown = set(options) - {"queue", "priority", "countdown", "eta"}
    if unknown:
        raise TypeError(f"unknown workflow option(s): {', '.join(sorted(unknown))}")
    node.options.update(options)
    return node


def _link(node: Any, name: str, callback: Signature) -> Signature:
    node.options.setdefault(name, []).append(_signature(callback))
    return callback


# Sending ----------------------------------------------------------------------------


def apply(node: Canvas) -> Any:
    """Send ``node`` as one workflow; return its result (see each primitive)."""
    if conf.flag("EAGER"):
        return _run_eagerly(node)
    plan = _Plan()
    part = plan.add(node, waiting=False, defaults={})
    jobs = publishing.before(plan.jobs())
    broker.enqueue_workflow(jobs, plan.groups)
    publishing.after(jobs)
    return part.result


@dataclass
class _Part:
    """What planning one node gave: the jobs that start it, those whose results are its
    result, all its jobs, and its result handle."""

    entries: list[uuid.UUID]
    exits: list[uuid.UUID]
    all: list[uuid.UUID]
    result: Any


@dataclass
class _Job:
    signature: Signature
    waiting: bool
    defaults: dict[str, Any]
    continuation: dict[str, Any] = field(default_factory=dict)
    # countdown or eta given to a chain, group or chord this job starts (they win over
    # the task's own, as options given when sending do).
    timing: dict[str, Any] = field(default_factory=dict)


class _Plan:
    """Turns a workflow into jobs with continuations, and group rows."""

    def __init__(self) -> None:
        self.planned: dict[uuid.UUID, _Job] = {}
        self.groups: list[dict[str, Any]] = []
        self.errback_ids: dict[int, uuid.UUID] = {}  # id(signature) -> its job id
        # What each planned node was made of (keyed by id(node)), for its callbacks: a
        # signature's job, a chain's steps, a group's members (nested groups unrolled),
        # a chord's body.
        self.jobs_of: dict[int, uuid.UUID] = {}
        self.steps_of: dict[int, list[Canvas]] = {}
        self.members_of: dict[int, list[tuple[Canvas, _Part]]] = {}
        self.body_of: dict[int, Canvas] = {}

    def add(self, node: Canvas, waiting: bool, defaults: dict[str, Any]) -> _Part:
        """Plan ``node`` (and what is inside it); return its part."""
        defaults = {**defaults, **{k: v for k, v in node.options.items() if k in _DEFAULTS}}
        if isinstance(node, Signature):
            part = self._signature(node, waiting, defaults)
        elif isinstance(node, chain):
            part = self._chain(node, waiting, defaults)
        elif isinstance(node, group):
            part = self._group(node, waiting, defaults)
        else:
            part = self._chord(node, waiting, defaults)
        timing = {k: v for k in ("countdown", "eta") if (v := node.options.get(k)) is not None}
        if timing and not isinstance(node, Signature):
            for entry in part.entries:
                self.planned[entry].timing = timing
        self._callbacks(node, part)
        return part

    def _signature(self, sig: Signature, waiting: bool, defaults: dict[str, Any]) -> _Part:
        # Imported here: results read the job model, which Django defines only once its app
        # registry is ready, and a task may be declared before that.
        from djqueue.client.result import AsyncResult

        job_id = ids.parse(sig.options["task_id"]) if "task_id" in sig.options else ids.new_id()
        if job_id in self.planned:
            raise ValueError(f"task_id {job_id} is used twice in one workflow")
        self.planned[job_id] = _Job(sig, waiting, defaults)
        self.jobs_of[id(sig)] = job_id
        return _Part([job_id], [job_id], [job_id], AsyncResult(job_id))

    def _chain(self, node: chain, waiting: bool, defaults: dict[str, Any]) -> _Part:
        parts: list[_Part] = []
        steps = list(_chords_in(node.tasks))
        self.steps_of[id(node)] = steps
        for step in steps:
            parts.append(self.add(step, waiting=waiting or bool(parts), defaults=defaults))
        for index, (before, after) in enumerate(itertools.pairwise(parts)):
            downstream = [str(job_id) for later in parts[index + 1 :] for job_id in later.all]
            for job_id in before.all:
                self.planned[job_id].continuation.setdefault("cancel", []).extend(downstream)
            for exit_id in before.exits:
                self.planned[exit_id].continuation.setdefault("next", []).extend(
                    self._step(entry) for entry in after.entries
                )
            for entry in after.entries:
                self.planned[entry].continuation["parent"] = str(before.exits[-1])
            _root(after.result).parent = before.result
        last = parts[-1]
        return _Part(parts[0].entries, last.exits, [i for p in parts for i in p.all], last.result)

    def _members(
        self, node: group, waiting: bool, defaults: dict[str, Any]
    ) -> tuple[uuid.UUID, list[_Part]]:
        group_id = ids.new_id()
        made: list[tuple[Canvas, _Part]] = []
        for task in node.tasks:
            part = self.add(task, waiting, defaults)
            # As Celery does, a group in a group is unrolled: its members are this one's.
            made.extend(self.members_of[id(task)] if isinstance(task, group) else [(task, part)])
        self.members_of[id(node)] = made
        members = [part for _, part in made]
        for member in members:
            for job_id in member.all:
                self.planned[job_id].continuation["group"] = str(group_id)
        return group_id, members

    def _group(self, node: group, waiting: bool, defaults: dict[str, Any]) -> _Part:
        # Imported here: results read the job model, which Django defines only once its app
        # registry is ready, and a task may be declared before that.
        from djqueue.client.result import GroupResult

        group_id, members = self._members(node, waiting, defaults)
        exits = [member.exits[0] for member in members]
        self.groups.append({"id": str(group_id), "job_ids": [str(i) for i in exits]})
        return _Part(
            [i for m in members for i in m.entries],
            exits,
            [i for m in members for i in m.all],
            GroupResult(group_id, [m.result for m in members]),
        )

    def _chord(self, node: chord, waiting: bool, defaults: dict[str, Any]) -> _Part:
        # Imported here: results read the job model, which Django defines only once its app
        # registry is ready, and a task may be declared before that.
        from djqueue.client.result import GroupResult

        assert node.body is not None  # checked by chord.apply_async
        if not node.header.tasks:
            # Nothing to wait for: the body runs at once, with an empty list of results.
            self.body_of[id(node)] = _partial(node.body, ([],), None)
            return self.add(self.body_of[id(node)], waiting, defaults)
        group_id, members = self._members(node.header, waiting, defaults)
        self.body_of[id(node)] = node.body
        body = self.add(node.body, waiting=True, defaults=defaults)
        exits = [member.exits[0] for member in members]
        after_body = [str(job_id) for job_id in body.all if job_id not in body.entries]
        for slot, member in enumerate(members):
            self.planned[member.exits[0]].continuation["slot"] = slot
            for job_id in member.all:
                continuation = self.planned[job_id].continuation
                continuation["chord"] = str(group_id)
                continuation.setdefault("cancel", []).extend(after_body)
        for entry in body.entries:
            self.planned[entry].continuation["body_of"] = str(group_id)
        self.groups.append(
            {
                "id": str(group_id),
                "job_ids": [str(i) for i in exits],
                "remaining": len(members),
                "release": [self._step(entry) for entry in body.entries],
                "body_id": str(body.exits[-1]),
            }
        )
        header = GroupResult(group_id, [m.result for m in members])
        _root(body.result).parent = header
        return _Part(
            [i for m in members for i in m.entries],
            body.exits,
            [i for m in members for i in m.all] + body.all,
            body.result,
        )

    def _step(self, job_id: uuid.UUID) -> dict[str, Any]:
        """How the job before releases ``job_id``: pass its result or not, and when."""
        planned = self.planned[job_id]
        step: dict[str, Any] = {"id": str(job_id), "pass": not planned.signature.immutable}
        timing = planned.timing or planned.signature.options
        countdown = timing.get("countdown")
        if countdown is not None:
            step["countdown"] = _seconds(countdown)
        eta = timing.get("eta")
        if eta is not None:
            step["eta"] = _moment(eta).isoformat()
        return step

    def _callbacks(self, node: Canvas, part: _Part) -> None:
        for callback in node.options.get("link", []):
            self._link(node, callback)
        for errback in node.options.get("link_error", []):
            self._link_error(node, errback, self.errback_ids.setdefault(id(errback), ids.new_id()))

    def _link(self, node: Canvas, callback: Signature) -> None:
        """Put ``callback`` where Celery puts a node's link: on a task, its job; on a chain,
        its last step; on a chord, its body; on a group, its first member (which cannot
        pass on the group's results, so the callback is made immutable)."""
        if isinstance(node, Signature):
            made = _callback(callback, ids.new_id())
            self.planned[self.jobs_of[id(node)]].continuation.setdefault("link", []).append(made)
        elif isinstance(node, chain):
            self._link(self.steps_of[id(node)][-1], callback)
        elif isinstance(node, group):
            first, _ = self.members_of[id(node)][0]
            fixed = callback.clone()
            fixed.immutable = True
            self._link(first, fixed)
        else:
            self._link(self.body_of[id(node)], callback)

    def _link_error(self, node: Canvas, errback: Signature, errback_id: uuid.UUID) -> None:
        """Put ``errback`` where Celery puts a node's link_error: on a task, its job; on a
        chain, each step; on a chord, its body (a header task that fails ends the body,
        which then calls it); on a group, each member, as a copy of its own (so it runs
        once for each member that fails). ``errback_id`` is its job's id: one errback
        shared by several jobs is inserted once, whichever fails (ON CONFLICT)."""
        if isinstance(node, Signature):
            made = _callback(errback, errback_id, errback=True)
            known = self.planned[self.jobs_of[id(node)]].continuation.setdefault("link_error", [])
            if made["id"] not in {item["id"] for item in known}:
                known.append(made)
        elif isinstance(node, chain):
            for step in self.steps_of[id(node)]:
                self._link_error(step, errback, errback_id)
        elif isinstance(node, group):
            for member, _ in self.members_of[id(node)]:
                self._link_error(member, errback, ids.new_id())
        else:
            self._link_error(self.body_of[id(node)], errback, errback_id)

    def jobs(self) -> list[NewJob]:
        """Every planned job, ready to insert."""
        return [self._job(job_id, planned) for job_id, planned in self.planned.items()]

    def _job(self, job_id: uuid.UUID, planned: _Job) -> NewJob:
        sig = planned.signature
        options = {k: v for k, v in {**planned.defaults, **sig.options}.items() if k in _OPTIONS}
        options.pop("task_id", None)
        if planned.timing:
            options.pop("countdown", None)
            options.pop("eta", None)
            options.update(planned.timing)
        if planned.waiting:
            # Its release sets when it runs (see _step).
            options.pop("countdown", None)
            options.pop("eta", None)
        # A waiting step gets the result before it as its first argument when released.
        partial = planned.waiting and not sig.immutable
        job = sig.task.prepare(sig.args, sig.kwargs, task_id=job_id, partial=partial, **options)
        if job.unique_key is not None:
            raise ValueError(
                f"{sig.task.name} has a unique key; such tasks cannot be part of a workflow yet"
            )
        continuation = dict(planned.continuation)
        if job.workflow is not None:  # the call's own options (see Task.prepare)
            continuation.update(json.loads(job.workflow))
        return NewJob(
            **{
                **{name: getattr(job, name) for name in NewJob.__dataclass_fields__},
                "workflow": json.dumps(continuation) if continuation else None,
                "waiting": planned.waiting,
            }
        )


def _callback(sig: Signature, job_id: uuid.UUID, errback: bool = False) -> dict[str, Any]:
    """A callback as the finish statement inserts it (see ``sql.parts.FOLLOW_UP``)."""
    if sig.options.get("link") or sig.options.get("link_error"):
        raise TypeError(f"a callback cannot have callbacks of its own: {sig!r}")
    options = {k: v for k, v in sig.options.items() if k in ("queue", "priority", "expires")}
    style = errback and takes_request(sig)
    # An errback that takes (request, exc, traceback) gets them first, whatever else.
    given = (None, None, None, *sig.args) if style else sig.args
    job = sig.task.prepare(
        given, sig.kwargs, task_id=job_id, partial=not (sig.immutable or style), **options
    )
    if job.limited:
        raise ValueError(f"{sig.task.name} has limits; it cannot be a callback yet")
    countdown = sig.options.get("countdown")
    made = {
        "id": str(job_id),
        "task_name": job.task_name,
        "queue": job.queue,
        "priority": job.priority,
        "args": json.loads(job.args)[3:] if style else json.loads(job.args),
        "kwargs": json.loads(job.kwargs),
        "max_attempts": job.max_attempts,
        "countdown": None if countdown is None else _seconds(countdown),
        "expires_in": job.expires_in,
        "pass": not sig.immutable,
    }
    if style:
        made["style"] = "request"
    return made


def takes_request(errback: Signature) -> bool:
    """Whether ``errback`` is called as Celery calls new-style errbacks, with the failed
    job's ``(request, exc, traceback)``: its function takes more than one positional
    argument besides those the signature gives it (or ``*args``). As in Celery, a task
    with ``bind=True`` is always called the old way, with the failed job's id."""
    task = errback.task
    function = getattr(task, "fn", None)
    if task.bind or function is None:
        return False
    header: Any = function
    if not errback.immutable and (errback.args or errback.kwargs):
        header = functools.partial(function, *errback.args, **errback.kwargs)
    try:
        spec = inspect.getfullargspec(header)
    except TypeError:
        return False
    return bool(spec.varargs) or len(spec.args) > 1


def _chords_in(tasks: list[Canvas]) -> Iterator[Canvas]:
    """The steps of a chain, with a group followed by another step made a chord."""
    steps = list(tasks)
    while steps:
        step = steps.pop(0)
        if isinstance(step, group) and steps:
            step = chord(step, steps.pop(0))
            step.options = {}
            steps.insert(0, step)
            continue
        yield step


def _root(result: Any) -> Any:
    """The first result up ``result``'s ``.parent`` links."""
    while getattr(result, "parent", None) is not None:
        result = result.parent
    return result


def _seconds(value: float | datetime.timedelta) -> float:
    return value.total_seconds() if isinstance(value, datetime.timedelta) else float(value)


def _moment(value: datetime.datetime) -> datetime.datetime:
    from django.utils import timezone

    return timezone.make_aware(value) if timezone.is_naive(value) else value


# Running at once (the EAGER setting) ------------------------------------------------
#
# As Celery's eager mode: each task runs here in order, its link callbacks after it and
# its errbacks when it fails (placed as the planner places them). A chain step that
# failed stops the chain by raising its error when the next step asks for its result; a
# chord's header does the same to its body. A failed last step, or a group's failed
# member, is returned as a FAILURE result unless EAGER_PROPAGATES is on.


def _run_eagerly(node: Canvas) -> Any:
    """Run ``node`` here and now; return its result as sending it would."""
    result = _eager(node, (), [], [])
    if conf.flag("EAGER_PROPAGATES"):
        result.maybe_throw()
    return result


def _eager(
    node: Canvas, args: tuple[Any, ...], links: list[Signature], errbacks: list[Signature]
) -> Any:
    links = [*links, *node.options.get("link", [])]
    errbacks = [*errbacks, *node.options.get("link_error", [])]
    if isinstance(node, Signature):
        return _eager_signature(node, args, links, errbacks)
    if isinstance(node, chain):
        return _eager_chain(node, args, links, errbacks)
    if isinstance(node, group):
        return _eager_group(node, args, links, errbacks)
    assert node.body is not None
    header = _eager(node.header, args, [], [])
    result = _eager(node.body, (header.get(disable_sync_subtasks=False),), links, errbacks)
    _root(result).parent = header
    return result


def _eager_chain(
    node: chain, args: tuple[Any, ...], links: list[Signature], errbacks: list[Signature]
) -> Any:
    steps = list(_chords_in(node.tasks))
    result: Any = None
    for index, step in enumerate(steps):
        # A step that failed raises here, as the next step asks for its result.
        given = args if result is None else (result.get(disable_sync_subtasks=False),)
        made = _eager(step, given, links if index == len(steps) - 1 else [], errbacks)
        if result is not None:
            _root(made).parent = result
        result = made
    return result


def _eager_group(
    node: group, args: tuple[Any, ...], links: list[Signature], errbacks: list[Signature]
) -> Any:
    # Imported here: results read the job model, which Django defines only once its app
    # registry is ready, and a task may be declared before that.
    from djqueue.client.result import GroupResult

    members: list[Any] = []
    for index, task in enumerate(node.tasks):
        # A group's link goes to its first task, made immutable, as the planner does.
        fixed = [_immutable(link) for link in links] if index == 0 else []
        made = _eager(task, args, fixed, errbacks)
        # A group in a group is unrolled, as Celery does.
        members.extend(made.results if isinstance(task, group) else [made])
    return GroupResult(ids.new_id(), members)


def _immutable(sig: Signature) -> Signature:
    made = sig.clone()
    made.immutable = True
    return made


def _eager_signature(
    sig: Signature, args: tuple[Any, ...], links: list[Signature], errbacks: list[Signature]
) -> Any:
    made = sig.clone(args)
    outcome = made.task.apply(made.args, made.kwargs)
    if outcome.state == "SUCCESS":
        for link in links:
            _eager(link, (outcome.result,), [], [])
    elif outcome.state == "FAILURE":
        if conf.flag("EAGER_PROPAGATES"):
            # As Celery's: the error is raised at once; nothing after it runs.
            outcome.maybe_throw()
        for errback in errbacks:
            _call_errback(errback, outcome)
    return outcome


def _call_errback(errback: Signature, outcome: Any) -> None:
    """Call ``errback`` for the failed eager ``outcome`` as Celery does: with the request,
    the exception and the traceback here and now (its own error is logged), or, for a
    one-argument or bound errback, as a task given the failed job's id."""
    if not takes_request(errback):
        _eager(errback, (outcome.id,), [], [])
        return
    request = context.Request(
        id=str(ids.parse(outcome.id)),
        task=outcome.name,
        args=tuple(outcome.args or ()),
        kwargs=dict(outcome.kwargs or {}),
        is_eager=True,
    )
    try:
        errback.task.run(
            request, outcome.result, outcome.traceback, *errback.args, **errback.kwargs
        )
    except Exception:
        logger.exception("Errback %s of %s[%s] raised", errback.task.name, outcome.name, outcome.id)
