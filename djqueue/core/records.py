"""Frozen records that cross layers: what is sent, what is claimed, what came of it, and
the plan of a workflow (its jobs' continuations and its group rows)."""

from __future__ import annotations

import datetime
import json
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
    # Workflows (docs/canvas.md): what follows the job and its per-call options, and
    # whether the job waits for the job before it. A plain job carries none.
    workflow: Continuation | None = None
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

    def timed(self, runtime: float) -> Outcome:
        """This outcome, having taken ``runtime`` seconds."""
        # Field by field: the executor calls this for every job, and
        # ``dataclasses.replace`` costs a tenth of a no-op job's run.
        return Outcome(
            self.job_id,
            self.attempt,
            self.task_name,
            self.state,
            self.result,
            self.error_type,
            self.error_message,
            self.traceback,
            self.retry_in,
            self.retry_at,
            runtime,
            self.worker,
            self.killed,
            self.exception,
        )


# Workflows (docs/canvas.md) ------------------------------------------------------------
#
# The client plans a workflow into these records (djqueue.client.planning); the data
# layer inserts them. A continuation is stored as JSON in the job's ``workflow`` column,
# where the statement that records the job's outcome reads it (sql.parts.FOLLOW_UP) and
# djqueue.core.options reads what a running task may know of it; a group row goes into
# ``djqueue_group`` (sql.INSERT_GROUPS). ``encode()`` writes the keys those read.


@dataclass(frozen=True, slots=True)
class Release:
    """How a job that succeeds starts a waiting one: whether it passes its result on (as
    the released job's first argument), and when the released job is due (``countdown``
    seconds after the release, or at ``eta``; at once without either)."""

    id: uuid.UUID
    pass_result: bool
    countdown: float | None = None
    eta: datetime.datetime | None = None

    def data(self) -> dict[str, object]:
        made: dict[str, object] = {"id": str(self.id), "pass": self.pass_result}
        if self.countdown is not None:
            made["countdown"] = self.countdown
        if self.eta is not None:
            made["eta"] = self.eta.isoformat()
        return made


@dataclass(frozen=True, slots=True)
class Callback:
    """A link or link_error callback: the job to insert when the job carrying it ends.

    Its id is fixed when the workflow is sent, so that an errback shared by several jobs
    is inserted once, whichever fails.
    """

    id: uuid.UUID
    task_name: str
    queue: str
    priority: int
    args: str  # encoded JSON array: the signature's own arguments
    kwargs: str  # encoded JSON object
    max_attempts: int | None
    countdown: float | None
    expires_in: float | None
    # Given the result (a link) or the failed job's id (an errback) first.
    pass_result: bool
    # An errback called as Celery calls new-style ones, with the failed job's
    # (request, exc, traceback) first (it then gets no id).
    takes_request: bool = False

    def data(self) -> dict[str, object]:
        made: dict[str, object] = {
            "id": str(self.id),
            "task_name": self.task_name,
            "queue": self.queue,
            "priority": self.priority,
            "args": json.loads(self.args),
            "kwargs": json.loads(self.kwargs),
            "max_attempts": self.max_attempts,
            "countdown": self.countdown,
            "expires_in": self.expires_in,
            "pass": self.pass_result,
        }
        if self.takes_request:
            made["style"] = "request"
        return made


@dataclass(frozen=True, slots=True)
class Continuation:
    """A job's place in its workflow and what its end sets off, and its per-call options.

    On success it releases ``next`` and inserts ``link``; on failure it inserts
    ``link_error`` and ends the waiting jobs of ``cancel`` (nothing would release them).
    A member of a chord's header counts toward ``chord`` (the last job of a member gives
    its result for place ``slot``); ``body_of`` marks the first jobs of a chord's body.
    """

    next: tuple[Release, ...] = ()
    link: tuple[Callback, ...] = ()
    link_error: tuple[Callback, ...] = ()
    cancel: tuple[uuid.UUID, ...] = ()
    parent: uuid.UUID | None = None  # the chain step before it
    group: uuid.UUID | None = None
    chord: uuid.UUID | None = None
    slot: int | None = None
    body_of: uuid.UUID | None = None
    # The per-call options (headers, shadow, ..., the sending task's root_id and
    # parent_id) as an encoded JSON object, or None (djqueue.core.options reads them).
    options: str | None = None

    def encode(self) -> str:
        """The continuation as the JSON stored in the job's ``workflow`` column."""
        if self.options is not None and self._options_only():
            # The common case: a job sent with options of its own or from a task.
            return f'{{"options":{self.options}}}'
        made: dict[str, object] = {}
        if self.next:
            made["next"] = [release.data() for release in self.next]
        if self.link:
            made["link"] = [callback.data() for callback in self.link]
        if self.link_error:
            made["link_error"] = [callback.data() for callback in self.link_error]
        if self.cancel:
            made["cancel"] = [str(job_id) for job_id in self.cancel]
        for name in ("parent", "group", "chord", "body_of"):
            value = getattr(self, name)
            if value is not None:
                made[name] = str(value)
        if self.slot is not None:
            made["slot"] = self.slot
        if self.options is not None:
            made["options"] = json.loads(self.options)
        return json.dumps(made)

    def _options_only(self) -> bool:
        return not (
            self.next
            or self.link
            or self.link_error
            or self.cancel
            or self.parent
            or self.group
            or self.chord
            or self.slot is not None
            or self.body_of
        )


@dataclass(frozen=True, slots=True)
class GroupRow:
    """A group of a workflow: its members' result jobs, in order. For a chord's header,
    also its counter (``remaining`` members), what its end releases (the body's first
    jobs, given the list of results) and the body's last job."""

    id: uuid.UUID
    job_ids: tuple[uuid.UUID, ...]
    remaining: int | None = None
    release: tuple[Release, ...] = ()
    body_id: uuid.UUID | None = None

    def data(self) -> dict[str, object]:
        """The row as ``sql.INSERT_GROUPS`` reads it."""
        return {
            "id": str(self.id),
            "job_ids": [str(job_id) for job_id in self.job_ids],
            "remaining": self.remaining,
            "release": [release.data() for release in self.release] if self.release else None,
            "body_id": None if self.body_id is None else str(self.body_id),
        }


@dataclass(frozen=True, slots=True)
class Workflow:
    """A workflow as sent: its jobs, continuations included, and its group rows; the data
    layer inserts them all or nothing."""

    jobs: tuple[NewJob, ...]
    groups: tuple[GroupRow, ...] = ()
