"""Smaller promises of the data layer: kills counted once and quarantined, waiters told
of every end, unique jobs retried without a duplicate, groups pruned."""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

import djqueue
from djqueue.core import endings, states
from djqueue.core.records import ClaimedJob
from djqueue.db import broker
from djqueue.db.models import Group, Job
from djqueue.integrations import testing
from djqueue.runtime.pools import lost
from tests.factories import JobFactory, StartedJobFactory
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def _claim(worker: str = "w1") -> list[ClaimedJob]:
    return broker.claim(["default"], 10, worker, 30.0, limited=True)


def _due_now(job_id: uuid.UUID) -> None:
    """Skip the retry delay (the database's clock stands still within the test's
    transaction)."""
    Job.objects.filter(pk=job_id).update(eta=timezone.now() - datetime.timedelta(hours=1))


def _killed(job: ClaimedJob) -> Any:
    return lost.lost_outcome(job, "was killed by signal 11 (SIGSEGV)")


# Kills and quarantine --------------------------------------------------------------


def test_a_job_that_kills_its_process_is_retried_then_quarantined() -> None:
    result = tasks.sleep_unlimited.delay(0)  # retries forever: only quarantine ends it
    for kills in (1, 2):
        [job] = _claim()
        broker.finish([_killed(job)])
        row = Job.objects.get(pk=result.id)
        assert (row.state, row.kills) == (states.RETRY, kills)
        _due_now(result.id)
    [job] = _claim()
    assert job.isolate  # it killed its process before: in-process pools isolate it
    broker.finish([_killed(job)])
    row = Job.objects.get(pk=result.id)
    assert (row.state, row.kills, row.error_type) == (
        states.FAILURE,
        3,
        "djqueue.exceptions.WorkerLostError",
    )
    assert row.error_message.startswith("killed its worker process 3 times")
    assert "SIGSEGV" in row.error_message


def test_a_kill_written_twice_after_a_lost_reply_counts_once() -> None:
    tasks.sleep_unlimited.delay(0)
    [job] = _claim()
    outcome = _killed(job)
    broker.finish([outcome])
    assert broker.finish([outcome]) == {job.id}  # the second write is fenced off
    assert Job.objects.get(pk=job.id).kills == 1


def test_quarantine_can_be_turned_off(settings: Any) -> None:
    settings.DJQUEUE = {"QUARANTINE_AFTER_KILLS": None}
    result = tasks.sleep_unlimited.delay(0)
    for _ in range(5):
        [job] = _claim()
        broker.finish([_killed(job)])
        _due_now(result.id)
    row = Job.objects.get(pk=result.id)
    assert (row.state, row.kills) == (states.RETRY, 5)


def test_retrying_a_quarantined_job_keeps_it_isolated() -> None:
    quarantined = JobFactory(state=states.FAILURE, kills=3, finished_at=timezone.now())
    assert broker.retry_failed([quarantined.id]) == 1
    [job] = _claim()
    assert (job.id, job.isolate) == (quarantined.id, True)
    assert Job.objects.get(pk=quarantined.id).kills == 0


# Waiters hear of every end ------------------------------------------------------------


@pytest.fixture
def done_listener(transactional_db: None) -> Any:
    conn = psycopg.connect(
        dbname=connection.settings_dict["NAME"],
        user=connection.settings_dict["USER"],
        host=connection.settings_dict["HOST"],
        port=connection.settings_dict["PORT"],
        autocommit=True,
    )
    conn.execute("LISTEN djqueue_done")
    yield conn
    conn.close()


def _heard(conn: psycopg.Connection[Any]) -> list[str]:
    return [note.payload for note in conn.notifies(timeout=2, stop_after=1)]


@pytest.mark.django_db(transaction=True)
def test_revoking_a_waiting_job_tells_result_waiters(done_listener: Any) -> None:
    result = tasks.add.delay(1, 2)
    result.revoke()
    assert _heard(done_listener) == [str(result.id)]


@pytest.mark.django_db(transaction=True)
def test_a_rescue_that_fails_a_job_tells_result_waiters(done_listener: Any) -> None:
    spent = StartedJobFactory(attempt=4, max_attempts=4)
    assert broker.rescue() == {states.FAILURE: 1}
    assert _heard(done_listener) == [str(spent.id)]


# Retrying failed unique jobs ------------------------------------------------------------


def _failed_unique(user_id: int) -> Job:
    return JobFactory(
        task_name=tasks.unique_report.name,
        state=states.FAILURE,
        finished_at=timezone.now(),
        unique_key=tasks.unique_report.prepare([user_id]).unique_key,
    )


def test_a_failed_unique_job_is_not_retried_while_a_duplicate_waits() -> None:
    failed = _failed_unique(7)
    waiting = tasks.unique_report.delay(7)
    assert broker.retry_failed([failed.id]) == 0
    assert Job.objects.get(pk=failed.id).state == states.FAILURE
    assert Job.objects.get(pk=waiting.id).state == states.PENDING


def test_of_two_failed_duplicates_one_is_retried() -> None:
    older, newer = _failed_unique(8), _failed_unique(8)
    assert broker.retry_failed([older.id, newer.id]) == 1
    assert Job.objects.filter(state=states.PENDING, unique_key=older.unique_key).count() == 1


def test_the_admin_retry_of_a_blocked_unique_job_answers_normally(admin_client: Any) -> None:
    from django.urls import reverse

    failed = _failed_unique(9)
    tasks.unique_report.delay(9)
    response = admin_client.post(
        reverse("admin:djqueue_job_changelist"),
        {"action": "retry_failed_jobs", "_selected_action": [str(failed.id)], "confirmed": "yes"},
        follow=True,
    )
    assert response.status_code == 200
    assert Job.objects.get(pk=failed.id).state == states.FAILURE


# Pruning groups ---------------------------------------------------------------------------


def test_groups_whose_jobs_are_gone_are_pruned_after_the_retention() -> None:
    kept = djqueue.group(tasks.add.s(1, 1), tasks.add.s(2, 2)).apply_async()
    gone = djqueue.group(tasks.add.s(3, 3), tasks.add.s(4, 4)).apply_async()
    testing.run_pending()
    long_ago = timezone.now() - datetime.timedelta(days=30)
    Group.objects.update(created_at=long_ago)
    Job.objects.update(finished_at=long_ago)
    # The jobs of one group are still wanted (kept for longer, say): its row stays.
    Job.objects.filter(id__in=[r.id for r in kept.results]).update(finished_at=timezone.now())

    broker.prune(older_than=86400)

    assert [str(i) for i in Group.objects.values_list("id", flat=True)] == [kept.id]
    assert djqueue.GroupResult.restore(gone.id) is None
    restored = djqueue.GroupResult.restore(kept.id)
    assert restored is not None and restored.get() == [2, 4]


def test_a_group_younger_than_the_retention_is_kept_even_without_jobs() -> None:
    Group.objects.create(id=uuid.uuid4(), job_ids=[str(uuid.uuid4())], created_at=timezone.now())
    broker.prune(older_than=3600)
    assert Group.objects.count() == 1


# Unique jobs that go back to waiting while a duplicate waits ----------------------------


def _running_unique_with_a_waiting_duplicate(worker: str = "w1") -> tuple[ClaimedJob, Any]:
    """A unique job a worker runs, and a duplicate sent meanwhile (allowed: only
    waiting jobs hold their key)."""
    tasks.unique_report.delay(5)
    [running] = broker.claim(
        ["default"], 1, worker, -1.0, limited=True
    )  # its lease is over already
    duplicate = tasks.unique_report.delay(5)
    assert duplicate.id != running.id
    return running, duplicate


def _keys(*job_ids: uuid.UUID) -> list[str | None]:
    return [Job.objects.get(pk=job_id).unique_key for job_id in job_ids]


def test_a_rescued_unique_job_gives_up_its_key_to_the_waiting_duplicate() -> None:
    running, duplicate = _running_unique_with_a_waiting_duplicate()
    assert broker.rescue() == {states.PENDING: 1}
    assert _keys(running.id, duplicate.id) == [None, "tests.testapp.tasks.unique_report:report:5"]
    assert Job.objects.filter(state=states.PENDING).count() == 2  # both run: none lost


@pytest.mark.parametrize("how", ["released", "orphaned"])
def test_unique_jobs_handed_back_or_orphaned_give_up_their_key_too(how: str) -> None:
    running, duplicate = _running_unique_with_a_waiting_duplicate()
    if how == "released":
        assert broker.release("w1", [(running.id, running.attempt, True)]) == 1
    else:
        assert broker.release_orphans("w1", []) == 1
    assert _keys(running.id, duplicate.id)[0] is None
    assert Job.objects.filter(state=states.PENDING).count() == 2


def test_two_running_duplicates_rescued_together_keep_one_key() -> None:
    tasks.unique_report.delay(6)
    broker.claim(["default"], 1, "w1", -1.0, limited=True)
    tasks.unique_report.delay(6)
    broker.claim(["default"], 1, "w2", -1.0, limited=True)
    assert broker.rescue() == {states.PENDING: 2}
    keys = sorted(str(key) for key in Job.objects.values_list("unique_key", flat=True))
    assert keys == ["None", "tests.testapp.tasks.unique_report:report:6"]


def test_a_retry_of_a_unique_job_while_a_duplicate_waits_is_written() -> None:
    running, duplicate = _running_unique_with_a_waiting_duplicate()
    retry = dataclasses.replace(
        endings.failure(running, ValueError("again")), state=states.RETRY, retry_in=60.0
    )
    assert broker.finish([retry]) == set()
    row = Job.objects.get(pk=running.id)
    assert (row.state, row.unique_key) == (states.RETRY, None)
    assert _keys(duplicate.id)[0] is not None
