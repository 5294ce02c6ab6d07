"""The task API through the queue: jobs claimed, run and finished against the database."""

from __future__ import annotations

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
