"""Idle workers in separate processes share the notifications of new jobs: a follower
stands down when a peer's claim emptied the queue, and takes the job when the leader
is gone (djqueue.runtime.wakeups). Only processes show it: each has its own listener,
and the news of an emptied queue travels through PostgreSQL."""

from __future__ import annotations

import signal
import time

import pytest
from django.db.models import Max

from djqueue.db.models import Job, Worker
from tests.acceptance.conftest import WorkerProcess, Workers, wait_until
from tests.testapp import tasks

# Long enough that a job left to the poll fails the test: each must start on a claim
# answering its notification.
ENV = {"DJQUEUE_POLL_SECONDS": "60"}
PATIENCE = 10.0  # seconds a job may take to be run at most, here


def run_one(n: int) -> str:
    """Send one job, wait for its result; return the name of the worker that ran it."""
    sent = time.monotonic()
    result = tasks.add.delay(n, 1)
    assert result.get(timeout=PATIENCE) == n + 1
    assert time.monotonic() - sent < PATIENCE
    return Job.objects.get(pk=result.id).worker


def process_of(name: str, started: list[WorkerProcess]) -> WorkerProcess:
    return next(w for w in started if name.startswith(w.name_prefix))


@pytest.mark.django_db(transaction=True)
def test_idle_workers_take_every_job_at_once_and_a_follower_replaces_a_lost_leader(
    workers: Workers,
) -> None:
    started = [workers.start("-P", "threads", "-c", "1", env=ENV) for _ in range(4)]
    # Every worker counts its peers at a heartbeat after the last one registered.
    last = Worker.objects.aggregate(last=Max("started_at"))["last"]
    wait_until(
        lambda: not Worker.objects.filter(last_heartbeat__lte=last).exists(),
        timeout=30,
        what="a heartbeat of every worker after all registered",
    )
    ran = [run_one(n) for n in range(20)]
    # The worker that took the last job leads (its claim took it); it stops (frozen),
    # and a follower takes the next jobs a stagger later, not at the next poll.
    leader = process_of(ran[-1], started)
    leader.send(signal.SIGSTOP)
    try:
        after = [run_one(n) for n in range(20, 25)]
    finally:
        leader.send(signal.SIGCONT)
    assert not any(name.startswith(leader.name_prefix) for name in after)
    assert Job.objects.filter(state="SUCCESS").count() == 25
    assert not Job.objects.exclude(attempt=1).exists()  # none ran twice
