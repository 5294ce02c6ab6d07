"""Pausing a queue: a running worker stops taking its jobs at once, and resumes."""

from __future__ import annotations

import time

import pytest

from djqueue.db import broker
from djqueue.db.models import Job
from tests.acceptance.conftest import Workers, wait_until
from tests.testapp import tasks


@pytest.mark.django_db(transaction=True)
def test_paused_queue_is_left_alone_until_resumed(workers: Workers) -> None:
    worker = workers.start(
        "-P", "threads", "-c", "2", "-Q", "mail,other", env={"DJQUEUE_POLL_SECONDS": "30"}
    )
    broker.set_paused("mail", True)
    worker.wait_for_log("Paused queues: mail.")
    held = tasks.add.apply_async((1, 1), queue="mail")
    free = tasks.add.apply_async((2, 2), queue="other")
    assert free.get(timeout=10) == 4
    time.sleep(1.0)
    assert Job.objects.get(pk=held.id).state == "PENDING"  # nothing lost, nothing run
    started = time.monotonic()
    broker.set_paused("mail", False)
    assert held.get(timeout=10) == 2
    # Woken by the notification, not by the 30 s poll.
    assert time.monotonic() - started < 3
    wait_until(lambda: "Paused queues: none." in worker.log(), timeout=5, what="resume logged")
