"""Shutdown: SIGTERM lets running jobs finish; a second signal or the grace period
hands them back at once."""

from __future__ import annotations

import signal
import time

import pytest
from django.db.models import Count

from djqueue.db.models import Job, Worker
from tests.acceptance.conftest import WorkerProcess, Workers, wait_until
from tests.testapp import tasks


def _running(worker: WorkerProcess, count: int = 1) -> list[Job]:
    """Wait until ``worker`` has ``count`` job(s) actually running (STARTED in the log)."""

    def started() -> list[Job] | None:
        jobs = list(Job.objects.filter(state="STARTED", worker__startswith=worker.name_prefix))
        return jobs if len(jobs) >= count else None

    return wait_until(started, timeout=10, what=f"{count} job(s) to start")  # type: ignore[no-any-return]


def _states() -> dict[str, int]:
    counts = Job.objects.values("state").annotate(n=Count("id")).values_list("state", "n")
    return dict(counts)


@pytest.mark.django_db(transaction=True)
def test_sigterm_lets_the_running_job_finish(workers: Workers) -> None:
    running = tasks.sleep.delay(2)
    prefetched = tasks.sleep.delay_many([(2,)] * 3)
    worker = workers.start("-c", "1", "--prefetch-multiplier", "4")
    # One runs (STARTED), three wait in the worker's buffer (RECEIVED, not started).
    wait_until(
        lambda: _states() == {"STARTED": 1, "RECEIVED": 3},
        timeout=10,
        what="the worker to start one job and hold three",
    )

    worker.send(signal.SIGTERM)
    assert worker.wait_exit(timeout=8) == 0

    assert Job.objects.get(id=running.id).state == "SUCCESS"
    for result in prefetched:
        job = Job.objects.get(id=result.id)
        # Handed back unstarted: the attempt it was claimed under is given back.
        assert (job.state, job.worker, job.attempt, job.max_attempts) == ("PENDING", "", 1, 5)
    assert not Job.objects.filter(state__in=["RECEIVED", "STARTED"]).exists()
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


@pytest.mark.django_db(transaction=True)
def test_solo_hands_back_waiting_jobs_at_once_on_sigterm(workers: Workers) -> None:
    running = tasks.sleep.delay(3)
    waiting = tasks.add.delay_many([(n, n) for n in range(3)])
    worker = workers.start("-P", "solo", "--prefetch-multiplier", "4")
    wait_until(
        lambda: _states() == {"STARTED": 1, "RECEIVED": 3},
        timeout=10,
        what="the solo worker to run one job and hold three",
    )

    worker.send(signal.SIGTERM)
    # Back in the queue while the running job still runs (it has seconds to go).
    wait_until(
        lambda: _states() == {"STARTED": 1, "PENDING": 3},
        timeout=2,
        what="the waiting jobs to go back at once",
    )
    assert worker.wait_exit(timeout=8) == 0
    assert Job.objects.get(id=running.id).state == "SUCCESS"
    assert {Job.objects.get(id=r.id).state for r in waiting} == {"PENDING"}


@pytest.mark.django_db(transaction=True)
def test_solo_writes_each_outcome_as_it_comes(workers: Workers) -> None:
    # Sent before the worker starts, so that one claim takes both.
    quick = tasks.add.delay(1, 2)
    slow = tasks.sleep.delay(3)
    workers.start("-P", "solo", "--prefetch-multiplier", "4")
    wait_until(
        lambda: Job.objects.filter(id=quick.id, state="SUCCESS").exists(),
        timeout=2.5,
        what="the quick job's outcome, written before the slow job ends",
    )
    assert Job.objects.get(id=slow.id).state in ("RECEIVED", "STARTED")
