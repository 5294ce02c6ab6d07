"""Unique jobs: a duplicate of a waiting job returns that job, decided by the database."""

from __future__ import annotations

import datetime
import threading
import time
from typing import Any

import pytest
from django.db import connections, transaction
from django.utils import timezone

from djqueue.core import states
from djqueue.core.records import Outcome
from djqueue.db import broker
from djqueue.db.models import Job
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def claim_and_finish() -> None:
    jobs = broker.claim(["default"], 100, "w1", 30.0, limited=True)
    broker.finish(
        [Outcome(j.id, j.attempt, j.task_name, states.SUCCESS, "null", worker="w1") for j in jobs]
    )


def test_duplicate_while_waiting_returns_the_waiting_job() -> None:
    first = tasks.unique_report.delay(1)
    again = tasks.unique_report.delay(1, full=True)
    other = tasks.unique_report.delay(2)
    assert again.id == first.id
    assert other.id != first.id
    assert Job.objects.count() == 2
    assert Job.objects.get(pk=first.id).unique_key == "tests.testapp.tasks.unique_report:report:1"


def test_a_started_or_finished_job_no_longer_holds_its_key() -> None:
    first = tasks.unique_report.delay(1)
    [job] = broker.claim(["default"], 10, "w1", 30.0, limited=True)
    started_then = tasks.unique_report.delay(1)
    assert started_then.id != first.id
    assert tasks.unique_report.delay(1).id == started_then.id
    claim_and_finish()
    broker.finish([Outcome(job.id, job.attempt, job.task_name, states.SUCCESS, worker="w1")])
    assert Job.objects.get(pk=first.id).state == states.SUCCESS
    after = tasks.unique_report.delay(1)
    assert after.id not in (first.id, started_then.id)


def test_unique_for_gives_the_key_up_when_the_window_is_over() -> None:
    first = tasks.unique_for_a_second.delay(5)
    assert tasks.unique_for_a_second.delay(5, note="again").id == first.id
    Job.objects.filter(pk=first.id).update(
        unique_until=timezone.now() - datetime.timedelta(seconds=1)
    )
    later = tasks.unique_for_a_second.delay(5)
    assert later.id != first.id
    # The old job still runs; it just no longer holds the key.
    old = Job.objects.get(pk=first.id)
    assert (old.state, old.unique_key) == (states.PENDING, None)
    assert tasks.unique_for_a_second.delay(5).id == later.id


@pytest.mark.django_db(transaction=True)
def test_unique_for_window_in_real_time() -> None:
    first = tasks.unique_for_a_second.delay(6)
    assert tasks.unique_for_a_second.delay(6).id == first.id
    time.sleep(1.1)
    assert tasks.unique_for_a_second.delay(6).id != first.id


def test_unique_for_alone_keys_on_the_whole_call() -> None:
    first = tasks.unique_call.delay(1)
    assert tasks.unique_call.delay(1).id == first.id
    assert tasks.unique_call.delay(x=1).id != first.id  # another call, as JSON
    assert tasks.unique_call.delay(2).id != first.id


def test_template_needs_its_arguments() -> None:
    # The argument check (typing) says it first.
    with pytest.raises(TypeError, match="cannot take these arguments"):
        tasks.unique_report.delay()
    assert Job.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_rolled_back_transaction_leaves_nothing_and_frees_the_key() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        inside = tasks.unique_report.delay(3)
        assert tasks.unique_report.delay(3).id == inside.id
        raise RuntimeError("roll back")
    assert Job.objects.count() == 0
    after = tasks.unique_report.delay(3)
    assert after.id != inside.id
    assert Job.objects.count() == 1


def test_bulk_enqueue_maps_duplicates_to_one_job() -> None:
    existing = tasks.unique_report.delay(1)
    results = tasks.unique_report.delay_many([(1,), (2,), (2,), (3,), (1,)])
    ids = [r.id for r in results]
    assert ids[0] == ids[4] == existing.id
    assert ids[1] == ids[2]
    assert len({ids[0], ids[1], ids[3]}) == 3
    assert Job.objects.count() == 3


def test_bulk_enqueue_mixes_plain_limited_and_unique_tasks() -> None:
    results = tasks.unique_call.delay_many([(1,), (1,), (2,)])
    assert results[0].id == results[1].id != results[2].id
    assert len(tasks.add.delay_many([(1, 1), (2, 2)])) == 2
    assert Job.objects.count() == 4


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_waits_for_the_holders_transaction(other_connection: Any) -> None:
    """Two transactions enqueue the same key: the second waits, then gets the first's job."""
    other_connection.execute("BEGIN")
    held = _enqueue_on(other_connection, key="tests.testapp.tasks.unique_report:report:9")
    found: list[Any] = []
    thread = threading.Thread(target=_delay_in_thread, args=(found, 9))
    thread.start()
    time.sleep(0.3)
    assert thread.is_alive(), "the duplicate did not wait for the holder's transaction"
    other_connection.commit()
    thread.join(10)
    assert found == [held]
    assert Job.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_of_a_rolled_back_job_is_inserted(other_connection: Any) -> None:
    other_connection.execute("BEGIN")
    held = _enqueue_on(other_connection, key="tests.testapp.tasks.unique_report:report:9")
    found: list[Any] = []
    thread = threading.Thread(target=_delay_in_thread, args=(found, 9))
    thread.start()
    time.sleep(0.3)
    other_connection.rollback()
    thread.join(10)
    assert len(found) == 1 and found[0] != held
    assert [str(i) for i in Job.objects.values_list("id", flat=True)] == found


def _delay_in_thread(found: list[Any], user_id: int) -> None:
    try:
        found.append(tasks.unique_report.delay(user_id).id)
    finally:
        connections.close_all()


def _enqueue_on(conn: Any, key: str) -> Any:
    """Insert a waiting job holding ``key`` on another connection; return its id."""
    job = tasks.unique_report.prepare((0,))
    row = conn.execute(
        "INSERT INTO djqueue_job (id, task_name, queue, priority, state, args, kwargs, "
        "attempt, retries, eta, enqueued_at, worker, error_type, error_message, traceback, "
        "unique_key) VALUES (%s, %s, 'default', 0, 'PENDING', '[0]', '{}', 0, 0, now(), "
        "now(), '', '', '', '', %s) RETURNING id",
        [job.id, job.task_name, key],
    ).fetchone()
    return str(row[0])
