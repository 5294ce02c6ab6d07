"""What ``get(timeout=...)`` says when a job did not finish: sent in the caller's open
transaction, no live worker for its queue, or its state and since when."""

from __future__ import annotations

import datetime
import os

import pytest
from django.db import transaction
from django.utils import timezone

import djqueue
from djqueue.core import exceptions
from djqueue.db import broker
from djqueue.db.models import Worker
from tests.factories import JobFactory
from tests.testapp import tasks

committed = pytest.mark.django_db(transaction=True)


def _timeout_message(result: djqueue.AsyncResult, timeout: float | None = 0.2) -> str:
    with pytest.raises(exceptions.TimeoutError) as caught:
        result.get(timeout=timeout)
    assert isinstance(caught.value, TimeoutError)  # the builtin, as documented
    assert "\n" not in str(caught.value)
    return str(caught.value)


def _worker(name: str, *queues: str) -> None:
    broker.register_worker(name, "host", os.getpid(), "threads", 4, list(queues))


@pytest.mark.django_db
def test_a_job_sent_in_the_open_transaction_is_reported_at_once() -> None:
    # The test runs inside a transaction, as a view with ATOMIC_REQUESTS does.
    result = tasks.add.delay(1, 2)

    # No timeout: waiting would never end, so it must not begin.
    message = _timeout_message(result, timeout=None)

    assert message.startswith(f"job {result.id} (tests.testapp.tasks.add) is still PENDING")
    assert "sent inside the transaction that is still open here" in message
    assert "delay_on_commit()" in message
    assert "transaction.on_commit" in message


@committed
def test_a_job_sent_in_an_atomic_block_of_the_caller_is_reported() -> None:
    _worker("w1", "default")
    with transaction.atomic():
        result = tasks.add.delay(1, 2)
        assert "still open here" in _timeout_message(result, timeout=None)
    # Committed now: waiting is worth it, and the message says why it ran out instead.
    assert "still open" not in _timeout_message(result)


@committed
def test_no_worker_at_all() -> None:
    result = tasks.add.delay(1, 2)

    message = _timeout_message(result)

    assert message == (
        f"job {result.id} (tests.testapp.tasks.add) is still PENDING after the timeout "
        "(0.2s): no live worker serves queue 'default' (no worker is running); start one "
        "with `python manage.py runworker -Q default`"
    )


@committed
def test_workers_of_other_queues_only() -> None:
    _worker("w1", "mail", "reports")
    _worker("w2", "default")
    broker.worker_stopped("w2", 0)
    result = tasks.add.delay(1, 2)

    message = _timeout_message(result)

    assert "no live worker serves queue 'default' (live workers serve 'mail', 'reports')" in (
        message
    )


@committed
def test_a_worker_whose_heartbeat_stopped_is_not_live() -> None:
    _worker("w1", "default")
    Worker.objects.filter(name="w1").update(
        last_heartbeat=timezone.now() - datetime.timedelta(hours=1)
    )
    result = tasks.add.delay(1, 2)

    assert "no live worker serves queue 'default'" in _timeout_message(result)


@committed
def test_a_paused_queue() -> None:
    _worker("w1", "default")
    broker.set_paused("default", True)
    result = tasks.add.delay(1, 2)

    message = _timeout_message(result)

    assert "queue 'default' is paused" in message
    assert "djqueue resume default" in message


@committed
def test_a_served_job_that_is_not_due_yet() -> None:
    _worker("w1", "default")
    result = tasks.add.apply_async((1, 2), countdown=3600)

    message = _timeout_message(result)

    assert "is still PENDING after the timeout (0.2s): it is not due before " in message
    assert "UTC (in 60 min); PENDING since " in message


@committed
def test_a_served_job_that_is_due_waits_for_a_free_worker() -> None:
    _worker("w1", "default")
    result = tasks.add.delay(1, 2)

    message = _timeout_message(result)

    assert "it is due and waits for a free worker; PENDING since " in message
    assert " ago)" in message


@committed
def test_a_running_job_says_where_and_since_when() -> None:
    _worker("w1", "default")
    job = JobFactory(
        state="STARTED",
        attempt=1,
        worker="w1",
        started_at=timezone.now(),
        claimed_at=timezone.now(),
    )

    message = _timeout_message(djqueue.AsyncResult(job.id))

    assert "is still STARTED after the timeout (0.2s): it has been running on worker w1 since" in (
        message
    )


@committed
def test_a_group_names_its_first_unfinished_job() -> None:
    group = djqueue.group(tasks.add.s(1, 2), tasks.add.s(3, 4)).delay()

    with pytest.raises(exceptions.TimeoutError) as caught:
        group.get(timeout=0.2)

    message = str(caught.value)
    assert f"2 of the 2 jobs of group {group.id} are not finished after the timeout" in message
    assert "the first of them: job " in message
    assert "no live worker serves queue 'default'" in message
