"""AsyncResult, ResultSet and GroupResult as a Celery user reads them (Celery 5.7)."""

from __future__ import annotations

import datetime
import json
import uuid
from typing import Any

import pytest
from django.db import connections

import djqueue
from djqueue.core import exceptions, states
from djqueue.db.models import Job
from djqueue.integrations.testing import run_pending
from djqueue.result import ResultSet
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def test_ids_are_strings_that_compare_and_serialise_as_celery_s() -> None:
    result = tasks.add.delay(1, 2)
    job_id = str(Job.objects.get().id)

    assert result.id == job_id and isinstance(result.id, str)
    assert result == job_id and str(result) == job_id
    assert json.loads(json.dumps({"id": result.id})) == {"id": job_id}
    assert djqueue.AsyncResult(result.id) == result == djqueue.AsyncResult(uuid.UUID(job_id))
    assert {result: 1}[djqueue.AsyncResult(job_id)] == 1
    assert repr(result) == f"<AsyncResult: {job_id}>"
    assert result.task_id == job_id


def test_what_the_job_was_and_when_it_finished() -> None:
    result = tasks.add.apply_async((1,), {"y": 2}, queue="sums")
    assert (result.name, result.args, result.kwargs) == ("tests.testapp.tasks.add", [1], {"y": 2})
    assert (result.queue, result.retries, result.worker, result.date_done) == (
        "sums",
        0,
        None,
        None,
    )
    assert result.exists()

    run_pending()

    assert result.wait(timeout=1) == 3  # Celery's older name for get()
    done = result.date_done
    assert done is not None and done.tzinfo == datetime.UTC
    assert abs(done - Job.objects.get().finished_at) < datetime.timedelta(microseconds=1)
    assert result.worker is not None
    result.forget()
    assert not result.exists()


def test_get_inside_a_task_raises_runtime_error_as_in_celery() -> None:
    waiting = tasks.wait_for_sum.delay(1, 2)
    run_pending(limit=1)

    assert waiting.state == states.FAILURE
    with pytest.raises(RuntimeError, match=r"inside task tests.testapp.tasks.wait_for_sum\["):
        waiting.get(timeout=1)
    assert "disable_sync_subtasks=False" in str(waiting.result)


def test_get_inside_a_task_waits_when_told_that_it_may() -> None:
    done = tasks.add.delay(20, 22)
    run_pending()
    told = tasks.read_finished.delay(done.id)
    allowed = tasks.read_allowed.delay(done.id)
    run_pending()
    assert told.get(timeout=1) == allowed.get(timeout=1) == 42


def test_get_can_be_refused_outside_a_task_too() -> None:
    result = tasks.add.delay(1, 1)
    run_pending()
    with djqueue.result.denied_join_result(), pytest.raises(RuntimeError):
        result.get()
    assert result.get(timeout=1) == 2


def test_get_passes_the_outcome_to_a_callback() -> None:
    result = tasks.add.delay(1, 1)
    run_pending()
    seen: list[Any] = []
    assert result.get(callback=lambda *pair: seen.append(pair)) == 2
    assert seen == [(result.id, 2)]


def test_maybe_throw_raises_the_stored_error() -> None:
    failed = tasks.fail.delay("bad")
    run_pending()
    with pytest.raises(ValueError, match="bad"):
        failed.maybe_throw()
    assert isinstance(failed.maybe_throw(propagate=False), ValueError)


def test_forget_forgets_the_jobs_before_it_too() -> None:
    result = (tasks.add.s(1, 1) | tasks.mul.s(3)).delay()
    run_pending()
    result.forget()
    assert not Job.objects.exists()


def test_a_result_set_waits_for_all_in_order() -> None:
    results = ResultSet([tasks.add.delay(i, i) for i in range(3)])
    results.add(results[0])  # a member already: not added twice
    assert len(results) == 3 and results.waiting() and not results.ready()
    extra = tasks.fail.delay("odd one")
    results.update([extra])

    run_pending()

    assert results.ready() and results.failed() and not results.successful()
    assert results.completed_count() == 3
    with pytest.raises(ValueError, match="odd one"):
        results.join(timeout=1)
    values = results.get(timeout=1, propagate=False)
    assert values[:3] == [0, 2, 4] and isinstance(values[3], ValueError)
    seen: list[Any] = []
    assert results.get(timeout=1, propagate=False, callback=lambda *p: seen.append(p)) == []
    assert [pair[0] for pair in seen] == [r.id for r in results]
    results.remove(extra.id)
    assert results.successful()
    results.discard(extra)
    with pytest.raises(KeyError):
        results.remove(extra)
    results.clear()
    assert len(results) == 0


def test_a_group_result_made_here_can_be_saved_restored_and_deleted() -> None:
    members = [tasks.add.delay(i, 1) for i in range(3)]
    made = djqueue.GroupResult(results=members)
    assert isinstance(made.id, str) and made == made.id
    assert djqueue.GroupResult.restore(made.id) is None

    made.save()

    restored = djqueue.GroupResult.restore(made.id)
    assert restored == made and restored.results == members
    run_pending()
    assert restored.join(timeout=1) == [1, 2, 3]
    made.delete()
    assert djqueue.GroupResult.restore(made.id) is None


def test_a_sent_group_revokes_and_reads_as_celery_s() -> None:
    result = djqueue.group(tasks.add.s(i, i) for i in range(4)).apply_async()
    assert str(result) == result.id and result.children == result.results
    assert result.revoke() == 4
    assert result.ready() and not result.waiting() and result.completed_count() == 0
    with pytest.raises(exceptions.TaskRevokedError):
        result.get(timeout=1)


@pytest.mark.django_db(transaction=True)
def test_then_calls_back_once_the_job_finished() -> None:
    result = tasks.add.delay(2, 3)
    group = djqueue.group(tasks.add.s(i, i) for i in range(3)).apply_async()
    seen: list[Any] = []
    future = result.then(lambda done: seen.append(done.get(disable_sync_subtasks=False)) or "ok")
    group_future = group.then(lambda done: done.completed_count())
    failing = result.then(lambda done: 1 / 0, on_error=seen.append)
    assert not future.done()

    run_pending()

    assert future.result(timeout=10) == "ok" and group_future.result(timeout=10) == 3
    with pytest.raises(ZeroDivisionError):
        failing.result(timeout=10)
    assert seen[0] == 5 and isinstance(seen[1], ZeroDivisionError)
    connections.close_all()


def test_then_chains_as_celery_s_promise_does() -> None:
    outcome = tasks.add.apply((1, 2))
    errors: list[BaseException] = []

    chained = outcome.then(lambda done: done.result).then(lambda value: value * 10)
    broken = outcome.then(lambda done: 1 / 0).then(lambda value: value, on_error=errors.append)

    assert chained.result(timeout=5) == 30
    with pytest.raises(ZeroDivisionError):
        broken.result(timeout=5)
    assert [type(error) for error in errors] == [ZeroDivisionError]


def test_eager_results_read_as_async_results_do(settings: Any) -> None:
    outcome = tasks.add.apply((1, 2))
    assert isinstance(outcome.id, str) and outcome == outcome.id
    assert (outcome.name, outcome.args, outcome.kwargs) == ("tests.testapp.tasks.add", [1, 2], {})
    assert outcome.parent is None and outcome.date_done is not None
    assert outcome.wait() == 3 and outcome.then(lambda done: done.result).result() == 3
    outcome.revoke()
    assert outcome.state == states.REVOKED
    with pytest.raises(exceptions.TaskRevokedError):
        outcome.get()


def test_children_are_the_jobs_a_job_started_as_celery_lists_them() -> None:
    linked = tasks.add.apply_async(
        (2, 2), link=tasks.mul.s(10), link_error=tasks.on_chain_error.s()
    )
    chained = djqueue.chain(tasks.add.s(1, 1), tasks.mul.s(3)).apply_async()
    first = chained.parent
    assert first.children == [] and linked.children == []  # nothing started yet

    run_pending()

    [callback] = linked.children
    assert callback.get(timeout=1) == 40 and callback.name == "tests.testapp.tasks.mul"
    assert first.children == [chained] and chained.children == []
    spawner = tasks.spawn_children.delay(3)
    run_pending()
    assert [child.get(timeout=1) for child in spawner.children] == [0, 2, 4]


def test_a_failed_job_has_no_children_for_its_errbacks_or_later_steps() -> None:
    chained = djqueue.chain(tasks.fail.si("x"), tasks.mul.s(3)).apply_async(
        link_error=tasks.on_chain_error.s()
    )
    run_pending()
    assert chained.parent.children == []


def test_children_are_found_through_their_own_index() -> None:
    from django.db import connection

    from djqueue.db import models

    query = (
        Job.objects.filter(workflow__isnull=False)
        .annotate(started_by=models.parent_expression())
        .filter(started_by=str(uuid.uuid4()))
        .values_list("id", flat=True)
    )
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "djqueue_job_parent" in plan
