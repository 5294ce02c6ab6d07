"""The task registry: task names to task objects, filled from every app's ``tasks.py``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.utils.module_loading import autodiscover_modules

from djqueue.exceptions import NotRegistered

if TYPE_CHECKING:
    from djqueue.definition import Task

_tasks: dict[str, Task[Any, Any]] = {}


def register(task: Task[Any, Any]) -> None:
    """Add ``task``; a second, different task under the same name is an error."""
    existing = _tasks.get(task.name)
    if existing is not None and _origin(existing) != _origin(task):
        raise ValueError(
            f"two tasks are named {task.name!r} ({existing.fn.__module__}."
            f"{existing.fn.__qualname__} and {task.fn.__module__}.{task.fn.__qualname__}); "
            "give one of them another name=..."
        )
    _tasks[task.name] = task


def _origin(task: Task[Any, Any]) -> tuple[str, str]:
    return task.fn.__module__, task.fn.__qualname__


def get(name: str) -> Task[Any, Any]:
    """The task registered as ``name``; a name from data is never imported."""
    try:
        return _tasks[name]
    except KeyError:
        raise NotRegistered(
            f"unregistered task {name!r}: no installed app's tasks.py defines it "
            "(check the name, INSTALLED_APPS, and that the worker runs the same code)"
        ) from None


def names() -> list[str]:
    """All registered task names, sorted."""
    return sorted(_tasks)


def autodiscover() -> None:
    """Import ``tasks`` from every installed app so their tasks register.

    With Django 6's Tasks framework, ``@django.tasks.task`` functions that use the djqueue
    backend register too.
    """
    autodiscover_modules("tasks")
    try:
        from djqueue import backends
    except ImportError:  # Django without django.tasks
        return
    backends.discover()
