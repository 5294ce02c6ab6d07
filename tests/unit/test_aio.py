"""``async def`` tasks: run on the process's event loop, with their request."""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.testapp import tasks


def test_async_task_runs_and_returns() -> None:
    assert tasks.async_add.apply([2, 3]).get() == 5


def test_async_task_sees_its_request() -> None:
    result = tasks.async_whoami.apply(task_id="12345678-1234-5678-1234-567812345678")
    assert result.get() == "12345678-1234-5678-1234-567812345678"


def test_async_task_can_retry() -> None:
    assert tasks.async_retry_once.apply().get() == 1


def test_a_hundred_concurrent_sleeps_in_one_task() -> None:
    started = time.monotonic()
    assert tasks.async_gather.apply([100]).get() == 100
    assert time.monotonic() - started < 5


def test_many_async_jobs_share_one_loop_from_many_threads() -> None:
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(tasks.async_nap.apply([1]).get()))
        for _ in range(50)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == [1] * 50
    assert time.monotonic() - started < 5


def test_an_async_task_is_interrupted_and_cancelled() -> None:
    from djqueue.core.exceptions import TaskRevokedError
    from djqueue.runtime import interrupt

    outcome: list[Any] = []

    def run() -> None:
        outcome.append(tasks.async_nap.apply([30]))

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.3)
    assert thread.ident is not None
    interrupt.raise_in(thread.ident, TaskRevokedError)
    thread.join(5)
    assert not thread.is_alive()
    assert outcome[0].state == "REVOKED"


def test_calling_an_async_task_gives_a_coroutine() -> None:
    import asyncio

    assert asyncio.run(tasks.async_add(1, 1)) == 2


def test_eager_delay_of_an_async_task(settings: Any) -> None:
    settings.DJQUEUE = {"EAGER": True}
    assert tasks.async_add.delay(1, 1).get() == 2
