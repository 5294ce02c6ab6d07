"""The publish signals of new jobs: ``before_task_publish`` and ``after_task_publish``,
with the body and headers a receiver written for Celery reads.

Sent by every path that writes new jobs (:mod:`djqueue.client.publish`, and the
scheduler's firing in :mod:`djqueue.db.periodic`), once per job.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from djqueue.core import codec, signals
from djqueue.core.records import Continuation, NewJob


def before(new: Sequence[NewJob]) -> list[NewJob]:
    """Send ``before_task_publish`` for each job of ``new`` (before the rows are written);
    return the jobs to write.

    Headers a receiver adds (``headers["trace_id"] = ...``) travel with the job, as
    Celery's do: the task reads them in ``self.request.headers`` and as request
    attributes. A job with a unique key carries none (it keeps no continuation).
    """
    if not signals.before_task_publish.has_listeners():
        return list(new)
    sent = []
    for job in new:
        headers = _headers(job)
        given = dict(headers)
        signals.emit(
            signals.before_task_publish,
            job.task_name,
            body=_body(job),
            exchange="",
            routing_key=job.queue,
            headers=headers,
            properties={"priority": job.priority},
            declare=[],
            retry_policy=None,
        )
        # Celery's own headers describe the job; changing them changes nothing.
        added = {
            k: v for k, v in headers.items() if k not in _OWN and (k not in given or given[k] != v)
        }
        sent.append(_with_headers(job, added) if added and job.unique_key is None else job)
    return sent


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


# The headers Celery's message has of its own (see _headers).
_OWN = frozenset({"id", "task", "eta", "countdown", "expires", "retries", "priority", "queue"})


def _with_headers(job: NewJob, added: dict[str, Any]) -> NewJob:
    """``job`` carrying the headers ``added`` among its per-call headers."""
    try:
        extra = json.loads(codec.dumps(added))
    except TypeError as exc:
        raise TypeError(f"headers added by before_task_publish must be JSON data: {exc}") from None
    continuation = job.workflow or Continuation()
    options = json.loads(continuation.options) if continuation.options else {}
    options["headers"] = {**options.get("headers", {}), **extra}
    made = dataclasses.replace(continuation, options=json.dumps(options))
    return dataclasses.replace(job, workflow=made)


def _carried_headers(job: NewJob) -> dict[str, Any]:
    """The headers the job was sent with (``apply_async(headers=...)``)."""
    if job.workflow is None or not job.workflow.options:
        return {}
    carried = json.loads(job.workflow.options).get("headers", {})
    return dict(carried) if isinstance(carried, dict) else {}


def _headers(job: NewJob) -> dict[str, Any]:
    """The headers a receiver of Celery's publish signals reads, from ``job``: those it
    was sent with, then Celery's own."""
    return {
        **_carried_headers(job),
        "id": str(job.id),
        "task": job.task_name,
        "eta": job.eta.isoformat() if job.eta is not None else None,
        "countdown": job.countdown,
        "expires": job.expires_at.isoformat() if job.expires_at is not None else None,
        "retries": 0,
        "priority": job.priority,
        "queue": job.queue,
    }
