"""The behaviours Django's own ``tests/tasks`` check of a backend, on djqueue's backend.

Written for djqueue from what Django's suite checks (Django 6.1): the task API, results
as a backend that stores them returns them, failures, logs, signals, context. Jobs run
through the executor in this process (``testing.run_pending``); the acceptance suite runs
them on real workers. docs/django-tasks.md lists the checks of Django's suite that only
apply to its dummy and immediate backends, and why.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import pickle
import re
from collections.abc import Iterator
from typing import Any

import django
import pytest

pytest.importorskip("django.tasks", reason="Django's Tasks framework needs Django 6")

from django.db import transaction
from django.tasks import (
    DEFAULT_TASK_QUEUE_NAME,
    TaskResultStatus,
    default_task_backend,
    task,
    task_backends,
)
from django.tasks.base import Task
from django.tasks.exceptions import (
    InvalidTask,
    InvalidTaskBackend,
    TaskResultDoesNotExist,
    TaskResultMismatch,
)
from django.tasks.signals import task_enqueued, task_finished, task_started
from django.test import override_settings
from django.utils import timezone
from django.utils.module_loading import import_string

from djqueue.db.models import Job
from djqueue.integrations import testing
from tests.testapp import framework_tasks as t

pytestmark = pytest.mark.django_db


def run(result: Any) -> Any:
    """Run the waiting jobs, as a worker would, and return ``result`` refreshed."""
    testing.run_pending()
    result.refresh()
    return result


@pytest.fixture
def signals() -> Iterator[list[tuple[str, Any]]]:
    """Django's task signals as they are sent: (name, status)."""
    heard: list[tuple[str, Any]] = []
    receivers = {}
    for name, signal in (
        ("enqueued", task_enqueued),
        ("started", task_started),
        ("finished", task_finished),
    ):

        def receiver(sender: Any, task_result: Any, _name: str = name, **kwargs: Any) -> None:
            heard.append((_name, task_result.status))

        receivers[name] = receiver
        signal.connect(receiver)
    yield heard
    for name, signal in (
        ("enqueued", task_enqueued),
        ("started", task_started),
        ("finished", task_finished),
    ):
        signal.disconnect(receivers[name])


# The task API with a database backend -------------------------------------------------


def test_the_default_backend_is_djqueue() -> None:
    assert default_task_backend == task_backends["default"]
    assert type(task_backends["default"]).__name__ == "DjqueueBackend"


def test_enqueue_returns_a_ready_result_stored_as_a_job() -> None:
    result = t.noop_task.enqueue()
    assert result.status == TaskResultStatus.READY
    assert (result.task, result.args, result.kwargs) == (t.noop_task, [], {})
    assert result.enqueued_at is not None and result.started_at is None
    assert Job.objects.filter(pk=result.id).exists()


def test_aenqueue_returns_a_ready_result(transactional_db: None) -> None:
    from asgiref.sync import sync_to_async
    from django.db import connections

    async def send() -> Any:
        try:
            return await t.noop_task.aenqueue()
        finally:
            await sync_to_async(connections.close_all, thread_sensitive=True)()

    result = asyncio.run(send())
    assert result.status == TaskResultStatus.READY
    assert (result.args, result.kwargs) == ([], {})


def test_arguments_django_cannot_store_raise_its_error_and_store_nothing() -> None:
    with pytest.raises(TypeError, match="Unsupported type"):
        t.noop_task.enqueue(datetime.datetime.now())
    assert not Job.objects.exists()


def test_using_makes_a_new_task_and_leaves_the_original() -> None:
    now = timezone.now()
    assert t.noop_task.using(priority=1).priority == 1
    assert t.noop_task.using(queue_name="django").queue_name == "django"
    assert t.noop_task.using(run_after=now).run_after == now
    assert (t.noop_task.priority, t.noop_task.queue_name, t.noop_task.run_after) == (
        0,
        DEFAULT_TASK_QUEUE_NAME,
        None,
    )
    chained = t.noop_task.using(run_after=now).using(priority=10)
    assert (chained.priority, chained.run_after) == (10, now)
    copy = t.noop_task.using()
    assert copy == t.noop_task and copy is not t.noop_task


def test_using_an_unknown_backend() -> None:
    message = "The connection 'unknown' doesn't exist."
    with pytest.raises(InvalidTaskBackend, match=re.escape(message)):
        t.noop_task.using(backend="unknown")


def test_invalid_tasks_are_refused_with_django_messages() -> None:
    with pytest.raises(InvalidTask, match=re.escape("run_after must be an aware datetime.")):
        t.noop_task.using(run_after=datetime.datetime.now())
    for priority in (-101, 101, 3.1):
        with pytest.raises(InvalidTask, match="priority must be a whole number between"):
            t.noop_task.using(priority=priority)  # type: ignore[arg-type]
    for priority in (-100, 0, 100):
        t.noop_task.using(priority=priority)
    with pytest.raises(InvalidTask, match=re.escape("Queue 'queue-2' is not valid for backend.")):
        t.noop_task.using(queue_name="queue-2")
    message = "Task function must be defined at a module level."
    with pytest.raises(InvalidTask, match=re.escape(message)):
        task()(lambda: None)
    with pytest.raises(InvalidTask, match="does not have a first argument of 'context'"):
        task(takes_context=True)(t.calculate_meaning_of_life.func)


def test_queues_are_checked_when_enqueueing_too() -> None:
    unknown = t.noop_task.using(queue_name="django")
    with (
        override_settings(
            TASKS={"default": {"BACKEND": "djqueue.backends.DjqueueBackend", "QUEUES": ["q1"]}}
        ),
        pytest.raises(InvalidTask, match="Queue 'django' is not valid for backend"),
    ):
        unknown.enqueue()


def test_deferred_tasks_wait_for_run_after() -> None:
    later = timezone.now() + datetime.timedelta(hours=1)
    result = t.noop_task.using(run_after=later).enqueue()
    testing.run_pending()
    result.refresh()
    assert result.status == TaskResultStatus.READY
    assert Job.objects.get(pk=result.id).eta == later


def test_names_and_module_paths() -> None:
    assert t.noop_task.name == "noop_task"
    assert t.noop_task.module_path == "tests.testapp.framework_tasks.noop_task"
    assert import_string(t.noop_task.module_path) is t.noop_task


@pytest.mark.skipif(django.VERSION < (6, 1), reason="Django tasks pickle from Django 6.1")
def test_tasks_and_results_pickle() -> None:
    assert pickle.loads(pickle.dumps(t.noop_task)) == t.noop_task
    result = run(t.calculate_meaning_of_life.enqueue())
    again = pickle.loads(pickle.dumps(result))
    assert (again.id, again.status, again.return_value) == (result.id, result.status, 42)


def test_no_backends_configured() -> None:
    with override_settings(TASKS={}), pytest.raises(InvalidTaskBackend):
        t.noop_task.enqueue()


# Results --------------------------------------------------------------------------


def test_get_result_and_refresh_read_the_stored_row() -> None:
    result = default_task_backend.enqueue(t.noop_task, (), {})
    assert t.noop_task.get_result(result.id).id == result.id
    before = dataclasses.asdict(result)
    result.refresh()
    assert dataclasses.asdict(result) == before


def test_aget_result_and_arefresh(transactional_db: None) -> None:
    from asgiref.sync import sync_to_async
    from django.db import connections

    result = t.noop_task.enqueue()

    async def read() -> Any:
        try:
            found = await t.noop_task.aget_result(result.id)
            await found.arefresh()
            return found
        finally:
            await sync_to_async(connections.close_all, thread_sensitive=True)()

    assert asyncio.run(read()).id == result.id


def test_missing_results() -> None:
    with pytest.raises(TaskResultDoesNotExist):
        t.noop_task.get_result("123")
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result("0193a6c4-93c4-7000-8000-000000000000")


def test_a_result_of_another_task_is_a_mismatch() -> None:
    result = default_task_backend.enqueue(t.noop_task_async, (), {})
    with pytest.raises(TaskResultMismatch, match="Task does not match"):
        t.noop_task.get_result(result.id)


@pytest.mark.parametrize("made", [t.noop_task, t.noop_task_async])
def test_a_finished_task(made: Task, transactional_db: None) -> None:
    # Own transactions, as in production: inside one, now() would be one moment.
    result = run(made.enqueue(1, two=3))
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.is_finished
    assert result.started_at and result.last_attempted_at and result.finished_at
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert result.return_value is None
    assert (result.task, result.args, result.kwargs) == (made, [1], {"two": 3})
    assert result.attempts == 1


def test_return_values() -> None:
    result = run(default_task_backend.enqueue(t.calculate_meaning_of_life, [], {}))
    assert (result.status, result.return_value) == (TaskResultStatus.SUCCESSFUL, 42)


@pytest.mark.parametrize(
    ("made", "exception", "message"),
    [
        (t.failing_task_value_error, ValueError, "This task failed due to ValueError"),
        (t.failing_task_system_exit, SystemExit, "This task failed due to SystemExit"),
    ],
)
def test_failures(
    made: Task, exception: type[BaseException], message: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="django.tasks"):
        result = run(made.enqueue())
    [line] = [r for r in caplog.records if r.name == "django.tasks"]
    assert "state=FAILED" in line.getMessage() and line.exc_info is not None
    assert result.status == TaskResultStatus.FAILED
    with pytest.raises(ValueError, match="Task failed"):
        result.return_value  # noqa: B018
    assert result.is_finished and result.started_at and result.finished_at
    [error] = result.errors
    assert error.exception_class is exception
    assert error.traceback.endswith(f"{exception.__name__}: {message}\n")


def test_a_complex_exception() -> None:
    result = run(t.complex_exception.enqueue())
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class is ValueError
    assert 'ValueError(ValueError("This task failed"))' in result.errors[0].traceback


def test_a_return_value_django_cannot_store_fails_the_task() -> None:
    result = run(t.complex_return_value.enqueue())
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class is TypeError
    assert "Unsupported type" in result.errors[0].traceback


def test_error_class_paths_that_do_not_name_an_exception() -> None:
    result = run(t.failing_task_value_error.enqueue())
    error = result.errors[0]
    object.__setattr__(error, "exception_class_path", "subprocess.run")
    message = "'subprocess.run' does not reference a valid exception."
    with pytest.raises(ValueError, match=re.escape(message)):
        error.exception_class  # noqa: B018
    object.__setattr__(error, "exception_class_path", "does.not.exist")
    with pytest.raises(ImportError):
        error.exception_class  # noqa: B018


def test_context() -> None:
    result = run(t.get_task_id.enqueue())
    assert result.return_value == result.id
    assert run(t.check_context.enqueue(1)).status == TaskResultStatus.SUCCESSFUL


# Logs and signals -----------------------------------------------------------------


def test_logs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="django.tasks"):
        result = run(t.noop_task.enqueue())
    lines = [r.getMessage() for r in caplog.records if r.name == "django.tasks"]
    assert len(lines) == 3
    assert "enqueued" in lines[0] and "state=RUNNING" in lines[1]
    assert "state=SUCCESSFUL" in lines[2]
    assert all(result.id in line and "NoneType" not in line for line in lines)


def test_task_finished_carries_the_final_status(signals: list[tuple[str, Any]]) -> None:
    run(t.calculate_meaning_of_life.enqueue())
    run(t.failing_task_value_error.enqueue())
    assert signals == [
        ("enqueued", TaskResultStatus.READY),
        ("started", TaskResultStatus.RUNNING),
        ("finished", TaskResultStatus.SUCCESSFUL),
        ("enqueued", TaskResultStatus.READY),
        ("started", TaskResultStatus.RUNNING),
        ("finished", TaskResultStatus.FAILED),
    ]


# Transactions and EAGER -----------------------------------------------------------


def test_enqueue_is_part_of_the_callers_transaction(transactional_db: None) -> None:
    with transaction.atomic():
        kept = t.noop_task.enqueue()
        assert kept.enqueued_at is not None
    with pytest.raises(RuntimeError), transaction.atomic():
        dropped = t.noop_task.enqueue()
        raise RuntimeError("roll back")
    assert Job.objects.filter(pk=kept.id).exists()
    assert not Job.objects.filter(pk=dropped.id).exists()


def test_eager_runs_django_tasks_at_once(settings: Any, signals: list[tuple[str, Any]]) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    result = t.calculate_meaning_of_life.enqueue()
    assert (result.status, result.return_value) == (TaskResultStatus.SUCCESSFUL, 42)
    assert result.is_finished and result.attempts == 1
    failed = t.failing_task_value_error.enqueue()
    assert failed.status == TaskResultStatus.FAILED
    assert failed.errors[0].exception_class is ValueError
    assert "This task failed due to ValueError" in failed.errors[0].traceback
    assert t.get_task_id.enqueue().return_value is not None
    assert not Job.objects.exists()
    assert [name for name, _ in signals[:3]] == ["enqueued", "started", "finished"]
