"""Pure parts of the prefork pool and of autoscaling: messages, limits, lost jobs, sizes."""

from __future__ import annotations

import datetime
import os
import signal
import uuid

import pytest

from djqueue.core.records import ClaimedJob, Outcome
from djqueue.runtime.pools import autoscale, child, lost, messages
from djqueue.runtime.pools.base import Load
from djqueue.runtime.pools.threads import ThreadPool


def _job(task: str = "tests.testapp.tasks.sleep", retries: int = 0) -> ClaimedJob:
    return ClaimedJob(
        id=uuid.uuid4(),
        task_name=task,
        args='[1, "é\\n"]',
        kwargs="{}",
        attempt=2,
        retries=retries,
        queue="default",
        priority=3,
        eta=datetime.datetime(2026, 1, 5, 10, 0, tzinfo=datetime.UTC),
        expired=False,
        worker="w1.1.abc",
    )


def test_a_job_crosses_the_pipe_unchanged_on_one_line() -> None:
    job = _job()
    line = messages.job_line(job)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert messages.read_job(line) == job


def test_an_outcome_crosses_the_pipe_with_the_reason_to_retire() -> None:
    outcome = Outcome(
        uuid.uuid4(),
        1,
        "t",
        "RETRY",
        result=None,
        error_type="ValueError",
        error_message="line one\nline two",
        traceback="Traceback...\n",
        retry_at=datetime.datetime(2026, 1, 5, tzinfo=datetime.UTC),
        runtime=0.25,
        worker="w",
    )
    line = messages.outcome_line(outcome, "it ran 5 job(s)")
    assert line.count(b"\n") == 1
    assert messages.read_outcome(line) == (outcome, "it ran 5 job(s)")


def test_the_live_exception_stays_behind() -> None:
    outcome = Outcome(uuid.uuid4(), 1, "t", "FAILURE", exception=ValueError("x"))
    assert messages.read_outcome(messages.outcome_line(outcome))[0].exception is None


@pytest.mark.parametrize(
    ("limits", "jobs_done", "memory", "expected"),
    [
        (child.Limits(), 1000, 10**9, ""),
        (child.Limits(max_tasks=5), 4, 0, ""),
        (child.Limits(max_tasks=5), 5, 0, "max-tasks-per-child"),
        (child.Limits(max_memory_kb=1000), 1, 1000, ""),
        (child.Limits(max_memory_kb=1000), 1, 1001, "max-memory-per-child"),
    ],
)
def test_a_child_retires_after_the_job_that_reaches_a_limit(
    limits: child.Limits, jobs_done: int, memory: int, expected: str
) -> None:
    reason = child.retire_reason(limits, jobs_done, memory)
    assert (expected in reason) if expected else reason == ""


def test_memory_is_measured_in_kilobytes() -> None:
    assert 1_000 < child.memory_kb() < 10_000_000


def test_a_lost_job_with_retries_left_is_retried_soon() -> None:
    job = _job(retries=2)  # sleep has max_retries=3
    outcome = lost.lost_outcome(job, "was killed by signal 9 (SIGKILL)")
    assert (outcome.state, outcome.retry_in) == ("RETRY", lost.LOST_RETRY_DELAY)
    assert outcome.error_type == "djqueue.exceptions.WorkerLostError"
    assert (outcome.job_id, outcome.attempt, outcome.worker) == (job.id, 2, "w1.1.abc")


def test_a_lost_job_without_retries_left_fails() -> None:
    outcome = lost.lost_outcome(_job(retries=3), "exited with status 1")
    assert (outcome.state, outcome.retry_in) == ("FAILURE", None)
    assert outcome.error_message == "the child process running the job exited with status 1"


def test_a_lost_job_of_an_unknown_task_fails() -> None:
    assert lost.lost_outcome(_job(task="no.such.task"), "died").state == "FAILURE"


def test_a_lost_job_of_a_task_retrying_forever_is_retried() -> None:
    job = _job(task="tests.testapp.tasks.sleep_unlimited", retries=1000)
    assert lost.lost_outcome(job, "died").state == "RETRY"


def test_exit_statuses_in_words() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(3)
    assert lost.describe_exit(os.waitpid(pid, 0)[1]) == "exited with status 3"
    pid = os.fork()
    if pid == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    assert lost.describe_exit(os.waitpid(pid, 0)[1]) == "was killed by signal 9 (SIGKILL)"


@pytest.mark.parametrize(
    ("size", "demand", "quiet_for", "expected"),
    [
        (1, 3, 0, 3),  # jobs wait: grow at once
        (1, 9, 0, 4),  # never above MAX
        (4, 4, 100, 4),  # fully used: stay
        (4, 0, 0.5, 4),  # a short lull: stay
        (4, 2, 1.0, 2),  # quiet long enough: shrink to what is used
        (4, 0, 5.0, 1),  # never below MIN
    ],
)
def test_next_size(size: int, demand: int, quiet_for: float, expected: int) -> None:
    assert autoscale.next_size(size, demand, 1, 4, quiet_for, keepalive=1.0) == expected


class _FakePool:
    def __init__(self, size: int) -> None:
        self.current = Load(size, 0, 0)

    def resize(self, size: int) -> None:
        self.current = Load(size, self.current.busy, self.current.waiting)

    def load(self) -> Load:
        return self.current


def test_autoscaler_grows_then_shrinks_after_the_keepalive() -> None:
    pool = _FakePool(1)
    scaler = autoscale.Autoscaler(pool, low=1, high=4, keepalive=2.0)
    pool.current = Load(1, 1, 5)
    assert scaler.tick(now=10.0) == 4
    pool.current = Load(4, 0, 0)
    assert scaler.tick(now=11.0) == 4
    assert scaler.tick(now=11.9) == 4
    assert scaler.tick(now=12.1) == 1


def test_thread_pool_grows_and_shrinks() -> None:
    ran: list[uuid.UUID] = []
    pool = ThreadPool(lambda job, window: ran.append(job.id), 4)
    pool.resize(1)
    pool.start()
    assert pool.load() == Load(1, 0, 0)
    pool.resize(3)
    jobs = [_job() for _ in range(10)]
    for job in jobs:
        pool.submit(job)
    pool.resize(2)
    assert pool.load().size == 2
    pool.stop()
    assert sorted(ran) == sorted(job.id for job in jobs)
    assert not pool.terminate(jobs[0].id)
