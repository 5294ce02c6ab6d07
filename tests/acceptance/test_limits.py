"""Cluster-wide limits and unique jobs with real worker processes."""

from __future__ import annotations

import datetime
import itertools
import time

import pytest

from djqueue.db.models import Job
from tests.acceptance.conftest import Workers, wait_until
from tests.testapp import tasks


def _all_succeeded(count: int, timeout: float, task: str) -> None:
    wait_until(
        lambda: Job.objects.filter(task_name=task, state="SUCCESS").count() == count,
        timeout=timeout,
        what=f"{count} {task} job(s) to succeed",
        interval=0.2,
    )


@pytest.mark.django_db(transaction=True)
def test_rate_limit_holds_across_three_workers(workers: Workers) -> None:
    name = "tests.testapp.tasks.rate_limited_nap"
    # Each worker holds two jobs at most and each run takes 0.4 s, so no one worker can
    # keep up with the rate alone: 3 workers could start 15 a second without the limit.
    for _ in range(3):
        workers.start("-c", "2", "--prefetch-multiplier", "1")
    tasks.rate_limited_nap.delay_many([(0.4,)] * 30)
    _all_succeeded(30, timeout=40, task=name)

    # The limit counts claims (a claimed job may wait a moment in the worker first).
    starts = sorted(Job.objects.filter(task_name=name).values_list("claimed_at", flat=True))
    window = datetime.timedelta(seconds=1)
    busiest = max(sum(1 for s in starts if t <= s < t + window) for t in starts)
    assert busiest <= 5, f"{busiest} starts within one second"
    # Every worker took part: the limit is shared, not a per-worker allowance.
    assert Job.objects.filter(task_name=name).values("worker").distinct().count() >= 2
    # Waiting jobs were held back, not dropped or failed: 30 jobs need about 6 seconds.
    assert starts[-1] - starts[0] >= datetime.timedelta(seconds=5)


@pytest.mark.django_db(transaction=True)
def test_concurrency_limit_one_never_overlaps_across_four_workers(workers: Workers) -> None:
    name = "tests.testapp.tasks.one_at_a_time"
    # Every worker is up before the jobs arrive: a worker that started seconds ahead on a
    # loaded machine could otherwise run all ten alone. And every one claims on every
    # notification: with the herd's stagger, the worker that just finished a job, awake
    # already, takes the next one each time, and the limit is never shared.
    for _ in range(4):
        workers.start("-c", "4", env={"DJQUEUE_WAKE_STAGGER_MS": "0"})
    tasks.one_at_a_time.delay_many([(0.2,)] * 10)
    _all_succeeded(10, timeout=40, task=name)

    runs = sorted(Job.objects.filter(task_name=name).values_list("started_at", "finished_at"))
    for (_, finished), (next_started, _) in itertools.pairwise(runs):
        assert finished is not None and finished <= next_started, "two runs overlapped"
    assert Job.objects.filter(task_name=name).values("worker").distinct().count() >= 2


@pytest.mark.django_db(transaction=True)
def test_unique_job_runs_once_and_can_be_sent_again_after_it_finished(
    workers: Workers,
) -> None:
    first = tasks.unique_report.delay(1)
    assert tasks.unique_report.delay(1).id == first.id
    workers.start()
    assert first.get(timeout=10) == 1
    again = tasks.unique_report.delay(1)
    assert again.id != first.id
    assert again.get(timeout=10) == 1
    assert Job.objects.filter(task_name="tests.testapp.tasks.unique_report").count() == 2


@pytest.mark.django_db(transaction=True)
def test_unique_for_window_with_a_worker_running(workers: Workers) -> None:
    workers.start()
    first = tasks.unique_for_a_second.delay(1)
    first.get(timeout=10)
    # Finished: a finished job no longer holds its key, window or not.
    second = tasks.unique_for_a_second.apply_async((1,), countdown=30)
    assert second.id != first.id
    assert tasks.unique_for_a_second.delay(1).id == second.id
    time.sleep(1.1)
    third = tasks.unique_for_a_second.delay(1)
    assert third.id != second.id
    assert third.get(timeout=10) == 1
