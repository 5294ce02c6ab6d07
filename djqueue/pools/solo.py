"""The solo pool: one job at a time, in the worker's own thread."""

from __future__ import annotations

from djqueue.pools.base import Runner
from djqueue.records import ClaimedJob


class SoloPool:
    """Runs each job inline when submitted. No overhead, no concurrency."""

    name = "solo"

    def __init__(self, runner: Runner, concurrency: int = 1) -> None:
        self.runner = runner
        self.concurrency = 1

    def start(self) -> None:
        pass

    def submit(self, job: ClaimedJob) -> None:
        self.runner(job)

    def take_waiting(self) -> list[ClaimedJob]:
        return []

    def stop(self) -> None:
        pass
