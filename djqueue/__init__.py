"""djqueue: background tasks for Django, with PostgreSQL as the broker.

The public names are loaded on first use, so that ``import djqueue`` works before
Django's app registry is ready (for example in a settings module).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from djqueue.canvas import ChordError, Signature, chain, chord, group, signature
    from djqueue.definition import Task, shared_task, task
    from djqueue.eager import EagerResult
    from djqueue.result import AsyncResult, GroupResult
    from djqueue.sending import revoke, send_task

_PUBLIC = {
    "Task": "djqueue.definition",
    "task": "djqueue.definition",
    "shared_task": "djqueue.definition",
    "AsyncResult": "djqueue.result",
    "EagerResult": "djqueue.eager",
    "send_task": "djqueue.sending",
    "revoke": "djqueue.sending",
    "GroupResult": "djqueue.result",
    "Signature": "djqueue.canvas",
    "signature": "djqueue.canvas",
    "chain": "djqueue.canvas",
    "group": "djqueue.canvas",
    "chord": "djqueue.canvas",
    "ChordError": "djqueue.canvas",
}

__all__ = [
    "AsyncResult",
    "ChordError",
    "EagerResult",
    "GroupResult",
    "Signature",
    "Task",
    "chain",
    "chord",
    "group",
    "revoke",
    "send_task",
    "shared_task",
    "signature",
    "task",
]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'djqueue' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
