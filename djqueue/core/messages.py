"""The ``message`` of the ``task_unknown`` and ``task_rejected`` signals.

Celery gives those receivers the broker message the task came in. A djqueue job is a
row, not a message: :class:`Message` is the claimed job shaped as Celery's message, so
that a receiver written for Celery reads ``headers``, ``delivery_info``,
``properties``, ``body`` and ``payload`` as it does there; the job's own fields are
reachable too (``message.id``, ``message.task_name``, or ``message.job``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from djqueue.core import codec
from djqueue.core.records import ClaimedJob

_EMBED = '{"callbacks": null, "errbacks": null, "chain": null, "chord": null}'


@dataclass(frozen=True)
class Message:
    """A claimed job, read as Celery's broker message."""

    job: ClaimedJob
    content_type: str = "application/json"
    content_encoding: str = "utf-8"

    @property
    def headers(self) -> dict[str, Any]:
        job = self.job
        return {
            "id": str(job.id),
            "task": job.task_name,
            "eta": job.eta.isoformat() if job.eta is not None else None,
            "expires": job.expires_at.isoformat() if job.expires_at is not None else None,
            "retries": job.retries,
            "root_id": None,
            "parent_id": None,
        }

    @property
    def properties(self) -> dict[str, Any]:
        return {"correlation_id": str(self.job.id), "priority": self.job.priority}

    @property
    def delivery_info(self) -> dict[str, Any]:
        return {"exchange": "", "routing_key": self.job.queue, "priority": self.job.priority}

    @property
    def body(self) -> str:
        """``[args, kwargs, embed]`` as stored (JSON text, which may not decode)."""
        return f"[{self.job.args}, {self.job.kwargs}, {_EMBED}]"

    @property
    def payload(self) -> Any:
        """The decoded body; ``ValueError`` when the arguments cannot be decoded."""
        return self.decode()

    def decode(self) -> Any:
        return codec.loads(self.body)

    def __getattr__(self, name: str) -> Any:
        # The job's own fields (id, task_name, args, queue...), as before this shape.
        return getattr(self.job, name)
