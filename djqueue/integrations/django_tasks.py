"""djqueue as a backend of Django's own Tasks framework (``django.tasks``, Django 6.0+).

``TASKS = {"default": {"BACKEND": "djqueue.backends.DjqueueBackend"}}`` sends
``@django.tasks.task`` functions to djqueue: they are stored as jobs, run by
``runworker`` and read back through ``get_result()``. Each such task is registered in
djqueue's registry under its ``module_path``: found in the apps' ``tasks.py`` and the
``IMPORTS`` modules when Django starts, on first enqueue, or by a worker that meets its
path in a row, which it imports only when the path lies inside an installed app and
names a ``Task`` of Django's framework (see :func:`resolve`).
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib
import sys
import traceback
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
from django.utils import timezone
from django.utils.json import normalize_json

from djqueue.client import definition, eager
from djqueue.core import conf, context, ids, registry, states
from djqueue.core.options import JobOptions
from djqueue.db.models import Job

# The worker id of a run in the sending process (EAGER).
EAGER_WORKER = "eager"

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
        """Store the call as a job (in the caller's transaction) and return its result.

        With ``EAGER`` on, run it here and now instead, as Django's immediate backend
        does, and return its finished result.
        """
        self.validate_task(task)
        # Django's own check of the arguments, with its message, before any row exists.
        args, kwargs = normalize_json(list(args)), normalize_json(dict(kwargs))
        adapter = adapt(task)
        options: JobOptions = {
            "queue": task.queue_name,
            "priority": task.priority,
            "eta": task.run_after,
        }
        if conf.flag("EAGER"):
            return self._run_eagerly(task, adapter, args, kwargs, options)
        sent = adapter.apply_async(args, kwargs, **options)
        task_result = self._result(task, _row(sent.id))
        task_enqueued.send(type(self), task_result=task_result)
        return task_result

    def _run_eagerly(
        self,
        task: DjangoTask[Any, Any],
        adapter: definition.Task[Any, Any],
        args: list[Any],
        kwargs: dict[str, Any],
        options: JobOptions,
    ) -> TaskResult[Any, Any]:
        job = adapter.prepare(args, kwargs, **options)
        enqueued_at = timezone.now()
        pending = _blank_result(task, str(job.id), self.alias, args, kwargs, enqueued_at)
        task_enqueued.send(type(self), task_result=pending)
        outcome = eager.run(adapter, job)
        finished = timezone.now()
        errors = []
        if outcome.state != states.SUCCESS:
            errors.append(
                TaskError(
                    exception_class_path=_path_of(outcome.result),
                    traceback=outcome.traceback or "",
                )
            )
        result = dataclasses.replace(
            pending,
            status=TaskResultStatus.SUCCESSFUL if not errors else TaskResultStatus.FAILED,
            started_at=enqueued_at,
            last_attempted_at=enqueued_at,
            finished_at=finished,
            errors=errors,
            worker_ids=[EAGER_WORKER],
        )
        if not errors:
            object.__setattr__(result, "_return_value", outcome.result)
        return result

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
    existing = registry.find(name)
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
    """Run ``task`` as Django would: with its context, Django's task signals (the last
    one with the final status, sent while the error is being handled, so that Django's
    log line carries it) and a return value Django can store."""
    request = context.current_request()
    running = dataclasses.replace(
        _blank_result(task, str(request.id), task.backend, list(args), kwargs, None),
        status=TaskResultStatus.RUNNING,
        worker_ids=[request.hostname or EAGER_WORKER] * max(1, request.attempt),
    )
    task_started.send(DjqueueBackend, task_result=running)
    try:
        if task.takes_context:
            value = task.call(TaskContext(task_result=running), *args, **kwargs)
        else:
            value = task.call(*args, **kwargs)
        value = normalize_json(value)
    except BaseException as exc:
        failed = dataclasses.replace(
            running,
            status=TaskResultStatus.FAILED,
            finished_at=timezone.now(),
            errors=[TaskError(exception_class_path=_path_of(exc), traceback=_formatted(exc))],
        )
        task_finished.send(DjqueueBackend, task_result=failed)
        raise
    done = dataclasses.replace(
        running, status=TaskResultStatus.SUCCESSFUL, finished_at=timezone.now()
    )
    object.__setattr__(done, "_return_value", value)
    task_finished.send(DjqueueBackend, task_result=done)
    return value


def _blank_result(
    task: DjangoTask[Any, Any],
    result_id: str,
    backend: str,
    args: list[Any],
    kwargs: dict[str, Any],
    enqueued_at: datetime.datetime | None,
) -> TaskResult[Any, Any]:
    return TaskResult(
        task=task,
        id=result_id,
        status=TaskResultStatus.READY,
        enqueued_at=enqueued_at,
        started_at=None,
        finished_at=None,
        last_attempted_at=None,
        args=args,
        kwargs=kwargs,
        backend=backend,
        errors=[],
        worker_ids=[],
    )


def _path_of(exc: BaseException) -> str:
    kind = type(exc)
    return f"{kind.__module__}.{kind.__qualname__}"


def _formatted(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def discover() -> None:
    """Register the ``django.tasks`` tasks that use djqueue in every app's ``tasks.py``
    and the ``IMPORTS`` modules; the others are found by path when a worker meets them
    (:func:`resolve`)."""
    registry.add_resolver(resolve)
    names = [f"{app_config.name}.tasks" for app_config in apps.get_app_configs()]
    for name in [*names, *(conf.names("IMPORTS"))]:
        module = sys.modules.get(name)
        if module is None:
            continue
        for value in vars(module).values():
            if isinstance(value, DjangoTask) and _uses_djqueue(value):
                adapt(value)


def resolve(name: str) -> definition.Task[Any, Any] | None:
    """The djqueue task for the ``django.tasks`` task at ``name``, a module path.

    Only a path inside an installed app's package is imported, and only a ``Task``
    object of Django's framework that uses djqueue is taken from it: a name read from a
    row can name nothing else.
    """
    module_name, _, attribute = name.rpartition(".")
    if not module_name or not all(part.isidentifier() for part in name.split(".")):
        return None
    if not any(
        module_name == app.name or module_name.startswith(app.name + ".")
        for app in apps.get_app_configs()
    ):
        return None
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    found = getattr(module, attribute, None)
    if not isinstance(found, DjangoTask) or found.module_path != name:
        return None
    return adapt(found) if _uses_djqueue(found) else None


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
