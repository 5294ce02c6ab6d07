"""The generic public API at run time: async tasks, and the types users subscribe."""

from __future__ import annotations

import asyncio
import inspect
import typing

import djqueue
from djqueue.client.definition import AsyncTask
from tests.testapp import tasks


def test_an_async_def_task_is_an_async_task_and_still_a_task() -> None:
    @djqueue.task(name="tests.unit.typed.async_task")
    async def fetch(url: str) -> int:
        return len(url)

    @djqueue.task(bind=True, name="tests.unit.typed.bound_async_task")
    async def bound(self: djqueue.Task[[str], int], url: str) -> int:
        return len(url)

    assert isinstance(fetch, AsyncTask) and isinstance(fetch, djqueue.Task)
    assert isinstance(bound, AsyncTask)
    assert type(tasks.add) is djqueue.Task


def test_an_async_task_called_directly_gives_its_coroutine() -> None:
    @djqueue.task(name="tests.unit.typed.direct_call")
    async def double(x: int) -> int:
        return 2 * x

    assert asyncio.run(double(21)) == 42


def test_the_generic_classes_can_be_subscribed_at_run_time() -> None:
    # Annotations that are evaluated (dataclasses, pydantic, get_type_hints) need these.
    assert djqueue.Task[[int, int], int] is not None
    assert djqueue.AsyncResult[int] is not None
    assert djqueue.EagerResult[int] is not None
    assert djqueue.Signature[int] is not None
    assert djqueue.chain[djqueue.AsyncResult[int]] is not None
    assert djqueue.chord[djqueue.GroupResult] is not None


# Public methods and properties whose value is ``Any`` on purpose, and why. Anything else
# that the top-level API gives is typed (docs/tasks.md, "Type checking").
ANY_ON_PURPOSE = {
    "AsyncResult.result": "the value, the error or None, depending on the state",
    "AsyncResult.info": "the value, the error or the progress, depending on the state",
    "EagerResult.result": "the value or the error, depending on the state",
    "EagerResult.info": "the value or the error, depending on the state",
    "GroupResult.__getitem__": "AsyncResults, or EagerResults when run eagerly",
    "AsyncResult.maybe_throw": "the value, or the error when not propagated",
    "AsyncResult.maybe_reraise": "the value, or the error when not propagated",
    "EagerResult.maybe_throw": "the value, or the error when not propagated",
    "Signature.__call__": "the function's value, or a coroutine for an async def task",
}
_DUNDERS = {"__call__", "__getitem__", "__iter__", "__or__"}


def _returns_any(function: object) -> bool:
    if not inspect.isfunction(function):
        return False  # inherited from a builtin (an exception's methods)
    if typing.get_overloads(function):
        return False  # the overloads are typed; the implementation takes anything
    return getattr(function, "__annotations__", {}).get("return") == "Any"


def _public_members(cls: type) -> list[tuple[str, object]]:
    found = []
    for name, value in inspect.getmembers(cls):
        if name.startswith("_") and name not in _DUNDERS:
            continue
        function = value.fget if isinstance(value, property) else value
        if callable(function):
            found.append((name, function))
    return found


def test_the_public_api_returns_no_unexplained_any() -> None:
    returning_any = []
    for name in djqueue.__all__:
        exported = getattr(djqueue, name)
        members = _public_members(exported) if inspect.isclass(exported) else [("", exported)]
        for member, function in members:
            label = f"{name}.{member}" if member else name
            if _returns_any(function) and label not in ANY_ON_PURPOSE:
                returning_any.append(label)
    assert returning_any == [], "give these a return type (or say in ANY_ON_PURPOSE why not)"
