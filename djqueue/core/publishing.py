"""The publish signals of new jobs: ``before_task_publish`` and ``after_task_publish``,
with the body and headers a receiver written for Celery reads.

Sent by every path that writes new jobs (:mod:`djqueue.client.publish`, and the
scheduler's firing in :mod:`djqueue.db.periodic`), once per job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from djqueue.core import codec, signals
from djqueue.core.records import NewJob


def before(new: Sequence[NewJob]) -> None:
    """Send ``before_task_publish`` for each job of ``new`` (before the rows are written)."""
    if not signals.before_task_publish.has_listeners():
        return
    for job in new:
        signals.emit(
            signals.before_task_publish,
            job.task_name,
            body=_body(job),
            exchange="",
            routing_key=job.queue,
            headers=_headers(job),
            properties={"priority": job.priority},
            declare=[],
            retry_policy=None,
        )


def after(new: Sequence[NewJob]) -> None:
    """Send ``after_task_publish`` for each job of ``new`` (once the rows are written)."""
    if not signals.after_task_publish.has_listeners():
        return
    for job in new:
        signals.emit(
            signals.after_task_publish,
            job.task_name,
            body=_body(job),
            exchange="",
            routing_key=job.queue,
            headers=_headers(job),
        )


def _body(job: NewJob) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    """``(args, kwargs, embed)``, as Celery's message body has them."""
    embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    return codec.loads(job.args), codec.loads(job.kwargs), embed


def _headers(job: NewJob) -> dict[str, Any]:
    """The headers a receiver of Celery's publish signals reads, from ``job``."""
    return {
        "id": str(job.id),
        "task": job.task_name,
        "eta": job.eta.isoformat() if job.eta is not None else None,
        "countdown": job.countdown,
        "expires": job.expires_at.isoformat() if job.expires_at is not None else None,
        "retries": 0,
        "priority": job.priority,
        "queue": job.queue,
    }
