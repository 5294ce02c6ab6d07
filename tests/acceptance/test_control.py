"""djqueue.control with real workers: replies from every live worker, limits that reach
workers started later, pool size, queues, and a warm shutdown on command."""

from __future__ import annotations

import pytest

from djqueue import control
from djqueue.db.models import Job, Worker
from tests.acceptance.conftest import Workers, wait_until
from tests.testapp import tasks


def _name(worker: object) -> str:
    prefix = worker.name_prefix  # type: ignore[attr-defined]
    return str(Worker.objects.get(name__startswith=prefix, stopped_at__isnull=True).name)


def _ended(job_id: object, timeout: float = 20) -> Job:
    return wait_until(  # type: ignore[no-any-return]
        lambda: Job.objects.filter(id=job_id, state__in=["SUCCESS", "FAILURE", "REVOKED"]).first(),
        timeout=timeout,
        what=f"job {job_id} to end",
    )


@pytest.mark.django_db(transaction=True)
def test_ping_stats_registered_and_destination(workers: Workers) -> None:
    one = workers.start("-P", "threads", "-c", "2")
    two = workers.start("-P", "threads", "-c", "1", "-Q", "default,other")
    first, second = _name(one), _name(two)

    replies = control.ping(timeout=20)
    assert sorted(replies, key=str) == sorted(
        [{first: {"ok": "pong"}}, {second: {"ok": "pong"}}], key=str
    )
    assert control.inspect(destination=[two.hostname], timeout=20).ping() == {
        second: {"ok": "pong"}
    }

    stats = control.inspect(timeout=20).stats()
    assert stats is not None and set(stats) == {first, second}
    assert stats[first]["pid"] == one.pid and stats[first]["pool"]["implementation"] == "threads"
    assert stats[first]["pool"]["max-concurrency"] == 2
    registered = control.inspect(timeout=20).registered()
    assert registered is not None and tasks.add.name in registered[second]
    queues = control.inspect().active_queues()
    assert queues is not None and [q["name"] for q in queues[second]] == ["default", "other"]


@pytest.mark.django_db(transaction=True)
def test_pool_grow_and_shrink(workers: Workers) -> None:
    worker = workers.start("-P", "threads", "-c", "2")
    name = _name(worker)
    assert control.pool_grow(3, reply=True, timeout=20) == [
        {name: {"ok": "pool will grow", "size": 5}}
    ]
    stats = control.inspect(timeout=20).stats()
    assert stats is not None and stats[name]["pool"]["max-concurrency"] == 5
    assert control.pool_shrink(4, reply=True, timeout=20) == [
        {name: {"ok": "pool will shrink", "size": 1}}
    ]


@pytest.mark.django_db(transaction=True)
def test_a_solo_worker_says_it_cannot_resize(workers: Workers) -> None:
    worker = workers.start("-P", "solo")
    [reply] = control.pool_grow(1, reply=True, timeout=20) or []
    assert reply == {_name(worker): {"error": "the solo pool cannot change its size"}}


@pytest.mark.django_db(transaction=True)
def test_shutdown_is_a_warm_shutdown(workers: Workers) -> None:
    worker = workers.start("-P", "threads", "-c", "1")
    running = tasks.sleep.delay(1.5)
    wait_until(lambda: Job.objects.get(pk=running.id).state == "STARTED", 20, "the start")
    assert control.shutdown(reply=True, timeout=20) == [{_name(worker): {"ok": "shutting down"}}]
    assert worker.wait_exit(timeout=30) == 0
    assert Job.objects.get(pk=running.id).state == "SUCCESS"  # it was let finish
    assert "Warm shutdown" in worker.log()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_time_limit_reaches_live_workers_and_later_ones(workers: Workers, pool: str) -> None:
    first = workers.start("-P", pool, "-c", "1")
    assert control.time_limit(tasks.spin.name, hard=0.5, reply=True, timeout=20) == [
        {_name(first): {"ok": "time limits set successfully"}}
    ]
    stopped = tasks.spin.delay(60)
    job = _ended(stopped.id, timeout=30)
    assert job.state == "FAILURE" and "TimeLimitExceeded" in job.error_type

    first.kill()
    Job.objects.filter(state__in=["PENDING", "RECEIVED", "STARTED"]).delete()
    later = workers.start("-P", pool, "-c", "1")
    wait_until(lambda: "Control command time_limit" in later.log(), 20, "the limit applied")
    again = tasks.spin.delay(60)
    job = _ended(again.id, timeout=30)
    assert job.state == "FAILURE" and "TimeLimitExceeded" in job.error_type


@pytest.mark.django_db(transaction=True)
def test_rate_limit_holds_for_jobs_sent_by_processes_that_never_heard_of_it(
    workers: Workers,
) -> None:
    worker = workers.start("-P", "threads", "-c", "2")
    assert control.rate_limit(tasks.add.name, "1/h", reply=True, timeout=20) == [
        {_name(worker): {"ok": "new rate limit set successfully"}}
    ]
    # This process's task object has no limit: its jobs are sent without one, and
    # the worker puts them under the new limit when it claims them.
    sent = [tasks.add.delay(i, i).id for i in range(3)]
    done = wait_until(
        lambda: list(Job.objects.filter(pk__in=sent, state="SUCCESS")), 20, "one job to run"
    )
    wait_until(
        lambda: Job.objects.filter(pk__in=sent, rate_limit=1, state="PENDING").count() == 2,
        20,
        "the two others to wait under the limit",
    )
    assert len(done) == 1
    assert Job.objects.filter(pk__in=sent, state="SUCCESS").count() == 1


@pytest.mark.django_db(transaction=True)
def test_add_and_cancel_consumer(workers: Workers) -> None:
    worker = workers.start("-P", "threads", "-c", "1")
    name = _name(worker)
    elsewhere = tasks.add.apply_async((1, 2), queue="elsewhere")
    assert control.add_consumer("elsewhere", reply=True, timeout=20) == [
        {name: {"ok": "add consumer elsewhere"}}
    ]
    assert _ended(elsewhere.id).state == "SUCCESS"
    queues = control.inspect().active_queues()
    assert queues is not None and [q["name"] for q in queues[name]] == ["default", "elsewhere"]
    assert control.cancel_consumer("elsewhere", reply=True, timeout=20) == [
        {name: {"ok": "no longer consuming from elsewhere"}}
    ]


@pytest.mark.django_db(transaction=True)
def test_the_command_line_uses_the_same_api(workers: Workers) -> None:
    from io import StringIO

    from django.core.management import call_command

    worker = workers.start("-P", "threads", "-c", "1")
    out = StringIO()
    call_command("djqueue", "inspect", "ping", "--timeout", "20", stdout=out)
    assert out.getvalue().splitlines()[1].split() == [_name(worker), "pong"]
