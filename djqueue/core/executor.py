"""Run one claimed job and say what came of it. Never touches the database.

Around the task's own call: its request made current, its hooks and its signals in
Celery's order. How the run ended becomes an ``Outcome`` in ``endings``; the signal and
the log line that report it are in ``reporting``; the request is built in ``job_request``.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from djqueue.core import (
    aio,
    backoff,
    codec,
    context,
    endings,
    job_request,
    messages,
    options,
    registry,
    reporting,
    signals,
    states,
    text,
)
from djqueue.core.exceptions import (
    ExceptionInfo,
    Ignore,
    NotRegistered,
    Reject,
    Retry,
    TaskRevokedError,
    qualified_name,
    rebuild,
)
from djqueue.core.records import ClaimedJob, Outcome
from djqueue.core.signals import emit

if TYPE_CHECKING:
    from djqueue.client.definition import Task

logger = logging.getLogger("djqueue.worker")

# The attribute that marks ``Task``'s hooks that do nothing (see ``_overrides``).
DEFAULT_HOOK = "djqueue_default_hook"

T = TypeVar("T")
# Runs the task's own code: a pool passes the ``call`` of an interrupt window
# (djqueue.runtime.interrupt.Window), so that interrupts reach that code and nothing else.
Call = Callable[[Callable[[], Any]], Any]


def _direct(fn: Callable[[], T]) -> T:
    return fn()


def execute(job: ClaimedJob, *, is_eager: bool = False, call: Call = _direct) -> Outcome:
    """Run ``job``'s task with its arguments and return the outcome.

    ``call`` runs the task's own code (by default, directly). The signals go out in
    Celery's order: ``task_prerun``, the outcome's own (``task_success``,
    ``task_failure``, ``task_retry`` or ``task_revoked``), then ``task_postrun``.
    """
    started = time.perf_counter()
    outcome = _execute(job, is_eager, call)
    outcome = outcome.timed(time.perf_counter() - started)
    reporting.log(outcome, reporting.expected_failure(outcome), options.read(job.workflow).shadow)
    return outcome


def _execute(job: ClaimedJob, is_eager: bool, call: Call) -> Outcome:
    if job.expired:
        outcome = endings.ended(
            job, states.REVOKED, endings.REVOKED_TYPE, "expired before it started"
        )
        reporting.announce_revoked(job, outcome, expired=True)
        return outcome
    if job.revoked:
        outcome = endings.revoked(job, "revoked before it started")
        reporting.announce_revoked(job, outcome)
        return outcome
    try:
        task = registry.get(job.task_name)
    except NotRegistered as exc:
        emit(
            signals.task_unknown,
            None,
            name=job.task_name,
            id=str(job.id),
            message=messages.Message(job),
            exc=exc,
        )
        return endings.ended(job, states.FAILURE, qualified_name(NotRegistered), str(exc))
    try:
        args: list[Any] = codec.loads(job.args)
        kwargs: dict[str, Any] = codec.loads(job.kwargs)
    except ValueError as exc:  # a row written by hand or by another program
        error = ValueError(f"the job's arguments cannot be decoded: {exc}")
        emit(signals.task_rejected, None, message=messages.Message(job), exc=error)
        return endings.failure(job, error)
    request = job_request.build(task, job, args, kwargs, is_eager)
    token = context.set_request(request)
    try:
        emit(
            signals.task_prerun,
            task,
            task_id=request.id,
            task=task,
            args=args,
            kwargs=kwargs,
            request=request,
        )
        outcome, retval = _run(task, job, args, kwargs, call)
        _hooks(task, request, outcome, retval)
        reporting.announce(task, request, outcome, retval)
        emit(
            signals.task_postrun,
            task,
            task_id=request.id,
            task=task,
            args=args,
            kwargs=kwargs,
            retval=retval,
            state=outcome.state,
            request=request,
        )
    finally:
        context.reset_request(token)
    return outcome


def _run(
    task: Task[Any, Any],
    job: ClaimedJob,
    args: list[Any],
    kwargs: dict[str, Any],
    call: Call,
) -> tuple[Outcome, object]:
    """Call the task; return the outcome and what the call returned or raised."""

    def invoke() -> object:
        if _overrides(task, "before_start"):
            task.before_start(job.id, tuple(args), kwargs)
        value = task.run(*args, **kwargs)
        if inspect.iscoroutine(value):  # an ``async def`` task
            value = aio.run(value)
        return value

    try:
        value = call(invoke)
    except Retry as signal:
        return endings.retried(job, signal, task.default_retry_delay), signal
    except Ignore as exc:
        return (
            endings.ended(job, states.IGNORED, endings.type_of(exc), endings.message_of(exc), exc),
            exc,
        )
    except Reject as exc:
        return endings.rejected(job, exc), exc
    except TaskRevokedError as exc:
        # Raised into the running task by revoke(terminate=True) (threads, solo).
        return endings.revoked(job, str(exc) or "revoked while running"), exc
    except Exception as exc:
        return _failed_or_retried(task, job, exc), exc
    except SystemExit as exc:
        # sys.exit() in a task ends the task, not the worker (nor a pool thread).
        return endings.failure(job, exc), exc
    return endings.succeeded(job, value), value


def _failed_or_retried(task: Task[Any, Any], job: ClaimedJob, exc: Exception) -> Outcome:
    if not (task.autoretry_for and isinstance(exc, task.autoretry_for)):
        return endings.failure(job, exc)
    # retry_kwargs are what retry() is called with; a backoff sets the countdown.
    options = dict(task.retry_kwargs)
    if task.retry_backoff or ("countdown" not in options and "eta" not in options):
        options.pop("eta", None)
        options["countdown"] = backoff.countdown(
            job.retries,
            task.retry_backoff,
            task.retry_backoff_max,
            task.retry_jitter,
            task.default_retry_delay,
        )
    try:
        signal = task.retry(exc=exc, throw=False, **options)
    except Exception as final:  # out of retries: retry() re-raised the error
        return endings.failure(job, final)
    return endings.retried(job, signal, task.default_retry_delay)


def _overrides(task: Task[Any, Any], hook: str) -> bool:
    """Whether ``task``'s class defines its own ``hook`` (else calling it is skipped):
    ``Task``'s own hooks, which do nothing, carry ``DEFAULT_HOOK``."""
    return not getattr(getattr(type(task), hook), DEFAULT_HOOK, False)


def _hooks(
    task: Task[Any, Any], request: context.Request, outcome: Outcome, retval: object
) -> None:
    """Call the task's hooks for ``outcome`` with Celery's arguments.

    The outcome stands whatever a hook does: an error in a hook is logged, never raised.
    """
    args, kwargs = request.args, request.kwargs
    if outcome.state == states.SUCCESS:
        _hook(task, request, "on_success", retval, request.id, args, kwargs)
    elif outcome.state == states.FAILURE:
        exc = outcome.exception if outcome.exception is not None else _rebuilt(outcome)
        einfo = ExceptionInfo(exc, outcome.traceback)
        _hook(task, request, "on_failure", exc, request.id, args, kwargs, einfo)
    elif outcome.state == states.RETRY and isinstance(outcome.exception, Retry):
        einfo = ExceptionInfo(outcome.exception, outcome.traceback)
        _hook(task, request, "on_retry", outcome.exception.exc, request.id, args, kwargs, einfo)
    if outcome.state in (states.SUCCESS, states.FAILURE):
        value = retval if outcome.state == states.SUCCESS else outcome.exception
        _hook(task, request, "after_return", outcome.state, value, request.id, args, kwargs, None)


def _hook(task: Task[Any, Any], request: context.Request, name: str, *args: Any) -> None:
    if not _overrides(task, name):
        return
    try:
        getattr(task, name)(*args)
    except Exception:
        logger.exception(
            "Task %s[%s]: its %s hook raised (the job's outcome stands)",
            text.printable(task.name),
            request.id,
            name,
        )


def _rebuilt(outcome: Outcome) -> BaseException:
    return rebuild(outcome.error_type, outcome.error_message)
