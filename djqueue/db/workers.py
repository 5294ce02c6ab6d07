"""Worker rows: a worker registering, beating, changing its queues, and stopping; and
how recent a live worker's heartbeat is (:func:`live_seconds`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from djqueue.core import conf
from djqueue.db import sql
from djqueue.db.cursors import queue_cursor

# A worker is alive while it has not stopped and its last heartbeat is at most this many
# heartbeat intervals old: a beat or two late (a busy machine, a slow commit) is not a
# death. :mod:`djqueue.db.fleet` reads the live workers by it.
LIVE_HEARTBEATS = 3


def live_seconds() -> float:
    """How old a live worker's last heartbeat may be, in seconds (three
    ``HEARTBEAT_SECONDS``): the one liveness rule, in SQL and in Python alike."""
    return LIVE_HEARTBEATS * conf.number("HEARTBEAT_SECONDS")


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


def peers(name: str, queues: Sequence[str]) -> int:
    """How many live workers other than ``name`` take jobs from any of ``queues``."""
    with queue_cursor() as cursor:
        cursor.execute(sql.PEERS, [name, live_seconds(), list(queues)])
        return int(cursor.fetchone()[0])


def announce_drained(queues: Sequence[str]) -> None:
    """Tell the workers of ``queues`` that a claim just emptied them (a hint)."""
    with queue_cursor() as cursor:
        cursor.execute(sql.ANNOUNCE_DRAINED, [list(queues)])
