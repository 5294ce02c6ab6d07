"""The generic public API at run time: async tasks, and the types users subscribe."""

from __future__ import annotations

import asyncio

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
