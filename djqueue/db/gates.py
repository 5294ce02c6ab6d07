"""When a claim should look for limited jobs: a per-process decision, made in memory.

Limited jobs (rate or concurrency limits) are claimed by a slower, locking path. Plain
jobs must not pay for it, so a worker takes that path only if it has a limited task
registered at all, and then when the plain claim comes up short or every
:data:`INTERVAL` seconds (so that a backlog of plain jobs cannot starve limited ones).
"""

from __future__ import annotations

import threading
import time

from djqueue.core import registry

# Longest a worker with limited tasks goes without looking for limited jobs.
INTERVAL = 0.1
# How long the answer "is any registered task limited?" is reused.
_REGISTRY_TTL = 1.0

_lock = threading.Lock()
_state = {"checked_at": float("-inf"), "wanted": 0.0, "looked_at": float("-inf")}


def wanted() -> bool:
    """Whether any registered task has a rate or concurrency limit (cached briefly)."""
    now = time.monotonic()
    if now - _state["checked_at"] > _REGISTRY_TTL:
        found = any(registry.get(name).gated for name in registry.names())
        with _lock:
            _state["wanted"] = float(found)
            _state["checked_at"] = now
    return bool(_state["wanted"])


def due() -> bool:
    """Whether the limited path was last taken :data:`INTERVAL` seconds ago or more."""
    return wanted() and time.monotonic() - _state["looked_at"] >= INTERVAL


def looked() -> None:
    """Record that the limited path was just taken."""
    with _lock:
        _state["looked_at"] = time.monotonic()


def forget() -> None:
    """Drop the cached registry answer (tests that register tasks call this)."""
    with _lock:
        _state["checked_at"] = float("-inf")
