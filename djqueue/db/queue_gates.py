"""What this process knows of the queues' own limits, kept in memory.

A worker reads the queues' state (pauses and limits together) when it starts, when a
notification names one of its queues, and at every heartbeat; the claim then takes a
limited queue's jobs through its gate (:func:`djqueue.db.broker.claim`) and every other
queue's on the hot path, which pays nothing for queue limits: a look-up in this dict.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QueueLimit:
    """At most ``concurrency`` jobs of the queue held by workers at once, and at most
    ``rate`` started in any ``period`` seconds, over all workers together (None: no such
    limit)."""

    concurrency: int | None = None
    rate: int | None = None
    period: float | None = None


_lock = threading.Lock()
_known: dict[str, QueueLimit] = {}


def gate_key(queue: str) -> str:
    """The ``djqueue_limit`` row of ``queue``'s own limits."""
    return f"queue:{queue}"


def update(limits: Iterable[tuple[str, QueueLimit]]) -> None:
    """Replace what is known with ``limits`` (the limited queues as just read)."""
    fresh = dict(limits)
    with _lock:
        _known.clear()
        _known.update(fresh)


def among(queues: Sequence[str]) -> dict[str, QueueLimit]:
    """The limited queues among ``queues``, with their limits."""
    if not _known:
        return {}
    with _lock:
        return {queue: _known[queue] for queue in queues if queue in _known}
