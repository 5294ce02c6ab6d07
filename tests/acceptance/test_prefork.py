"""The prefork pool with real child processes: draining, children killed with SIGKILL,
recycling after a number of jobs or above a memory size, autoscaling, and shutdown."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from django.db import connection

from djqueue.db.models import Job, Worker
from tests.acceptance.conftest import WorkerProcess, Workers, wait_until
from tests.testapp import tasks

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")


def _children(parent: WorkerProcess) -> set[int]:
    """Process ids of the live (not zombie) children of ``parent``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command name: state, ppid, ...
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == parent.pid and state != "Z":
            found.add(int(entry.name))
    return found


def _runs(run_table: str) -> list[tuple[str, int, int]]:
    """(job id, attempt, pid) of every execution recorded by ``record_run``."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT job_id::text, attempt, pid FROM {run_table} ORDER BY id")
        return [(row[0], row[1], row[2]) for row in cursor.fetchall()]


def _all_succeed(count: int, timeout: float = 60) -> None:
    wait_until(
        lambda: Job.objects.filter(state="SUCCESS").count() == count,
        timeout=timeout,
        what=f"{count} job(s) to succeed",
        interval=0.1,
    )


@pytest.mark.django_db(transaction=True)
def test_prefork_drains_a_backlog_once_each_in_child_processes(
    workers: Workers, run_table: str
) -> None:
    jobs = 1000
    tasks.record_run.delay_many([()] * jobs)
    worker = workers.start("-P", "prefork", "-c", "2")
    children = _children(worker)
    assert len(children) == 2

    _all_succeed(jobs)
    runs = _runs(run_table)
    assert len(runs) == len({job_id for job_id, _, _ in runs}) == jobs
    assert {pid for _, _, pid in runs} == children, "only the two children run jobs"
    assert set(Job.objects.values_list("attempt", flat=True)) == {1}
    assert Worker.objects.get(name__startswith=worker.name_prefix).pool == "prefork"


@pytest.mark.django_db(transaction=True)
def test_killed_child_is_replaced_and_its_job_retried_or_failed(workers: Workers) -> None:
    may_retry = tasks.sleep_then_pid.delay(3)  # max_retries=3: retried
    out_of_retries = tasks.sleep_then_pid.delay(3)
    Job.objects.filter(id=out_of_retries.id).update(retries=3)
    worker = workers.start("-P", "prefork", "-c", "2", "--prefetch-multiplier", "1")
    first = _children(worker)
    wait_until(
        lambda: Job.objects.filter(state="STARTED").count() == 2,
        timeout=10,
        what="both jobs to start",
    )
    time.sleep(0.3)  # both are inside the task now

    for pid in first:
        os.kill(pid, signal.SIGKILL)
    wait_until(
        lambda: Job.objects.filter(id=out_of_retries.id, state="FAILURE").exists(),
        timeout=5,
        what="the job without retries left to fail",
    )
    failed = Job.objects.get(id=out_of_retries.id)
    assert failed.error_type == "djqueue.exceptions.WorkerLostError"
    assert "killed by signal 9" in failed.error_message
    assert failed.attempt == 1

    wait_until(
        lambda: Job.objects.filter(id=may_retry.id, state="SUCCESS").exists(),
        timeout=10,
        what="the retried job to succeed",
    )
    retried = Job.objects.get(id=may_retry.id)
    assert (retried.attempt, retried.retries) == (2, 1)
    second = _children(worker)
    assert len(second) == 2 and not second & first, "both children were replaced"
    assert retried.result in second

    more = tasks.record_pid.delay_many([("after",)] * 20)
    _all_succeed(21, timeout=10)
    assert {Job.objects.get(id=r.id).result for r in more} <= second
    assert not Job.objects.filter(state__in=["STARTED", "PENDING", "RETRY"]).exists()
    assert worker.process.poll() is None
    log = worker.log()
    assert log.count("was killed by signal 9 (SIGKILL) while running") == 2
    assert "the job ends RETRY" in log and "the job ends FAILURE" in log


@pytest.mark.django_db(transaction=True)
def test_max_tasks_per_child_recycles_children(workers: Workers, run_table: str) -> None:
    jobs = 40
    tasks.record_run.delay_many([()] * jobs)
    worker = workers.start("-P", "prefork", "-c", "2", "--max-tasks-per-child", "5")

    _all_succeed(jobs)
    runs = _runs(run_table)
    assert len(runs) == len({job_id for job_id, _, _ in runs}) == jobs
    per_pid: dict[int, int] = {}
    for _, _, pid in runs:
        per_pid[pid] = per_pid.get(pid, 0) + 1
    assert len(per_pid) >= jobs // 5
    assert max(per_pid.values()) <= 5
    assert set(Job.objects.values_list("attempt", flat=True)) == {1}
    assert "the --max-tasks-per-child limit" in worker.log()
    wait_until(lambda: len(_children(worker)) == 2, timeout=5, what="two children again")


@pytest.mark.django_db(transaction=True)
def test_max_memory_per_child_recycles_children(workers: Workers, run_table: str) -> None:
    jobs = 6
    tasks.record_run.delay_many([()] * jobs)
    # Any Python process is over 1 KB: every job crosses the limit, and still succeeds.
    worker = workers.start("-P", "prefork", "-c", "2", "--max-memory-per-child", "1")

    _all_succeed(jobs)
    runs = _runs(run_table)
    assert len(runs) == len({job_id for job_id, _, _ in runs}) == jobs
    assert len({pid for _, _, pid in runs}) == jobs, "a new child for every job"
    assert re.search(r"retires: it uses \d+ KB of memory, over the", worker.log())


@pytest.mark.django_db(transaction=True)
def test_autoscale_grows_under_a_backlog_and_shrinks_when_idle(workers: Workers) -> None:
    worker = workers.start("-P", "prefork", "--autoscale", "4,1", "--autoscale-keepalive", "1")
    assert len(_children(worker)) == 1
    tasks.sleep.delay_many([(1.5,)] * 8)

    wait_until(lambda: len(_children(worker)) == 4, timeout=5, what="four children")
    _all_succeed(8, timeout=15)
    wait_until(lambda: len(_children(worker)) == 1, timeout=5, what="one child again")
    log = worker.log()
    assert "Autoscale: pool grows from 1 to 4." in log
    assert "Autoscale: pool shrinks from 4 to 1." in log


@pytest.mark.django_db(transaction=True)
def test_sigterm_lets_the_child_finish_its_job(workers: Workers) -> None:
    running = tasks.sleep_then_pid.delay(2)
    prefetched = tasks.sleep.delay_many([(2,)] * 3)
    worker = workers.start("-P", "prefork", "-c", "1", "--prefetch-multiplier", "4")
    children = _children(worker)
    wait_until(
        lambda: (
            Job.objects.filter(state="STARTED").count() == 1
            and Job.objects.filter(state="RECEIVED").count() == 3
        ),
        timeout=10,
        what="the worker to start one job and hold three",
    )

    worker.send(signal.SIGTERM)
    assert worker.wait_exit(timeout=8) == 0

    job = Job.objects.get(id=running.id)
    assert (job.state, job.result) == ("SUCCESS", children.pop())
    for result in prefetched:
        assert Job.objects.get(id=result.id).state == "PENDING"
    assert "stopped after 1 job(s)" in worker.log()


@pytest.mark.django_db(transaction=True)
def test_cold_shutdown_kills_the_children_and_hands_the_job_back(workers: Workers) -> None:
    result = tasks.sleep_then_pid.delay(30)
    worker = workers.start("-P", "prefork", "-c", "1")
    children = _children(worker)
    wait_until(
        lambda: Job.objects.filter(state="STARTED").exists(), timeout=10, what="the job to start"
    )
    worker.send(signal.SIGQUIT)
    worker.wait_exit(timeout=3)

    job = Job.objects.get(id=result.id)
    assert (job.state, job.worker, job.attempt) == ("PENDING", "", 1)
    wait_until(
        lambda: not any(Path(f"/proc/{pid}").exists() for pid in children),
        timeout=3,
        what="the child process to be gone",
    )
