"""The interface every pool offers the worker loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from djqueue.records import ClaimedJob

# Runs one job to its end and reports the outcome; supplied by the worker.
Runner = Callable[[ClaimedJob], None]


class Pool(Protocol):
    """Runs submitted jobs with up to ``concurrency`` at a time."""

    name: str
    concurrency: int

    def start(self) -> None:
        """Get ready to run jobs (start threads, fork children)."""

    def submit(self, job: ClaimedJob) -> None:
        """Run ``job`` as soon as a slot is free; never blocks on a busy pool."""

    def take_waiting(self) -> list[ClaimedJob]:
        """Remove and return submitted jobs that have not started yet."""

    def stop(self) -> None:
        """Stop after the running jobs; jobs not started must be taken first."""
