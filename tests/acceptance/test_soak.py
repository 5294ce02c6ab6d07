"""Soak: a large backlog drained while workers are killed and restarted at random."""

from __future__ import annotations

import random
import signal
import time

import pytest
from django.db import connection

from djqueue.db.models import Job
from tests.acceptance.conftest import WorkerProcess, Workers
from tests.testapp import tasks

JOBS = 20_000


@pytest.mark.soak
@pytest.mark.timeout(600)
@pytest.mark.django_db(transaction=True)
def test_backlog_survives_repeated_kill_9(workers: Workers, run_table: str) -> None:
    tasks.record_run.delay_many([()] * JOBS)
    running: list[WorkerProcess] = [workers.start("-c", "4") for _ in range(2)]
    deadline = time.monotonic() + 400
    chaos = random.Random(7)
    while Job.objects.filter(state="SUCCESS").count() < JOBS:
        assert time.monotonic() < deadline, "backlog not drained in time"
        time.sleep(chaos.uniform(1, 3))
        if Job.objects.filter(state="PENDING").exists():
            victim = running.pop(chaos.randrange(len(running)))
            victim.send(signal.SIGKILL)
            victim.wait_exit(10)
            running.append(workers.start("-c", "4"))

    assert not Job.objects.exclude(state="SUCCESS").exists()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(DISTINCT job_id) FROM {run_table}")
        assert cursor.fetchone()[0] == JOBS
        # At least once, but each attempt (a claim) runs at most once: only jobs taken
        # from a killed worker ran again.
        cursor.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {run_table} GROUP BY job_id, attempt "
            "HAVING count(*) > 1) AS twice"
        )
        assert cursor.fetchone()[0] == 0
        cursor.execute(
            f"SELECT count(*) FROM {run_table} AS r JOIN djqueue_job AS j ON j.id = r.job_id "
            "WHERE r.attempt > j.attempt"
        )
        assert cursor.fetchone()[0] == 0
