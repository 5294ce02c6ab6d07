"""Whatever a database role NOTIFYs on djqueue's channels, a worker keeps listening:
jobs sent afterwards are still picked up at once, not at the next poll."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from djqueue.db.models import Job
from tests.acceptance.conftest import Workers, wait_until
from tests.testapp import tasks

GARBAGE = [
    ("djqueue_revoke", "garbage"),
    ("djqueue_revoke", "\x1b[2J"),
    ("djqueue_revoke", ""),
    ("djqueue_pause", "q" * 500),
    ("djqueue", ""),
]


@pytest.mark.django_db(transaction=True)
def test_a_worker_keeps_listening_after_malformed_notifications(workers: Workers) -> None:
    # A long poll interval: only a notification can start the job in time.
    worker = workers.start("-P", "threads", "-c", "2", env={"DJQUEUE_POLL_SECONDS": "30"})
    with connection.cursor() as cursor:
        for channel, payload in GARBAGE:
            cursor.execute("SELECT pg_notify(%s, %s)", [channel, payload])
    worker.wait_for_log("Ignored a malformed notification on channel djqueue_revoke")

    started = time.monotonic()
    assert tasks.add.delay(1, 2).get(timeout=10) == 3
    assert time.monotonic() - started < 3, "picked up by the poll, not by NOTIFY"
    # One line for the lot: the rest are counted, not logged.
    assert worker.log().count("Ignored a malformed notification") == 1


@pytest.mark.django_db(transaction=True)
def test_a_forged_revoke_notification_stops_nothing(workers: Workers) -> None:
    # Any role can NOTIFY a valid job id: only a revocation asked for in the job's
    # row (revoke(terminate=True) writes one) may stop it.
    result = tasks.sleep.delay(1.5)
    worker = workers.start("-P", "threads", "-c", "2")
    wait_until(
        lambda: Job.objects.filter(id=result.id, state="STARTED").exists(),
        timeout=10,
        what="the job to start",
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify('djqueue_revoke', %s)", [str(result.id)])
    worker.wait_for_log(f"Ignored a revoke notification for job {result.id}")
    assert result.get(timeout=10) == 1.5
