"""Whatever a database role NOTIFYs on djqueue's channels, a worker keeps listening:
jobs sent afterwards are still picked up at once, not at the next poll."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from tests.acceptance.conftest import Workers
from tests.testapp import tasks

GARBAGE = [
    ("djqueue_revoke", "garbage"),
    ("djqueue_revoke", "\x1b[2J"),
    ("djqueue_revoke", ""),
    ("djqueue_pause", "q" * 500),
    ("djqueue", ""),
]


@pytest.mark.xfail(
    strict=True,
    reason="the worker's listener loop turns raw payloads into UUIDs until it uses "
    "listener.notices() and listener.run_forever()",
)
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
