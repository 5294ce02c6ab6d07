"""Time limits and stopping jobs in the in-process pools (threads, solo)."""

import threading
import time
import uuid
from typing import Any

import pytest

import djqueue
from djqueue.client import validators
from djqueue.core import exceptions
from djqueue.core.records import ClaimedJob
from djqueue.runtime.pools.solo import SoloPool
from djqueue.runtime.pools.threads import ThreadPool
from djqueue.runtime.supervisor import Supervisor
from tests.testapp import tasks


def claimed(task: Any, *args: Any) -> ClaimedJob:
    import json

    return ClaimedJob(
        uuid.uuid4(),
        task.name,
        json.dumps(list(args)),
        "{}",
        1,
        0,
        "default",
        0,
        None,
        False,
        worker="w",
    )


def test_task_limits_override_worker_defaults() -> None:
    supervisor = Supervisor(object(), soft_default=5, hard_default=50)
    assert supervisor.limits(tasks.spin_forever.name) == (5, 2)
    assert supervisor.limits(tasks.clean_up_on_soft_limit.name) == (1, 10)
    assert supervisor.limits(tasks.add.name) == (5, 50)
    assert supervisor.limits("unknown.task") == (None, None)


@pytest.mark.parametrize(
    ("hard", "soft", "message"),
    [
        (0, None, "time_limit of t must be a positive number"),
        (None, -1, "soft_time_limit of t must be a positive number"),
        (5, 5, "soft_time_limit of t .5s. must be below its time_limit"),
        ("10", None, "must be a positive number of seconds"),
    ],
)
def test_bad_limits_are_refused(hard: Any, soft: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validators.check_time_limits(hard, soft, "t")


def test_task_option_validation_at_decoration() -> None:
    with pytest.raises(ValueError, match="must be below its time_limit"):

        @djqueue.task(name="tests.unit.bad_limits", time_limit=1, soft_time_limit=2)
        def bad() -> None:
            return None


def _in_thread_pool(job: ClaimedJob, act: Any) -> Any:
    """Run ``job`` in a one-thread pool, call ``act(pool)`` once it runs; its outcome."""
    from djqueue.core import executor

    outcomes: list[Any] = []
    pool = ThreadPool(
        lambda claimed_job, window: outcomes.append(
            executor.execute(claimed_job, call=window.call)
        ),
        1,
    )
    pool.start()
    pool.submit(job)
    deadline = time.monotonic() + 5
    while not pool.running() and time.monotonic() < deadline:
        time.sleep(0.01)
    act(pool)
    while not outcomes and time.monotonic() < deadline:
        time.sleep(0.01)
    pool.stop()
    [outcome] = outcomes
    return outcome


def _as_if_later(job: ClaimedJob, seconds: float) -> Any:
    def act(pool: ThreadPool) -> None:
        supervisor = Supervisor(pool, None, None)
        supervisor.watch(job)
        supervisor.tick(time.monotonic() + seconds)

    return act


def test_threads_pool_raises_a_soft_limit_inside_the_task() -> None:
    job = claimed(tasks.clean_up_on_soft_limit, 30)
    outcome = _in_thread_pool(job, _as_if_later(job, 1.5))
    assert outcome.result == '"cleaned up"'


def test_threads_pool_hard_limit_raises_time_limit_exceeded() -> None:
    job = claimed(tasks.spin_forever)
    outcome = _in_thread_pool(job, _as_if_later(job, 3))
    assert (outcome.state, outcome.error_type) == (
        "FAILURE",
        "djqueue.exceptions.TimeLimitExceeded",
    )


def test_threads_pool_revoke_raises_task_revoked_error() -> None:
    job = claimed(tasks.spin, 30)
    outcome = _in_thread_pool(job, lambda pool: Supervisor(pool, None, None).revoke_running(job))
    assert outcome.state == "REVOKED"
    assert outcome.error_type == "djqueue.exceptions.TaskRevokedError"


def test_a_late_interrupt_never_reaches_the_pool_thread() -> None:
    from djqueue.core import executor

    outcomes: list[Any] = []
    pool = ThreadPool(
        lambda job, window: outcomes.append(executor.execute(job, call=window.call)), 1
    )
    pool.start()
    job = claimed(tasks.add, 1, 2)
    pool.submit(job)
    deadline = time.monotonic() + 5
    while not outcomes and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.interrupt(job.id, exceptions.TaskRevokedError) is False  # not running
    second = claimed(tasks.add, 2, 3)
    pool.submit(second)
    while len(outcomes) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    pool.stop()
    assert [o.state for o in outcomes] == ["SUCCESS", "SUCCESS"]


def test_solo_pool_reports_its_running_job_and_interrupts_it() -> None:
    from djqueue.core import executor

    seen: dict[str, Any] = {}
    pool = SoloPool(lambda job, window: None)

    def control_thread(job: ClaimedJob) -> None:
        # What the worker's control thread does while the solo job runs.
        time.sleep(0.2)
        seen["running"] = [r.job_id for r in pool.running()]
        seen["interrupted"] = pool.interrupt(job.id, exceptions.SoftTimeLimitExceeded)

    def runner(job: ClaimedJob, window: Any) -> None:
        threading.Thread(target=control_thread, args=(job,)).start()
        seen["outcome"] = executor.execute(job, call=window.call)

    pool.runner = runner
    job = claimed(tasks.clean_up_on_soft_limit, 5)
    pool.submit(job)
    assert pool.running() == []  # submitted jobs wait for the worker loop
    assert pool.run_one() is True
    assert seen["running"] == [job.id]
    assert seen["interrupted"] is True
    assert seen["outcome"].result == '"cleaned up"'
    assert pool.running() == []
    assert pool.run_one() is False


def test_worker_limit_errors_name_the_flags() -> None:
    from django.core.management import CommandError, call_command

    with pytest.raises(
        CommandError, match=r"--soft-time-limit of the worker \(5.0s\) must be below"
    ):
        call_command("runworker", "--time-limit", "5", "--soft-time-limit", "5")
    with pytest.raises(CommandError, match="--time-limit of the worker must be a positive"):
        call_command("runworker", "--time-limit", "0")
