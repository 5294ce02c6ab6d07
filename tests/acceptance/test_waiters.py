"""The process-wide result listener in processes of their own: a forked child waits
with a listener of its own and leaves its parent's alone, and under gevent many
greenlets wait on one connection without blocking each other.

Each scenario runs as a script in a subprocess (forking, or patching with gevent,
has no place inside the test runner's process) and prints what it saw.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from typing import Any

import pytest
from django.db import connection

from tests.acceptance.conftest import REPO_ROOT
from tests.testapp import tasks

COMMON = r"""
import sys, time
import django

django.setup()

from djqueue.db import listener


def listening():
    # Result listeners of this script (and of its child), not of other processes.
    with listener.connect() as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = current_setting('application_name') "
            "AND query = 'LISTEN \"djqueue_done\"'"
        ).fetchall()
    return sorted(row[0] for row in rows)


def until(check):
    deadline = time.monotonic() + 20
    while not (value := check()):
        if time.monotonic() > deadline:
            sys.exit("timed out")
        time.sleep(0.05)
    return value


def finish(*job_ids, value=3):
    # What a worker's finish does: the rows' UPDATE and one NOTIFY, in one commit.
    with listener.connect(autocommit=False) as conn:
        conn.execute(
            "UPDATE djqueue_job SET state = 'SUCCESS', result = to_jsonb(%s::int), "
            "finished_at = now() WHERE id = ANY(%s::uuid[])",
            [value, list(job_ids)],
        )
        conn.execute("SELECT pg_notify('djqueue_done', %s)", [" ".join(job_ids)])
"""

FORK = (
    COMMON
    + r"""
import json, os, threading
from djqueue import AsyncResult

parent_job, child_job = sys.argv[1:3]
seen = {}
waiting = threading.Thread(
    target=lambda: seen.update(parent=AsyncResult(parent_job).get(timeout=30, interval=60))
)
waiting.start()
(parents_listener,) = until(listening)

pid = os.fork()
if pid == 0:
    # The child waits too, as a prefork child running a task that calls get() does.
    helper = threading.Thread(
        target=lambda: (until(lambda: len(listening()) == 2), finish(child_job, value=2))
    )
    helper.start()
    child_value = AsyncResult(child_job).get(timeout=30, interval=60)
    helper.join()
    print(json.dumps({"child": child_value}), flush=True)
    sys.exit(0)  # a normal exit: whatever the child holds is finalized

_, status = os.waitpid(pid, 0)
seen["child_exit"] = os.waitstatus_to_exitcode(status)
seen["parents_listener_after_child"] = parents_listener in listening()
finish(parent_job, value=1)
waiting.join()
print(json.dumps(seen), flush=True)
"""
)

GEVENT = r"""
from gevent import monkey

monkey.patch_all()
""" + (
    COMMON
    + r"""
import json, threading
import gevent
from djqueue import AsyncResult

job_ids = sys.argv[1:]
opened = []
real_connect = listener.connect


def counting_connect(autocommit=True):
    opened.append(threading.current_thread().name)
    return real_connect(autocommit)


listener.connect = counting_connect

ticks = 0


def tick():
    global ticks
    while True:
        gevent.sleep(0.01)
        ticks += 1


ticker = gevent.spawn(tick)
waits = [gevent.spawn(AsyncResult(job_id).get, timeout=30, interval=60) for job_id in job_ids]
until(listening)
# The listener waits on its socket for a second at a time: other greenlets go on.
before = ticks
gevent.sleep(1.5)
ticked = ticks - before
finish(*job_ids)
gevent.joinall(waits, timeout=30)
ticker.kill()
print(json.dumps({
    "values": [w.value for w in waits],
    "listeners_opened": opened.count("djqueue-results"),
    "ticks_while_waiting": ticked,
}), flush=True)
"""
)


def run_script(script: str, *args: str) -> list[dict[str, Any]]:
    """Run ``script`` against the test database; the JSON lines it printed."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env.update(
        # Tells this script's connections from those of other processes.
        PGAPPNAME=f"djqueue-test-{os.getpid()}",
        PYTHONPATH=str(REPO_ROOT),
        DJANGO_SETTINGS_MODULE="tests.settings",
        DJQUEUE_TEST_DB_NAME=connection.settings_dict["NAME"],
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.django_db(transaction=True)
def test_a_forked_child_waits_with_a_listener_of_its_own() -> None:
    parent_job, child_job = tasks.add.delay(1, 2), tasks.add.delay(1, 2)

    child, parent = run_script(FORK, str(parent_job.id), str(child_job.id))

    assert child == {"child": 2}
    assert parent == {
        "child_exit": 0,
        # The child never closed (nor used) the connection it inherited.
        "parents_listener_after_child": True,
        "parent": 1,
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    importlib.util.find_spec("gevent") is None,
    reason="gevent is not installed (pip install gevent; tox -e gevent)",
)
def test_greenlets_wait_together_on_one_connection() -> None:
    results = tasks.add.delay_many([(1, 2)] * 50)

    (seen,) = run_script(GEVENT, *(str(result.id) for result in results))

    assert seen["values"] == [3] * 50
    assert seen["listeners_opened"] == 1
    # 150 at most, at one tick per 10 ms; a wait blocking the process would leave few.
    assert seen["ticks_while_waiting"] >= 100, seen
