"""A job enqueued from psql with djqueue_enqueue() is run by a real worker."""

from __future__ import annotations

import pytest

import djqueue
from tests.acceptance.conftest import Workers
from tests.integration.test_sql_enqueue import psql


@pytest.mark.django_db(transaction=True)
def test_worker_runs_a_job_enqueued_from_psql(workers: Workers) -> None:
    workers.start("-P", "threads", "-c", "1", env={"DJQUEUE_POLL_SECONDS": "30"})
    done = psql("SELECT djqueue_enqueue('tests.testapp.tasks.add', '[2, 3]')")
    assert done.returncode == 0, done.stderr
    # Picked up through the notification the function sends, not the 30 s poll.
    assert djqueue.AsyncResult(done.stdout.strip()).get(timeout=5) == 5
