"""Enqueue: inserting jobs (plain, with limits or a unique key, or a workflow's, with its
groups) in the caller's transaction."""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from django.db import transaction
from django.db.backends.utils import CursorWrapper

from djqueue.core import conf
from djqueue.core.records import NewJob, Workflow
from djqueue.db import sql
from djqueue.db.cursors import queue_cursor


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
        with queue_cursor() as cursor:
            for start in range(0, len(carrying), size):
                chunk = carrying[start : start + size]
                cursor.execute(sql.ENQUEUE_WORKFLOW, [_json_rows(chunk, _workflow_json)])
        return [chosen.get(job.id, job.id) for job in jobs]
    if not jobs:
        return []
    if any(job.limited for job in jobs):
        return limits_enqueue(jobs)
    if len(jobs) == 1:
        with queue_cursor() as cursor:
            cursor.execute(sql.ENQUEUE_ONE, _row(jobs[0]))
        return [jobs[0].id]
    size = conf.integer("BULK_BATCH_SIZE")
    with queue_cursor() as cursor:
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
    with queue_cursor() as cursor:
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
    with transaction.atomic(using=conf.database()), queue_cursor() as cursor:
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
