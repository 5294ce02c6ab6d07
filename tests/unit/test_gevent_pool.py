"""The gevent pool and early patching, without a database.

The pool itself only works in a patched process, so its tests run a small script in
a subprocess: patching this test process would change every other test.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from djqueue.runtime import gevent_patch, gevent_worker

REPO_ROOT = Path(__file__).resolve().parents[2]
needs_gevent = pytest.mark.skipif(
    importlib.util.find_spec("gevent") is None,
    reason="gevent is not installed (pip install gevent; tox -e gevent)",
)


@pytest.mark.parametrize(
    "argv",
    [
        ["manage.py", "runworker", "--pool", "gevent"],
        ["manage.py", "runworker", "--pool=gevent", "-c", "100"],
        ["manage.py", "runworker", "-P", "gevent"],
        ["manage.py", "runworker", "-Pgevent"],
        ["manage.py", "runworker", "-P", "threads", "--pool", "gevent"],
    ],
)
def test_gevent_pool_requested(argv: list[str]) -> None:
    assert gevent_patch.requested(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["manage.py", "runworker"],
        ["manage.py", "runworker", "--pool", "threads"],
        ["manage.py", "runworker", "--pool", "gevent", "-P", "solo"],
        ["manage.py", "migrate", "--pool", "gevent"],
        ["manage.py", "runworker", "--pool"],
    ],
)
def test_gevent_pool_not_requested(argv: list[str]) -> None:
    assert not gevent_patch.requested(argv)


def test_nothing_is_patched_without_asking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(gevent_patch.ENV_VARIABLE, raising=False)
    assert not gevent_patch.patch_if_requested(["manage.py", "runworker"])
    assert "gevent.monkey" not in sys.modules or not gevent_patch.is_patched()


def test_gevent_worker_adds_the_pool_once() -> None:
    assert gevent_worker.command_line(["-c", "50"]) == [
        "django-admin",
        "runworker",
        "--pool",
        "gevent",
        "-c",
        "50",
    ]
    assert gevent_worker.command_line(["-P", "gevent"]) == [
        "django-admin",
        "runworker",
        "-P",
        "gevent",
    ]
    with pytest.raises(SystemExit, match="gevent pool only"):
        gevent_worker.command_line(["--pool", "solo"])


POOL_SCRIPT = textwrap.dedent(
    """
    import json, os, time, uuid

    from djqueue.runtime import gevent_patch

    gevent_patch.patch()
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django

    django.setup()
    from djqueue.runtime import pools
    from djqueue.core.records import ClaimedJob

    started, ended = [], []

    def runner(job, window):
        started.append(job.task_name)
        try:
            window.call(lambda: time.sleep(float(job.args)))
        except BaseException as exc:
            ended.append([job.task_name, type(exc).__name__])
            raise
        ended.append([job.task_name, "done"])

    def job(name, seconds):
        return ClaimedJob(uuid.uuid4(), name, str(seconds), "{}", 1, 0, "q", 0, None, False)

    pool = pools.create("gevent", runner, 2)
    pool.start()
    jobs = [job("a", 30), job("b", 0.2), job("c", 0.2), job("d", 0.2)]
    for each in jobs:
        pool.submit(each)
    time.sleep(0.05)
    first = list(started)
    load = pool.load()
    running = sorted(r.job_id for r in pool.running()) == sorted(j.id for j in jobs[:2])
    killed = pool.terminate(jobs[0].id)
    unknown = pool.terminate(uuid.uuid4())
    time.sleep(0.1)
    waiting = [j.task_name for j in pool.take_waiting()]
    pool.stop()
    print(json.dumps({
        "first": first, "load": [load.size, load.busy, load.waiting], "running": running,
        "killed": killed, "unknown": unknown, "waiting": waiting,
        "started": started, "ended": ended, "again": pool.terminate(jobs[0].id),
    }))
    """
)


@needs_gevent
def test_pool_runs_up_to_concurrency_and_terminates_a_job() -> None:
    done = _run(POOL_SCRIPT)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["first"] == ["a", "b"]
    assert (seen["load"], seen["running"]) == ([2, 2, 2], True)
    assert (seen["killed"], seen["unknown"], seen["again"]) == (True, False, False)
    # "a" was killed: its greenlet went on with "c"; "d" was still waiting.
    assert seen["waiting"] == ["d"]
    assert seen["started"] == ["a", "b", "c"]
    assert sorted(seen["ended"]) == [["a", "GreenletExit"], ["b", "done"], ["c", "done"]]


HOST_SCRIPT = textwrap.dedent(
    """
    import json, os, time, uuid

    from djqueue.runtime import gevent_patch

    gevent_patch.patch()
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django

    django.setup()
    from djqueue.runtime import pools
    from djqueue.core.records import ClaimedJob, Outcome

    class Host:
        reported = []

        def __call__(self, job):
            raise AssertionError("a host's jobs run in two halves")

        def begin(self, job):
            return job.queue != "lost"

        def report(self, outcome):
            self.reported.append([names[outcome.job_id], outcome.state, outcome.error_type])

    def job(seconds, queue="q"):
        made = ClaimedJob(
            uuid.uuid4(), "tests.testapp.tasks.sleep", json.dumps([seconds]), "{}",
            1, 0, queue, 0, None, False,
        )
        return made

    host = Host()
    pool = pools.create("gevent", host, 10)
    jobs = {"a": job(30), "b": job(30), "c": job(0.05), "lost": job(0, "lost")}
    names = {each.id: name for name, each in jobs.items()}
    for each in jobs.values():
        pool.submit(each)
    time.sleep(0.02)
    a = jobs["a"]
    pool.terminate(a.id, Outcome(a.id, a.attempt, a.task_name, "REVOKED"))
    pool.terminate(jobs["b"].id)
    time.sleep(0.2)
    late = job(30)
    names[late.id] = "late"
    pool.submit(late)
    time.sleep(0.02)
    pool.kill()
    pool.stop()
    print(json.dumps(sorted(host.reported)))
    """
)


@needs_gevent
def test_terminated_jobs_end_as_asked_and_killed_ones_report_nothing() -> None:
    done = _run(HOST_SCRIPT)
    assert done.returncode == 0, done.stderr
    reported = json.loads(done.stdout.strip().splitlines()[-1])
    assert reported == [
        ["a", "REVOKED", ""],
        ["b", "FAILURE", "greenlet.GreenletExit"],
        ["c", "SUCCESS", ""],
    ]


CREATE_SCRIPT = textwrap.dedent(
    """
    import os
    {before}
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django

    django.setup()
    from djqueue.runtime import pools

    try:
        pools.create("gevent", print, 10)
    except Exception as exc:
        print(type(exc).__name__, exc)
    """
)
LATE = "import psycopg\nfrom djqueue import gevent_patch\ngevent_patch.patch()"


@needs_gevent
@pytest.mark.parametrize(
    ("before", "error"),
    [("", "needs gevent's monkey-patching"), (LATE, "applied after psycopg was imported")],
    ids=["unpatched", "patched-too-late"],
)
def test_pool_refuses_a_process_not_patched_first(before: str, error: str) -> None:
    done = _run(CREATE_SCRIPT.format(before=before))
    assert done.stdout.startswith("NotPatchedError --pool gevent"), done.stdout + done.stderr
    assert error in done.stdout


def _run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
