"""The hooks of a task: override them in a ``Task`` subclass given as ``base=``
(docs/tasks.md). They run in the process that runs the job (the worker, or the caller
when eager), with Celery's arguments; what they return is ignored."""

from __future__ import annotations

from typing import Any

from djqueue.core import executor


class TaskHooks:
    """``before_start``, ``on_success``, ``on_failure``, ``on_retry``, ``after_return``."""

    def before_start(self, task_id: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Called before the task's function, inside its run (an error fails the job)."""

    def on_success(
        self, retval: Any, task_id: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """Called when the task returned."""

    def on_failure(
        self,
        exc: BaseException,
        task_id: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: Any,
    ) -> None:
        """Called when the job fails (``einfo``: an ``ExceptionInfo`` with the traceback)."""

    def on_retry(
        self,
        exc: BaseException | None,
        task_id: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: Any,
    ) -> None:
        """Called when the job will run again (``exc``: the error that asked for it)."""

    def after_return(
        self,
        status: str,
        retval: Any,
        task_id: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: Any,
    ) -> None:
        """Called after the job succeeded or failed (not after a retry, reject or ignore)."""


# Hooks a subclass does not override are skipped by the executor, at no cost.
for _hook in ("before_start", "on_success", "on_failure", "on_retry", "after_return"):
    setattr(getattr(TaskHooks, _hook), executor.DEFAULT_HOOK, True)
