"""Leases follow what a worker holds: rows that name a live worker without it holding
them go back to the queue, and a worker that was frozen never starts a job that was
taken from it meanwhile (real worker processes)."""

from __future__ import annotations

import datetime
import os
import signal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from djqueue.db.models import Job, Worker
from tests.acceptance.conftest import WorkerProcess, Workers, wait_until
from tests.testapp import tasks


def _name(worker: WorkerProcess) -> str:
    row = wait_until(
        lambda: Worker.objects.filter(name__startswith=worker.name_prefix).first(),
        timeout=10,
        what="the worker's row",
    )
    return str(row.name)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("state", ["RECEIVED", "STARTED"])
def test_a_row_naming_a_live_worker_it_does_not_hold_goes_back(
    workers: Workers, state: str
) -> None:
    worker = workers.start("-P", "threads", "-c", "2")
    name = _name(worker)
    # As a claim whose reply was lost (RECEIVED) or an outcome the worker gave up on
    # (STARTED) leave it: committed under the worker's name, unknown to the worker. Its
    # lease is long, so only the worker's own heartbeat can hand it back.
    with transaction.atomic():  # no worker may claim it before it is planted
        result = tasks.add.delay(20, 22)
        Job.objects.filter(id=result.id).update(
            state=state,
            attempt=1,
            worker=name,
            lease_expires_at=timezone.now() + datetime.timedelta(hours=1),
        )

    assert result.get(timeout=10) == 42
    job = Job.objects.get(id=result.id)
    assert job.attempt == 2
    assert job.worker.startswith(worker.name_prefix)
    assert [entry["outcome"] for entry in job.history] == ["RELEASED"]
    assert "handed back 1 job(s) it held without knowing" in worker.log()
    # An attempt that never ran is given back.
    assert job.max_attempts == (5 if state == "RECEIVED" else 4)


def _runs_of(job_id: object) -> list[tuple[int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attempt, pid FROM acceptance_run WHERE job_id = %s ORDER BY id", [job_id]
        )
        return [(row[0], row[1]) for row in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pool", ["solo", "threads", "prefork"])
def test_a_frozen_worker_never_starts_what_was_taken_from_it(
    workers: Workers, run_table: str, pool: str
) -> None:
    # One slot: the sleep runs, the recording job waits in the worker's buffer.
    running = tasks.sleep.delay(1.5)
    waiting = tasks.record_run.delay()
    frozen = workers.start("-P", pool, "-c", "1", "--prefetch-multiplier", "2")
    wait_until(
        lambda: (
            Job.objects.filter(id=waiting.id, state="RECEIVED").exists()
            and Job.objects.filter(id=running.id, state="STARTED").exists()
        ),
        timeout=10,
        what="one job running and one held",
    )
    for pid in _family(frozen.pid):
        os.kill(pid, signal.SIGSTOP)
    try:
        rescuer = workers.start("-P", "threads", "-c", "2")
        wait_until(
            lambda: Job.objects.filter(id=waiting.id, state="SUCCESS").exists(),
            timeout=20,
            what="another worker to take back and run the held job",
        )
    finally:
        for pid in _family(frozen.pid):
            os.kill(pid, signal.SIGCONT)
    # The frozen worker wakes with the sleep done (or nearly) and the held job next in
    # line: it must see that the job is no longer its own.
    frozen.wait_for_log("taken back", timeout=15)
    wait_until(
        lambda: Job.objects.filter(id=running.id, state="SUCCESS").exists(),
        timeout=15,
        what="the sleeping job to end",
    )
    assert _runs_of(waiting.id) == [(2, _runs_of(waiting.id)[0][1])]
    assert _runs_of(waiting.id)[0][1] != frozen.pid
    assert frozen.process.poll() is None
    assert rescuer.process.poll() is None


def _family(pid: int) -> list[int]:
    """``pid`` and its children (a prefork worker's children freeze with it)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            children = [int(child) for child in listing.read().split()]
    except OSError:
        children = []
    return [pid, *children]
