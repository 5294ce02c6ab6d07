"""``async def`` tasks in a real worker: many at once in one process, beside sync ones."""

from __future__ import annotations

import time

import pytest

from djqueue.db.models import Job
from tests.acceptance.conftest import Workers, wait_until
from tests.testapp import tasks


@pytest.mark.django_db(transaction=True)
def test_a_hundred_async_sleeps_run_at_once_in_one_worker(workers: Workers) -> None:
    workers.start("-P", "threads", "-c", "100")
    started = time.monotonic()
    naps = tasks.async_nap.delay_many([(1,)] * 100)
    sums = tasks.add.delay_many([(n, n) for n in range(10)])
    wait_until(
        lambda: Job.objects.filter(state="SUCCESS").count() == 110,
        timeout=20,
        what="110 jobs to succeed",
    )
    # One after the other, 100 one-second sleeps would take 100 seconds.
    assert time.monotonic() - started < 8
    assert [r.get() for r in naps] == [1] * 100
    assert [r.get() for r in sums] == [2 * n for n in range(10)]


@pytest.mark.django_db(transaction=True)
def test_an_async_task_with_gathered_sleeps_in_a_prefork_child(workers: Workers) -> None:
    workers.start("-P", "prefork", "-c", "1")
    started = time.monotonic()
    assert tasks.async_gather.delay(100).get(timeout=15) == 100
    assert time.monotonic() - started < 6
