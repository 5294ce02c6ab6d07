"""Frozen records that cross layers: what is sent, what is claimed, what came of it."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to insert. Times left as None are computed from the database's clock."""

    id: uuid.UUID
    task_name: str
    queue: str
    priority: int
    args: str  # encoded JSON
    kwargs: str  # encoded JSON
    max_attempts: int | None
    eta: datetime.datetime | None = None
    countdown: float | None = None
    expires_at: datetime.datetime | None = None
    expires_in: float | None = None
    # Limits and uniqueness (docs/limits.md); None when the task has none.
    rate_limit: int | None = None  # starts allowed per rate_period, cluster-wide
    rate_period: float | None = None  # seconds
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    unique_key: str | None = None
    unique_for: float | None = None  # seconds the key is held at most
    # Workflows (docs/canvas.md): the continuation as encoded JSON, and whether the job
    # waits for the job before it. Only broker.enqueue_workflow reads these.
    workflow: str | None = None
    waiting: bool = False

    @property
    def limited(self) -> bool:
        """Whether the job needs the limited insert (limits or a unique key)."""
        return (
            self.rate_limit is not None
            or self.concurrency_limit is not None
            or self.unique_key is not None
        )


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job a worker now owns until its lease expires."""

    id: uuid.UUID
    task_name: str
    args: str  # encoded JSON
    kwargs: str  # encoded JSON
    attempt: int
    retries: int
    queue: str
    priority: int
    eta: datetime.datetime | None
    expired: bool
    worker: str = ""
    revoked: bool = False  # revoke(terminate=True) reached it before it ran
    # It was taken back from a lost worker or killed its process before: in-process
    # pools run it in a process of its own (docs/guarantees.md, "Quarantine").
    isolate: bool = False
    # The job's place in a workflow and its per-call options (encoded JSON, or None for
    # a plain job): what ``self.request`` tells about them. See djqueue.core.options.
    workflow: str | None = None
    expires_at: datetime.datetime | None = None
    # The rate limit it was claimed under (only limited claims carry one).
    rate_limit: int | None = None
    rate_period: float | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What running a claimed job came to; the broker writes it back in batches."""

    job_id: uuid.UUID
    attempt: int
    task_name: str
    state: str
    result: str | None = None  # encoded JSON
    error_type: str = ""
    error_message: str = ""
    traceback: str = ""
    retry_in: float | None = None
    retry_at: datetime.datetime | None = None
    runtime: float = 0.0
    worker: str = ""  # who ran it: part of the fence, with the attempt
    # How the process running the job died ("was killed by signal 11 (SIGSEGV)"), when
    # it did: the broker counts the kill and quarantines a job that kills too often.
    killed: str = ""
    # The live exception, for eager runs that re-raise it; never stored.
    exception: BaseException | None = field(default=None, compare=False, repr=False)
