"""Running a job in the calling process: ``task.apply()`` and the ``EAGER`` setting."""

from __future__ import annotations

import dataclasses
import uuid
from typing import TYPE_CHECKING, Any, Generic, cast

from django.utils import timezone

from djqueue.client.typevars import R, R_co
from djqueue.core import codec, exceptions, executor, states
from djqueue.core.records import ClaimedJob, NewJob, Outcome

if TYPE_CHECKING:
    from djqueue.client.definition import Task


class EagerResult(states.StateQueries, Generic[R_co]):
    """The outcome of a job run in this process; shaped like ``AsyncResult``.

    ``EagerResult[int]`` is the outcome of a task that returns an ``int``.
    """

    def __init__(self, outcome: Outcome) -> None:
        self.id: uuid.UUID = outcome.job_id
        self.task_name = outcome.task_name
        self.retries = outcome.attempt - 1
        self.traceback: str | None = outcome.traceback or None
        self._outcome = outcome

    def __repr__(self) -> str:
        return f"<EagerResult {self.id} {self.state}>"

    @property
    def state(self) -> str:
        return self._outcome.state

    @property
    def status(self) -> str:
        return self.state

    @property
    def result(self) -> Any:
        """The return value, or the exception for a failed job."""
        if self.state == states.SUCCESS:
            return codec.loads(self._outcome.result)
        return self._outcome.exception or self._error()

    info = result

    def get(self, timeout: float | None = None, propagate: bool = True) -> R_co:
        """Return the result; re-raise the task's error when ``propagate`` (an ignored
        job has no result: None)."""
        if self.state == states.IGNORED:
            return cast("R_co", None)
        if self.state != states.SUCCESS and propagate:
            raise self.result
        # What the task returned (or, not propagated, its error).
        return cast("R_co", self.result)

    def maybe_throw(self) -> None:
        """Re-raise the task's error if it failed or was revoked (as sending does when
        ``EAGER`` is on; a rejected or ignored job raises nothing there, as in Celery)."""
        if self.state in states.PROPAGATE_STATES:
            raise self.result

    def _error(self) -> BaseException:
        if self.state == states.REVOKED:
            return exceptions.TaskRevokedError(self._outcome.error_message)
        return exceptions.rebuild(self._outcome.error_type, self._outcome.error_message)


def run(task: Task[Any, R], job: NewJob) -> EagerResult[R]:
    """Run ``job`` now in this process; retries run at once, ignoring their delay."""
    retries = 0
    while True:
        claimed = ClaimedJob(
            id=job.id,
            task_name=task.name,
            args=job.args,
            kwargs=job.kwargs,
            attempt=retries + 1,
            retries=retries,
            queue=job.queue,
            priority=job.priority,
            eta=job.eta or timezone.now(),
            expired=False,
            workflow=job.workflow,
            expires_at=job.expires_at,
        )
        outcome = executor.execute(claimed, is_eager=True)
        if outcome.state == states.PENDING:
            # Reject(requeue=True): there is no queue to go back to when run here.
            return EagerResult(dataclasses.replace(outcome, state=states.REJECTED))
        if outcome.state != states.RETRY:
            return EagerResult(outcome)
        retries += 1
