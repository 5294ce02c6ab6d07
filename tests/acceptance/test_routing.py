"""Which jobs a worker takes, and when: priorities, -Q, and wake-up by NOTIFY."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from djqueue.db.models import Job
from tests.acceptance.conftest import Workers, wait_until
from tests.testapp import tasks


def _succeeded(count: int, timeout: float = 10, **filters: object) -> None:
    wait_until(
        lambda: Job.objects.filter(state="SUCCESS", **filters).count() == count,
        timeout=timeout,
        what=f"{count} job(s) matching {filters} to succeed",
    )


@pytest.mark.django_db(transaction=True)
def test_higher_priority_runs_first(workers: Workers) -> None:
    low = tasks.record_pid.apply_many([(("low",), {})] * 3, priority=0)
    high = tasks.record_pid.apply_many([(("high",), {})] * 3, priority=10)
    workers.start("-P", "solo", "-c", "1", "--prefetch-multiplier", "1")

    _succeeded(6)
    order = [str(i) for i in Job.objects.order_by("claimed_at").values_list("id", flat=True)]
    assert set(order[:3]) == {r.id for r in high}
    assert set(order[3:]) == {r.id for r in low}
    # Within a priority, first in, first out.
    assert order[3:] == [r.id for r in low]


@pytest.mark.django_db(transaction=True)
def test_queues_option_restricts_what_a_worker_takes(workers: Workers) -> None:
    for queue in ("alpha", "beta", "gamma"):
        tasks.record_pid.apply_many([((queue,), {})] * 3, queue=queue)
    both = workers.start("-Q", "alpha,gamma")
    _succeeded(6, queue__in=["alpha", "gamma"])
    time.sleep(1.5)  # three poll intervals: beta would have been taken by now
    assert Job.objects.filter(queue="beta", state="PENDING").count() == 3
    assert Job.objects.filter(worker__startswith=both.name_prefix).count() == 6

    only_beta = workers.start("-Q", "beta")
    _succeeded(3, queue="beta")
    assert Job.objects.filter(worker__startswith=only_beta.name_prefix).count() == 3


@pytest.mark.django_db(transaction=True)
def test_idle_worker_is_woken_by_notify(workers: Workers) -> None:
    workers.start(env={"DJQUEUE_POLL_SECONDS": "30"})
    db_name = connection.settings_dict["NAME"]

    def listening() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = %s AND query LIKE 'LISTEN %%'",
                [db_name],
            )
            return bool(cursor.fetchone()[0])

    wait_until(listening, timeout=10, what="the worker to LISTEN")
    time.sleep(0.5)  # let the first (empty) claim pass: the worker is now idle
    result = tasks.record_pid.delay("wake up")
    sent_at = time.monotonic()
    _succeeded(1, timeout=5)
    assert time.monotonic() - sent_at < 1
    job = Job.objects.get(id=result.id)
    assert job.started_at is not None
    assert (job.started_at - job.enqueued_at).total_seconds() < 1
