"""What a worker knows of a job it holds: claimed, and no outcome written for it yet."""

from __future__ import annotations

from dataclasses import dataclass

from djqueue.core.records import ClaimedJob


@dataclass(slots=True)
class Held:
    """A job this worker claimed, whether a pool has started it, and whether that start
    is recorded in its row (``Worker.clock`` time of the start)."""

    job: ClaimedJob
    started: bool = False
    started_at: float = 0.0
    marked: bool = False
