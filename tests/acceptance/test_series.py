"""Running workers keep the console's time series: they roll up ended jobs and sample
queue depth, off the hot path (djqueue.db.series)."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from djqueue.core import states
from djqueue.db.models import JobMinute, QueueMinute
from tests.acceptance.conftest import Workers, wait_until
from tests.factories import JobFactory


@pytest.mark.django_db(transaction=True)
def test_workers_roll_up_ended_jobs_and_sample_queue_depth(workers: Workers) -> None:
    minute = timezone.now().replace(second=0, microsecond=0) - datetime.timedelta(minutes=3)
    JobFactory.create_batch(
        4,
        state=states.SUCCESS,
        attempt=1,
        eta=minute,
        started_at=minute,
        finished_at=minute + datetime.timedelta(seconds=2),
    )
    JobFactory.create_batch(5, queue="nobody-serves-this", eta=minute)
    workers.start("-P", "threads", env={"DJQUEUE_SERIES_ROLLUP_SECONDS": "0.5"})
    workers.start("-P", "threads", env={"DJQUEUE_SERIES_ROLLUP_SECONDS": "0.5"})

    def sampled() -> bool:
        return QueueMinute.objects.filter(queue="nobody-serves-this", waiting=5).exists()

    wait_until(sampled, 20, "a depth sample of the queue no worker serves")
    wait_until(
        lambda: JobMinute.objects.filter(minute=minute, outcome=states.SUCCESS).exists(),
        20,
        "the ended jobs' minute to be rolled up",
    )
    # Two workers, one writer at a time: the minute is counted once.
    assert JobMinute.objects.get(minute=minute, outcome=states.SUCCESS).count == 4
