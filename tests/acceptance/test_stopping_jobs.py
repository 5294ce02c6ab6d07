"""Time limits and revoke(terminate=True) with real worker processes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import djqueue
from djqueue.db.models import Job
from tests.acceptance.conftest import Workers, wait_until
from tests.testapp import tasks


def _state(result: djqueue.AsyncResult, state: str, timeout: float) -> Job:
    return wait_until(
        lambda: (job := Job.objects.get(pk=result.id)).state == state and job,
        timeout=timeout,
        what=f"job {result.id} to be {state}",
    )


@pytest.mark.django_db(transaction=True)
def test_prefork_hard_limit_kills_a_task_that_loops_forever(workers: Workers) -> None:
    workers.start("-P", "prefork", "-c", "1")
    looping = tasks.spin_forever.delay()  # time_limit=2
    started = time.monotonic()
    job = _state(looping, "FAILURE", timeout=10)
    assert time.monotonic() - started < 2 + 1.5
    assert job.error_type == "djqueue.exceptions.TimeLimitExceeded"
    assert "time limit of 2s" in job.error_message
    # The pool keeps serving: a new child takes the next job.
    assert tasks.add.delay(2, 2).get(timeout=10) == 4


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pool", ["prefork", "threads", "solo"])
def test_soft_limit_lets_the_task_clean_up(workers: Workers, pool: str) -> None:
    workers.start("-P", pool, "-c", "1")
    result = tasks.clean_up_on_soft_limit.delay(30)  # soft_time_limit=1
    assert result.get(timeout=10) == "cleaned up"


@pytest.mark.django_db(transaction=True)
def test_prefork_soft_limit_interrupts_a_blocking_call(workers: Workers) -> None:
    workers.start("-P", "prefork", "-c", "1")
    result = tasks.sleep_through_soft_limit.delay(30)
    assert result.get(timeout=10) == "cleaned up"


@pytest.mark.django_db(transaction=True)
def test_worker_time_limit_applies_to_tasks_without_one(workers: Workers) -> None:
    workers.start("-P", "threads", "-c", "1", "--time-limit", "1")
    result = tasks.spin.delay(60)
    job = _state(result, "FAILURE", timeout=10)
    assert job.error_type == "djqueue.exceptions.TimeLimitExceeded"
    assert tasks.add.delay(1, 1).get(timeout=10) == 2


@pytest.mark.django_db(transaction=True)
def test_revoke_terminate_stops_a_running_prefork_job_quickly(workers: Workers) -> None:
    worker = workers.start("-P", "prefork", "-c", "2")
    long_job = tasks.sleep.delay(60)
    neighbour = tasks.sleep.delay(1)
    _state(long_job, "STARTED", timeout=10)
    time.sleep(0.3)
    asked = time.monotonic()
    assert long_job.revoke(terminate=True) is True
    job = _state(long_job, "REVOKED", timeout=5)
    assert time.monotonic() - asked < 2
    assert job.error_type == "djqueue.exceptions.TaskRevokedError"
    assert neighbour.get(timeout=10) == 1
    assert tasks.add.delay(3, 3).get(timeout=10) == 6
    worker.wait_for_log("revoked: stopped")


@pytest.mark.django_db(transaction=True)
def test_revoke_terminate_in_threads_is_cooperative(workers: Workers) -> None:
    workers.start("-P", "threads", "-c", "2")
    busy = tasks.spin.delay(60)
    _state(busy, "STARTED", timeout=10)
    time.sleep(0.3)
    busy.revoke(terminate=True)
    _state(busy, "REVOKED", timeout=5)


@pytest.mark.django_db(transaction=True)
def test_revoke_terminate_reaches_a_prefetched_job_before_it_starts(workers: Workers) -> None:
    # Both sent before the worker starts, so that its first claim takes both: the solo
    # worker then runs the first while the second waits in its hands.
    first = tasks.sleep.delay(2)
    waiting = tasks.record_pid.delay("never")
    workers.start("-P", "solo", "--prefetch-multiplier", "4")
    wait_until(
        lambda: (
            Job.objects.filter(id=first.id, state="STARTED").exists()
            and Job.objects.filter(id=waiting.id, state="RECEIVED").exists()
        ),
        timeout=10,
        what="the solo worker to run the first job and hold the second",
    )
    assert waiting.revoke(terminate=True) is True
    assert first.get(timeout=10) == 2
    job = _state(waiting, "REVOKED", timeout=5)
    assert job.error_message == "revoked before it started"
    assert job.result is None


@pytest.mark.django_db(transaction=True)
def test_revoke_with_sigterm_ends_a_prefork_child_by_that_signal(workers: Workers) -> None:
    worker = workers.start("-P", "prefork", "-c", "1")
    long_job = tasks.sleep.delay(60)
    _state(long_job, "STARTED", timeout=10)
    asked = time.monotonic()
    assert long_job.revoke(terminate=True, signal="SIGTERM") is True
    job = _state(long_job, "REVOKED", timeout=5)
    assert time.monotonic() - asked < 2  # not the SIGKILL that follows the grace
    assert job.error_type == "djqueue.exceptions.TaskRevokedError"
    worker.wait_for_log("revoked: sent SIGTERM to its process")
    worker.wait_for_log("was killed by signal 15 (SIGTERM)")
    assert tasks.add.delay(3, 3).get(timeout=10) == 6


@pytest.mark.django_db(transaction=True)
def test_revoke_with_sigusr1_lets_the_task_clean_up_as_in_celery(workers: Workers) -> None:
    workers.start("-P", "prefork", "-c", "1")
    result = tasks.clean_up_when_asked.delay(60)
    _state(result, "STARTED", timeout=10)
    djqueue.control.revoke(result.id, terminate=True, signal="SIGUSR1")
    # The task caught SoftTimeLimitExceeded and returned: its outcome stands.
    assert result.get(timeout=10) == "cleaned up"


@pytest.mark.django_db(transaction=True)
def test_a_child_that_handles_the_signal_and_goes_on_is_killed_after_the_grace(
    workers: Workers, tmp_path: Path
) -> None:
    from djqueue.runtime.pools.prefork import TERMINATE_GRACE_SECONDS

    marker = tmp_path / "noted"
    worker = workers.start("-P", "prefork", "-c", "1")
    result = tasks.hold_on_sigterm.delay(str(marker), 60)
    wait_until(lambda: marker.exists(), timeout=10, what="the task to handle SIGTERM")
    asked = time.monotonic()
    result.revoke(terminate=True, signal="SIGTERM")
    _state(result, "REVOKED", timeout=TERMINATE_GRACE_SECONDS + 5)
    assert time.monotonic() - asked >= TERMINATE_GRACE_SECONDS - 0.5
    assert marker.read_text().splitlines() == ["started", "SIGTERM"]  # its handler ran
    worker.wait_for_log("after its signal: killed")


@pytest.mark.django_db(transaction=True)
def test_threads_cannot_send_a_signal_and_stop_the_job_their_way(workers: Workers) -> None:
    worker = workers.start("-P", "threads", "-c", "2")
    busy = tasks.spin.delay(60)
    _state(busy, "STARTED", timeout=10)
    busy.revoke(terminate=True, signal="SIGTERM")
    _state(busy, "REVOKED", timeout=5)
    worker.wait_for_log("TaskRevokedError raised inside it")
