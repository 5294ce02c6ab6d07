"""The task API through the queue: jobs claimed, run and finished against the database."""

from __future__ import annotations

import json
from typing import Any

import pytest

import djqueue
from djqueue import exceptions, states
from djqueue.core import context, executor
from djqueue.db import broker
from djqueue.db.models import Job
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def run_all(queue: str = "default") -> int:
    jobs = broker.claim([queue], 100, "w", 30.0, limited=False)
    broker.finish([executor.execute(job) for job in jobs])
    return len(jobs)


def test_reject_ends_the_job_rejected() -> None:
    result = tasks.reject.delay("not for me")
    run_all()
    assert result.state == states.REJECTED
    assert result.ready() and not result.failed()
    with pytest.raises(exceptions.Reject, match="not for me"):
        result.get(timeout=1)
    assert isinstance(result.get(propagate=False), exceptions.Reject)


def test_reject_with_requeue_runs_again_until_its_attempts_are_used() -> None:
    result = tasks.reject.delay("later", requeue=True)  # max_retries=2: 3 attempts
    for attempt in (1, 2):
        assert run_all() == 1
        job = result.job
        assert (job.state, job.attempt, job.retries) == (states.PENDING, attempt, 0)
        assert job.history[-1]["outcome"] == "REQUEUED"
    assert run_all() == 1
    assert (result.state, result.job.attempt) == (states.REJECTED, 3)
    assert run_all() == 0


def test_ignore_ends_the_job_without_a_result() -> None:
    result = tasks.ignore.delay()
    run_all()
    assert result.state == states.IGNORED
    assert result.ready()
    assert result.get(timeout=1) is None
    assert Job.objects.get(pk=result.id).finished_at is not None


def test_after_ignore_the_state_the_task_reported_stays() -> None:
    result = tasks.ignore.delay(state="FAILURE")
    run_all()
    assert result.state == states.FAILURE  # as the task reported it, as in Celery
    assert result.info == {"why": "ignored on purpose"}
    assert result.job.state == states.IGNORED
    assert result.ready() and not result.failed()


@djqueue.task(bind=True, name="tests.integration.reports_progress")
def reports_progress(self: djqueue.Task[Any, Any]) -> dict[str, Any]:
    self.update_state(state="PROGRESS", meta={"current": 1, "total": 2})
    seen = djqueue.AsyncResult(self.request.id)
    return {"state": seen.state, "info": seen.info, "ready": seen.ready()}


def test_update_state_is_read_back_while_the_job_runs() -> None:
    result = reports_progress.delay()
    run_all()
    assert result.get(timeout=1) == {
        "state": "PROGRESS",
        "info": {"current": 1, "total": 2},
        "ready": False,
    }
    assert (result.state, result.info) == (states.SUCCESS, result.result)


def test_a_new_run_does_not_show_the_state_an_earlier_run_reported() -> None:
    result = reports_progress.delay()
    job = broker.claim(["default"], 1, "w", 30.0, limited=False)[0]
    with _as(job):
        reports_progress.update_state(state="HALFWAY")
    assert result.state == "HALFWAY"
    broker.release("w", [(job.id, job.attempt, False)])
    broker.claim(["default"], 1, "w", 30.0, limited=False)
    assert result.state == states.RECEIVED


class _as:
    """Make ``job`` the running job of this thread, as the executor does."""

    def __init__(self, job: Any) -> None:
        self.request = context.Request(
            id=job.id, task=job.task_name, attempt=job.attempt, hostname=job.worker
        )

    def __enter__(self) -> None:
        self.token = context.set_request(self.request)

    def __exit__(self, *exc: object) -> None:
        context.reset_request(self.token)


def test_a_rejected_step_revokes_the_rest_of_its_chain() -> None:
    result = djqueue.chain(tasks.reject.si("stop here"), tasks.add.s(1)).apply_async()
    run_all()
    assert result.parent.state == states.REJECTED
    assert result.state == states.REVOKED
    assert "was rejected: stop here" in result.job.error_message


def test_map_starmap_and_chunks_run_in_workers() -> None:
    mapped = tasks.show.map([1, 2]).delay()
    starmapped = tasks.add.starmap([(1, 2), (3, 4)]).apply_async()
    chunked = tasks.add.chunks([(i, i) for i in range(5)], 2).apply_async()
    assert Job.objects.count() == 5  # one job per map, per starmap and per chunk
    run_all()
    assert mapped.get(timeout=1) == ["result: 1", "result: 2"]
    assert starmapped.get(timeout=1) == [3, 7]
    assert chunked.get(timeout=1) == [[0, 2], [4, 6], [8]]


def test_map_runs_eagerly(settings: Any) -> None:
    settings.DJQUEUE = {"EAGER": True}
    assert tasks.add.starmap([(1, 1)]).delay().get() == [2]
    assert tasks.add.chunks([(1, 1), (2, 2), (3, 3)], 2)().get() == [[2, 4], [6]]


def test_request_of_a_plain_job() -> None:
    result = tasks.describe_request.apply_async(expires=60)
    run_all()
    seen = result.get(timeout=1)
    assert seen["id"] == seen["root_id"] == str(result.id)
    assert (seen["parent_id"], seen["group"], seen["chain"], seen["callbacks"]) == (
        None,
        None,
        None,
        None,
    )
    assert seen["delivery_info"] == {
        "exchange": "",
        "routing_key": "default",
        "queue": "default",
        "priority": 0,
        "redelivered": False,
    }
    assert seen["hostname"] == "w" and seen["is_eager"] is False
    # ISO 8601 text, as Celery's request gives them.
    job = Job.objects.get(pk=result.id)
    assert job.expires_at is not None
    assert seen["expires"] == job.expires_at.isoformat() and seen["eta"] == job.eta.isoformat()
    assert seen["headers"] == {} and seen["tenant"] is None


def test_per_call_options_reach_the_request() -> None:
    result = tasks.describe_request.apply_async(
        headers={"tenant": "acme"},
        shadow="report for acme",
        routing_key="reports.acme",
        time_limit=30,
        soft_time_limit=20,
        ignore_result=False,
    )
    run_all()
    seen = result.get(timeout=1)
    assert (seen["headers"], seen["tenant"], seen["shadow"]) == (
        {"tenant": "acme"},
        "acme",
        "report for acme",
    )
    assert seen["delivery_info"]["routing_key"] == "reports.acme"
    assert (seen["time_limit"], seen["soft_time_limit"]) == (30.0, 20.0)


def test_ignore_result_per_call() -> None:
    result = tasks.add.apply_async((1, 2), ignore_result=True)
    run_all()
    assert result.state == states.SUCCESS
    assert result.get(timeout=1) is None


def test_bad_per_call_options_fail_in_the_caller() -> None:
    with pytest.raises(ValueError, match="soft_time_limit of this call"):
        tasks.add.apply_async((1, 2), time_limit=1, soft_time_limit=2)
    with pytest.raises(TypeError, match="headers must be JSON data"):
        tasks.add.apply_async((1, 2), headers={"x": object()})
    with pytest.raises(TypeError, match="retry_policy takes"):
        tasks.add.apply_async((1, 2), retry_policy={"max_tries": 1})
    assert Job.objects.count() == 0


def test_a_job_sent_by_a_task_knows_its_parent_and_root() -> None:
    parent = tasks.send_child.delay()
    run_all()
    child = djqueue.AsyncResult(parent.get(timeout=1))
    run_all()
    seen = child.get(timeout=1)
    # Strings, as Celery's: compared with AsyncResult.id and put into JSON as they are.
    assert (seen["id"], seen["parent_id"], seen["root_id"]) == (child.id, parent.id, parent.id)
    assert json.loads(seen["ids_as_json"]) == [child.id, parent.id, parent.id, None]


def test_workflow_places_in_the_request() -> None:
    chained = djqueue.chain(tasks.describe_request.si(), tasks.describe_request.si()).apply_async()
    grouped = djqueue.group(tasks.describe_request.si()).apply_async()
    linked = tasks.describe_request.apply_async(
        link=tasks.show.s(), link_error=tasks.show.si("failed")
    )
    while run_all():
        pass
    first, second = chained.parent.get(timeout=1), chained.get(timeout=1)
    assert first["chain"] == [{"id": str(chained.id), "options": {"task_id": str(chained.id)}}]
    assert second["parent_id"] == chained.parent.id
    member = grouped.get(timeout=1)[0]
    assert member["group"] == grouped.id
    assert json.loads(member["ids_as_json"])[3] == grouped.id
    seen = linked.get(timeout=1)
    assert [c["task"] for c in seen["callbacks"]] == [tasks.show.name]
    assert seen["errbacks"][0]["args"] == ["failed"] and seen["errbacks"][0]["immutable"]


def test_request_in_eager_mode(settings: Any) -> None:
    settings.DJQUEUE = {"EAGER": True}
    seen = tasks.describe_request.apply_async(headers={"tenant": "t"}).get()
    assert seen["is_eager"] is True and seen["tenant"] == "t"
    assert seen["root_id"] == seen["id"]


def _lose_the_connection() -> None:
    """End this test's database session from another one, as a network cut would: the
    next statement on it finds it gone."""
    import psycopg
    from django.db import connection

    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [pid] = cursor.fetchone()
    given = connection.settings_dict
    with psycopg.connect(
        dbname=given["NAME"],
        host=given["HOST"] or "127.0.0.1",
        port=given["PORT"] or 5432,
        user=given["USER"],
        autocommit=True,
    ) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


def test_publish_is_tried_again_after_a_lost_connection_outside_a_transaction(
    transactional_db: None,
) -> None:
    _lose_the_connection()
    result = tasks.add.apply_async((1, 2))
    assert Job.objects.filter(pk=result.id).exists()


def test_publish_is_not_tried_again_with_retry_false_or_in_a_transaction(
    transactional_db: None,
) -> None:
    from django.db import OperationalError, connection, transaction

    _lose_the_connection()
    with pytest.raises(OperationalError):
        tasks.add.apply_async((1, 2), retry=False)
    connection.close()
    with pytest.raises(OperationalError), transaction.atomic():
        _lose_the_connection()
        tasks.add.apply_async((1, 2))
    connection.close()
    assert Job.objects.count() == 0
