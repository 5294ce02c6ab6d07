"""A worker killed with SIGKILL loses nothing: its jobs are rescued when leases expire."""

from __future__ import annotations

import signal

import pytest

from djqueue.db.models import Job
from tests.acceptance.conftest import Workers, wait_until
from tests.testapp import tasks


@pytest.mark.django_db(transaction=True)
def test_jobs_of_a_killed_worker_are_rescued(workers: Workers) -> None:
    tasks.sleep.delay_many([(2,)] * 6)
    doomed = workers.start("-c", "2", "--prefetch-multiplier", "1")
    held = wait_until(
        lambda: (
            list(
                Job.objects.filter(
                    state="STARTED", worker__startswith=doomed.name_prefix
                ).values_list("id", flat=True)
            )
            if Job.objects.filter(worker__startswith=doomed.name_prefix).count() == 2
            else None
        ),
        timeout=10,
        what="the first worker to take two jobs",
    )
    # Killed before the survivor starts: a survivor slow to start under load must not
    # leave the doomed worker time to finish its two-second jobs.
    doomed.send(signal.SIGKILL)
    assert doomed.wait_exit(5) == -signal.SIGKILL
    survivor = workers.start("-c", "2", "--prefetch-multiplier", "1")

    wait_until(
        lambda: Job.objects.filter(state="SUCCESS").count() == 6,
        timeout=30,
        what="all six jobs to succeed",
        interval=0.2,
    )
    assert not Job.objects.filter(state="STARTED").exists()
    rescued = Job.objects.filter(id__in=held)
    assert {job.attempt for job in rescued} == {2}
    assert all(job.worker.startswith(survivor.name_prefix) for job in rescued)
    assert set(Job.objects.exclude(id__in=held).values_list("attempt", flat=True)) == {1}
    assert "Rescued jobs whose worker stopped renewing leases" in survivor.log()
