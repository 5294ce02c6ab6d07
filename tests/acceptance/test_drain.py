"""Two workers drain a backlog: every job runs exactly once and both share the work."""

from __future__ import annotations

import pytest
from django.db import connection

from djqueue.db.models import Job
from tests.acceptance.conftest import Workers, wait_until
from tests.testapp import tasks

JOBS = 1000


@pytest.mark.django_db(transaction=True)
def test_two_workers_run_each_job_exactly_once(workers: Workers, run_table: str) -> None:
    tasks.record_run.delay_many([()] * JOBS)
    # threads: the pid a job records is its worker's (prefork records the child's). Both
    # start at once, so that neither has the backlog to itself for a while.
    first = workers.start("-P", "threads", "-c", "4", wait_ready=False)
    second = workers.start("-P", "threads", "-c", "4", wait_ready=False)
    first.wait_for_log(" ready: pool=")
    second.wait_for_log(" ready: pool=")

    wait_until(
        lambda: Job.objects.filter(state="SUCCESS").count() == JOBS,
        timeout=90,
        what=f"{JOBS} jobs to succeed",
        interval=0.2,
    )

    assert Job.objects.exclude(state="SUCCESS").count() == 0
    assert set(Job.objects.values_list("attempt", flat=True)) == {1}
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), count(DISTINCT job_id) FROM {run_table}")
        runs, distinct_jobs = cursor.fetchone()
        cursor.execute(f"SELECT DISTINCT pid FROM {run_table}")
        pids = {row[0] for row in cursor.fetchall()}
    assert (runs, distinct_jobs) == (JOBS, JOBS), "some job ran more than once"
    assert pids == {first.pid, second.pid}, "both workers should have done some work"
    by_worker = {
        prefix: Job.objects.filter(worker__startswith=prefix).count()
        for prefix in (first.name_prefix, second.name_prefix)
    }
    assert sum(by_worker.values()) == JOBS
    assert all(by_worker.values()), by_worker
