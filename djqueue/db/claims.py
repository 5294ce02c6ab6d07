"""Claims: a worker taking jobs (plain, or within their limits), marking them started,
renewing its leases, asking whether to stop one, and handing jobs back; rescuing the jobs
of workers that stopped renewing."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg
from django.db import transaction

from djqueue.core import conf
from djqueue.core.records import ClaimedJob
from djqueue.db import gates, queue_gates, sql
from djqueue.db.cursors import queue_cursor

logger = logging.getLogger("djqueue.broker")


def claim(
    queues: Sequence[str], limit: int, worker: str, lease: float, *, limited: bool
) -> list[ClaimedJob]:
    """Take up to ``limit`` due jobs from ``queues`` for ``worker``, highest priority first.

    ``limited``: whether the caller runs any task with a rate or concurrency limit (the
    worker asks its registry); without one, the limited path is never taken. Jobs with
    limits are claimed only as far as their limits allow, across all workers (see
    :func:`claim_limited`); they are looked for when the plain claim comes up short, and
    at least every ``gates.INTERVAL`` seconds in any case, so that a backlog of plain
    jobs cannot starve them.
    """
    capped = queue_gates.among(queues)
    if not capped:
        return _claim_uncapped(queues, limit, worker, lease, limited)
    # Queues with limits of their own: each through its gate, after the others.
    free = [queue for queue in queues if queue not in capped]
    jobs = _claim_uncapped(free, limit, worker, lease, limited) if free else []
    for queue, limits in capped.items():
        if len(jobs) < limit:
            jobs += claim_capped(queue, limits, limit - len(jobs), worker, lease, limited)
    return jobs


def _claim_uncapped(
    queues: Sequence[str], limit: int, worker: str, lease: float, limited: bool
) -> list[ClaimedJob]:
    """:func:`claim` from queues without limits of their own."""
    jobs: list[ClaimedJob] = []
    limited_first = gates.due(limited)
    if limited_first:
        jobs = claim_limited(queues, limit, worker, lease)
    if len(jobs) < limit:
        jobs += _claim_plain(queues, limit - len(jobs), worker, lease)
    if len(jobs) < limit and not limited_first and limited:
        jobs += claim_limited(queues, limit - len(jobs), worker, lease)
    # RETURNING gives no order: restore the claim order for fairness within the batch.
    jobs.sort(key=lambda job: (-job.priority, job.eta, job.id))
    return jobs


def _claim_plain(queues: Sequence[str], limit: int, worker: str, lease: float) -> list[ClaimedJob]:
    """The hot path: jobs without limits, in one statement on the ready index."""
    queues = list(dict.fromkeys(queues))  # a queue named twice is read once
    params: dict[str, Any] = {"limit": limit, "worker": worker, "lease": lease}
    if len(queues) == 1:
        query, params["queue"] = sql.CALL_CLAIM_ONE_QUEUE, queues[0]
    else:
        query, params["queues"] = sql.CALL_CLAIM_QUEUES, queues
    with queue_cursor() as cursor:
        cursor.execute(query, params)
        return _claimed(cursor.fetchall(), worker)


def claim_capped(
    queue: str,
    limits: queue_gates.QueueLimit,
    want: int,
    worker: str,
    lease: float,
    limited: bool,
) -> list[ClaimedJob]:
    """Take up to ``want`` due jobs from ``queue``, no more than its own limits allow
    over all workers (see ``sql.LOCK_QUEUE_GATE``); none when another worker is claiming
    from it at this moment."""
    key = queue_gates.gate_key(queue)
    with transaction.atomic(using=conf.database()), queue_cursor() as cursor:
        cursor.execute(sql.LOCK_QUEUE_GATE, {"key": key})
        if cursor.fetchone() is None:
            return []
        room: dict[str, Any] = {"want": want, "queue": queue, "key": key}
        room |= {"concurrency": limits.concurrency, "rate": limits.rate}
        cursor.execute(sql.QUEUE_ROOM, {**room, "period": limits.period or 1.0})
        allowed = int(cursor.fetchone()[0])
        if allowed <= 0:
            return []
        jobs = _claim_uncapped([queue], allowed, worker, lease, limited)
        if jobs and limits.rate is not None:
            cursor.execute(sql.QUEUE_STARTS, {"key": key, "n": len(jobs), "period": limits.period})
        return jobs


# Limits locked by one limited claim at most: bounds its locks and the size of its query.
_MAX_GATES = 1000


def claim_limited(queues: Sequence[str], limit: int, worker: str, lease: float) -> list[ClaimedJob]:
    """Take up to ``limit`` due jobs with rate or concurrency limits, within the limits.

    One short transaction of two statements (see ``sql.LOCK_GATES``): lock the limits
    of the waiting jobs, then claim what they allow and record the starts.
    """
    gates.looked()
    with transaction.atomic(using=conf.database()), queue_cursor() as cursor:
        cursor.execute(sql.LOCK_GATES, [list(queues), _MAX_GATES])
        keys = [row[0] for row in cursor.fetchall()]
        if not keys:
            return []
        cursor.execute(
            sql.CLAIM_GATED,
            {
                "queues": list(queues),
                "keys": keys,
                "limit": limit,
                "worker": worker,
                "lease": lease,
            },
        )
        return _claimed(cursor.fetchall(), worker)


def _claimed(rows: Sequence[Sequence[Any]], worker: str) -> list[ClaimedJob]:
    return [
        ClaimedJob(
            id=row[0],
            task_name=row[1],
            args=row[2],
            kwargs=row[3],
            attempt=row[4],
            retries=row[5],
            queue=row[6],
            priority=row[7],
            eta=row[8],
            expired=row[9],
            revoked=row[10],
            isolate=row[11],
            workflow=row[12],
            expires_at=row[13],
            worker=worker,
            rate_limit=row[14] if len(row) > 14 else None,
            rate_period=row[15] if len(row) > 15 else None,
        )
        for row in rows
    ]


def mark_started(worker: str, started: Sequence[tuple[uuid.UUID, int, float]]) -> None:
    """Record that ``(id, attempt, seconds ago)`` jobs of ``worker`` started running."""
    if not started:
        return
    columns: list[Any] = [[s[0] for s in started], [s[1] for s in started]]
    columns += [[s[2] for s in started], worker]
    with queue_cursor() as cursor:
        cursor.execute(sql.MARK_STARTED, columns)


def renew_leases(
    worker: str,
    lease: float,
    held: Sequence[tuple[uuid.UUID, int]],
    connection: psycopg.Connection[Any] | None = None,
) -> dict[uuid.UUID, bool]:
    """Push back the leases of the ``(id, attempt)`` jobs ``worker`` holds.

    Returns the ids still held, each with whether ``revoke(terminate=True)`` asked to
    stop it; a held job missing from the answer was taken from the worker. With
    ``connection``, runs on that plain connection instead of Django's.
    """
    if not held:
        return {}
    params: list[Any] = [lease, [h[0] for h in held], [h[1] for h in held], worker]
    if connection is not None:
        with connection.cursor() as raw:
            rows = raw.execute(sql.RENEW_LEASES, params).fetchall()
    else:
        with queue_cursor() as cursor:
            cursor.execute(sql.RENEW_LEASES, params)
            rows = cursor.fetchall()
    return {row[0]: row[1] for row in rows}


def revoke_asked(job_id: uuid.UUID, attempt: int, worker: str) -> bool:
    """Whether ``revoke(terminate=True)`` was asked for the job ``worker`` holds."""
    with queue_cursor() as cursor:
        cursor.execute(sql.REVOKE_ASKED, [job_id, attempt, worker])
        row = cursor.fetchone()
    return bool(row and row[0])


def revoke_signal(job_id: uuid.UUID, attempt: int, worker: str) -> int | None:
    """The signal ``revoke(terminate=True, signal=...)`` asked for the job ``worker``
    holds (None: the pool's own way)."""
    with queue_cursor() as cursor:
        cursor.execute(sql.REVOKE_SIGNAL, [job_id, attempt, worker])
        row = cursor.fetchone()
    return None if row is None or row[0] is None else int(row[0])


def release_orphans(worker: str, held: Sequence[uuid.UUID]) -> int:
    """Hand back rows that name ``worker`` but are not among the ``held`` ids it holds.

    The caller must hold back its own claims meanwhile (see ``sql.RELEASE_ORPHANS``).
    """
    with queue_cursor() as cursor:
        cursor.execute(sql.RELEASE_ORPHANS, [worker, list(held)])
        count = int(sum(row[1] for row in cursor.fetchall()))
    if count:
        logger.warning(
            "Worker %s handed back %d job(s) it held without knowing (a lost reply).",
            worker,
            count,
        )
    return count


def rescue() -> dict[str, int]:
    """Requeue (or fail, when out of attempts) jobs whose lease expired."""
    counts: dict[str, int] = {}
    woken: set[str] = set()
    with queue_cursor() as cursor:
        cursor.execute(sql.RESCUE)
        for state, queue, count, *_ in cursor.fetchall():
            counts[state] = counts.get(state, 0) + count
            if state == "PENDING":
                woken.add(queue)
        for queue in woken:
            cursor.execute(sql.NOTIFY, [queue])
    if counts:
        logger.warning("Rescued jobs whose worker stopped renewing leases: %s", counts)
    return counts


def release(worker: str, jobs: Sequence[tuple[uuid.UUID, int, bool]]) -> int:
    """Hand ``(id, attempt, started)`` jobs back to the queue; return how many."""
    if not jobs:
        return 0
    columns: list[Any] = [[j[0] for j in jobs], [j[1] for j in jobs], [j[2] for j in jobs], worker]
    with queue_cursor() as cursor:
        cursor.execute(sql.RELEASE, columns)
        queues = {row[0] for row in cursor.fetchall()}
        count = int(cursor.rowcount)
        for queue in queues:
            cursor.execute(sql.NOTIFY, [queue])
    logger.info("Worker %s handed %d job(s) back to the queue.", worker, count)
    return count
