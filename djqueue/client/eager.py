"""Running a job in the calling process: ``task.apply()`` and the ``EAGER`` setting."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, cast

from django.utils import timezone

from djqueue.client import joining
from djqueue.client.identity import ById
from djqueue.client.typevars import R, R_co
from djqueue.core import codec, exceptions, executor, states
from djqueue.core.records import ClaimedJob, NewJob, Outcome

if TYPE_CHECKING:
    from djqueue.client.definition import Task
    from djqueue.client.promises import Promise


# The states whose error get() raises, as AsyncResult.get does (a rejected job's too).
_RAISING = frozenset({states.FAILURE, states.REVOKED, states.REJECTED})


class EagerResult(ById, states.StateQueries, Generic[R_co]):
    """The outcome of a job run in this process; shaped like ``AsyncResult``.

    ``EagerResult[int]`` is the outcome of a task that returns an ``int``.
    """

    def __init__(self, outcome: Outcome, args: Any = None, kwargs: Any = None) -> None:
        self.id: str = str(outcome.job_id)
        self.task_name = outcome.task_name
        self.retries = outcome.attempt - 1
        self.traceback: str | None = outcome.traceback or None
        self.args = args
        self.kwargs = kwargs
        self.date_done: datetime.datetime | None = timezone.now()
        # In an eagerly run workflow: the result of what ran before, as for AsyncResult.
        self.parent: Any = None
        self.children: list[Any] | None = None
        self._outcome = outcome
        self._revoked = False

    def __repr__(self) -> str:
        return f"<EagerResult: {self.id}>"

    @property
    def name(self) -> str:
        return self.task_name

    @property
    def state(self) -> str:
        return states.REVOKED if self._revoked else self._outcome.state

    @property
    def status(self) -> str:
        return self.state

    @property
    def result(self) -> Any:
        """The return value, or the exception for a failed job."""
        if self.state == states.SUCCESS:
            return codec.loads(self._outcome.result)
        if self._revoked:
            return exceptions.TaskRevokedError("revoked")
        return self._outcome.exception or self._error()

    info = result

    def ready(self) -> bool:
        return True

    def get(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        disable_sync_subtasks: bool = True,
        **options: Any,
    ) -> R_co:
        """Return the result; re-raise the task's error when ``propagate`` (an ignored
        or rejected job has no result: None)."""
        if disable_sync_subtasks:
            joining.assert_will_not_block()
        if self.state == states.SUCCESS:
            return cast("R_co", self.result)
        if self.state not in _RAISING:
            return cast("R_co", None)
        if propagate:
            raise self.result
        # Not propagated: the error.
        return cast("R_co", self.result)

    wait = get

    def maybe_throw(self, propagate: bool = True, callback: Any = None) -> Any:
        """Re-raise the task's error if it failed or was revoked (with ``propagate``; a
        rejected or ignored job raises nothing, as in Celery)."""
        if propagate and self.state in states.PROPAGATE_STATES:
            raise self.result
        if callback is not None:
            callback(self.id, self.result)
        return self.result

    def then(
        self,
        callback: Callable[[EagerResult[R_co]], Any],
        on_error: Callable[[BaseException], Any] | None = None,
        weak: bool = False,
    ) -> Promise:
        """Call ``callback(self)`` now (the job has finished); return a future of it."""
        from djqueue.client import promises

        return promises.call_now(self, callback, on_error)

    def forget(self) -> None:
        """Nothing to delete: the outcome was never stored."""

    def revoke(self, *args: Any, **kwargs: Any) -> bool:
        """Mark it REVOKED: ``get()`` raises ``TaskRevokedError`` from now on (the task
        has run already, so nothing is stopped)."""
        self._revoked = True
        self.traceback = None
        return True

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
            workflow=None if job.workflow is None else job.workflow.encode(),
            expires_at=job.expires_at,
        )
        outcome = executor.execute(claimed, is_eager=True)
        if outcome.state == states.PENDING:
            # Reject(requeue=True): there is no queue to go back to when run here.
            return EagerResult(dataclasses.replace(outcome, state=states.REJECTED))
        if outcome.state != states.RETRY:
            return EagerResult(outcome, codec.loads(job.args), codec.loads(job.kwargs))
        retries += 1
