"""What the prefork parent and its children say over their pipes: one JSON object a line.

JSON only, never pickle: a child and its parent trust each other, but task data must
stay data. Arguments and results are already JSON text and travel as strings.
"""

from __future__ import annotations

import datetime
import json
import uuid
from typing import Any

from djqueue.records import ClaimedJob, Outcome


def job_line(job: ClaimedJob) -> bytes:
    """``job`` as one line for a child."""
    return _line(
        {
            "id": str(job.id),
            "task_name": job.task_name,
            "args": job.args,
            "kwargs": job.kwargs,
            "attempt": job.attempt,
            "retries": job.retries,
            "queue": job.queue,
            "priority": job.priority,
            "eta": _time(job.eta),
            "expired": job.expired,
            "worker": job.worker,
            "revoked": job.revoked,
        }
    )


def read_job(line: bytes) -> ClaimedJob:
    """The job a :func:`job_line` carries."""
    data = json.loads(line)
    return ClaimedJob(
        id=uuid.UUID(data["id"]),
        task_name=data["task_name"],
        args=data["args"],
        kwargs=data["kwargs"],
        attempt=data["attempt"],
        retries=data["retries"],
        queue=data["queue"],
        priority=data["priority"],
        eta=_read_time(data["eta"]),
        expired=data["expired"],
        worker=data["worker"],
        revoked=data.get("revoked", False),
    )


def outcome_line(outcome: Outcome, retire: str = "") -> bytes:
    """``outcome`` as one line for the parent; ``retire`` says why the child leaves now."""
    return _line(
        {
            "job_id": str(outcome.job_id),
            "attempt": outcome.attempt,
            "task_name": outcome.task_name,
            "state": outcome.state,
            "result": outcome.result,
            "error_type": outcome.error_type,
            "error_message": outcome.error_message,
            "traceback": outcome.traceback,
            "retry_in": outcome.retry_in,
            "retry_at": _time(outcome.retry_at),
            "runtime": outcome.runtime,
            "worker": outcome.worker,
            "retire": retire,
        }
    )


def read_outcome(line: bytes) -> tuple[Outcome, str]:
    """The outcome an :func:`outcome_line` carries, and the child's reason to retire."""
    data = json.loads(line)
    outcome = Outcome(
        job_id=uuid.UUID(data["job_id"]),
        attempt=data["attempt"],
        task_name=data["task_name"],
        state=data["state"],
        result=data["result"],
        error_type=data["error_type"],
        error_message=data["error_message"],
        traceback=data["traceback"],
        retry_in=data["retry_in"],
        retry_at=_read_time(data["retry_at"]),
        runtime=data["runtime"],
        worker=data["worker"],
    )
    return outcome, str(data["retire"])


def _line(data: dict[str, Any]) -> bytes:
    # ensure_ascii keeps every line free of raw newlines and of bytes that need decoding.
    return json.dumps(data, separators=(",", ":")).encode("ascii") + b"\n"


def _time(value: datetime.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _read_time(value: str | None) -> datetime.datetime | None:
    return datetime.datetime.fromisoformat(value) if value is not None else None
