"""Progress, retrying failed jobs, purging and pausing queues: broker and command line."""

from __future__ import annotations

import uuid
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

import djqueue
from djqueue.core import states
from djqueue.db import broker
from djqueue.db.models import Job, Queue
from djqueue.integrations import testing
from tests.factories import JobFactory, StartedJobFactory
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("djqueue", *args, stdout=out)
    return out.getvalue()


def test_progress_is_stored_and_read_back() -> None:
    result = tasks.with_progress.delay(3)
    testing.run_pending()
    row = Job.objects.get(pk=result.id)
    assert row.progress == {"current": 3, "total": 3, "message": "step 3"}
    assert result.get() == 3


def test_info_of_a_running_job_is_its_progress() -> None:
    running = StartedJobFactory(progress={"current": 1, "total": 4, "message": "a"})
    result = djqueue.AsyncResult(running.id)
    assert result.info == {"current": 1, "total": 4, "message": "a"}
    assert result.progress == result.info


def test_progress_of_a_stale_run_is_ignored() -> None:
    running = StartedJobFactory(attempt=2, worker="w2")
    assert broker.update_progress(running.id, 1, "w2", {"current": 9}) is False
    # Same attempt, but another worker (an asynchronously committed claim lost in a
    # server crash lets two workers hold one attempt): fenced off too.
    assert broker.update_progress(running.id, 2, "w1", {"current": 9}) is False
    assert Job.objects.get(pk=running.id).progress is None
    assert broker.update_progress(running.id, 2, "w2", {"current": 1}) is True


def test_progress_outside_a_worker_does_nothing_and_checks_numbers() -> None:
    assert tasks.with_progress(2) == 2
    assert tasks.with_progress.apply([2]).get() == 2
    with pytest.raises(TypeError, match="progress current must be a number"):
        tasks.with_progress.update_progress("half")  # type: ignore[arg-type]


def test_retry_failed_keeps_the_id_and_starts_a_new_attempt() -> None:
    result = tasks.fail.delay("once")
    testing.run_pending()
    assert result.state == states.FAILURE
    assert broker.retry_failed([result.id]) == 1
    row = Job.objects.get(pk=result.id)
    assert (row.state, row.error_type, row.traceback, row.attempt) == (states.PENDING, "", "", 1)
    [outcome] = testing.run_pending()
    assert outcome.attempt == 2


def test_requeue_failed_names_the_jobs_it_queued_even_once_they_have_run() -> None:
    failed = tasks.fail.delay("once")
    done = tasks.add.delay(1, 1)
    testing.run_pending()
    assert broker.requeue_failed([failed.id, done.id]) == [uuid.UUID(failed.id)]
    testing.run_pending()  # as a worker would at once: the job is no longer waiting
    assert broker.requeue_failed([failed.id]) == [uuid.UUID(failed.id)]


def test_cli_retry_failed_with_filters() -> None:
    JobFactory.create_batch(2, state=states.FAILURE, task_name="tests.testapp.tasks.fail")
    JobFactory(state=states.FAILURE, task_name="tests.testapp.tasks.add", queue="other")
    JobFactory(state=states.SUCCESS)
    assert "Queued 2 failed job(s) again." in run(
        "retry", "--failed", "--task", "tests.testapp.tasks.fail"
    )
    assert "Queued 1 failed job(s) again." in run("retry", "--failed", "-Q", "other")
    assert Job.objects.filter(state=states.PENDING).count() == 3


def test_cli_purge_asks_first(monkeypatch: Any) -> None:
    tasks.add.delay_many([(1, 1)] * 3, queue="junk")
    keep = tasks.add.delay(2, 2)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    with pytest.raises(CommandError, match="Nothing deleted"):
        run("purge", "--queue", "junk")
    assert Job.objects.filter(queue="junk").count() == 3
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    assert "Deleted 3 waiting job(s) of queue 'junk'." in run("purge", "--queue", "junk")
    assert "has no waiting jobs" in run("purge", "--queue", "junk", "--yes")
    assert Job.objects.filter(pk=keep.id).exists()


def test_cli_pause_and_resume() -> None:
    assert run("pause", "mail", "reports") == "mail: paused\nreports: paused\n"
    assert broker.paused_queues() == {"mail", "reports"}
    run("resume", "mail")
    assert broker.paused_queues() == {"reports"}
    assert Queue.objects.get(name="mail").paused is False
