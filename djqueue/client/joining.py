"""Whether ``get()`` may wait here: not inside a task a worker runs (a task that waits for
another job holds its worker slot while it waits, and once every slot waits, no job can
finish), unless allowed."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

from djqueue.core import context

# Whether get() may wait inside a running task: None follows the rule (not in a task a
# worker runs), True and False are set by allow_join_result() and denied_join_result().
_join_allowed: contextvars.ContextVar[bool | None] = contextvars.ContextVar(
    "djqueue_join_allowed", default=None
)


def assert_will_not_block() -> None:
    """Raise ``RuntimeError`` if waiting for a result here could deadlock a worker."""
    allowed = _join_allowed.get()
    if allowed:
        return
    request = context.current_request()
    in_task = request.id is not None and not request.is_eager
    if allowed is None and not in_task:
        return
    where = f"inside task {request.task}[{request.id}]" if in_task else "here"
    raise RuntimeError(
        f"get() on a result was called {where}: a task that waits for another job holds "
        "its worker slot while it waits, and once every slot waits, no job can finish. "
        "Make the work a workflow instead (first.s() | second.s(), or a chord), or, if "
        "the job cannot be waiting on this one, pass disable_sync_subtasks=False or wait "
        "inside djqueue.result.allow_join_result()"
    )


@contextlib.contextmanager
def allow_join_result() -> Iterator[None]:
    """Let ``get()`` wait inside a task (at the risk of a deadlock; see docs/results.md)."""
    token = _join_allowed.set(True)
    try:
        yield
    finally:
        _join_allowed.reset(token)


@contextlib.contextmanager
def denied_join_result() -> Iterator[None]:
    """Make ``get()`` raise ``RuntimeError`` here, as it does inside a task."""
    token = _join_allowed.set(False)
    try:
        yield
    finally:
        _join_allowed.reset(token)
