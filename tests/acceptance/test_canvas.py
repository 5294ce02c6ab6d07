"""Workflows run by real worker processes: a chord's body runs once however many workers
finish its header, and a chain survives a worker killed in the middle of it."""

from __future__ import annotations

import signal

import pytest
from django.db import connection

import djqueue
from djqueue.db.models import Job
from tests.acceptance.conftest import Workers, wait_until
from tests.testapp import tasks


def _runs() -> list[tuple[str, int]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT job_id::text, attempt FROM acceptance_run ORDER BY id")
        return list(cursor.fetchall())


@pytest.mark.django_db(transaction=True)
def test_a_chord_of_500_drained_by_4_workers_runs_its_body_once(
    workers: Workers, run_table: str
) -> None:
    started = [workers.start("-c", "4", wait_ready=False) for _ in range(4)]
    for worker in started:
        worker.wait_for_log(" ready: pool=")
    result = djqueue.chord(
        (tasks.add.s(i, i) for i in range(500)), tasks.record_chord_body.s()
    ).apply_async()

    assert result.get(timeout=60) == 500
    assert _runs() == [(str(result.id), 1)]
    finishers = set(
        Job.objects.filter(id__in=[r.id for r in result.parent]).values_list("worker", flat=True)
    )
    assert len({name.split(".")[0] for name in finishers}) > 1  # several workers took part
    assert result.parent.get(timeout=5) == [2 * i for i in range(500)]
    assert Job.objects.count() == 501


@pytest.mark.django_db(transaction=True)
def test_a_chain_survives_a_worker_killed_in_its_middle(workers: Workers, run_table: str) -> None:
    result = djqueue.chain(
        tasks.add.si(1, 1), tasks.sleep.si(3), tasks.record_run.si(), tasks.show.s()
    ).apply_async()
    sleeping = result.parent.parent
    doomed = workers.start("-c", "2")
    wait_until(lambda: sleeping.state == "STARTED", timeout=15, what="the sleep step to start")
    doomed.send(signal.SIGKILL)
    assert doomed.wait_exit(5) == -signal.SIGKILL

    workers.start("-c", "2")
    output = result.get(timeout=60)

    assert sleeping.job.attempt == 2  # rescued and run again by the second worker
    runs = _runs()
    assert len(runs) == 1 and output == f"result: {result.parent.get(timeout=1)}"
    assert Job.objects.count() == 4
    assert set(Job.objects.values_list("state", flat=True)) == {"SUCCESS"}
