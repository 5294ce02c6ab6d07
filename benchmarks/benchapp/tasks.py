"""No-op tasks for measuring the queue itself rather than the work."""

from __future__ import annotations

import time

import djqueue


@djqueue.task(name="bench.noop")
def noop(index: int = 0) -> None:
    """Do nothing: every second a job takes is the queue's."""


@djqueue.task(name="bench.stamp")
def stamp() -> float:
    """Return the moment this job started, for pick-up latency."""
    return time.time()


@djqueue.task(name="bench.clock")
def clock(sent_at: float = 0.0) -> float:
    """Return the moment this job started; ``sent_at`` is when it was due to be sent,
    so that its pick-up delay can be read from its row (sustained load)."""
    return time.time()
