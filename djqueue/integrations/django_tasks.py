"""djqueue as a backend of Django's own Tasks framework (``django.tasks``, Django 6.0+).

``TASKS = {"default": {"BACKEND": "djqueue.backends.DjqueueBackend"}}`` sends
``@django.tasks.task`` functions to djqueue: they are stored as jobs, run by
``runworker`` and read back through ``get_result()``. Each such task is registered in
djqueue's registry under its ``module_path`` (found in the apps' ``tasks.py`` when
Django starts, or on first enqueue), so that a worker never imports a path read from a
row.
"""

from __future__ import annotations

import sys
from typing import Any

try:
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import Task as DjangoTask
    from django.tasks.base import TaskContext, TaskError, TaskResult, TaskResultStatus
    from django.tasks.exceptions import InvalidTaskBackend, TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued, task_finished, task_started
except ImportError as exc:  # pragma: no cover - depends on the Django version
    raise ImportError(
        "djqueue.backends needs Django's Tasks framework (Django 6.0 or later); with "
        "Django 5.2, use @djqueue.task instead"
    ) from exc

from django.apps import apps

from djqueue.client import definition
from djqueue.core import conf, context, ids, registry, states
from djqueue.db.models import Job

STATUS = {
    states.PENDING: TaskResultStatus.READY,
    states.RECEIVED: TaskResultStatus.READY,
    states.RETRY: TaskResultStatus.READY,
    states.STARTED: TaskResultStatus.RUNNING,
    states.SUCCESS: TaskResultStatus.SUCCESSFUL,
    states.FAILURE: TaskResultStatus.FAILED,
    states.REVOKED: TaskResultStatus.FAILED,
    states.REJECTED: TaskResultStatus.FAILED,
    # Ended without a result, and without an error: Django has no closer status.
    states.IGNORED: TaskResultStatus.SUCCESSFUL,
}


class DjqueueBackend(BaseTaskBackend):
    """Runs ``django.tasks`` tasks on djqueue workers and keeps their results."""

    supports_defer = True  # run_after becomes the job's eta
    supports_async_task = True  # coroutines run to completion in the worker
    supports_get_result = True  # results are rows any process can read
    supports_priority = True  # the same -100..100 range, higher first

    def enqueue(self, task: DjangoTask[Any, Any], args: Any, kwargs: Any) -> TaskResult[Any, Any]:
        """Store the call as a job (in the caller's transaction) and return its result."""
        self.validate_task(task)
        adapter = adapt(task)
        sent = adapter.apply_async(
            list(args),
            dict(kwargs),
            queue=task.queue_name,
            priority=task.priority,
            eta=task.run_after,
        )
        task_result = self._result(task, _row(sent.id))
        task_enqueued.send(type(self), task_result=task_result)
        return task_result

    def get_result(self, result_id: str) -> TaskResult[Any, Any]:
        """The stored result of ``result_id``; ``TaskResultDoesNotExist`` if none."""
        try:
            row = _row(ids.parse(result_id))
        except (ValueError, Job.DoesNotExist):
            raise TaskResultDoesNotExist(result_id) from None
        try:
            adapter = registry.get(row.task_name)
        except KeyError:
            raise TaskResultDoesNotExist(result_id) from None
        django_task = getattr(adapter, "django_task", None)
        if django_task is None:
            raise TaskResultDoesNotExist(result_id)
        return self._result(django_task, row)

    def _result(self, task: DjangoTask[Any, Any], row: Job) -> TaskResult[Any, Any]:
        errors = []
        if row.state in (states.FAILURE, states.REVOKED) and row.error_type:
            errors.append(
                TaskError(exception_class_path=_class_path(row.error_type), traceback=row.traceback)
            )
        result: TaskResult[Any, Any] = TaskResult(
            task=task,
            id=str(row.id),
            status=STATUS[row.state],
            enqueued_at=row.enqueued_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            last_attempted_at=row.started_at,
            args=row.args,
            kwargs=row.kwargs,
            backend=self.alias,
            errors=errors,
            # One entry per attempt, as Django counts attempts; djqueue keeps the last worker.
            worker_ids=[row.worker or "unknown"] * row.attempt,
        )
        if row.state == states.SUCCESS:
            object.__setattr__(result, "_return_value", row.result)
        return result


def adapt(task: DjangoTask[Any, Any]) -> definition.Task[Any, Any]:
    """The djqueue task that runs ``task``, registered under its ``module_path``."""
    name = task.module_path
    try:
        existing = registry.get(name)
    except KeyError:
        existing = None
    if existing is not None and getattr(existing, "django_task", None) is not None:
        return existing

    def run(*args: Any, **kwargs: Any) -> Any:
        return _call(task, args, kwargs)

    run.__module__, run.__qualname__ = task.func.__module__, task.func.__qualname__
    adapter: definition.Task[Any, Any] = definition.Task(
        run, name=name, queue=task.queue_name, priority=task.priority
    )
    adapter.django_task = task  # type: ignore[attr-defined]
    registry.register(adapter)
    return adapter


def _call(task: DjangoTask[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run ``task`` as Django would, with its context and Django's task signals."""
    request = context.current_request()
    running: TaskResult[Any, Any] = TaskResult(
        task=task,
        id=str(request.id),
        status=TaskResultStatus.RUNNING,
        enqueued_at=None,
        started_at=None,
        finished_at=None,
        last_attempted_at=None,
        args=list(args),
        kwargs=kwargs,
        backend=task.backend,
        errors=[],
        worker_ids=[request.hostname or "unknown"] * max(1, request.attempt),
    )
    task_started.send(DjqueueBackend, task_result=running)
    try:
        if task.takes_context:
            return task.call(TaskContext(task_result=running), *args, **kwargs)
        return task.call(*args, **kwargs)
    finally:
        task_finished.send(DjqueueBackend, task_result=running)


def discover() -> None:
    """Register the ``django.tasks`` tasks of every app's ``tasks.py`` that use djqueue."""
    for app_config in apps.get_app_configs():
        module = sys.modules.get(f"{app_config.name}.tasks")
        if module is None:
            continue
        for value in vars(module).values():
            if isinstance(value, DjangoTask) and _uses_djqueue(value):
                adapt(value)


def _uses_djqueue(task: DjangoTask[Any, Any]) -> bool:
    try:
        return isinstance(task.get_backend(), DjqueueBackend)
    except InvalidTaskBackend:
        return False


def _row(job_id: Any) -> Job:
    return Job.objects.using(conf.database()).get(pk=job_id)


def _class_path(error_type: str) -> str:
    # djqueue stores builtins by bare name; Django wants an importable path.
    return error_type if "." in error_type else f"builtins.{error_type}"
