"""Worker rows: a worker registering, beating, changing its queues, and stopping."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from djqueue.db import sql
from djqueue.db.cursors import queue_cursor


def register_worker(
    name: str, hostname: str, pid: int, pool: str, concurrency: int, queues: Sequence[str]
) -> None:
    """Record a starting worker."""
    with queue_cursor() as cursor:
        cursor.execute(
            sql.REGISTER_WORKER,
            [name, hostname, pid, pool, concurrency, json.dumps(list(queues))],
        )


def worker_heartbeat(
    name: str, jobs_done: int, children: Sequence[Any] = (), concurrency: int | None = None
) -> None:
    """Record that ``name`` is alive, how many jobs it has done, its children and (when
    given) the size of its pool."""
    with queue_cursor() as cursor:
        cursor.execute(
            sql.WORKER_HEARTBEAT, [jobs_done, json.dumps(list(children)), concurrency, name]
        )


def set_worker_queues(name: str, queues: Sequence[str]) -> None:
    """Record the queues worker ``name`` takes jobs from now."""
    with queue_cursor() as cursor:
        cursor.execute(sql.SET_WORKER_QUEUES, [json.dumps(list(queues)), name])


def worker_stopped(name: str, jobs_done: int) -> None:
    """Record that ``name`` stopped cleanly."""
    with queue_cursor() as cursor:
        cursor.execute(sql.WORKER_STOPPED, [jobs_done, name])
