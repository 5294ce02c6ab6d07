"""What the prefork parent and its children say over their pipes: one JSON array a line.

JSON only, never pickle: a child and its parent trust each other, but task data must
stay data. Arguments and results are already JSON text and travel as strings. The
fields go by position, in the order of the records' own fields: on a path that carries
every job twice, key names would be most of the bytes to write and to parse.
"""

from __future__ import annotations

import datetime
import json
import uuid
from typing import Any

from djqueue.core.records import ClaimedJob, Outcome

# Compact separators and ASCII only: no raw newline or byte that needs decoding can
# appear inside a line.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode
_decode = json.JSONDecoder().decode


def job_line(job: ClaimedJob) -> bytes:
    """``job`` as one line for a child."""
    return _line(
        [
            job.id.hex,
            job.task_name,
            job.args,
            job.kwargs,
            job.attempt,
            job.retries,
            job.queue,
            job.priority,
            _time(job.eta),
            job.expired,
            job.worker,
            job.revoked,
            job.workflow,
            _time(job.expires_at),
        ]
    )


def read_job(line: bytes) -> ClaimedJob:
    """The job a :func:`job_line` carries."""
    (
        job_id,
        task_name,
        args,
        kwargs,
        attempt,
        retries,
        queue,
        priority,
        eta,
        expired,
        worker,
        revoked,
        workflow,
        expires_at,
    ) = _decode(line.decode("ascii"))
    return ClaimedJob(
        uuid.UUID(hex=job_id),
        task_name,
        args,
        kwargs,
        attempt,
        retries,
        queue,
        priority,
        _read_time(eta),
        expired,
        worker,
        revoked,
        workflow=workflow,
        expires_at=_read_time(expires_at),
    )


def outcome_line(outcome: Outcome, retire: str = "") -> bytes:
    """``outcome`` as one line for the parent; ``retire`` says why the child leaves now."""
    return _line(
        [
            outcome.job_id.hex,
            outcome.attempt,
            outcome.task_name,
            outcome.state,
            outcome.result,
            outcome.error_type,
            outcome.error_message,
            outcome.traceback,
            outcome.retry_in,
            _time(outcome.retry_at),
            outcome.runtime,
            outcome.worker,
            retire,
        ]
    )


def read_outcome(line: bytes) -> tuple[Outcome, str]:
    """The outcome an :func:`outcome_line` carries, and the child's reason to retire."""
    (
        job_id,
        attempt,
        task_name,
        state,
        result,
        error_type,
        error_message,
        traceback,
        retry_in,
        retry_at,
        runtime,
        worker,
        retire,
    ) = _decode(line.decode("ascii"))
    outcome = Outcome(
        uuid.UUID(hex=job_id),
        attempt,
        task_name,
        state,
        result,
        error_type,
        error_message,
        traceback,
        retry_in,
        _read_time(retry_at),
        runtime,
        worker,
    )
    return outcome, str(retire)


def _line(fields: list[Any]) -> bytes:
    return _encode(fields).encode("ascii") + b"\n"


def _time(value: datetime.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _read_time(value: str | None) -> datetime.datetime | None:
    return datetime.datetime.fromisoformat(value) if value is not None else None
