"""What the world hears of a job's end: the signal that matches its outcome (Celery's
arguments), and the worker's log line."""

from __future__ import annotations

import logging
from typing import Any

from djqueue.core import codec, context, endings, job_request, registry, signals, states, text
from djqueue.core.exceptions import ExceptionInfo, NotRegistered
from djqueue.core.records import ClaimedJob, Outcome
from djqueue.core.signals import emit

logger = logging.getLogger("djqueue.worker")


def announce(task: Any, request: context.Request, outcome: Outcome, retval: object) -> None:
    """Send the signal that matches ``outcome``'s state (nothing when none listen)."""
    if outcome.state == states.SUCCESS:
        emit(signals.task_success, task, result=retval, task_id=request.id)
    elif outcome.state == states.FAILURE:
        announce_failure(task, request, outcome)
    elif outcome.state == states.RETRY:
        reason = outcome.exception
        emit(
            signals.task_retry,
            task,
            request=request,
            reason=reason,
            einfo=_einfo(getattr(reason, "exc", None) or reason, outcome.traceback),
            countdown=outcome.retry_in,
            eta=outcome.retry_at,
        )
    elif outcome.state == states.REVOKED:
        emit(
            signals.task_revoked,
            task,
            request=request,
            terminated=True,
            signum=None,
            expired=False,
            reason=outcome.error_message,
        )


def announce_failure(task: Any, request: context.Request, outcome: Outcome) -> None:
    """Send ``task_failure`` for a FAILURE ``outcome`` (its exception, if it has one)."""
    exc = outcome.exception
    emit(
        signals.task_failure,
        task,
        task_id=str(outcome.job_id),
        exception=exc,
        args=request.args,
        kwargs=request.kwargs,
        traceback=exc.__traceback__ if exc is not None else None,
        einfo=_einfo(exc, outcome.traceback),
    )


def announce_revoked(
    job: ClaimedJob,
    outcome: Outcome,
    *,
    terminated: bool = False,
    signum: int | None = None,
    expired: bool = False,
) -> None:
    """Send ``task_revoked`` for ``job`` (revoked or expired before it ran, or stopped
    from outside while it ran)."""
    if not signals.task_revoked.has_listeners():
        return
    emit(
        signals.task_revoked,
        job_request.task_or_none(job.task_name),
        request=job_request.of(job),
        terminated=terminated,
        signum=signum,
        expired=expired,
        reason=outcome.error_message,
    )


def announce_stopped(job: ClaimedJob, outcome: Outcome, signum: int | None) -> None:
    """Send the signal of ``outcome``, which ended ``job`` from outside its process (a
    killed child or greenlet: a time limit, or a revoke with terminate)."""
    if outcome.state == states.REVOKED:
        announce_revoked(job, outcome, terminated=True, signum=signum)
    elif outcome.state == states.FAILURE and signals.task_failure.has_listeners():
        announce_failure(job_request.task_or_none(job.task_name), job_request.of(job), outcome)


def _einfo(exc: BaseException | None, formatted: str) -> ExceptionInfo | None:
    return None if exc is None else ExceptionInfo(exc, formatted or endings.traceback_of(exc))


def expected_failure(outcome: Outcome) -> bool:
    """Whether a failure is one its task lists in ``throws`` (logged without traceback)."""
    if outcome.state != states.FAILURE or outcome.exception is None:
        return False
    try:
        task = registry.get(outcome.task_name)
    except NotRegistered:
        return False
    return bool(task.throws) and isinstance(outcome.exception, task.throws)


def log(outcome: Outcome, expected: bool = False, shadow: str = "") -> None:
    """Log ``outcome`` under its task's name, or the ``shadow`` name it was sent with."""
    name = shadow or outcome.task_name
    if outcome.state == states.SUCCESS:
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "Task %s[%s] succeeded in %.4fs: %s",
                text.printable(shadow) if shadow else outcome.task_name,
                outcome.job_id,
                outcome.runtime,
                _short(outcome.result),
            )
    elif outcome.state == states.RETRY:
        when = (
            f"at {outcome.retry_at.isoformat()}"
            if outcome.retry_at
            else f"in {outcome.retry_in or 0:g}s"
        )
        cause = f": {outcome.error_type}: {outcome.error_message}" if outcome.error_type else ""
        logger.warning(
            "Task %s[%s] will retry %s%s",
            text.printable(name),
            outcome.job_id,
            when,
            text.printable(cause),
        )
    elif outcome.state == states.REVOKED:
        logger.warning(
            "Task %s[%s] revoked: %s",
            text.printable(name),
            outcome.job_id,
            text.printable(outcome.error_message),
        )
    elif outcome.state == states.IGNORED:
        logger.info("Task %s[%s] ignored", text.printable(name), outcome.job_id)
    elif outcome.state in (states.REJECTED, states.PENDING):
        logger.warning(
            "Task %s[%s] rejected%s: %s\n%s",
            text.printable(name),
            outcome.job_id,
            " (requeued)" if outcome.state == states.PENDING else "",
            text.printable(outcome.error_message),
            text.printable(outcome.traceback.rstrip(), one_line=False),
        )
    elif expected:
        # An error the task declares in ``throws``: part of its normal behaviour.
        logger.info(
            "Task %s[%s] raised expected: %s: %s",
            text.printable(name),
            outcome.job_id,
            text.printable(outcome.error_type),
            text.printable(outcome.error_message),
        )
    else:
        # Job data goes to the operator's terminal: control characters are escaped.
        logger.error(
            "Task %s[%s] failed in %.4fs: %s: %s\n%s",
            text.printable(name),
            outcome.job_id,
            outcome.runtime,
            text.printable(outcome.error_type),
            text.printable(outcome.error_message),
            text.printable(outcome.traceback.rstrip(), one_line=False),
        )


def _short(encoded: str | None, limit: int = 200) -> str:
    if encoded is None:
        return "(result not kept)"
    shown = repr(codec.loads(encoded))
    return shown if len(shown) <= limit else shown[:limit] + "…"
