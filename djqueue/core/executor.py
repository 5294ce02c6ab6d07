"""Run one claimed job and say what came of it. Never touches the database."""

from __future__ import annotations

import dataclasses
import inspect
import logging
import time
import traceback as tb
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from djqueue.core import (
    aio,
    backoff,
    codec,
    conf,
    context,
    messages,
    options,
    registry,
    signals,
    states,
    text,
)
from djqueue.core.exceptions import (
    ExceptionInfo,
    Ignore,
    NotRegistered,
    PayloadTooLarge,
    Reject,
    Retry,
    TaskRevokedError,
    qualified_name,
)
from djqueue.core.records import ClaimedJob, Outcome
from djqueue.core.signals import emit

if TYPE_CHECKING:
    import uuid

    from djqueue.client.definition import Task

logger = logging.getLogger("djqueue.worker")

REVOKED_TYPE = "djqueue.exceptions.TaskRevokedError"
# The attribute that marks ``Task``'s hooks that do nothing (see ``_overrides``).
DEFAULT_HOOK = "djqueue_default_hook"
# The longest error_type the column holds.
_TYPE_LIMIT = 255

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
    outcome = dataclasses.replace(outcome, runtime=time.perf_counter() - started)
    _log(outcome, _expected(outcome), options.read(job.workflow).shadow)
    return outcome


def _execute(job: ClaimedJob, is_eager: bool, call: Call) -> Outcome:
    if job.expired:
        outcome = _ended(job, states.REVOKED, REVOKED_TYPE, "expired before it started")
        announce_revoked(job, outcome, expired=True)
        return outcome
    if job.revoked:
        outcome = revoked(job, "revoked before it started")
        announce_revoked(job, outcome)
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
        return _ended(job, states.FAILURE, qualified_name(NotRegistered), str(exc))
    try:
        args: list[Any] = codec.loads(job.args)
        kwargs: dict[str, Any] = codec.loads(job.kwargs)
    except ValueError as exc:  # a row written by hand or by another program
        error = ValueError(f"the job's arguments cannot be decoded: {exc}")
        emit(signals.task_rejected, None, message=messages.Message(job), exc=error)
        return failure(job, error)
    request = _request(task, job, args, kwargs, is_eager)
    token = context.set_request(request)
    try:
        emit(
            signals.task_prerun,
            task,
            task_id=str(job.id),
            task=task,
            args=args,
            kwargs=kwargs,
            request=request,
        )
        outcome, retval = _run(task, job, args, kwargs, call)
        _hooks(task, request, outcome, retval)
        _announce(task, request, outcome, retval)
        emit(
            signals.task_postrun,
            task,
            task_id=str(job.id),
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
        return _retried(job, signal, task.default_retry_delay), signal
    except Ignore as exc:
        return _ended(job, states.IGNORED, _type_of(exc), _message_of(exc), exc), exc
    except Reject as exc:
        return _rejected(job, exc), exc
    except TaskRevokedError as exc:
        # Raised into the running task by revoke(terminate=True) (threads, solo).
        return revoked(job, str(exc) or "revoked while running"), exc
    except Exception as exc:
        return _failed_or_retried(task, job, exc), exc
    except SystemExit as exc:
        # sys.exit() in a task ends the task, not the worker (nor a pool thread).
        return failure(job, exc), exc
    return _succeeded(task, job, value), value


def _request(
    task: Task[Any, Any] | None,
    job: ClaimedJob,
    args: list[Any],
    kwargs: dict[str, Any],
    is_eager: bool,
) -> context.Request:
    """The request of ``job``; ``task`` is None when its name is not registered here (a
    signal about it is still sent, with what the row says)."""
    carried = options.read(job.workflow)
    return context.Request(
        id=str(job.id),
        task=job.task_name,
        args=tuple(args),
        kwargs=kwargs,
        retries=job.retries,
        attempt=job.attempt,
        queue=job.queue,
        priority=job.priority,
        # ISO 8601 text, as Celery's message headers carry them.
        eta=job.eta.isoformat() if job.eta is not None else None,
        hostname=job.worker,
        is_eager=is_eager,
        expires=job.expires_at.isoformat() if job.expires_at is not None else None,
        root_id=str(carried.root_id or job.id),
        parent_id=_text_id(carried.parent_id),
        group=_text_id(carried.group),
        chain=carried.chain or None,
        callbacks=carried.callbacks or None,
        errbacks=carried.errbacks or None,
        delivery_info={
            "exchange": "",
            "routing_key": carried.routing_key or job.queue,
            "queue": job.queue,
            "priority": job.priority,
            # Claimed before without ending: a run was lost, handed back or requeued.
            "redelivered": job.attempt > job.retries + 1,
        },
        headers=carried.headers,
        shadow=carried.shadow or None,
        ignore_result=(
            bool(getattr(task, "ignore_result", False))
            if carried.ignore_result is None
            else carried.ignore_result
        ),
        time_limit=carried.time_limit,
        soft_time_limit=carried.soft_time_limit,
    )


def _text_id(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def _succeeded(task: Task[Any, Any], job: ClaimedJob, value: object) -> Outcome:
    if context.current_request().ignore_result:
        return Outcome(job.id, job.attempt, job.task_name, states.SUCCESS, worker=job.worker)
    try:
        encoded = codec.dumps(value)
    except TypeError as exc:
        found = codec.describe_unencodable(value)
        detail = f"result{found[0]} {found[1]}" if found else str(exc)
        return _failure(job, TypeError(f"the task returned a value JSON cannot carry: {detail}"))
    cap = conf.integer("MAX_PAYLOAD_BYTES")
    if len(encoded) > cap:
        too_large = PayloadTooLarge(
            f"the result is {len(encoded)} bytes as JSON, over the MAX_PAYLOAD_BYTES limit "
            f"of {cap}; store it elsewhere and return its key"
        )
        return _failure(job, too_large)
    return Outcome(
        job.id, job.attempt, job.task_name, states.SUCCESS, result=encoded, worker=job.worker
    )


def _failed_or_retried(task: Task[Any, Any], job: ClaimedJob, exc: Exception) -> Outcome:
    if not (task.autoretry_for and isinstance(exc, task.autoretry_for)):
        return _failure(job, exc)
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
        return _failure(job, final)
    return _retried(job, signal, task.default_retry_delay)


def _rejected(job: ClaimedJob, exc: Reject) -> Outcome:
    """REJECTED, or back to the queue now (state PENDING) when it asks to be requeued:
    the finish statement ends it REJECTED instead once its attempts are used up."""
    state = states.PENDING if exc.requeue else states.REJECTED
    return Outcome(
        job.id,
        job.attempt,
        job.task_name,
        state,
        error_type=_type_of(exc),
        error_message=_message_of(exc),
        traceback=_traceback_of(exc),
        retry_in=0.0 if exc.requeue else None,
        worker=job.worker,
        exception=exc,
    )


def _retried(job: ClaimedJob, signal: Retry, default_delay: float) -> Outcome:
    error = signal.exc
    # A bare ``raise Retry()`` names no moment: wait the task's default delay.
    delay = signal.countdown if signal.countdown is not None else default_delay
    return Outcome(
        job.id,
        job.attempt,
        job.task_name,
        states.RETRY,
        error_type=_type_of(error) if error else "",
        error_message=_message_of(error) if error else "",
        traceback=_traceback_of(error) if error else "",
        retry_in=delay if signal.eta is None else None,
        retry_at=signal.eta,
        worker=job.worker,
        exception=signal,
    )


def revoked(job: ClaimedJob, reason: str) -> Outcome:
    """The REVOKED outcome of ``job``."""
    return _ended(job, states.REVOKED, REVOKED_TYPE, reason)


def failure(job: ClaimedJob, exc: BaseException) -> Outcome:
    """The FAILURE outcome of ``job`` for ``exc``, with its traceback."""
    return _failure(job, exc)


def _failure(job: ClaimedJob, exc: BaseException) -> Outcome:
    return Outcome(
        job.id,
        job.attempt,
        job.task_name,
        states.FAILURE,
        error_type=_type_of(exc),
        error_message=_message_of(exc),
        traceback=_traceback_of(exc),
        worker=job.worker,
        exception=exc,
    )


# What a failed job keeps of its error is made storable here, once: a message with a
# NUL byte or a lone surrogate, or of many megabytes, must never stop its outcome from
# being written (see djqueue.core.text).


def _type_of(exc: BaseException) -> str:
    return text.storable(qualified_name(type(exc)), _TYPE_LIMIT)


def _message_of(exc: BaseException) -> str:
    try:
        message = str(exc)
    except Exception as broken:  # a user exception whose __str__ raises
        message = f"(the error's message could not be read: {type(broken).__name__})"
    return text.storable(message, conf.integer("MAX_ERROR_CHARS"))


def _traceback_of(exc: BaseException) -> str:
    try:
        formatted = "".join(tb.format_exception(exc))
    except Exception as broken:
        formatted = f"(the traceback could not be formatted: {type(broken).__name__})"
    return text.storable(formatted, conf.integer("MAX_TRACEBACK_CHARS"))


def _ended(
    job: ClaimedJob,
    state: str,
    error_type: str,
    message: str,
    exception: BaseException | None = None,
) -> Outcome:
    return Outcome(
        job.id,
        job.attempt,
        job.task_name,
        state,
        error_type=error_type,
        error_message=text.storable(message, conf.integer("MAX_ERROR_CHARS")),
        worker=job.worker,
        exception=exception,
    )


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
    from djqueue.core import exceptions

    return exceptions.rebuild(outcome.error_type, outcome.error_message)


def _expected(outcome: Outcome) -> bool:
    """Whether a failure is one its task lists in ``throws`` (logged without traceback)."""
    if outcome.state != states.FAILURE or outcome.exception is None:
        return False
    try:
        task = registry.get(outcome.task_name)
    except NotRegistered:
        return False
    return bool(task.throws) and isinstance(outcome.exception, task.throws)


def _announce(
    task: Task[Any, Any], request: context.Request, outcome: Outcome, retval: object
) -> None:
    """Send the signal that matches ``outcome``'s state (nothing when none listen)."""
    if outcome.state == states.SUCCESS:
        emit(signals.task_success, task, result=retval, task_id=str(outcome.job_id))
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
        _task_or_none(job.task_name),
        request=request_of(job),
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
        announce_failure(_task_or_none(job.task_name), request_of(job), outcome)


def request_of(job: ClaimedJob) -> context.Request:
    """The request of ``job`` for a signal sent where the task did not run (arguments
    that cannot be decoded are left empty)."""
    try:
        args, kwargs = codec.loads(job.args), codec.loads(job.kwargs)
    except ValueError:
        args, kwargs = [], {}
    return _request(_task_or_none(job.task_name), job, args, kwargs, False)


def _task_or_none(name: str) -> Any:
    try:
        return registry.get(name)
    except NotRegistered:
        return None


def _einfo(exc: BaseException | None, formatted: str) -> ExceptionInfo | None:
    return None if exc is None else ExceptionInfo(exc, formatted or _traceback_of(exc))


def _log(outcome: Outcome, expected: bool = False, shadow: str = "") -> None:
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
