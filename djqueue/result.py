"""``AsyncResult``: read a job's state and result, wait for it, revoke or forget it."""

from __future__ import annotations

import time
import uuid
from typing import Any

from djqueue import broker, conf, exceptions, ids, states
from djqueue.listener import DONE_CHANNEL, Listener
from djqueue.models import Job

_FIELDS = ("task_name", "state", "result", "error_type", "error_message", "traceback", "progress")


class AsyncResult(states.StateQueries):
    """A handle on a job by id; every read looks at the job's row."""

    def __init__(self, id: str | uuid.UUID) -> None:
        self.id: uuid.UUID = ids.parse(id)

    def __repr__(self) -> str:
        return f"<AsyncResult {self.id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsyncResult) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    # Reading --------------------------------------------------------------------

    def _row(self) -> dict[str, Any]:
        row = Job.objects.using(conf.get("DATABASE")).filter(pk=self.id).values(*_FIELDS).first()
        if row is None:
            raise exceptions.JobNotFound(
                f"no job has id {self.id}: it was never enqueued, its transaction rolled "
                "back or has not committed yet, or it was forgotten or pruned"
            )
        return dict(row)

    @property
    def job(self) -> Job:
        """The job's model instance, freshly read."""
        return Job.objects.using(conf.get("DATABASE")).get(pk=self.id)

    @property
    def state(self) -> str:
        """One of PENDING, STARTED, RETRY, SUCCESS, FAILURE, REVOKED."""
        return str(self._row()["state"])

    status = state

    @property
    def name(self) -> str:
        return str(self._row()["task_name"])

    @property
    def result(self) -> Any:
        """The return value; for a failed job the error (not raised)."""
        return _value(self._row())

    @property
    def info(self) -> Any:
        """The result once finished; while running, the progress the task reported."""
        row = self._row()
        if row["state"] == states.STARTED:
            return row["progress"]
        return _value(row)

    @property
    def progress(self) -> dict[str, Any] | None:
        """``{"current", "total", "message"}`` as last reported by the task, or None."""
        progress: dict[str, Any] | None = self._row()["progress"]
        return progress

    @property
    def traceback(self) -> str | None:
        """The formatted traceback of a failed job, or None."""
        return self._row()["traceback"] or None

    # Waiting --------------------------------------------------------------------

    def get(
        self, timeout: float | None = None, propagate: bool = True, interval: float = 1.0
    ) -> Any:
        """Wait until the job is finished and return its result.

        Waiting listens for the notification a worker sends on finishing, with a look at
        the row every ``interval`` seconds as a fallback. A failed or revoked job raises
        its error when ``propagate`` (the default).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        row = self._row()
        if row["state"] not in states.READY:
            row = self._wait(deadline, interval)
        value = _value(row)
        if propagate and row["state"] != states.SUCCESS:
            raise value
        return value

    async def aget(
        self, timeout: float | None = None, propagate: bool = True, interval: float = 1.0
    ) -> Any:
        """:meth:`get` for async code: waits in a worker thread, not on the event loop."""
        from asgiref.sync import sync_to_async

        # Not thread-sensitive: a long wait must not hold the thread other sync code
        # of this request runs in.
        wait = sync_to_async(self._get_and_close, thread_sensitive=False)
        return await wait(timeout, propagate, interval)

    def _get_and_close(self, timeout: float | None, propagate: bool, interval: float) -> Any:
        from django.db import connections

        try:
            return self.get(timeout, propagate, interval)
        finally:
            # The thread is asgiref's: do not leave a connection open in it.
            connections.close_all()

    def _wait(self, deadline: float | None, interval: float) -> dict[str, Any]:
        listener = Listener([DONE_CHANNEL])
        wanted = str(self.id)
        try:
            while True:
                # Read after LISTEN is in place (first wait) so no finish is missed.
                row = self._row()
                if row["state"] in states.READY:
                    return row
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise exceptions.TimeoutError(
                        f"job {self.id} ({row['task_name']}) is still {row['state']} "
                        "after the timeout"
                    )
                pause = interval if left is None else min(interval, left)
                for payload in listener.wait(pause):
                    if not payload or wanted in payload.split():
                        break
        finally:
            listener.close()

    # Changing -------------------------------------------------------------------

    def revoke(self, terminate: bool = False) -> bool:
        """Revoke the job: one not started never runs; with ``terminate``, a running one
        is stopped by its worker (within about a second) and ends REVOKED.

        Returns whether anything was done (False for a finished job).
        """
        return broker.revoke(self.id, terminate=terminate)

    def forget(self) -> None:
        """Delete a finished job's row and result."""
        broker.forget(self.id)


def _value(row: dict[str, Any]) -> Any:
    state = row["state"]
    if state == states.SUCCESS:
        return row["result"]
    if state == states.REVOKED:
        return exceptions.TaskRevokedError(row["error_message"] or "revoked")
    if state in (states.FAILURE, states.RETRY) and row["error_type"]:
        return exceptions.rebuild(row["error_type"], row["error_message"])
    return None
