"""Shutdown: SIGTERM lets running jobs finish; a second signal or the grace period
hands them back at once."""

from __future__ import annotations

import signal
import time

import pytest

from djqueue.models import Job, Worker
from tests.acceptance.conftest import WorkerProcess, Workers, wait_until
from tests.testapp import tasks


def _running(worker: WorkerProcess, count: int = 1) -> list[Job]:
    """Wait until ``worker`` has ``count`` job(s) actually running (STARTED in the log)."""

    def started() -> list[Job] | None:
        jobs = list(Job.objects.filter(state="STARTED", worker__startswith=worker.name_prefix))
        return jobs if len(jobs) >= count else None

    return wait_until(started, timeout=10, what=f"{count} job(s) to start")  # type: ignore[no-any-return]


@pytest.mark.django_db(transaction=True)
def test_sigterm_lets_the_running_job_finish(workers: Workers) -> None:
    running = tasks.sleep.delay(2)
    prefetched = tasks.sleep.delay_many([(2,)] * 3)
    worker = workers.start("-c", "1", "--prefetch-multiplier", "4")
    wait_until(
        lambda: Job.objects.filter(state="STARTED").count() == 4,
        timeout=10,
        what="the worker to claim all four jobs",
    )
    time.sleep(0.3)  # let the first job get under way

    worker.send(signal.SIGTERM)
    assert worker.wait_exit(timeout=8) == 0

    assert Job.objects.get(id=running.id).state == "SUCCESS"
    for result in prefetched:
        job = Job.objects.get(id=result.id)
        assert (job.state, job.attempt, job.worker) == ("PENDING", 0, "")
    assert not Job.objects.filter(state="STARTED").exists()
    log = worker.log()
    assert "Warm shutdown" in log
    assert "handed 3 job(s) back" in log
    assert "stopped after 1 job(s)" in log
    row = Worker.objects.get(name__startswith=worker.name_prefix)
    assert row.stopped_at is not None
    assert row.jobs_done == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGQUIT], ids=["term-term", "quit"])
def test_second_signal_hands_the_job_back_at_once(workers: Workers, second: int) -> None:
    result = tasks.sleep.delay(30)
    worker = workers.start("-c", "1")
    _running(worker)
    if second == signal.SIGTERM:
        worker.send(signal.SIGTERM)
        worker.wait_for_log("Warm shutdown")
    asked_at = time.monotonic()
    worker.send(second)
    worker.wait_exit(timeout=3)
    assert time.monotonic() - asked_at < 2

    job = Job.objects.get(id=result.id)
    assert (job.state, job.worker) == ("PENDING", "")
    assert job.attempt == 1  # the attempt that started counts
    assert "Cold shutdown" in worker.log()
    assert Worker.objects.get(name__startswith=worker.name_prefix).stopped_at is not None


@pytest.mark.django_db(transaction=True)
def test_job_longer_than_the_grace_period_is_handed_back(workers: Workers) -> None:
    result = tasks.sleep.delay(30)
    worker = workers.start("-c", "1", env={"DJQUEUE_GRACE_SECONDS": "1"})
    _running(worker)

    asked_at = time.monotonic()
    worker.send(signal.SIGTERM)
    worker.wait_exit(timeout=5)
    assert 1 <= time.monotonic() - asked_at < 4

    job = Job.objects.get(id=result.id)
    assert (job.state, job.worker) == ("PENDING", "")
    assert "Grace period over" in worker.log()
    assert "handed 1 job(s) back" in worker.log()
