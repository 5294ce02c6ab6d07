import dataclasses
import datetime
import logging
import threading
import time
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from djqueue.core import executor, states
from djqueue.core.records import Outcome
from djqueue.db import broker
from djqueue.db.models import Job, Worker
from tests.factories import JobFactory, ReceivedJobFactory, StartedJobFactory
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def claim(limit: int = 10, queues: tuple[str, ...] = ("default",), worker: str = "w1") -> Any:
    return broker.claim(list(queues), limit, worker, 30.0, limited=True)


def test_claim_marks_jobs_received_with_attempt_and_lease() -> None:
    result = tasks.add.delay(1, 2)
    [job] = claim()
    assert (str(job.id), job.task_name, job.args, job.attempt) == (
        result.id,
        "tests.testapp.tasks.add",
        "[1, 2]",
        1,
    )
    row = Job.objects.get(pk=result.id)
    assert (row.state, row.attempt, row.worker) == (states.RECEIVED, 1, "w1")
    assert row.started_at is None and row.claimed_at is not None
    assert row.lease_expires_at is not None and row.lease_expires_at > timezone.now()
    assert claim() == []


def test_mark_started_records_the_start_of_a_received_job_it_still_holds() -> None:
    first, second = (tasks.add.delay(n, n) for n in range(2))
    one, two = claim()
    broker.mark_started("w1", [(one.id, one.attempt, 2.0), (two.id, two.attempt + 1, 0.0)])
    rows = {row.id: row for row in Job.objects.all()}
    assert rows[one.id].state == states.STARTED
    assert rows[one.id].started_at < timezone.now() - datetime.timedelta(seconds=1.5)
    assert rows[two.id].state == states.RECEIVED  # another attempt: fenced off
    assert {first.id, second.id} == {str(job_id) for job_id in rows}


def test_finish_of_a_received_job_dates_its_start_from_the_runtime() -> None:
    tasks.add.delay(1, 1)
    [job] = claim()
    outcome = dataclasses.replace(executor.execute(job), runtime=3.0)
    broker.finish([outcome])
    row = Job.objects.get(pk=job.id)
    assert row.state == states.SUCCESS
    assert row.started_at is not None and row.finished_at is not None
    assert 2.5 < (row.finished_at - row.started_at).total_seconds() < 4


def test_claim_honours_priority_then_order() -> None:
    low = tasks.add.apply_async((1, 1), priority=-5)
    first = tasks.add.delay(2, 2)
    second = tasks.add.delay(3, 3)
    high = tasks.add.apply_async((4, 4), priority=50)
    jobs = claim(limit=10)
    assert [str(j.id) for j in jobs] == [high.id, first.id, second.id, low.id]
    tasks.add.delay(5, 5)
    urgent = tasks.add.apply_async((6, 6), priority=1)
    assert [str(j.id) for j in claim(limit=1)] == [urgent.id]


def test_claim_skips_jobs_not_yet_due_and_other_queues() -> None:
    tasks.add.apply_async((1, 1), countdown=60)
    other = tasks.add.apply_async((1, 1), queue="other")
    assert claim() == []
    assert [str(j.id) for j in claim(queues=("other", "default"))] == [other.id]


def test_claim_respects_the_limit() -> None:
    tasks.add.delay_many([(n, n) for n in range(25)])
    assert len(claim(limit=10)) == 10
    assert len(claim(limit=100)) == 15


@pytest.mark.django_db(transaction=True)
def test_two_connections_claim_disjoint_jobs_without_waiting(other_connection: Any) -> None:
    tasks.add.delay_many([(n, n) for n in range(10)])
    # The other connection claims 4 jobs and keeps its transaction (and row locks) open.
    other_connection.execute("BEGIN")
    held = other_connection.execute(
        "SELECT id FROM djqueue_job WHERE state IN ('PENDING', 'RETRY') ORDER BY id "
        "LIMIT 4 FOR UPDATE SKIP LOCKED"
    ).fetchall()
    started = time.monotonic()
    mine = claim(limit=10)
    assert time.monotonic() - started < 1.0, "a locked row made the claim wait"
    assert len(mine) == 6
    assert {j.id for j in mine}.isdisjoint({row[0] for row in held})


def test_claim_flags_expired_jobs_and_executor_revokes_them() -> None:
    result = tasks.add.apply_async(
        (1, 2), expires=datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
    )
    [job] = claim()
    assert job.expired
    outcome = executor.execute(job)
    broker.finish([outcome])
    row = Job.objects.get(pk=result.id)
    assert row.state == states.REVOKED
    assert "expired" in row.error_message
    assert row.finished_at is not None


def test_finish_writes_success_and_failure() -> None:
    ok = tasks.add.delay(2, 3)
    bad = tasks.fail.delay("nope")
    outcomes = [executor.execute(job) for job in claim()]
    assert broker.finish(outcomes) == set()
    ok_row, bad_row = Job.objects.get(pk=ok.id), Job.objects.get(pk=bad.id)
    assert (ok_row.state, ok_row.result, ok_row.finished_at is not None) == (
        states.SUCCESS,
        5,
        True,
    )
    assert (bad_row.state, bad_row.error_type, bad_row.error_message) == (
        states.FAILURE,
        "ValueError",
        "nope",
    )
    assert "raise ValueError(message)" in bad_row.traceback
    assert ok_row.lease_expires_at is None


def test_retry_moves_job_to_retry_with_new_eta_and_counts() -> None:
    result = tasks.retry_then_succeed.apply_async((5,))
    [job] = claim()
    outcome = executor.execute(job)
    assert outcome.state == states.RETRY
    broker.finish([outcome])
    row = Job.objects.get(pk=result.id)
    assert (row.state, row.retries, row.attempt) == (states.RETRY, 1, 1)
    assert row.error_type == "ConnectionError"
    # default_retry_delay=0: due again at once and claimable from RETRY.
    [again] = claim()
    assert (again.retries, again.attempt) == (1, 2)


def test_retry_with_countdown_waits() -> None:
    result = tasks.always_flaky.delay()
    tasks.always_flaky.retry_backoff_max = 60
    try:
        [job] = claim()
        broker.finish([executor.execute(job)])
    finally:
        tasks.always_flaky.retry_backoff_max = 0
    row = Job.objects.get(pk=result.id)
    assert row.state == states.RETRY
    assert row.eta > timezone.now()
    assert claim() == []


def test_autoretry_ends_in_failure_with_original_error_after_last_retry() -> None:
    result = tasks.always_flaky.delay()
    for _ in range(3):
        [job] = claim()
        broker.finish([executor.execute(job)])
    row = Job.objects.get(pk=result.id)
    assert (row.state, row.retries, row.attempt) == (states.FAILURE, 2, 3)
    assert (row.error_type, row.error_message) == ("ConnectionError", "service down")
    assert "service down" in row.traceback


def test_stale_finish_is_fenced_off(caplog: pytest.LogCaptureFixture) -> None:
    job_row = StartedJobFactory()
    [stale_claim_attempt] = [job_row.attempt]
    broker.rescue()
    [fresh] = claim(worker="w2")
    assert fresh.attempt == stale_claim_attempt + 1
    stale = Outcome(
        job_row.id,
        stale_claim_attempt,
        job_row.task_name,
        states.FAILURE,
        error_type="ValueError",
        error_message="stale",
    )
    with caplog.at_level(logging.WARNING, logger="djqueue.broker"):
        assert broker.finish([stale]) == {job_row.id}
    assert Job.objects.get(pk=job_row.id).state == states.RECEIVED
    assert f"Ignored a late outcome for job {job_row.id}: it was rescued" in caplog.text
    broker.finish([executor.execute(fresh)])
    row = Job.objects.get(pk=job_row.id)
    assert (row.state, row.result, row.attempt) == (states.SUCCESS, 3, 2)


def test_an_outcome_written_again_says_it_was_there_already(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # As when the reply to the first write is lost with the connection, and the worker
    # writes the outcome again once it is back: nothing was rescued.
    tasks.add.delay(2, 2)
    [job] = claim()
    outcome = executor.execute(job)
    assert broker.finish([outcome]) == set()
    with caplog.at_level(logging.WARNING, logger="djqueue.broker"):
        assert broker.finish([outcome]) == {job.id}
    assert (
        f"Did not write the outcome of job {job.id} again: it already ended SUCCESS under "
        "this attempt" in caplog.text
    )
    assert "rescued" not in caplog.text
    row = Job.objects.get(pk=job.id)
    assert (row.state, row.result, row.attempt) == (states.SUCCESS, 4, 1)


def test_rescue_requeues_lost_jobs_and_fails_those_out_of_attempts() -> None:
    lost = StartedJobFactory()
    spent = StartedJobFactory(attempt=4, max_attempts=4, worker="dead-1")
    alive = StartedJobFactory(lease_expires_at=timezone.now() + datetime.timedelta(minutes=1))
    unlimited = StartedJobFactory(attempt=50, max_attempts=None)
    assert broker.rescue() == {states.PENDING: 2, states.FAILURE: 1}
    assert Job.objects.get(pk=lost.id).state == states.PENDING
    assert Job.objects.get(pk=unlimited.id).state == states.PENDING
    assert Job.objects.get(pk=alive.id).state == states.STARTED
    failed = Job.objects.get(pk=spent.id)
    assert failed.state == states.FAILURE
    assert failed.error_type == "djqueue.exceptions.WorkerLostError"
    assert "worker lost: dead-1" in failed.error_message


def test_rescue_gives_a_received_job_its_attempt_back_and_marks_it_lost() -> None:
    waiting = ReceivedJobFactory(attempt=4, max_attempts=4)
    assert broker.rescue() == {states.PENDING: 1}
    row = Job.objects.get(pk=waiting.id)
    assert (row.state, row.attempt, row.max_attempts, row.lost) == (states.PENDING, 4, 5, 1)
    assert row.history[-1]["outcome"] == "LOST"
    assert "before the job started" in row.history[-1]["error_message"]
    # Claimed again, it says so: in-process pools then run it in a process of its own.
    [again] = claim()
    assert (again.id, again.attempt, again.isolate) == (waiting.id, 5, True)


def test_renew_leases_touches_exactly_the_jobs_named_by_id_and_attempt() -> None:
    mine = StartedJobFactory(worker="me")
    received = ReceivedJobFactory(worker="me")
    unknown = StartedJobFactory(worker="me")  # names "me", but "me" does not hold it
    older = StartedJobFactory(worker="me", attempt=2)
    theirs = StartedJobFactory(worker="them")
    held = [(mine.id, 1), (received.id, 1), (older.id, 1), (theirs.id, 1)]
    assert broker.renew_leases("me", 60, held) == {mine.id: False, received.id: False}
    leases = dict(Job.objects.values_list("id", "lease_expires_at"))
    assert leases[mine.id] > timezone.now() and leases[received.id] > timezone.now()
    for other in (unknown, older, theirs):
        assert leases[other.id] < timezone.now()


def test_orphans_of_a_live_worker_go_back_to_the_queue() -> None:
    held = StartedJobFactory(worker="me")
    lost_reply = ReceivedJobFactory(worker="me", attempt=1, max_attempts=1)
    lost_outcome = StartedJobFactory(worker="me")
    theirs = StartedJobFactory(worker="them")
    assert broker.release_orphans("me", [held.id]) == 2
    rows = {row.id: row for row in Job.objects.all()}
    assert rows[held.id].state == rows[theirs.id].state == states.STARTED
    assert rows[lost_reply.id].state == rows[lost_outcome.id].state == states.PENDING
    # The claim never reached the worker: the job did not run, it loses no attempt.
    assert (rows[lost_reply.id].attempt, rows[lost_reply.id].max_attempts) == (1, 2)
    assert rows[lost_outcome.id].max_attempts == 4
    assert rows[lost_reply.id].history[-1]["outcome"] == "RELEASED"


def test_release_hands_jobs_back_and_returns_unstarted_attempts() -> None:
    tasks.add.delay_many([(1, 1), (2, 2)])
    running, waiting = claim(worker="me")
    assert broker.release("someone-else", [(running.id, 1, True)]) == 0
    assert broker.release("me", [(running.id, 1, True), (waiting.id, 1, False)]) == 2
    rows = {row.id: row for row in Job.objects.all()}
    assert rows[running.id].state == rows[waiting.id].state == states.PENDING
    # Attempts only grow (they fence late writes); an unstarted one is given back by
    # raising the budget.
    assert (rows[running.id].attempt, rows[waiting.id].attempt) == (1, 1)
    assert (rows[running.id].max_attempts, rows[waiting.id].max_attempts) == (4, 5)


def test_revoke_pending_job_means_it_never_runs() -> None:
    result = tasks.add.delay(1, 2)
    assert result.revoke() is True
    assert claim() == []
    assert result.state == states.REVOKED
    assert result.revoke() is False


def test_forget_deletes_finished_jobs_only() -> None:
    pending = tasks.add.delay(1, 2)
    done = JobFactory(state=states.SUCCESS, finished_at=timezone.now(), result=3)
    pending.forget()
    assert Job.objects.filter(pk=pending.id).exists()
    broker.forget(done.id)
    assert not Job.objects.filter(pk=done.id).exists()


def test_prune_deletes_old_finished_jobs() -> None:
    old = timezone.now() - datetime.timedelta(days=2)
    JobFactory.create_batch(5, state=states.SUCCESS, finished_at=old)
    recent = JobFactory(state=states.FAILURE, finished_at=timezone.now())
    waiting = JobFactory()
    assert broker.prune(86400, batch=2) == 5
    assert set(Job.objects.values_list("id", flat=True)) == {recent.id, waiting.id}


def test_prunejobs_command(capsys: Any) -> None:
    from django.core.management import call_command

    JobFactory(state=states.SUCCESS, finished_at=timezone.now() - datetime.timedelta(hours=2))
    call_command("prunejobs", "--older-than", "3600")
    assert "Pruned 1 finished job(s)" in capsys.readouterr().out
    assert not Job.objects.exists()


def test_worker_rows() -> None:
    broker.register_worker("host.1", "host", 1, "threads", 4, ["default"])
    broker.worker_heartbeat("host.1", 10)
    broker.worker_stopped("host.1", 12)
    row = Worker.objects.get(name="host.1")
    assert (row.pool, row.concurrency, row.queues, row.jobs_done) == ("threads", 4, ["default"], 12)
    assert row.stopped_at is not None


def test_unknown_task_fails_with_clear_message() -> None:
    JobFactory(task_name="gone.task")
    [job] = claim()
    outcome = executor.execute(job)
    broker.finish([outcome])
    row = Job.objects.get(pk=job.id)
    assert row.state == states.FAILURE
    assert "unregistered task 'gone.task'" in row.error_message


def test_ignore_result_keeps_no_payload() -> None:
    result = tasks.forgetful.delay()
    broker.finish([executor.execute(job) for job in claim()])
    row = Job.objects.get(pk=result.id)
    assert (row.state, row.result) == (states.SUCCESS, None)


def test_unencodable_result_fails_the_job_with_a_clear_error() -> None:
    result = tasks.unencodable_result.delay()
    broker.finish([executor.execute(job) for job in claim()])
    row = Job.objects.get(pk=result.id)
    assert row.state == states.FAILURE
    assert "returned a value JSON cannot carry: result has type set" in row.error_message


def test_bound_task_sees_its_request() -> None:
    result = tasks.whoami.apply_async(queue="default")
    broker.finish([executor.execute(job) for job in claim(worker="host.9")])
    seen = Job.objects.get(pk=result.id).result
    assert seen == {
        "id": str(result.id),
        "retries": 0,
        "queue": "default",
        "args": [],
        "hostname": "host.9",
    }


def test_claim_uses_the_ready_index() -> None:
    from djqueue.db import sql

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            "EXPLAIN " + sql.CLAIM_ONE_QUEUE,
            {"queue": "default", "limit": 10, "worker": "w", "lease": 30},
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "djqueue_job_ready" in plan


@pytest.mark.django_db(transaction=True)
def test_concurrent_claimers_never_share_a_job() -> None:
    tasks.add.delay_many([(n, n) for n in range(400)])
    seen: list[list[Any]] = []

    def drain(name: str) -> None:
        from django.db import connections

        mine = []
        try:
            while batch := broker.claim(["default"], 7, name, 30.0, limited=True):
                mine.extend(job.id for job in batch)
        finally:
            connections.close_all()
        seen.append(mine)

    threads = [threading.Thread(target=drain, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    claimed = [job_id for ids in seen for job_id in ids]
    assert len(claimed) == 400
    assert len(set(claimed)) == 400
