"""``@djqueue.task`` (and ``@shared_task``, the same): making a task from a function,
typed so that ``add.delay(1, 2)`` is checked against the function's parameters."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, Literal, ParamSpec, Protocol, TypeVar, overload

from djqueue.client import annotation
from djqueue.client.definition import AsyncTask, Task
from djqueue.core import registry

P = ParamSpec("P")
R = TypeVar("R")


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
