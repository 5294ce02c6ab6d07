"""When a claim should look for limited jobs: a per-process decision, made in memory.

Limited jobs (rate or concurrency limits) are claimed by a slower, locking path. Plain
jobs must not pay for it, so a worker takes that path only if it has a limited task
registered at all (the caller says so), and then when the plain claim comes up short or
every :data:`INTERVAL` seconds (so that a backlog of plain jobs cannot starve limited
ones).
"""

from __future__ import annotations

import threading
import time

# Longest a worker with limited tasks goes without looking for limited jobs.
INTERVAL = 0.1

_lock = threading.Lock()
_state = {"looked_at": float("-inf")}


def due(limited: bool) -> bool:
    """Whether the limited path was last taken :data:`INTERVAL` seconds ago or more.

    ``limited``: whether the caller has a limited task at all; never due otherwise.
    """
    return limited and time.monotonic() - _state["looked_at"] >= INTERVAL


def looked() -> None:
    """Record that the limited path was just taken."""
    with _lock:
        _state["looked_at"] = time.monotonic()
