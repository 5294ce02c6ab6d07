"""Workflows: signatures, chain, group, chord, their operators and link/link_error.

These are the building blocks a project composes. Sending one plans it into rows
(:mod:`djqueue.client.planning`, which says how a workflow lives in PostgreSQL) and
inserts them through the data layer, or, with ``EAGER``, runs it here
(:mod:`djqueue.client.eager_workflow`). Both read a node by its ``subtask_type`` (as
Celery names it: ``None`` for a signature, else ``"chain"``, ``"group"`` or ``"chord"``),
so neither imports this module back.

Why it is longer than 400 lines: the four classes build one another (``|`` on a
signature makes a chain, on a group a chord, ...) and their constructors and operators
are typed by overloads that name one another, so they stay in one module, with the small
checks that build them.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Iterator
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Generic,
    Literal,
    Self,
    TypeVar,
    Union,
    cast,
    overload,
)

from djqueue.client import eager_workflow, planning
from djqueue.client.typevars import R, T
from djqueue.core import conf, publishing, registry
from djqueue.core.options import JOB_OPTIONS
from djqueue.db import broker

if TYPE_CHECKING:
    from typing_extensions import TypeVar as DefaultedTypeVar

    from djqueue.client.definition import Task
    from djqueue.client.eager import EagerResult
    from djqueue.client.result import AsyncResult
    from djqueue.client.result_set import GroupResult

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


class Signature(Generic[R]):
    """A task with (some of) its arguments and options: ``task.s(...)``, ``task.si(...)``.

    Partial: applied in a workflow, the result of the job before it comes first in its
    arguments, unless it is immutable (``si``). ``Signature[int]`` is a signature of a
    task that returns an ``int``; of a task given by name, ``Signature[Any]``.
    """

    subtask_type: ClassVar[None] = None  # what kind of node it is, as Celery names it

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
        """Set sending options (those of :class:`~djqueue.core.options.JobOptions`, and
        ``link``, ``link_error``) in place; return the signature."""
        unknown = set(options) - set(JOB_OPTIONS) - {"link", "link_error"}
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

    def _partial(self, args: Iterable[Any], kwargs: dict[str, Any] | None) -> Canvas:
        """It with extra arguments (for the planner and the eager runner)."""
        return _partial(self, args, kwargs)

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
        return cast("EagerResult[R]", eager_workflow.run(self.clone(args, kwargs).set(**options)))


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

    def _partial(self, args: Iterable[Any], kwargs: dict[str, Any] | None) -> Canvas:
        """It with extra arguments for its first task(s) (for the planner)."""
        return _partial(cast("Canvas", self), args, kwargs)

    def apply_async(
        self, args: Iterable[Any] = (), kwargs: dict[str, Any] | None = None, **options: Any
    ) -> H:
        raise NotImplementedError

    def apply(self, args: Iterable[Any] = (), kwargs: dict[str, Any] | None = None) -> H:
        """Run it here and now, as sending it does in eager mode (Celery's ``apply``);
        return its result."""
        return cast("H", eager_workflow.run(_partial(cast("Canvas", self), args, kwargs)))


class chain(_Composite[H]):  # Celery's lower-case name
    """Run tasks one after the other, each given the result of the one before.

    Returns, when sent, the last task's result, whose ``.parent`` is the one before.
    ``chain[AsyncResult[int]]`` ends with a task that returns an ``int``; a chain that
    ends with a group is a ``chain[GroupResult]``.
    """

    subtask_type: ClassVar[Literal["chain"]] = "chain"

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

    def _steps(self) -> list[Canvas]:
        """Its steps as they run: a group followed by another step is made a chord."""
        return list(_chords_in(self.tasks))

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

    subtask_type: ClassVar[Literal["group"]] = "group"

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

    subtask_type: ClassVar[Literal["chord"]] = "chord"

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
        return _single(node._steps()[-1])
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


# Sending ----------------------------------------------------------------------------


def apply(node: Canvas) -> Any:
    """Send ``node`` as one workflow; return its result (see each primitive)."""
    if conf.flag("EAGER"):
        return eager_workflow.run(node)
    plan = planning.Plan()
    part = plan.add(node, waiting=False, defaults={})
    workflow = plan.workflow()
    jobs = publishing.before(workflow.jobs)
    broker.enqueue_workflow(dataclasses.replace(workflow, jobs=tuple(jobs)))
    publishing.after(jobs)
    return part.result
