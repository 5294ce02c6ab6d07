"""The only writer of queue state: enqueue, claim, finish, rescue, release, prune."""

from __future__ import annotations

import datetime
import json
import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from django.db import connections
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper

from djqueue import conf, sql
from djqueue.records import ClaimedJob, NewJob, Outcome

logger = logging.getLogger("djqueue.broker")


# Automatic preparation stays off for everything else on the connection: only the
# broker's own statements ask for it, explicitly.
_NEVER = 2**31 - 1


class _PreparingCursor(CursorWrapper):
    """Django's cursor wrapper (error translation, execute wrappers) whose statements are
    prepared on the server, so that the hot queue statements are planned once per
    connection instead of once per call."""

    def _execute(self, sql: str, params: Any, *ignored_wrapper_args: Any) -> Any:
        self.db.validate_no_broken_transaction()
        with self.db.wrap_database_errors:
            return self.cursor.execute(sql, params, prepare=True)


class _PreparingDebugCursor(CursorDebugWrapper, _PreparingCursor):
    """The same, logging queries as Django does when DEBUG is on or a test counts them."""


@contextmanager
def _cursor() -> Iterator[CursorWrapper]:
    """A cursor on the queue database's Django connection (so: in the caller's transaction)."""
    db = connections[conf.get("DATABASE")]
    if not conf.get("PREPARED_STATEMENTS"):
        with db.cursor() as cursor:
            yield cursor
        return
    db.ensure_connection()
    db.validate_thread_sharing()
    raw = db.connection
    if raw.prepare_threshold is None:
        raw.prepare_threshold = _NEVER
    wrapper = _PreparingDebugCursor if db.queries_logged else _PreparingCursor
    cursor = wrapper(psycopg.Cursor(raw), db)
    try:
        yield cursor
    finally:
        cursor.close()


def enqueue(jobs: Sequence[NewJob]) -> None:
    """Insert ``jobs`` in the caller's transaction, in chunks of ``BULK_BATCH_SIZE``."""
    if len(jobs) == 1:
        with _cursor() as cursor:
            cursor.execute(sql.ENQUEUE_ONE, _row(jobs[0]))
        return
    size = int(conf.get("BULK_BATCH_SIZE"))
    with _cursor() as cursor:
        for start in range(0, len(jobs), size):
            cursor.execute(sql.ENQUEUE_MANY, [_json_rows(jobs[start : start + size])])


def _row(job: NewJob) -> list[Any]:
    return [
        job.id,
        job.task_name,
        job.queue,
        job.priority,
        job.args,
        job.kwargs,
        job.max_attempts,
        job.eta,
        job.countdown,
        job.expires_at,
        job.expires_in,
    ]


def _json_rows(jobs: Sequence[NewJob]) -> str:
    """``jobs`` as one JSON array of rows, in ``sql.ENQUEUE_MANY``'s column order."""
    quoted: dict[str, str] = {}  # task and queue names repeat: quote each once

    def text(value: str) -> str:
        if value not in quoted:
            quoted[value] = json.dumps(value)
        return quoted[value]

    return (
        "["
        + ",".join(
            f'["{job.id}",{text(job.task_name)},{text(job.queue)},{job.priority},{job.args},'
            f"{job.kwargs},{_json(job.max_attempts)},{_json(job.eta)},{_json(job.countdown)},"
            f"{_json(job.expires_at)},{_json(job.expires_in)}]"
            for job in jobs
        )
        + "]"
    )


def _json(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, datetime.datetime):
        return f'"{value.isoformat()}"'
    return json.dumps(value)


def claim(queues: Sequence[str], limit: int, worker: str, lease: float) -> list[ClaimedJob]:
    """Take up to ``limit`` due jobs from ``queues`` for ``worker``, highest priority first."""
    if len(queues) == 1:
        query, queue_param = sql.CLAIM_ONE_QUEUE, queues[0]
    else:
        query, queue_param = sql.CLAIM_QUEUES, list(queues)  # type: ignore[assignment]
    with _cursor() as cursor:
        cursor.execute(query, [queue_param, limit, worker, lease])
        rows = cursor.fetchall()
    jobs = [
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
            worker=worker,
        )
        for row in rows
    ]
    # RETURNING gives no order: restore the claim order for fairness within the batch.
    jobs.sort(key=lambda job: (-job.priority, job.eta, job.id))
    return jobs


def finish(outcomes: Sequence[Outcome]) -> set[uuid.UUID]:
    """Record ``outcomes``; return the ids whose write was fenced off as stale."""
    if not outcomes:
        return set()
    columns: list[list[Any]] = [
        [o.job_id for o in outcomes],
        [o.attempt for o in outcomes],
        [o.state for o in outcomes],
        [o.result for o in outcomes],
        [o.error_type for o in outcomes],
        [o.error_message for o in outcomes],
        [o.traceback for o in outcomes],
        [o.retry_in for o in outcomes],
        [o.retry_at for o in outcomes],
        [o.worker for o in outcomes],
    ]
    with _cursor() as cursor:
        cursor.execute(sql.FINISH, columns)
        row = cursor.fetchone()
    written = set(row[0] or []) if row else set()
    stale = {o.job_id for o in outcomes} - written
    for job_id in stale:
        logger.warning(
            "Ignored a late outcome for job %s: it was rescued after its lease expired "
            "and belongs to a newer attempt now.",
            job_id,
        )
    return stale


def extend_leases(worker: str, lease: float) -> set[uuid.UUID]:
    """Push back the lease of every job ``worker`` holds; return the ids still held."""
    with _cursor() as cursor:
        cursor.execute(sql.EXTEND_LEASES, [lease, worker])
        return {row[0] for row in cursor.fetchall()}


def rescue() -> dict[str, int]:
    """Requeue (or fail, when out of attempts) jobs whose lease expired."""
    counts: dict[str, int] = {}
    woken: set[str] = set()
    with _cursor() as cursor:
        cursor.execute(sql.RESCUE)
        for state, queue, count in cursor.fetchall():
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
    columns: list[list[Any]] = [[j[0] for j in jobs], [j[1] for j in jobs], [j[2] for j in jobs]]
    with _cursor() as cursor:
        cursor.execute(sql.RELEASE, columns)
        queues = {row[0] for row in cursor.fetchall()}
        count = int(cursor.rowcount)
        for queue in queues:
            cursor.execute(sql.NOTIFY, [queue])
    logger.info("Worker %s handed %d job(s) back to the queue.", worker, count)
    return count


def revoke(job_id: uuid.UUID, reason: str = "revoked") -> bool:
    """Make a job that has not started never run; return whether it was revoked."""
    with _cursor() as cursor:
        cursor.execute(sql.REVOKE, [reason, job_id])
        return bool(cursor.fetchone() is not None)


def forget(job_id: uuid.UUID) -> bool:
    """Delete a finished job and its result; return whether a row was deleted."""
    with _cursor() as cursor:
        cursor.execute(sql.FORGET, [job_id])
        return bool(cursor.rowcount > 0)


def prune(older_than: float, batch: int = 10_000) -> int:
    """Delete jobs finished more than ``older_than`` seconds ago; return how many."""
    total = 0
    with _cursor() as cursor:
        while True:
            cursor.execute(sql.PRUNE, [older_than, batch])
            deleted = int(cursor.rowcount)
            total += deleted
            if deleted < batch:
                break
        floor = 10 * max(float(conf.get("LEASE_SECONDS")), float(conf.get("HEARTBEAT_SECONDS")))
        cursor.execute(sql.PRUNE_WORKERS, [older_than, floor])
    return total


def register_worker(
    name: str, hostname: str, pid: int, pool: str, concurrency: int, queues: Sequence[str]
) -> None:
    """Record a starting worker."""
    with _cursor() as cursor:
        cursor.execute(
            sql.REGISTER_WORKER,
            [name, hostname, pid, pool, concurrency, json.dumps(list(queues))],
        )


def worker_heartbeat(name: str, jobs_done: int) -> None:
    """Record that ``name`` is alive and how many jobs it has done."""
    with _cursor() as cursor:
        cursor.execute(sql.WORKER_HEARTBEAT, [jobs_done, name])


def worker_stopped(name: str, jobs_done: int) -> None:
    """Record that ``name`` stopped cleanly."""
    with _cursor() as cursor:
        cursor.execute(sql.WORKER_STOPPED, [jobs_done, name])
