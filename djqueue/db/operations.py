"""Operations on jobs, groups and queues asked for by people and the client: revoke,
forget, retry, delete, purge, prune, pause, limits; and what a running task writes of
itself (progress, state)."""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from django.db import IntegrityError, transaction

from djqueue.core import conf
from djqueue.db import queue_gates, sql
from djqueue.db.cursors import queue_cursor


def revoke(
    job_id: uuid.UUID, terminate: bool = False, reason: str = "revoked", signum: int | None = None
) -> bool:
    """Revoke a job; return whether anything was done.

    A job that has not started ends REVOKED at once and never runs. With ``terminate``,
    a running job is asked to stop: its worker stops it (killing its process or greenlet
    where the pool allows; a prefork child gets ``signum`` when given) and it ends REVOKED.
    """
    with queue_cursor() as cursor:
        cursor.execute(sql.REVOKE, [reason, job_id])
        if cursor.fetchone() is not None:
            return True
        if not terminate:
            return False
        cursor.execute(sql.REQUEST_REVOKE, [signum, job_id])
        return bool(cursor.fetchone() is not None)


def forget(job_id: uuid.UUID) -> bool:
    """Delete a finished job and its result; return whether a row was deleted."""
    with queue_cursor() as cursor:
        cursor.execute(sql.FORGET, [job_id])
        return bool(cursor.rowcount > 0)


def save_group(group_id: uuid.UUID, job_ids: Sequence[uuid.UUID]) -> bool:
    """Store a group of jobs for ``GroupResult.restore``; return whether it was new."""
    with queue_cursor() as cursor:
        cursor.execute(sql.SAVE_GROUP, [group_id, json.dumps([str(i) for i in job_ids])])
        return bool(cursor.rowcount > 0)


def delete_group(group_id: uuid.UUID) -> bool:
    """Delete a stored group that no chord counts on; return whether one was deleted."""
    with queue_cursor() as cursor:
        cursor.execute(sql.DELETE_GROUP, [group_id])
        return bool(cursor.rowcount > 0)


def prune(
    older_than: float,
    batch: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Delete jobs finished more than ``older_than`` seconds ago; return how many.

    Deletes at most ``batch`` jobs per statement (each its own transaction unless the
    caller holds one), oldest first, each batch starting where the last one ended (see
    ``sql.PRUNE``). ``progress`` is called with the running total after each batch.
    """
    total = 0
    with queue_cursor() as cursor:
        cursor.execute(sql.PRUNE_CUTOFF, [older_than])
        before = cursor.fetchone()[0]
        after: datetime.datetime | str = "-infinity"
        while True:
            cursor.execute(sql.PRUNE, {"after": after, "before": before, "batch": batch})
            deleted, latest = cursor.fetchone()
            total += int(deleted)
            if progress is not None:
                progress(total)
            if deleted < batch:
                break
            after = latest
        floor = 10 * max(conf.number("LEASE_SECONDS"), conf.number("HEARTBEAT_SECONDS"))
        cursor.execute(sql.PRUNE_WORKERS, [older_than, floor])
        while True:
            cursor.execute(sql.PRUNE_GROUPS, [older_than, batch])
            if int(cursor.rowcount) < batch:
                break
    return total


# Times a retry of failed jobs is tried again when a unique key was taken meanwhile.
_RETRY_ROUNDS = 3


def retry_failed(job_ids: Sequence[uuid.UUID]) -> int:
    """Queue failed jobs again (same ids and arguments, a new attempt); return how many.

    A unique job whose key another waiting job holds stays failed (see
    ``sql.RETRY_FAILED``).
    """
    return len(requeue_failed(job_ids))


def requeue_failed(job_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """Queue failed jobs again as :func:`retry_failed` does; return the ids queued.

    The ids come from the statement that queued them: a worker may claim a job the
    moment it is queued, so its state read afterwards would no longer say so.
    """
    return [job_id for chunk in _chunks(job_ids) for job_id in _retry_chunk(chunk)]


def _retry_chunk(chunk: list[uuid.UUID]) -> list[uuid.UUID]:
    alias = conf.database()
    for _ in range(_RETRY_ROUNDS):
        try:
            # A savepoint: a duplicate enqueued between the statement's look and its
            # write fails only this try, not the caller's transaction.
            with transaction.atomic(using=alias), queue_cursor() as cursor:
                cursor.execute(sql.RETRY_FAILED, [chunk])
                return [job_id for row in cursor.fetchall() for job_id in row[1]]
        except IntegrityError:
            continue
    return []


def delete_finished(job_ids: Sequence[uuid.UUID]) -> int:
    """Delete finished jobs among ``job_ids``; return how many."""
    total = 0
    with queue_cursor() as cursor:
        for chunk in _chunks(job_ids):
            cursor.execute(sql.DELETE_FINISHED, [chunk])
            total += int(cursor.rowcount)
    return total


def purge(queue: str) -> int:
    """Delete the waiting jobs of ``queue``; return how many."""
    with queue_cursor() as cursor:
        cursor.execute(sql.PURGE, [queue])
        return int(cursor.rowcount)


def set_paused(queue: str, paused: bool) -> None:
    """Pause or resume ``queue``: workers stop or start claiming from it."""
    with queue_cursor() as cursor:
        cursor.execute(sql.SET_PAUSED, [queue, paused])


def set_rate_limit(task_name: str, rate: tuple[int, float] | None) -> int:
    """Give the waiting jobs of ``task_name`` the rate limit ``(count, period)`` (None:
    none); return how many changed."""
    count, period = rate if rate is not None else (None, None)
    with queue_cursor() as cursor:
        cursor.execute(sql.SET_RATE_LIMIT, {"task": task_name, "count": count, "period": period})
        return int(cursor.rowcount)


def set_claimed_rate_limit(
    job_id: uuid.UUID, attempt: int, worker: str, rate: tuple[int, float] | None
) -> bool:
    """Give a job ``worker`` holds unstarted the rate limit ``(count, period)`` (None:
    none), before it hands the job back; False if the job is no longer its own."""
    count, period = rate if rate is not None else (None, None)
    with queue_cursor() as cursor:
        cursor.execute(
            sql.SET_CLAIMED_RATE_LIMIT,
            {"id": job_id, "attempt": attempt, "worker": worker, "count": count, "period": period},
        )
        return bool(cursor.rowcount)


def paused_queues() -> set[str]:
    """The queues paused now. Also takes note of the queues' own limits, which later
    claims in this process keep to (:mod:`djqueue.db.queue_gates`)."""
    with queue_cursor() as cursor:
        cursor.execute(sql.QUEUE_STATES)
        rows = cursor.fetchall()
    queue_gates.update(
        (name, queue_gates.QueueLimit(concurrency, rate, period))
        for name, _, concurrency, rate, period in rows
        if concurrency is not None or rate is not None
    )
    return {name for name, paused, *_ in rows if paused}


def set_queue_limits(queue: str, concurrency: int | None, rate: tuple[int, float] | None) -> None:
    """Limit ``queue`` over all workers together: at most ``concurrency`` of its jobs
    held by workers at once, at most ``rate`` ``(count, period)`` started per period
    (None: no such limit). Workers keep to it within a second."""
    count, period = rate if rate is not None else (None, None)
    with queue_cursor() as cursor:
        cursor.execute(
            sql.SET_QUEUE_LIMITS,
            {"queue": queue, "concurrency": concurrency, "rate": count, "period": period},
        )


def update_progress(job_id: uuid.UUID, attempt: int, worker: str, progress: dict[str, Any]) -> bool:
    """Record a running job's progress; False if the job is no longer that run."""
    with queue_cursor() as cursor:
        cursor.execute(sql.UPDATE_PROGRESS, [json.dumps(progress), job_id, attempt, worker])
        return bool(cursor.rowcount)


def exists(job_id: uuid.UUID) -> bool:
    """Whether job ``job_id`` has a row (read on the queue database's connection)."""
    with queue_cursor() as cursor:
        cursor.execute(sql.JOB_EXISTS, [job_id])
        return cursor.fetchone() is not None


def update_state(job_id: uuid.UUID, attempt: int, worker: str, state: str, meta: str) -> bool:
    """Record the state a running job reports and its meta (encoded JSON); False if the
    job is no longer that run."""
    with queue_cursor() as cursor:
        cursor.execute(sql.UPDATE_STATE, [state, meta, job_id, attempt, worker])
        return bool(cursor.rowcount)


def _chunks(job_ids: Sequence[uuid.UUID], size: int = 5000) -> list[list[uuid.UUID]]:
    ids = list(job_ids)
    return [ids[start : start + size] for start in range(0, len(ids), size)]
