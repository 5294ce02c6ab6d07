"""Django's Tasks framework on djqueue (Django 6.0+ only)."""

from typing import Any

import pytest

django_tasks = pytest.importorskip("django.tasks", reason="Django's Tasks framework needs Django 6")

from django.tasks import TaskResultStatus, task_backends  # noqa: E402
from django.tasks.exceptions import TaskResultDoesNotExist  # noqa: E402

from djqueue.core import registry, states  # noqa: E402
from djqueue.db.models import Job  # noqa: E402
from djqueue.integrations import testing  # noqa: E402
from tests.testapp import tasks  # noqa: E402

pytestmark = pytest.mark.django_db


def test_backend_declares_its_capabilities() -> None:
    backend = task_backends["default"]
    assert type(backend).__name__ == "DjqueueBackend"
    assert backend.supports_defer and backend.supports_get_result
    assert backend.supports_priority and backend.supports_async_task


def test_django_tasks_are_registered_by_module_path() -> None:
    assert registry.get("tests.testapp.tasks.django_add").django_task is tasks.django_add  # type: ignore[attr-defined]


def test_enqueue_stores_a_job_and_get_result_reads_it_back() -> None:
    result = tasks.django_add.enqueue(2, 3)
    assert result.status == TaskResultStatus.READY
    job = Job.objects.get(pk=result.id)
    assert (job.task_name, job.args, job.state) == (
        "tests.testapp.tasks.django_add",
        [2, 3],
        "PENDING",
    )
    [outcome] = testing.run_pending()
    assert outcome.state == states.SUCCESS
    done = tasks.django_add.get_result(result.id)
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert done.return_value == 5
    assert done.attempts == 1
    result.refresh()
    assert result.is_finished


def test_priority_queue_run_after_and_context() -> None:
    import datetime

    from django.utils import timezone

    later = timezone.now() + datetime.timedelta(hours=1)
    deferred = tasks.django_add.using(run_after=later).enqueue(1, 1)
    assert Job.objects.get(pk=deferred.id).eta == later
    result = tasks.django_attempt.enqueue("x")
    job = Job.objects.get(pk=result.id)
    assert (job.queue, job.priority) == ("django", 10)
    testing.run_pending(["django"])
    value = tasks.django_attempt.get_result(result.id).return_value
    assert value == {"label": "x", "attempt": 1, "id": result.id}


def test_failures_map_to_failed_with_errors() -> None:
    result = tasks.django_fail.enqueue()
    testing.run_pending()
    failed = task_backends["default"].get_result(result.id)
    assert failed.status == TaskResultStatus.FAILED
    [error] = failed.errors
    assert error.exception_class is KeyError
    assert "KeyError: 'missing'" in error.traceback
    with pytest.raises(ValueError, match="Task failed"):
        failed.return_value  # noqa: B018


def test_unknown_result_id() -> None:
    with pytest.raises(TaskResultDoesNotExist):
        task_backends["default"].get_result("01a20b7e-d1ba-7000-a831-fba7ec660303")
    with pytest.raises(TaskResultDoesNotExist):
        task_backends["default"].get_result("not-an-id")


def test_aenqueue_from_async_code(transactional_db: Any) -> None:
    import asyncio

    from asgiref.sync import sync_to_async
    from django.db import connections

    async def send() -> Any:
        try:
            return await tasks.django_add.aenqueue(4, 4)
        finally:
            # aenqueue ran in asgiref's worker thread: close that thread's connection.
            await sync_to_async(connections.close_all, thread_sensitive=True)()

    result = asyncio.run(send())
    assert Job.objects.get(pk=result.id).args == [4, 4]
