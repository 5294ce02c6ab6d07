"""The task registry: task names to task objects, filled from every app's ``tasks.py``."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import autodiscover_modules

from djqueue.core import conf
from djqueue.core.exceptions import NotRegistered

if TYPE_CHECKING:
    from djqueue.client.definition import Task

_tasks: dict[str, Task[Any, Any]] = {}
# Registered tasks with a rate or concurrency limit: claims take a slower path for them.
_limited: set[str] = set()


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
    if task.gated:
        _limited.add(task.name)
    else:
        _limited.discard(task.name)


def _origin(task: Task[Any, Any]) -> tuple[str, str]:
    return task.fn.__module__, task.fn.__qualname__


# Functions that may find a task the registry lacks, by name, under their own rules
# (Django's Tasks framework: a Task object in a module of an installed app).
_resolvers: list[Callable[[str], Task[Any, Any] | None]] = []


def add_resolver(resolver: Callable[[str], Task[Any, Any] | None]) -> None:
    """Ask ``resolver`` for names nobody registered (once per resolver)."""
    if resolver not in _resolvers:
        _resolvers.append(resolver)


def find(name: str) -> Task[Any, Any] | None:
    """The task registered as ``name``, or None (resolvers are not asked)."""
    return _tasks.get(name)


def get(name: str) -> Task[Any, Any]:
    """The task registered as ``name``; a name from data is never imported, except
    under a resolver's rules (see :func:`add_resolver`)."""
    try:
        return _tasks[name]
    except KeyError:
        pass
    for resolver in _resolvers:
        found = _resolved(resolver, name)
        if found is not None:
            return found
    raise NotRegistered(unregistered(name))


def _resolved(resolver: Callable[[str], Task[Any, Any] | None], name: str) -> Task[Any, Any] | None:
    """``resolver``'s answer for ``name``. Tasks that registered as a side effect (the
    module it imported defines others) are dropped again: a name from a row makes
    runnable the one task the resolver vouches for, nothing else."""
    before = set(_tasks)
    found = resolver(name)
    for added in set(_tasks) - before:
        if found is None or added != found.name:
            del _tasks[added]
            _limited.discard(added)
    return found


def unregistered(name: str) -> str:
    """The one-line error for a task ``name`` nobody registered, with a close match."""
    close = suggest(name)
    hint = f"; did you mean {close!r}?" if close else ""
    return (
        f"unregistered task {name!r}{hint} No installed app's tasks.py defines it "
        "(check the name, INSTALLED_APPS, and that the worker runs the same code)"
    )


def suggest(name: str) -> str | None:
    """The registered name closest to ``name``, when one is close enough to be a typo.

    Whole names are compared first; then the function part alone, so that a name with
    the right function but the wrong module (or none) finds its task too.
    """
    found = difflib.get_close_matches(name, list(_tasks), n=1, cutoff=0.8)
    if found:
        return found[0]
    by_function: dict[str, str] = {}
    for full in sorted(_tasks):
        by_function.setdefault(full.rpartition(".")[2], full)
    found = difflib.get_close_matches(name.rpartition(".")[2], list(by_function), n=1, cutoff=0.8)
    return by_function[found[0]] if found else None


def limited() -> bool:
    """Whether any registered task has a rate or concurrency limit."""
    return bool(_limited)


def names() -> list[str]:
    """All registered task names, sorted."""
    return sorted(_tasks)


def import_module_of_tasks(module: str) -> None:
    """Import ``module`` (a name from the ``IMPORTS`` setting) so its tasks register."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"IMPORTS (or CELERY_IMPORTS / CELERY_INCLUDE) names {module!r}, which cannot "
            f"be imported: {exc}. Correct the module name or remove it."
        ) from exc


def autodiscover() -> None:
    """Import ``tasks`` from every installed app, and the ``IMPORTS`` setting's modules,
    so their tasks register."""
    autodiscover_modules("tasks")
    for module in conf.names("IMPORTS"):
        import_module_of_tasks(module)
