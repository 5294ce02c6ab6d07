"""A queue's own limits with real workers: set while they run, they hold over all of
them at once (through the database), and lifting them frees the queue."""

from __future__ import annotations

import itertools

import pytest

from djqueue.db import broker
from djqueue.db.models import Job
from tests.acceptance.conftest import Workers, wait_until
from tests.testapp import tasks


def _succeeded(ids: list[str], timeout: float) -> list[Job]:
    def done() -> list[Job] | None:
        rows = list(Job.objects.filter(pk__in=ids, state="SUCCESS"))
        return rows if len(rows) == len(ids) else None

    return wait_until(done, timeout, f"{len(ids)} jobs to succeed", interval=0.2)  # type: ignore[no-any-return]


def _most_at_once(jobs: list[Job]) -> int:
    """The most jobs held at one moment: from each claim to its finish."""
    edges = sorted(
        itertools.chain.from_iterable([(job.claimed_at, 1), (job.finished_at, -1)] for job in jobs),
        key=lambda edge: (edge[0], edge[1]),
    )
    held = most = 0
    for _, step in edges:
        held += step
        most = max(most, held)
    return most


@pytest.mark.django_db(transaction=True)
def test_a_concurrency_limit_set_live_holds_over_two_workers(workers: Workers) -> None:
    started = [workers.start("-P", "threads", "-c", "3", "-Q", "mail") for _ in range(2)]
    # Limit, then pause: a worker that says it paused read the queues after both, so it
    # knows the limit before any job is there to claim.
    broker.set_queue_limits("mail", 1, None)
    broker.set_paused("mail", True)
    for worker in started:
        wait_until(lambda w=worker: "Paused queues: mail" in w.log(), 20, "the pause")
    ids = [str(r.id) for r in tasks.sleep.delay_many([(0.2,)] * 8, queue="mail")]
    broker.set_paused("mail", False)
    jobs = _succeeded(ids, timeout=60)
    assert _most_at_once(jobs) == 1
    assert len({job.worker for job in jobs}) == 2  # both took part, one at a time

    broker.set_queue_limits("mail", None, None)
    broker.set_paused("mail", True)
    for worker in started:
        wait_until(lambda w=worker: w.log().count("Paused queues: mail") == 2, 20, "the pause")
    ids = [str(r.id) for r in tasks.sleep.delay_many([(0.5,)] * 6, queue="mail")]
    broker.set_paused("mail", False)
    assert _most_at_once(_succeeded(ids, timeout=60)) > 1
