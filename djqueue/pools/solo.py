"""The solo pool: one job at a time, in the worker's own thread."""

from __future__ import annotations

import uuid

from djqueue.pools.base import Runner, Running
from djqueue.records import ClaimedJob, Outcome


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

    def terminate(self, job_id: uuid.UUID, outcome: Outcome | None = None) -> bool:
        """The job runs in the worker's own thread and cannot be stopped: always False."""
        return False

    def running(self) -> list[Running]:
        """Not tracked: nothing could stop the job anyway."""
        return []

    def kill(self) -> None:
        """Nothing to do: the job ends with the process."""
