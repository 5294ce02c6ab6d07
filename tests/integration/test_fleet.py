"""Which workers are alive: one rule (not stopped, a heartbeat within three
``HEARTBEAT_SECONDS``) for every reader: the console's list of live workers, a row read
earlier, and the job page's statement about the worker holding a job."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.db.models.functions import Now
from django.utils import timezone

from djqueue.db import broker, fleet, waiting
from djqueue.db.models import Worker
from tests.factories import JobFactory, StartedJobFactory

pytestmark = pytest.mark.django_db

BEAT = 10.0  # HEARTBEAT_SECONDS here: the margins below are whole seconds


@pytest.fixture(autouse=True)
def _heartbeat(settings: Any) -> None:
    settings.DJQUEUE = {**settings.DJQUEUE, "HEARTBEAT_SECONDS": BEAT}


def _worker(name: str, beats_ago: float, stopped: bool = False) -> None:
    broker.register_worker(name, "host", 1, "solo", 1, ["default"])
    # On the database's clock, which the queries read.
    Worker.objects.filter(name=name).update(
        last_heartbeat=Now() - datetime.timedelta(seconds=beats_ago * BEAT),
        stopped_at=timezone.now() if stopped else None,
    )


def test_a_worker_is_alive_within_three_heartbeats_for_every_reader() -> None:
    _worker("fresh", 0)
    _worker("late", 2.5)  # two beats missed: alive
    _worker("lost", 3.5)
    _worker("stopped", 0, stopped=True)
    assert [row.name for row in fleet.live_workers()] == ["fresh", "late"]
    rows = {row.name: row for row in Worker.objects.all()}
    alive = {
        name for name, row in rows.items() if fleet.is_alive(row.last_heartbeat, row.stopped_at)
    }
    assert alive == {"fresh", "late"}
    for name in rows:
        job = StartedJobFactory(worker=name)
        found = waiting.read(job.id)
        assert found is not None
        assert found.worker_alive is (name in alive), name


def test_the_queues_live_workers_serve_and_the_paused_ones() -> None:
    _worker("mail-1", 0)
    _worker("both", 1)
    Worker.objects.filter(name="both").update(queues=["default", "mail"])
    Worker.objects.filter(name="mail-1").update(queues=["mail"])
    _worker("lost", 3.5)  # serves default, but is not alive
    broker.set_paused("reports", True)
    broker.set_paused("mail", True)
    broker.set_paused("mail", False)
    assert fleet.serving(fleet.live_workers()) == {"default": ["both"], "mail": ["both", "mail-1"]}
    assert fleet.paused_queues() == {"reports"}
    job = JobFactory(queue="mail")
    found = waiting.read(job.id)
    assert found is not None
    assert (found.live_serving, found.live_workers, found.paused_since) == (2, 2, None)
