"""``get(timeout=...)`` against real workers: it names the queues live workers serve,
and the worker a running job is on."""

from __future__ import annotations

import pytest

from djqueue.core import exceptions
from djqueue.db.models import Job
from tests.acceptance.conftest import Workers, wait_until
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_job_no_live_worker_serves_then_one_that_does(workers: Workers) -> None:
    workers.start("-P", "threads", "-Q", "mail,reports")
    result = tasks.add.delay(1, 2)

    with pytest.raises(exceptions.TimeoutError) as caught:
        result.get(timeout=0.5)

    assert "no live worker serves queue 'default' (live workers serve 'mail', 'reports')" in str(
        caught.value
    )
    workers.start("-P", "threads", "-Q", "default")
    assert result.get(timeout=10) == 3


def test_a_running_job_names_its_worker(workers: Workers) -> None:
    worker = workers.start("-P", "threads", "-c", "1")
    result = tasks.sleep.delay(30)
    wait_until(
        lambda: Job.objects.filter(id=result.id, state="STARTED").exists(),
        timeout=10,
        what="the job to start",
    )

    with pytest.raises(exceptions.TimeoutError) as caught:
        result.get(timeout=0.2)

    message = str(caught.value)
    assert "is still STARTED after the timeout (0.2s): it has been running on worker " in message
    assert worker.name_prefix in message
