"""What a type checker learns from tasks: checked by mypy (``tox -e types``), never run.

Every ``assert_type`` states the type mypy must infer; a wrong inference fails the
check. Errors that must be reported are in ``test_errors.py``.
"""

from __future__ import annotations

import datetime
from collections.abc import Coroutine
from typing import Any, assert_type

import djqueue
from djqueue import AsyncResult, EagerResult, Signature, Task
from djqueue.client.definition import AsyncTask


@djqueue.task
def add(x: int, y: int) -> int:
    return x + y


@djqueue.shared_task
def greet(name: str, *, punctuation: str = "!") -> str:
    return f"hello {name}{punctuation}"


@djqueue.task(queue="reports", max_retries=5)
def total(amounts: list[float]) -> float:
    return sum(amounts)


@djqueue.task(bind=True)
def attempt_of(self: Task[[str], int], label: str) -> int:
    return self.request.attempt


@djqueue.task(bind=True, autoretry_for=(OSError,))
async def fetch(self: Task[Any, Any], url: str, timeout: float = 10) -> bytes:
    return url.encode()


@djqueue.task
async def count(items: list[str]) -> int:
    return len(items)


@djqueue.task
def nothing() -> None:
    return None


@djqueue.task()
def with_parentheses(text: str) -> list[str]:
    return text.split()


@djqueue.task(bind=False, queue="slow")
def not_bound(text: str) -> int:
    return len(text)


def check_task_objects() -> None:
    plain: Task[[int, int], int] = add
    bound: Task[[str], int] = attempt_of
    coroutine: AsyncTask[[list[str]], int] = count
    also_a_task: Task[[list[str]], int] = count
    with_default: AsyncTask[[str, float], bytes] = fetch
    del plain, bound, coroutine, also_a_task, with_default


def check_sending() -> None:
    assert_type(add.delay(1, 2), AsyncResult[int])
    assert_type(add.delay(1, 2).get(), int)
    assert_type(add.delay(1, y=2).get(timeout=5), int)
    assert_type(greet.delay("Ada", punctuation="?").get(), str)
    assert_type(total.delay([1.0, 2.5]).get(), float)
    assert_type(nothing.delay().get(), None)
    assert_type(with_parentheses.delay("a b").get(), list[str])
    assert_type(not_bound.delay("abc").get(), int)
    assert_type(add.apply_async((1, 2)), AsyncResult[int])
    assert_type(add.apply_async(args=(1, 2), countdown=10).get(), int)
    assert_type(add.apply_async((1, 2), countdown=datetime.timedelta(minutes=5)), AsyncResult[int])
    assert_type(add.apply_async(kwargs={"x": 1, "y": 2}, queue="fast"), AsyncResult[int])
    assert_type(add.delay_on_commit(1, 2), AsyncResult[int])
    assert_type(add.apply_async_on_commit((1, 2)), AsyncResult[int])
    assert_type(add.delay_many([(1, 2), (3, 4)]), list[AsyncResult[int]])
    assert_type(add.apply_many([((1, 2), {})]), list[AsyncResult[int]])
    assert_type(add.apply((1, 2)), EagerResult[int])
    assert_type(add.apply((1, 2)).get(), int)


def check_bound_tasks() -> None:
    # The task itself is not passed: callers give the parameters after ``self``.
    assert_type(attempt_of.delay("first"), AsyncResult[int])
    assert_type(attempt_of("first"), int)
    assert_type(fetch.delay("https://example.com", timeout=2).get(), bytes)


def check_async_tasks() -> None:
    # Sent, an async task's result is the coroutine's value; called, it is a coroutine.
    assert_type(count.delay(["a", "b"]).get(), int)
    assert_type(count.s(["a"]), Signature[int])
    assert_type(count(["a", "b"]), Coroutine[Any, Any, int]).close()


async def check_from_async_code() -> None:
    result = await add.adelay(1, 2)
    assert_type(result, AsyncResult[int])
    assert_type(await result.aget(timeout=5), int)
    assert_type(await add.aapply_async((1, 2)), AsyncResult[int])
    assert_type(await count(["a"]), int)


def check_direct_calls() -> None:
    assert_type(add(1, 2), int)
    assert_type(greet("Ada"), str)
    assert_type(add.run(1, 2), int)


def check_results_by_id(job_id: str) -> None:
    # Made from an id alone, a result's type is not known.
    assert_type(AsyncResult(job_id), AsyncResult[Any])
    assert_type(AsyncResult(job_id).get(), Any)
    assert_type(djqueue.send_task("orders.tasks.add", (1, 2)), AsyncResult[Any])
    known: AsyncResult[int] = AsyncResult(job_id)
    assert_type(known.get(), int)
    # Results are covariant: an AsyncResult[int] is an AsyncResult[object].
    wider: AsyncResult[object] = add.delay(1, 2)
    del wider
