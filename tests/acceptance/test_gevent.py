"""The gevent pool with real worker processes: patched early, many greenlets at once,
cooperative database access, warm shutdown, and the error when patching came too late."""

from __future__ import annotations

import importlib.util
import signal
import time
from pathlib import Path

import pytest

from djqueue.db.models import Job
from djqueue.db.models import Worker as WorkerRow
from tests.acceptance.conftest import REPO_ROOT, WorkerProcess, Workers, wait_until
from tests.testapp import tasks

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gevent") is None,
    reason="gevent is not installed (pip install gevent; tox -e gevent)",
)

# The two documented ways of patching before Django starts.
MANAGE_PY = (str(REPO_ROOT / "manage.py"), "runworker", "--pool", "gevent")
GEVENT_WORKER = ("-m", "djqueue.gevent_worker")


def start(
    workers: Workers, entry: tuple[str, ...], *args: str, wait_ready: bool = True
) -> WorkerProcess:
    """Start a worker through ``entry`` (not ``django runworker``), as ``workers`` would."""
    return workers.start(*args, entry=entry, wait_ready=wait_ready, ready=" ready: pool=gevent")


def _finished(count: int) -> bool:
    return Job.objects.filter(state="SUCCESS").count() >= count


@pytest.mark.django_db(transaction=True)
def test_two_hundred_sleeping_tasks_run_at_once(workers: Workers) -> None:
    results = tasks.sleep.delay_many([(1,)] * 200)
    worker = start(workers, MANAGE_PY, "-c", "200", "--prefetch-multiplier", "1")
    began = time.monotonic()

    wait_until(lambda: _finished(200), timeout=20, what="200 sleeping jobs to finish")

    # One after another they would take 200 s; side by side about 1 s, plus start-up.
    assert time.monotonic() - began < 8
    jobs = Job.objects.filter(id__in=[result.id for result in results])
    assert {(job.state, job.attempt) for job in jobs} == {("SUCCESS", 1)}
    assert "pool=gevent concurrency=200" in worker.log()


@pytest.mark.django_db(transaction=True)
def test_tasks_use_the_orm_without_blocking_each_other(workers: Workers) -> None:
    # pg_sleep holds each job on the server: only cooperative waits let them overlap.
    results = tasks.database_sleep.delay_many([(1,)] * 20)
    start(workers, GEVENT_WORKER, "-c", "20")
    began = time.monotonic()

    wait_until(lambda: _finished(20), timeout=15, what="20 database jobs to finish")

    assert time.monotonic() - began < 6
    values = {result.get(timeout=1) for result in results}
    # Each job saw its own row in djqueue_job through the ORM, on its own connection.
    assert values == {"STARTED"}


@pytest.mark.django_db(transaction=True)
def test_sigterm_lets_the_running_job_finish(workers: Workers) -> None:
    running = tasks.sleep.delay(2)
    worker = start(workers, GEVENT_WORKER, "-c", "10")
    wait_until(
        lambda: Job.objects.filter(id=running.id, state="STARTED").exists(),
        timeout=10,
        what="the job to start",
    )
    time.sleep(0.3)

    worker.send(signal.SIGTERM)
    assert worker.wait_exit(timeout=8) == 0

    assert Job.objects.get(id=running.id).state == "SUCCESS"
    assert "Warm shutdown" in worker.log()
    assert "stopped after 1 job(s)" in worker.log()


# Django's own template for manage.py: it patches nothing.
STOCK_MANAGE_PY = """\
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
"""
# A program that runs the worker from code: no command line to start again.
FROM_CODE = (
    "-c",
    "import sys; from django.core.management import execute_from_command_line; "
    "execute_from_command_line(['django-admin', 'runworker', *sys.argv[1:]])",
)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["stock manage.py", "python -m django"])
def test_a_stock_command_line_starts_again_patched(
    workers: Workers, tmp_path: Path, how: str
) -> None:
    if how == "stock manage.py":
        (tmp_path / "manage.py").write_text(STOCK_MANAGE_PY)
        entry: tuple[str, ...] = (str(tmp_path / "manage.py"), "runworker")
    else:
        entry = ("-m", "django", "runworker")
    results = tasks.sleep.delay_many([(1,)] * 20)
    worker = start(workers, entry, "--pool", "gevent", "-c", "20")

    wait_until(lambda: _finished(20), timeout=15, what="20 sleeping jobs to finish")

    log = worker.log()
    assert "starting again with gevent's monkey-patching applied first" in log
    assert "Traceback" not in log
    # The same process carried on (the pid a supervisor watches) and ran the jobs.
    assert WorkerRow.objects.get(name__startswith=worker.name_prefix).pid == worker.pid
    jobs = Job.objects.filter(id__in=[result.id for result in results])
    assert {(job.state, job.attempt) for job in jobs} == {("SUCCESS", 1)}
    worker.send(signal.SIGTERM)
    assert worker.wait_exit(timeout=10) == 0


@pytest.mark.django_db(transaction=True)
def test_refuses_to_start_when_patching_came_too_late(workers: Workers) -> None:
    worker = workers.start("--pool", "gevent", wait_ready=False, entry=FROM_CODE)

    assert worker.wait_exit(timeout=20) == 1
    log = worker.log()
    assert "needs gevent's monkey-patching" in log
    assert "python -m djqueue.gevent_worker" in log
    assert "gevent_patch.patch_if_requested()" in log
    assert "Traceback" not in log


@pytest.mark.django_db(transaction=True)
def test_revoke_terminate_kills_the_greenlet(workers: Workers) -> None:
    start(workers, GEVENT_WORKER, "-c", "10")
    long_job = tasks.sleep.delay(60)
    neighbour = tasks.sleep.delay(1)
    wait_until(
        lambda: Job.objects.filter(id=long_job.id, state="STARTED").exists(),
        timeout=10,
        what="the long job to start",
    )
    time.sleep(0.3)
    asked = time.monotonic()
    long_job.revoke(terminate=True)
    wait_until(
        lambda: Job.objects.filter(id=long_job.id, state="REVOKED").exists(),
        timeout=5,
        what="the long job to be revoked",
    )
    assert time.monotonic() - asked < 2
    assert neighbour.get(timeout=10) == 1


@pytest.mark.django_db(transaction=True)
def test_hard_time_limit_kills_the_greenlet(workers: Workers) -> None:
    start(workers, GEVENT_WORKER, "-c", "10", "--time-limit", "1")
    sleeper = tasks.sleep.delay(60)
    wait_until(
        lambda: Job.objects.filter(id=sleeper.id, state="FAILURE").exists(),
        timeout=6,
        what="the sleeping job to fail on its time limit",
    )
    job = Job.objects.get(id=sleeper.id)
    assert job.error_type == "djqueue.exceptions.TimeLimitExceeded"
