"""The request a task sees as ``self.request``, built from the job it runs: the job's
own fields and what its workflow carried (root and parent ids, group, chain, headers,
options it was sent with)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from djqueue.core import codec, context, options, registry
from djqueue.core.exceptions import NotRegistered
from djqueue.core.records import ClaimedJob

if TYPE_CHECKING:
    import uuid

    from djqueue.client.definition import Task


def build(
    task: Task[Any, Any] | None,
    job: ClaimedJob,
    args: list[Any],
    kwargs: dict[str, Any],
    is_eager: bool,
) -> context.Request:
    """The request of ``job`` running ``task`` with ``args`` and ``kwargs``; ``task`` is
    None when its name is not registered here (a signal about it is still sent, with what
    the row says)."""
    carried = options.read(job.workflow)
    job_id = str(job.id)
    return context.Request(
        id=job_id,
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
        root_id=job_id if carried.root_id is None else str(carried.root_id),
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
        # Its own dict: a task may change its request's headers.
        headers=dict(carried.headers),
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


def of(job: ClaimedJob) -> context.Request:
    """The request of ``job`` for a signal sent where the task did not run (arguments
    that cannot be decoded are left empty)."""
    try:
        args, kwargs = codec.loads(job.args), codec.loads(job.kwargs)
    except ValueError:
        args, kwargs = [], {}
    return build(task_or_none(job.task_name), job, args, kwargs, False)


def task_or_none(name: str) -> Any:
    """The registered task called ``name``, or None."""
    try:
        return registry.get(name)
    except NotRegistered:
        return None
