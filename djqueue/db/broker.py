"""The only writer of queue state: enqueue, claim, finish, rescue, release, prune."""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from django.db import IntegrityError, connections, transaction
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper

from djqueue.core import conf
from djqueue.core.records import ClaimedJob, NewJob, Outcome, Workflow
from djqueue.db import gates, schema, sql

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
    """A cursor on the queue database's Django connection (so: in the caller's transaction).

    A statement that finds djqueue's tables missing or out of date raises
    ``MigrationsMissing``, which says to run ``migrate``.
    """
    with schema.translated(ours=True), _django_cursor() as cursor:
        yield cursor


@contextmanager
def _django_cursor() -> Iterator[CursorWrapper]:
    db = connections[conf.database()]
    if not conf.flag("PREPARED_STATEMENTS"):
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


def enqueue(jobs: Sequence[NewJob]) -> list[uuid.UUID]:
    """Insert ``jobs`` in the caller's transaction, in chunks of ``BULK_BATCH_SIZE``.

    Returns each job's id, in order; for a duplicate of a unique job that is waiting
    (not inserted), the id of that waiting job instead.
    """
    if any(job.workflow is not None for job in jobs):
        # Jobs with per-call options or sent by a running task carry a continuation:
        # the workflow statement writes it.
        plain = [job for job in jobs if job.workflow is None]
        chosen = dict(zip([job.id for job in plain], enqueue(plain), strict=True))
        carrying = [job for job in jobs if job.workflow is not None]
        size = conf.integer("BULK_BATCH_SIZE")
        # No groups to write with them: chunk by chunk, in the caller's transaction, as
        # plain jobs are (no transaction of its own, which would cost two round trips).
        with _cursor() as cursor:
            for start in range(0, len(carrying), size):
                chunk = carrying[start : start + size]
                cursor.execute(sql.ENQUEUE_WORKFLOW, [_json_rows(chunk, _workflow_json)])
        return [chosen.get(job.id, job.id) for job in jobs]
    if not jobs:
        return []
    if any(job.limited for job in jobs):
        return limits_enqueue(jobs)
    if len(jobs) == 1:
        with _cursor() as cursor:
            cursor.execute(sql.ENQUEUE_ONE, _row(jobs[0]))
        return [jobs[0].id]
    size = conf.integer("BULK_BATCH_SIZE")
    with _cursor() as cursor:
        for start in range(0, len(jobs), size):
            cursor.execute(sql.ENQUEUE_MANY, [_json_rows(jobs[start : start + size])])
    return [job.id for job in jobs]


# How often a unique enqueue looks again when the holder it conflicted with changed
# state in between (it started, or its window lapsed). Each round needs another
# concurrent change to go round again, so a few rounds settle it.
_UNIQUE_ROUNDS = 5


def limits_enqueue(jobs: Sequence[NewJob]) -> list[uuid.UUID]:
    """Insert jobs some of which have limits or unique keys; see :func:`enqueue`."""
    chosen: dict[uuid.UUID, uuid.UUID] = {}  # job id -> id that stands for it
    pending = list(jobs)
    with _cursor() as cursor:
        for _ in range(_UNIQUE_ROUNDS):
            inserted = _insert_limited(cursor, pending)
            chosen.update((job_id, job_id) for job_id in inserted)
            pending = [job for job in pending if job.id not in inserted]
            if not pending:
                break
            pending = _resolve_duplicates(cursor, pending, chosen)
            if not pending:
                break
        else:
            raise RuntimeError(
                f"could not settle {len(pending)} unique job(s) after {_UNIQUE_ROUNDS} "
                "rounds: their keys kept changing hands"
            )
    return [chosen[job.id] for job in jobs]


def _insert_limited(cursor: CursorWrapper, jobs: Sequence[NewJob]) -> set[uuid.UUID]:
    """Insert ``jobs`` (duplicates of waiting unique jobs are skipped); return the ids."""
    inserted: set[uuid.UUID] = set()
    if len(jobs) == 1:
        cursor.execute(sql.ENQUEUE_LIMITED_ONE, [*_row(jobs[0]), *_limits_row(jobs[0])])
        inserted.update(row[0] for row in cursor.fetchall())
        return inserted
    size = conf.integer("BULK_BATCH_SIZE")
    for start in range(0, len(jobs), size):
        cursor.execute(
            sql.ENQUEUE_LIMITED_MANY, [_json_rows(jobs[start : start + size], _limits_json)]
        )
        inserted.update(row[0] for row in cursor.fetchall())
    return inserted


def _resolve_duplicates(
    cursor: CursorWrapper, jobs: Sequence[NewJob], chosen: dict[uuid.UUID, uuid.UUID]
) -> list[NewJob]:
    """Point duplicates at their key's waiting holder; return the jobs to insert again.

    Those are jobs whose holder is gone by now (it started or finished) and jobs whose
    holder's ``unique_for`` window is over (it gives up the key here).
    """
    keys = sorted({job.unique_key for job in jobs if job.unique_key is not None})
    cursor.execute(sql.UNIQUE_HOLDERS, [keys])
    holders = {key: (job_id, lapsed) for key, job_id, lapsed in cursor.fetchall()}
    lapsed_keys = [key for key, (_, lapsed) in holders.items() if lapsed]
    if lapsed_keys:
        cursor.execute(sql.UNIQUE_RELEASE, [lapsed_keys])
    again = []
    for job in jobs:
        holder = holders.get(job.unique_key) if job.unique_key is not None else None
        if holder is None or holder[1]:
            again.append(job)
        else:
            chosen[job.id] = holder[0]
    # Two duplicates of one lapsed or vanished key in this batch: the first is inserted
    # next round and the second then finds it as the holder.
    return again


def enqueue_workflow(workflow: Workflow) -> None:
    """Insert a workflow: its groups (chord counters) and jobs, all or nothing.

    Jobs carry their continuation (``NewJob.workflow``); ``waiting`` ones are not due
    until the job before them ends (see ``sql.ENQUEUE_WORKFLOW``).
    """
    jobs = workflow.jobs
    size = conf.integer("BULK_BATCH_SIZE")
    with transaction.atomic(using=conf.database()), _cursor() as cursor:
        if workflow.groups:
            groups = [group.data() for group in workflow.groups]
            cursor.execute(sql.INSERT_GROUPS, [json.dumps(groups)])
        for start in range(0, len(jobs), size):
            cursor.execute(
                sql.ENQUEUE_WORKFLOW, [_json_rows(jobs[start : start + size], _workflow_json)]
            )


def _limits_row(job: NewJob) -> list[Any]:
    return [
        job.rate_limit,
        job.rate_period,
        job.concurrency_key,
        job.concurrency_limit,
        job.unique_key,
        job.unique_for,
    ]


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


def _json_rows(jobs: Sequence[NewJob], extra: Callable[[NewJob], list[str]] | None = None) -> str:
    """``jobs`` as one JSON array of rows, in ``sql.ENQUEUE_MANY``'s column order.

    ``extra`` adds JSON values after those columns (limits, or a workflow's continuation),
    for the statements that take more.
    """
    quoted: dict[str, str] = {}  # task and queue names repeat: quote each once

    def text(value: str) -> str:
        if value not in quoted:
            quoted[value] = json.dumps(value)
        return quoted[value]

    def row(job: NewJob) -> str:
        common = (
            f'"{job.id}",{text(job.task_name)},{text(job.queue)},{job.priority},{job.args},'
            f"{job.kwargs},{_json(job.max_attempts)},{_json(job.eta)},{_json(job.countdown)},"
            f"{_json(job.expires_at)},{_json(job.expires_in)}"
        )
        return f"[{common}]" if extra is None else f"[{common},{','.join(extra(job))}]"

    return "[" + ",".join(row(job) for job in jobs) + "]"


def _limits_json(job: NewJob) -> list[str]:
    return [_json(value) for value in _limits_row(job)]


def _workflow_json(job: NewJob) -> list[str]:
    if job.unique_key is not None:
        raise ValueError(f"{job.task_name}: a job with a unique key cannot carry a workflow")
    return [
        job.workflow.encode() if job.workflow else "null",
        _json(job.waiting),
        _json(job.rate_limit),
        _json(job.rate_period),
        _json(job.concurrency_key),
        _json(job.concurrency_limit),
    ]


def _json(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, datetime.datetime):
        return f'"{value.isoformat()}"'
    return json.dumps(value)


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
    if len(queues) == 1:
        query, queue_param = sql.CLAIM_ONE_QUEUE, queues[0]
    else:
        query, queue_param = sql.CLAIM_QUEUES, list(queues)  # type: ignore[assignment]
    with _cursor() as cursor:
        cursor.execute(query, [queue_param, limit, worker, lease])
        return _claimed(cursor.fetchall(), worker)


# Limits locked by one limited claim at most: bounds its locks and the size of its query.
_MAX_GATES = 1000


def claim_limited(queues: Sequence[str], limit: int, worker: str, lease: float) -> list[ClaimedJob]:
    """Take up to ``limit`` due jobs with rate or concurrency limits, within the limits.

    One short transaction of two statements (see ``sql.LOCK_GATES``): lock the limits
    of the waiting jobs, then claim what they allow and record the starts.
    """
    gates.looked()
    with transaction.atomic(using=conf.database()), _cursor() as cursor:
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


def finish(outcomes: Sequence[Outcome]) -> set[uuid.UUID]:
    """Record ``outcomes``; return the ids whose write was fenced off as stale.

    Jobs of a workflow are left out by the hot statement and written by a second one
    that also starts what follows them (see ``sql.FINISH_WORKFLOW``). Outcomes of jobs
    that killed their process are counted first (see :func:`_count_kills`).
    """
    if not outcomes:
        return set()
    if any(o.killed for o in outcomes):
        with transaction.atomic(using=conf.database()):
            return _finish_all(_count_kills(outcomes))
    return _finish_all(outcomes)


def _finish_all(outcomes: Sequence[Outcome]) -> set[uuid.UUID]:
    # A retry, or a requeue (Reject(requeue=True)), goes back to waiting.
    retrying = any(o.state in ("RETRY", "PENDING") for o in outcomes)
    written = _finish(sql.FINISH_RETRYING if retrying else sql.FINISH, outcomes)
    if len(written) < len(outcomes):
        rest = [o for o in outcomes if o.job_id not in written]
        written |= _finish(sql.FINISH_WORKFLOW, rest)
    stale = {o.job_id for o in outcomes} - written
    for job_id in stale:
        logger.warning(
            "Ignored a late outcome for job %s: it was rescued after its lease expired "
            "and belongs to a newer attempt now.",
            job_id,
        )
    return stale


def _finish(statement: str, outcomes: Sequence[Outcome]) -> set[uuid.UUID]:
    """Run a finish statement for ``outcomes``; return the ids it wrote."""
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
        [o.runtime for o in outcomes],
    ]
    with _cursor() as cursor:
        cursor.execute(statement, columns)
        row = cursor.fetchone()
    return set(row[0] or []) if row else set()


def _count_kills(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """Count the kills among ``outcomes``; quarantine jobs that reached the limit.

    A job whose run killed its process ``QUARANTINE_AFTER_KILLS`` times ends FAILURE
    instead of running again. The count is written before the outcome: should the
    outcome then be lost, the kill still counts, as it happened.
    """
    killed = [o for o in outcomes if o.killed]
    columns: list[list[Any]] = [
        [o.job_id for o in killed],
        [o.attempt for o in killed],
        [o.worker for o in killed],
    ]
    with _cursor() as cursor:
        cursor.execute(sql.COUNT_KILL, columns)
        kills = {row[0]: row[1] for row in cursor.fetchall()}
    limit = conf.optional_integer("QUARANTINE_AFTER_KILLS")
    return [_quarantined(o, kills[o.job_id], limit) if o.job_id in kills else o for o in outcomes]


def _quarantined(outcome: Outcome, kills: int, limit: int | None) -> Outcome:
    if limit is None or kills < limit:
        return outcome
    return dataclasses.replace(
        outcome,
        state="FAILURE",
        error_type="djqueue.exceptions.WorkerLostError",
        error_message=(
            f"killed its worker process {kills} times (the last one {outcome.killed}); "
            "not run again: quarantined after QUARANTINE_AFTER_KILLS kills"
        ),
        retry_in=None,
        retry_at=None,
    )


def mark_started(worker: str, started: Sequence[tuple[uuid.UUID, int, float]]) -> None:
    """Record that ``(id, attempt, seconds ago)`` jobs of ``worker`` started running."""
    if not started:
        return
    columns: list[Any] = [[s[0] for s in started], [s[1] for s in started]]
    columns += [[s[2] for s in started], worker]
    with _cursor() as cursor:
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
        with _cursor() as cursor:
            cursor.execute(sql.RENEW_LEASES, params)
            rows = cursor.fetchall()
    return {row[0]: row[1] for row in rows}


def revoke_asked(job_id: uuid.UUID, attempt: int, worker: str) -> bool:
    """Whether ``revoke(terminate=True)`` was asked for the job ``worker`` holds."""
    with _cursor() as cursor:
        cursor.execute(sql.REVOKE_ASKED, [job_id, attempt, worker])
        row = cursor.fetchone()
    return bool(row and row[0])


def revoke_signal(job_id: uuid.UUID, attempt: int, worker: str) -> int | None:
    """The signal ``revoke(terminate=True, signal=...)`` asked for the job ``worker``
    holds (None: the pool's own way)."""
    with _cursor() as cursor:
        cursor.execute(sql.REVOKE_SIGNAL, [job_id, attempt, worker])
        row = cursor.fetchone()
    return None if row is None or row[0] is None else int(row[0])


def release_orphans(worker: str, held: Sequence[uuid.UUID]) -> int:
    """Hand back rows that name ``worker`` but are not among the ``held`` ids it holds.

    The caller must hold back its own claims meanwhile (see ``sql.RELEASE_ORPHANS``).
    """
    with _cursor() as cursor:
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
    with _cursor() as cursor:
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
    with _cursor() as cursor:
        cursor.execute(sql.RELEASE, columns)
        queues = {row[0] for row in cursor.fetchall()}
        count = int(cursor.rowcount)
        for queue in queues:
            cursor.execute(sql.NOTIFY, [queue])
    logger.info("Worker %s handed %d job(s) back to the queue.", worker, count)
    return count


def revoke(
    job_id: uuid.UUID, terminate: bool = False, reason: str = "revoked", signum: int | None = None
) -> bool:
    """Revoke a job; return whether anything was done.

    A job that has not started ends REVOKED at once and never runs. With ``terminate``,
    a running job is asked to stop: its worker stops it (killing its process or greenlet
    where the pool allows; a prefork child gets ``signum`` when given) and it ends REVOKED.
    """
    with _cursor() as cursor:
        cursor.execute(sql.REVOKE, [reason, job_id])
        if cursor.fetchone() is not None:
            return True
        if not terminate:
            return False
        cursor.execute(sql.REQUEST_REVOKE, [signum, job_id])
        return bool(cursor.fetchone() is not None)


def forget(job_id: uuid.UUID) -> bool:
    """Delete a finished job and its result; return whether a row was deleted."""
    with _cursor() as cursor:
        cursor.execute(sql.FORGET, [job_id])
        return bool(cursor.rowcount > 0)


def save_group(group_id: uuid.UUID, job_ids: Sequence[uuid.UUID]) -> bool:
    """Store a group of jobs for ``GroupResult.restore``; return whether it was new."""
    with _cursor() as cursor:
        cursor.execute(sql.SAVE_GROUP, [group_id, json.dumps([str(i) for i in job_ids])])
        return bool(cursor.rowcount > 0)


def delete_group(group_id: uuid.UUID) -> bool:
    """Delete a stored group that no chord counts on; return whether one was deleted."""
    with _cursor() as cursor:
        cursor.execute(sql.DELETE_GROUP, [group_id])
        return bool(cursor.rowcount > 0)


def prune(
    older_than: float,
    batch: int = 10_000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Delete jobs finished more than ``older_than`` seconds ago; return how many.

    ``progress`` is called with the running total after each batch.
    """
    total = 0
    with _cursor() as cursor:
        while True:
            cursor.execute(sql.PRUNE, [older_than, batch])
            deleted = int(cursor.rowcount)
            total += deleted
            if progress is not None:
                progress(total)
            if deleted < batch:
                break
        floor = 10 * max(conf.number("LEASE_SECONDS"), conf.number("HEARTBEAT_SECONDS"))
        cursor.execute(sql.PRUNE_WORKERS, [older_than, floor])
        while True:
            cursor.execute(sql.PRUNE_GROUPS, [older_than, batch])
            if int(cursor.rowcount) < batch:
                break
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


def worker_heartbeat(
    name: str, jobs_done: int, children: Sequence[Any] = (), concurrency: int | None = None
) -> None:
    """Record that ``name`` is alive, how many jobs it has done, its children and (when
    given) the size of its pool."""
    with _cursor() as cursor:
        cursor.execute(
            sql.WORKER_HEARTBEAT, [jobs_done, json.dumps(list(children)), concurrency, name]
        )


# Times a retry of failed jobs is tried again when a unique key was taken meanwhile.
_RETRY_ROUNDS = 3


def retry_failed(job_ids: Sequence[uuid.UUID]) -> int:
    """Queue failed jobs again (same ids and arguments, a new attempt); return how many.

    A unique job whose key another waiting job holds stays failed (see
    ``sql.RETRY_FAILED``).
    """
    return sum(_retry_chunk(chunk) for chunk in _chunks(job_ids))


def _retry_chunk(chunk: list[uuid.UUID]) -> int:
    alias = conf.database()
    for _ in range(_RETRY_ROUNDS):
        try:
            # A savepoint: a duplicate enqueued between the statement's look and its
            # write fails only this try, not the caller's transaction.
            with transaction.atomic(using=alias), _cursor() as cursor:
                cursor.execute(sql.RETRY_FAILED, [chunk])
                return sum(row[1] for row in cursor.fetchall())
        except IntegrityError:
            continue
    return 0


def delete_finished(job_ids: Sequence[uuid.UUID]) -> int:
    """Delete finished jobs among ``job_ids``; return how many."""
    total = 0
    with _cursor() as cursor:
        for chunk in _chunks(job_ids):
            cursor.execute(sql.DELETE_FINISHED, [chunk])
            total += int(cursor.rowcount)
    return total


def purge(queue: str) -> int:
    """Delete the waiting jobs of ``queue``; return how many."""
    with _cursor() as cursor:
        cursor.execute(sql.PURGE, [queue])
        return int(cursor.rowcount)


def set_paused(queue: str, paused: bool) -> None:
    """Pause or resume ``queue``: workers stop or start claiming from it."""
    with _cursor() as cursor:
        cursor.execute(sql.SET_PAUSED, [queue, paused])


def set_rate_limit(task_name: str, rate: tuple[int, float] | None) -> int:
    """Give the waiting jobs of ``task_name`` the rate limit ``(count, period)`` (None:
    none); return how many changed."""
    count, period = rate if rate is not None else (None, None)
    with _cursor() as cursor:
        cursor.execute(sql.SET_RATE_LIMIT, {"task": task_name, "count": count, "period": period})
        return int(cursor.rowcount)


def set_claimed_rate_limit(
    job_id: uuid.UUID, attempt: int, worker: str, rate: tuple[int, float] | None
) -> bool:
    """Give a job ``worker`` holds unstarted the rate limit ``(count, period)`` (None:
    none), before it hands the job back; False if the job is no longer its own."""
    count, period = rate if rate is not None else (None, None)
    with _cursor() as cursor:
        cursor.execute(
            sql.SET_CLAIMED_RATE_LIMIT,
            {"id": job_id, "attempt": attempt, "worker": worker, "count": count, "period": period},
        )
        return bool(cursor.rowcount)


def set_worker_queues(name: str, queues: Sequence[str]) -> None:
    """Record the queues worker ``name`` takes jobs from now."""
    with _cursor() as cursor:
        cursor.execute(sql.SET_WORKER_QUEUES, [json.dumps(list(queues)), name])


def paused_queues() -> set[str]:
    """The queues paused now."""
    with _cursor() as cursor:
        cursor.execute(sql.PAUSED_QUEUES)
        return {row[0] for row in cursor.fetchall()}


def update_progress(job_id: uuid.UUID, attempt: int, worker: str, progress: dict[str, Any]) -> bool:
    """Record a running job's progress; False if the job is no longer that run."""
    with _cursor() as cursor:
        cursor.execute(sql.UPDATE_PROGRESS, [json.dumps(progress), job_id, attempt, worker])
        return bool(cursor.rowcount)


def exists(job_id: uuid.UUID) -> bool:
    """Whether job ``job_id`` has a row (read on the queue database's connection)."""
    with _cursor() as cursor:
        cursor.execute(sql.JOB_EXISTS, [job_id])
        return cursor.fetchone() is not None


def update_state(job_id: uuid.UUID, attempt: int, worker: str, state: str, meta: str) -> bool:
    """Record the state a running job reports and its meta (encoded JSON); False if the
    job is no longer that run."""
    with _cursor() as cursor:
        cursor.execute(sql.UPDATE_STATE, [state, meta, job_id, attempt, worker])
        return bool(cursor.rowcount)


def _chunks(job_ids: Sequence[uuid.UUID], size: int = 5000) -> list[list[uuid.UUID]]:
    ids = list(job_ids)
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def worker_stopped(name: str, jobs_done: int) -> None:
    """Record that ``name`` stopped cleanly."""
    with _cursor() as cursor:
        cursor.execute(sql.WORKER_STOPPED, [jobs_done, name])
