"""Jobs that cannot run end in FAILURE with a clear message; the worker carries on."""

from __future__ import annotations

import pytest

from djqueue.core import ids
from djqueue.core.records import NewJob
from djqueue.db import broker
from djqueue.db.models import Job
from tests.acceptance.conftest import Workers, wait_until
from tests.testapp import tasks


def _finished(job_id: object, timeout: float = 10) -> Job:
    return wait_until(  # type: ignore[no-any-return]
        lambda: Job.objects.filter(id=job_id, state__in=["SUCCESS", "FAILURE"]).first(),
        timeout=timeout,
        what=f"job {job_id} to finish",
    )


@pytest.mark.django_db(transaction=True)
def test_unknown_task_fails_and_the_worker_goes_on(workers: Workers) -> None:
    unknown = _unregistered("nowhere.defined")
    # What a producer with older code (or one enqueueing from SQL) might send.
    misspelt = _unregistered("tests.testapp.tasks.record_pids")
    broker.enqueue([unknown, misspelt])
    after = tasks.record_pid.delay("next")
    worker = workers.start("-c", "1", "--prefetch-multiplier", "1")

    job = _finished(unknown.id)
    assert job.state == "FAILURE"
    assert job.attempt == 1
    assert "unregistered task 'nowhere.defined'" in job.error_message
    assert "did you mean" not in job.error_message
    meant = "did you mean 'tests.testapp.tasks.record_pid'?"
    assert meant in _finished(misspelt.id).error_message
    assert _finished(after.id).state == "SUCCESS"
    assert worker.process.poll() is None
    assert "unregistered task 'nowhere.defined'" in worker.log()
    assert meant in worker.log()


def _unregistered(name: str) -> NewJob:
    return NewJob(
        id=ids.new_id(),
        task_name=name,
        queue="default",
        priority=0,
        args="[]",
        kwargs="{}",
        max_attempts=None,
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pool", ["solo", "threads"])
def test_task_calling_sys_exit_fails_without_killing_the_worker(
    workers: Workers, pool: str
) -> None:
    exiting = tasks.exit_abruptly.delay(3)
    after = tasks.record_pid.delay("next")
    worker = workers.start("-P", pool, "-c", "1", "--prefetch-multiplier", "1")

    job = _finished(exiting.id)
    assert (job.state, job.error_type, job.attempt) == ("FAILURE", "SystemExit", 1)
    assert _finished(after.id).state == "SUCCESS"
    assert worker.process.poll() is None
