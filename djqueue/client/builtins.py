"""The builtin tasks behind ``task.map``, ``task.starmap`` and ``task.chunks``.

Registered in every process when the app is ready (``DjqueueConfig.ready``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from djqueue.client import mapping
from djqueue.client.decorator import task
from djqueue.core import registry


@task(name=mapping.MAP, max_retries=0)
def _map(task: str, it: list[Any]) -> list[Any]:
    """Call the task named ``task`` on every item of ``it``."""
    function = registry.get(task)
    return [function(item) for item in it]


@task(name=mapping.STARMAP, max_retries=0)
def _starmap(task: str, it: list[Sequence[Any]]) -> list[Any]:
    """Call the task named ``task`` with every argument tuple of ``it``."""
    function = registry.get(task)
    return [function(*item) for item in it]
