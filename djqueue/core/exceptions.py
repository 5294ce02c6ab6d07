"""Exceptions raised by djqueue, and the safe rebuilding of a task's stored error."""

from __future__ import annotations

import builtins
import datetime
from typing import Any

from django.db import ProgrammingError
from django.utils.module_loading import import_string

from djqueue.core import conf


class DjqueueError(Exception):
    """Base class of djqueue's own errors."""


class NotRegistered(DjqueueError, KeyError):
    """A task name that no installed app's ``tasks.py`` defines."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "task not registered"


class PayloadTooLarge(DjqueueError, ValueError):
    """Encoded arguments or a result are larger than ``MAX_PAYLOAD_BYTES``."""


class JobNotFound(DjqueueError, LookupError):
    """No job has this id (never enqueued, rolled back, forgotten or pruned)."""


class MigrationsMissing(DjqueueError, ProgrammingError):
    """djqueue's tables are missing, or older than the code: ``manage.py migrate``."""


class TimeoutError(DjqueueError, builtins.TimeoutError):
    """``AsyncResult.get(timeout=...)`` waited longer than its timeout."""


class Retry(DjqueueError):
    """Raised by ``self.retry()`` inside a task: run the task again later."""

    def __init__(
        self,
        exc: BaseException | None = None,
        countdown: float | None = None,
        eta: datetime.datetime | None = None,
    ) -> None:
        super().__init__(exc)
        self.exc = exc
        self.countdown = countdown
        self.eta = eta

    def __str__(self) -> str:
        when = f"at {self.eta.isoformat()}" if self.eta else f"in {self.countdown}s"
        return f"Retry {when}: {self.exc!r}" if self.exc else f"Retry {when}"


class Ignore(DjqueueError):
    """Raised inside a task: end the job here, with no result and no state change.

    The job's row ends ``IGNORED`` (so that it is not taken for a lost one); what
    ``AsyncResult.state`` shows is the last state the task reported with
    ``update_state``, or ``IGNORED`` when it reported none.
    """


class Reject(DjqueueError):
    """Raised inside a task: refuse the job. It ends ``REJECTED``, or with ``requeue``
    goes back to the queue, as long as its attempts last (then it ends ``REJECTED``)."""

    def __init__(self, reason: object = None, requeue: bool = False) -> None:
        super().__init__(reason, requeue)
        self.reason = reason
        self.requeue = requeue

    def __str__(self) -> str:
        return "" if self.reason is None else str(self.reason)


class MaxRetriesExceededError(DjqueueError):
    """``self.retry()`` was called with no retries left and no ``exc`` to re-raise."""


class TaskError(DjqueueError):
    """A task failed with an error djqueue cannot rebuild; carries its type and message."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


class TaskRevokedError(DjqueueError):
    """The job was revoked (by a user, or because it expired) and did not run."""


class WorkerLostError(DjqueueError):
    """The process running the job died or stopped answering, and the job may not run
    again: it had no attempts left, or it killed its process too often (quarantine)."""


class OutcomeNotStored(DjqueueError):
    """The job ended, but the database refused to store what it ended with (for example
    a result PostgreSQL cannot hold); the message says what it refused and why."""


class ChordError(DjqueueError):
    """A chord's body did not run because a header task failed; the message names it."""


# The error type stored for a chord body whose header failed (written by the finish
# statement). Rows keep the name ChordError had when it lived in the canvas module.
CHORD_ERROR_TYPE = "djqueue.canvas.ChordError"


class SoftTimeLimitExceeded(DjqueueError):
    """Raised inside a task when its soft time limit passes, so that it can clean up."""


class TimeLimitExceeded(DjqueueError):
    """A task ran past its hard time limit and was stopped."""


# Stored error types and tracebacks name the documented module, ``djqueue.exceptions``
# (``djqueue.exceptions.TimeLimitExceeded``): rows written before these classes moved
# here keep matching, and users read the path they import from.
for _error in (value for value in list(globals().values()) if isinstance(value, type)):
    if issubclass(_error, DjqueueError):
        _error.__module__ = "djqueue.exceptions"


class ExceptionInfo:
    """What a task's error hooks and the failure and retry signals get as ``einfo``: the
    exception, its type, its traceback object (``tb``, None once it crossed a process)
    and its formatted traceback (``str(einfo)`` is the traceback, as in Celery)."""

    def __init__(self, exception: BaseException, traceback: str) -> None:
        self.exception = exception
        self.type = type(exception)
        self.tb = exception.__traceback__
        self.traceback = traceback

    def __str__(self) -> str:
        return self.traceback

    def __repr__(self) -> str:
        return f"<ExceptionInfo: {self.exception!r}>"


def qualified_name(cls: type[BaseException]) -> str:
    """The name a stored error is saved under: ``module.QualName`` (bare for builtins)."""
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _known() -> dict[str, type[BaseException]]:
    known: dict[str, type[BaseException]] = {
        name: value
        for name, value in vars(builtins).items()
        if isinstance(value, type) and issubclass(value, Exception)
    }
    for value in globals().values():
        if isinstance(value, type) and issubclass(value, DjqueueError):
            known[qualified_name(value)] = value
    for path in conf.get("RESULT_EXCEPTIONS"):
        cls = import_string(path)
        known[qualified_name(cls)] = cls
    return known


def rebuild(error_type: str, message: str) -> BaseException:
    """Rebuild a stored error from the registry of known exceptions, or a TaskError.

    Only classes that are builtins, djqueue's own, or listed in
    ``RESULT_EXCEPTIONS`` are ever instantiated: the type name comes from a database row.
    """
    cls: Any = _known().get(error_type)
    if cls is None:
        return TaskError(error_type, message)
    try:
        error: BaseException = cls(message)
    except Exception:
        return TaskError(error_type, message)
    return error
