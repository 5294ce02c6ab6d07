"""A queue's own limits, over all workers: at most N of its jobs held at once, at most N
started per period; a claim that knows of them keeps to them, other queues pay nothing."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest
from django.utils import timezone

from djqueue.core import states
from djqueue.db import broker, queue_gates
from djqueue.db.models import Job, Queue
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db

LEASE = 30.0


def _jobs(n: int, queue: str) -> None:
    # Due before the test's transaction began (claims compare with its now()).
    JobFactory.create_batch(n, queue=queue, eta=timezone.now() - datetime.timedelta(hours=1))


@pytest.fixture(autouse=True)
def forget_limits() -> Iterator[None]:
    yield
    queue_gates.update([])


def _claim(worker: str, n: int = 10, queues: tuple[str, ...] = ("mail",)) -> list[str]:
    return [job.queue for job in broker.claim(list(queues), n, worker, LEASE, limited=False)]


def test_a_concurrency_limit_holds_over_every_worker() -> None:
    _jobs(6, "mail")
    _jobs(3, "other")
    broker.set_queue_limits("mail", 2, None)
    assert broker.paused_queues() == set()  # reading the queues takes note of the limits
    assert queue_gates.among(["mail", "other"]) == {"mail": queue_gates.QueueLimit(2)}
    assert _claim("w1", queues=("mail", "other")) == ["other"] * 3 + ["mail"] * 2
    assert _claim("w2") == []  # the limit is the queue's, whoever claims
    done = Job.objects.filter(queue="mail", state=states.RECEIVED).first()
    assert done is not None
    Job.objects.filter(pk=done.pk).update(state=states.SUCCESS, finished_at=timezone.now())
    assert _claim("w2") == ["mail"]
    assert Job.objects.filter(queue="mail", state__in=states.HELD).count() == 2


def test_a_rate_limit_counts_starts_in_its_window() -> None:
    _jobs(5, "mail")
    broker.set_queue_limits("mail", None, (3, 60.0))
    broker.paused_queues()
    assert len(_claim("w1", n=2)) == 2
    assert len(_claim("w2", n=5)) == 1
    assert _claim("w1") == []
    row = Queue.objects.get(name="mail")
    assert (row.paused, row.concurrency_limit, row.rate_limit, row.rate_period) == (
        False,
        None,
        3,
        60.0,
    )


def test_removing_the_limits_frees_the_queue_and_keeps_a_pause() -> None:
    _jobs(4, "mail")
    broker.set_paused("mail", True)
    broker.set_queue_limits("mail", 1, None)
    assert broker.paused_queues() == {"mail"}
    assert Queue.objects.get(name="mail").paused  # limits leave the pause alone
    broker.set_paused("mail", False)
    broker.paused_queues()
    assert len(_claim("w1")) == 1
    broker.set_queue_limits("mail", None, None)
    broker.paused_queues()
    assert queue_gates.among(["mail"]) == {}
    assert len(_claim("w1")) == 3


def test_a_scheduled_job_is_not_claimed_early_under_a_limit() -> None:
    later = timezone.now() + datetime.timedelta(hours=1)
    JobFactory(queue="mail", eta=later)
    broker.set_queue_limits("mail", 5, (10, 1.0))
    broker.paused_queues()
    assert _claim("w1") == []
