"""How a run ended, as the ``Outcome`` to write: a success (its result encoded and
size-checked), a failure, a retry, a rejection, a revocation.

What a failed job keeps of its error is made storable here, once: a message with a NUL
byte or a lone surrogate, or of many megabytes, must never stop its outcome from being
written (see djqueue.core.text).
"""

from __future__ import annotations

import traceback as tb

from djqueue.core import codec, conf, context, states, text
from djqueue.core.exceptions import PayloadTooLarge, Reject, Retry, qualified_name
from djqueue.core.records import ClaimedJob, Outcome

REVOKED_TYPE = "djqueue.exceptions.TaskRevokedError"
# The longest error_type the column holds.
_TYPE_LIMIT = 255


def succeeded(job: ClaimedJob, value: object) -> Outcome:
    """SUCCESS with ``value`` as the result (none kept when the request ignores it);
    FAILURE when JSON cannot carry it or it is over ``MAX_PAYLOAD_BYTES``."""
    if context.current_request().ignore_result:
        return Outcome(job.id, job.attempt, job.task_name, states.SUCCESS, worker=job.worker)
    try:
        encoded = codec.dumps(value)
    except TypeError as exc:
        found = codec.describe_unencodable(value)
        detail = f"result{found[0]} {found[1]}" if found else str(exc)
        return failure(job, TypeError(f"the task returned a value JSON cannot carry: {detail}"))
    cap = conf.integer("MAX_PAYLOAD_BYTES")
    if len(encoded) > cap:
        too_large = PayloadTooLarge(
            f"the result is {len(encoded)} bytes as JSON, over the MAX_PAYLOAD_BYTES limit "
            f"of {cap}; store it elsewhere and return its key"
        )
        return failure(job, too_large)
    return Outcome(
        job.id, job.attempt, job.task_name, states.SUCCESS, result=encoded, worker=job.worker
    )


def rejected(job: ClaimedJob, exc: Reject) -> Outcome:
    """REJECTED, or back to the queue now (state PENDING) when it asks to be requeued:
    the finish statement ends it REJECTED instead once its attempts are used up."""
    state = states.PENDING if exc.requeue else states.REJECTED
    return Outcome(
        job.id,
        job.attempt,
        job.task_name,
        state,
        error_type=type_of(exc),
        error_message=message_of(exc),
        traceback=traceback_of(exc),
        retry_in=0.0 if exc.requeue else None,
        worker=job.worker,
        exception=exc,
    )


def retried(job: ClaimedJob, signal: Retry, default_delay: float) -> Outcome:
    """RETRY as ``signal`` asks (a bare ``Retry`` waits ``default_delay`` seconds)."""
    error = signal.exc
    # A bare ``raise Retry()`` names no moment: wait the task's default delay.
    delay = signal.countdown if signal.countdown is not None else default_delay
    return Outcome(
        job.id,
        job.attempt,
        job.task_name,
        states.RETRY,
        error_type=type_of(error) if error else "",
        error_message=message_of(error) if error else "",
        traceback=traceback_of(error) if error else "",
        retry_in=delay if signal.eta is None else None,
        retry_at=signal.eta,
        worker=job.worker,
        exception=signal,
    )


def revoked(job: ClaimedJob, reason: str) -> Outcome:
    """The REVOKED outcome of ``job``."""
    return ended(job, states.REVOKED, REVOKED_TYPE, reason)


def failure(job: ClaimedJob, exc: BaseException) -> Outcome:
    """The FAILURE outcome of ``job`` for ``exc``, with its traceback."""
    return Outcome(
        job.id,
        job.attempt,
        job.task_name,
        states.FAILURE,
        error_type=type_of(exc),
        error_message=message_of(exc),
        traceback=traceback_of(exc),
        worker=job.worker,
        exception=exc,
    )


def ended(
    job: ClaimedJob,
    state: str,
    error_type: str,
    message: str,
    exception: BaseException | None = None,
) -> Outcome:
    """``job`` ended in ``state`` with ``message`` (no traceback)."""
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


def type_of(exc: BaseException) -> str:
    """The qualified name of ``exc``'s type, as stored."""
    return text.storable(qualified_name(type(exc)), _TYPE_LIMIT)


def message_of(exc: BaseException) -> str:
    """``exc``'s message, as stored (one that cannot be read says so)."""
    try:
        message = str(exc)
    except Exception as broken:  # a user exception whose __str__ raises
        message = f"(the error's message could not be read: {type(broken).__name__})"
    return text.storable(message, conf.integer("MAX_ERROR_CHARS"))


def traceback_of(exc: BaseException) -> str:
    """``exc``'s traceback, formatted and as stored."""
    try:
        formatted = "".join(tb.format_exception(exc))
    except Exception as broken:
        formatted = f"(the traceback could not be formatted: {type(broken).__name__})"
    return text.storable(formatted, conf.integer("MAX_TRACEBACK_CHARS"))
