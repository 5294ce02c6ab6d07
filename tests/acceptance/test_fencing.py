"""A worker presumed dead cannot overwrite the outcome of the attempt that replaced it."""

from __future__ import annotations

import signal

import pytest

from djqueue.db.models import Job
from tests.acceptance.conftest import Workers, wait_until
from tests.testapp import tasks


@pytest.mark.django_db(transaction=True)
def test_late_outcome_of_a_frozen_worker_is_ignored(workers: Workers) -> None:
    result = tasks.sleep_then_pid.delay(3)
    # threads: SIGSTOP freezes the job too, and the result names the worker's pid.
    frozen = workers.start("-P", "threads", "-c", "1", "--prefetch-multiplier", "1")
    wait_until(
        lambda: Job.objects.filter(
            id=result.id, state="STARTED", worker__startswith=frozen.name_prefix
        ).exists(),
        timeout=10,
        what="the first worker to start the job",
    )
    frozen.send(signal.SIGSTOP)  # no heartbeat: its lease runs out
    rescuer = workers.start("-P", "threads", "-c", "1", "--prefetch-multiplier", "1")
    wait_until(
        lambda: Job.objects.filter(id=result.id, state="SUCCESS").exists(),
        timeout=20,
        what="the second worker to rescue and finish the job",
        interval=0.1,
    )

    frozen.send(signal.SIGCONT)  # its 3 s sleep is long over: it reports at once
    frozen.wait_for_log(f"Ignored a late outcome for job {result.id}")
    job = Job.objects.get(id=result.id)
    assert (job.state, job.attempt, job.lost) == ("SUCCESS", 2, 1)
    assert job.worker.startswith(rescuer.name_prefix)
    # Taken back from a lost worker, it ran in a process of its own (the result is the
    # pid that ran it): had it been what froze the worker, only that process would die.
    assert job.result not in (frozen.pid, rescuer.pid)
    assert f"sleep_then_pid[{result.id}] runs in a process of its own" in rescuer.log()
    assert frozen.process.poll() is None
