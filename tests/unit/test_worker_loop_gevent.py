"""The worker loop in-process with the gevent pool, on the in-memory store.

The gevent pool only works in a patched process, so the scene runs in a child Python
that patches first (patching this test process would change every other test); it
prints the jobs table as JSON for the test to read.
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

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gevent") is None,
    reason="gevent is not installed (pip install gevent; tox -e gevent)",
)

SCENE = textwrap.dedent(
    """
    import json, os

    from djqueue.runtime import gevent_patch

    gevent_patch.patch()
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django

    django.setup()
    from tests.fakes.driver import WorkerDriver
    from tests.fakes.store import Fault

    driver = WorkerDriver("gevent", concurrency=4)
    driver.start()
    ids = [driver.store.send("tests.testapp.tasks.add", n, n) for n in range(8)]
    driver.store.refuse(ids[3], "SUCCESS")
    driver.store.fail("claim", Fault.LOST_REPLY)
    driver.step()
    orphaned = driver.store.states(ids)
    driver.heartbeat()
    handed_back = driver.store.states(ids)
    driver.store.fail("finish", Fault.LOST_CONNECTION)
    driver.run_all(ids)
    driver.worker.stop()
    driver.drain()
    rows = [driver.store.row(job_id) for job_id in ids]
    print(json.dumps({
        "orphaned": orphaned,
        "handed_back": handed_back,
        "ended": [[row.state, row.attempt, row.result, row.error_type] for row in rows],
        "stopped": driver.store.workers[driver.name].stopped,
    }))
    """
)


def test_the_gevent_pool_runs_the_loop_through_lost_replies_and_refused_outcomes() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCENE],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "DJQUEUE_POLL_SECONDS": "0.001"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["orphaned"] == ["RECEIVED"] * 8  # committed, the reply lost
    assert seen["handed_back"] == ["PENDING"] * 8
    refused = [3]
    assert [row for n, row in enumerate(seen["ended"]) if n not in refused] == [
        ["SUCCESS", 2, str(2 * n), ""] for n in range(8) if n not in refused
    ]
    assert seen["ended"][3] == ["FAILURE", 2, None, "djqueue.exceptions.OutcomeNotStored"]
    assert seen["stopped"] is True
