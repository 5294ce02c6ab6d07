"""Sending and revoking by task name or job id, without the task object at hand."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from djqueue.client.result import AsyncResult
from djqueue.core import ids, registry, signums
from djqueue.db import broker


def send_task(
    name: str,
    args: Sequence[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    **options: Any,
) -> AsyncResult[Any]:
    """Enqueue the registered task ``name``; unknown names raise ``NotRegistered``."""
    return registry.get(name).apply_async(args, kwargs, **options)


def revoke(
    job_id: str | uuid.UUID, terminate: bool = False, signal: str | int | None = None
) -> bool:
    """Revoke a job by id; see :meth:`djqueue.AsyncResult.revoke`."""
    signum = signums.parse(signal)
    return broker.revoke(ids.parse(job_id), terminate=terminate, signum=signum)


__all__ = ["AsyncResult", "revoke", "send_task"]
