"""Annotations: task options set from settings (``ANNOTATIONS``, Celery's
``task_annotations``), by task name or for every task (``"*"``).

Celery's forms are accepted: a dict ``{name or "*": {option: value}}``, an object with
an ``annotate(task)`` method (and optionally ``annotate_any()``), its dotted path, or a
list of them. For each task, the first annotation that names it applies, then the first
``"*"`` one (so, as in Celery, ``"*"`` wins for an option both set). They apply when the
task is defined, over the decorator's options.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.utils.module_loading import import_string

from djqueue.core import conf

if TYPE_CHECKING:
    from djqueue.client.definition import Task

# Task options an annotation may set.
OPTIONS = frozenset(
    {
        "max_retries",
        "default_retry_delay",
        "rate_limit",
        "time_limit",
        "soft_time_limit",
        "ignore_result",
        "expires",
        "queue",
        "priority",
        "autoretry_for",
        "retry_backoff",
        "retry_backoff_max",
        "retry_jitter",
        "retry_kwargs",
        "throws",
        "acks_late",
    }
)


def _sources(setting: Any) -> list[Any]:
    if setting is None:
        return []
    items = list(setting) if isinstance(setting, list | tuple) else [setting]
    return [import_string(item)() if isinstance(item, str) else item for item in items]


def _specific(source: Any, task: Task[Any, Any]) -> Any:
    if isinstance(source, Mapping):
        return source.get(task.name)
    method = getattr(source, "annotate", None)
    return method(task) if callable(method) else None


def _any(source: Any) -> Any:
    if isinstance(source, Mapping):
        return source.get("*")
    method = getattr(source, "annotate_any", None)
    return method() if callable(method) else None


def for_task(task: Task[Any, Any]) -> dict[str, Any]:
    """The options the ``ANNOTATIONS`` setting sets on ``task``."""
    sources = _sources(conf.get("ANNOTATIONS"))
    found: dict[str, Any] = {}
    for specific in (True, False):
        for source in sources:
            values = _specific(source, task) if specific else _any(source)
            if values:
                found.update(dict(values))
                break
    return found


def unknown_options(values: Mapping[str, Any]) -> list[str]:
    """Keys of an annotation that djqueue cannot set."""
    return sorted(set(values) - OPTIONS)


def options_for(task: Task[Any, Any]) -> dict[str, Any]:
    """The options to set on ``task``; raise ValueError on one tasks do not take."""
    values = for_task(task)
    unknown = unknown_options(values)
    if unknown:
        raise ValueError(
            f"ANNOTATIONS set {unknown} on {task.name}, which djqueue tasks do not take; "
            f"annotations may set {sorted(OPTIONS)}"
        )
    return values
