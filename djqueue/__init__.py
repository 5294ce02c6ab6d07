"""djqueue: background tasks for Django, with PostgreSQL as the broker.

The public names are loaded on first use, so that ``import djqueue`` works before
Django's app registry is ready (for example in a settings module).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from djqueue.client.app import App
    from djqueue.client.canvas import Signature, chain, chord, group, signature
    from djqueue.client.decorator import shared_task, task
    from djqueue.client.definition import Task
    from djqueue.client.eager import EagerResult
    from djqueue.client.result import AsyncResult
    from djqueue.client.result_set import GroupResult
    from djqueue.client.sending import revoke, send_task
    from djqueue.client.tokens import status_token
    from djqueue.core.exceptions import ChordError

_PUBLIC = {
    "App": "djqueue.client.app",
    "Task": "djqueue.client.definition",
    "task": "djqueue.client.decorator",
    "shared_task": "djqueue.client.decorator",
    "AsyncResult": "djqueue.client.result",
    "EagerResult": "djqueue.client.eager",
    "send_task": "djqueue.client.sending",
    "revoke": "djqueue.client.sending",
    "status_token": "djqueue.client.tokens",
    "GroupResult": "djqueue.client.result_set",
    "Signature": "djqueue.client.canvas",
    "signature": "djqueue.client.canvas",
    "chain": "djqueue.client.canvas",
    "group": "djqueue.client.canvas",
    "chord": "djqueue.client.canvas",
    "ChordError": "djqueue.core.exceptions",
}

# Documented modules reachable as attributes after a bare ``import djqueue`` (for example
# ``djqueue.exceptions.TaskRevokedError``), as they were when they were loaded as a side
# effect of the code that lives in the layers now.
_MODULES = {
    "codec",
    "control",
    "exceptions",
    "result",
    "schedules",
    "signals",
    "states",
    "testing",
}

__all__ = [
    "App",
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
    "status_token",
    "task",
]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f"djqueue.{name}")
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'djqueue' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
