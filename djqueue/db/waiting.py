"""What surrounds one job that has not started: the rows that can hold it back.

The console's job page turns these facts into reasons (``djqueue.ops.waiting``); here
they are only read, each through an index, and counts of jobs ahead stop at
:data:`AHEAD_BOUND`.
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import connections
from django.db.backends.utils import CursorWrapper

from djqueue.core import conf, states
from djqueue.db import fleet, guard, queue_gates, sql, workers

# Jobs ahead are counted up to this many; more reads as "at least this many".
AHEAD_BOUND = 10_000
# Unfinished chord header jobs named on a page.
SHOWN_HEADER_JOBS = 10


@dataclass(frozen=True)
class JobBrief:
    """Another job, as a page names and links it."""

    id: uuid.UUID
    task_name: str
    state: str


@dataclass(frozen=True)
class RateUse:
    """A task's rate limit: ``limit`` starts per ``period`` seconds, ``used`` of them in
    the last period (the oldest at ``oldest``), ``ahead`` due jobs ranked first."""

    task_name: str
    limit: int
    period: float
    used: int
    oldest: datetime.datetime | None
    ahead: int


@dataclass(frozen=True)
class ConcurrencyUse:
    """A concurrency key: ``limit`` jobs at once, ``held`` claimed or running now,
    ``ahead`` due jobs of the key ranked first."""

    key: str
    limit: int
    held: int
    ahead: int


@dataclass(frozen=True)
class QueueUse:
    """A queue's own limits over all workers (None: no such limit): ``held`` of its
    jobs claimed or running now against ``concurrency``; ``used`` starts in the last
    ``period`` seconds (the oldest at ``oldest``) against ``rate``."""

    concurrency: int | None
    held: int
    rate: int | None
    period: float | None
    used: int
    oldest: datetime.datetime | None

    @property
    def full(self) -> bool:
        """Whether a limit leaves no room for another claim now."""
        return (self.concurrency is not None and self.held >= self.concurrency) or (
            self.rate is not None and self.used >= self.rate
        )


@dataclass(frozen=True)
class ChordWait:
    """The chord whose body the job is: header members not ended yet, and the header
    jobs not finished (the first :data:`SHOWN_HEADER_JOBS`)."""

    group_id: uuid.UUID
    remaining: int | None
    members: int
    unfinished: tuple[JobBrief, ...]


@dataclass(frozen=True)
class Surroundings:
    """One job and the rows around it that decide when it runs, read at ``now`` (the
    database's clock)."""

    id: uuid.UUID
    state: str
    queue: str
    task_name: str
    eta: datetime.datetime
    now: datetime.datetime
    worker: str
    claimed_at: datetime.datetime | None
    unique_key: str | None
    # A workflow step not released yet: it waits for ``parent`` or for ``chord``.
    waits_upstream: bool
    parent: JobBrief | None
    chord: ChordWait | None
    # None when the queue is not paused.
    paused_since: datetime.datetime | None
    live_serving: int
    live_workers: int
    # Due plain jobs of its queue a claim takes first (None for a limited job).
    ahead: int | None
    rate: RateUse | None
    concurrency: ConcurrencyUse | None
    # Its queue's own limits, for a waiting job of a limited queue.
    queue_limits: QueueUse | None
    # The other waiting job that holds its unique key, if one does.
    unique_holder: uuid.UUID | None
    # A claimed or running job: its lease, and whether its worker is alive (heartbeat
    # within three HEARTBEAT_SECONDS, not stopped) and when it was last heard from.
    lease_expires_at: datetime.datetime | None = None
    worker_alive: bool = True
    worker_heard_at: datetime.datetime | None = None
    worker_stopped_at: datetime.datetime | None = None

    @property
    def waiting(self) -> bool:
        return self.state in states.WAITING


def read(job_id: uuid.UUID) -> Surroundings | None:
    """The surroundings of job ``job_id``, or None when there is no such job."""
    with _cursor() as cursor:
        cursor.execute(sql.WAITING_JOB, [job_id])
        row = cursor.fetchone()
        if row is None:
            return None
        return _surroundings(cursor, row)


def _surroundings(cursor: CursorWrapper, row: Any) -> Surroundings:
    (job_id, state, queue, task_name, priority, eta, gated, rate_limit, rate_period) = row[:9]
    (concurrency_key, concurrency_limit, unique_key, worker, claimed_at) = row[9:14]
    (parent, body_of, waits_upstream, now, lease_expires_at) = row[14:]
    place = {"id": job_id, "priority": priority, "eta": eta, "bound": AHEAD_BOUND}
    waiting = state in states.WAITING
    cursor.execute(sql.QUEUE_PAUSED, [queue])
    paused = cursor.fetchone()
    live_rows = fleet.live_workers()
    heard_at, stopped_at, worker_alive = None, None, True
    if state in states.HELD:
        heard_at, stopped_at, worker_alive = _holding_worker(cursor, worker)
    return Surroundings(
        id=job_id,
        state=state,
        queue=queue,
        task_name=task_name,
        eta=eta,
        now=now,
        worker=worker,
        claimed_at=claimed_at,
        unique_key=unique_key,
        waits_upstream=waiting and waits_upstream,
        parent=_brief(cursor, parent) if waiting and waits_upstream else None,
        chord=_chord(cursor, body_of) if waiting and waits_upstream else None,
        paused_since=paused[1] if paused and paused[0] else None,
        live_serving=len(fleet.serving(live_rows).get(queue, [])),
        live_workers=len(live_rows),
        ahead=_count(cursor, sql.PLAIN_AHEAD, place, queue=queue)
        if waiting and not gated
        else None,
        rate=_rate(cursor, place, task_name, rate_limit, rate_period)
        if waiting and gated and rate_limit
        else None,
        concurrency=_concurrency(cursor, place, concurrency_key, concurrency_limit)
        if waiting and gated and concurrency_key is not None and concurrency_limit
        else None,
        queue_limits=_queue_limits(cursor, queue, paused) if waiting else None,
        unique_holder=_holder(cursor, unique_key, job_id) if unique_key else None,
        lease_expires_at=lease_expires_at,
        worker_alive=worker_alive,
        worker_heard_at=heard_at,
        worker_stopped_at=stopped_at,
    )


def _holding_worker(
    cursor: CursorWrapper, worker: str
) -> tuple[datetime.datetime | None, datetime.datetime | None, bool]:
    """When the worker holding a job was last heard from, when it stopped, and whether
    it is alive (a worker without a row is not)."""
    cursor.execute(sql.HOLDING_WORKER, [workers.live_seconds(), worker])
    row = cursor.fetchone()
    return (None, None, False) if row is None else (row[0], row[1], bool(row[2]))


def _count(cursor: CursorWrapper, statement: str, place: dict[str, Any], **more: Any) -> int:
    cursor.execute(statement, {**place, **more})
    return int(cursor.fetchone()[0])


def _rate(
    cursor: CursorWrapper, place: dict[str, Any], task: str, limit: int, period: float
) -> RateUse:
    cursor.execute(sql.RATE_USED, [f"rate:{task}", period])
    used, oldest = cursor.fetchone()
    ahead = _count(cursor, sql.RATE_AHEAD, place, task=task)
    return RateUse(task, limit, period, int(used), oldest, ahead)


def _concurrency(
    cursor: CursorWrapper, place: dict[str, Any], key: str, limit: int
) -> ConcurrencyUse:
    cursor.execute(sql.CONCURRENCY_HELD, [key])
    held = int(cursor.fetchone()[0])
    return ConcurrencyUse(key, limit, held, _count(cursor, sql.CONCURRENCY_AHEAD, place, key=key))


def _queue_limits(cursor: CursorWrapper, queue: str, row: Any) -> QueueUse | None:
    """The queue's limits and what uses them (``row``: its QUEUE_PAUSED row), or None
    for a queue without limits."""
    concurrency, rate, period = row[2:5] if row else (None, None, None)
    if concurrency is None and rate is None:
        return None
    held = 0
    if concurrency is not None:
        cursor.execute(sql.QUEUE_HELD, [queue])
        held = int(cursor.fetchone()[0])
    used, oldest = 0, None
    if rate is not None and period is not None:
        cursor.execute(sql.RATE_USED, [queue_gates.gate_key(queue), period])
        used, oldest = cursor.fetchone()
    return QueueUse(concurrency, held, rate, period, int(used), oldest)


def _brief(cursor: CursorWrapper, job_id: str | None) -> JobBrief | None:
    found = _briefs(cursor, [job_id]) if job_id else []
    return found[0] if found else None


def _briefs(cursor: CursorWrapper, job_ids: list[Any]) -> list[JobBrief]:
    cursor.execute(sql.JOBS_BRIEF, [[str(job_id) for job_id in job_ids]])
    return [JobBrief(*row) for row in cursor.fetchall()]


def _chord(cursor: CursorWrapper, group_id: str | None) -> ChordWait | None:
    if not group_id:
        return None
    cursor.execute(sql.CHORD_COUNTER, [group_id])
    row = cursor.fetchone()
    if row is None:
        return None
    remaining, stored = row
    # Django's connections read jsonb as text.
    job_ids = json.loads(stored) if isinstance(stored, str) else stored or []
    header = _briefs(cursor, list(job_ids))
    unfinished = [job for job in header if job.state not in states.READY]
    return ChordWait(
        uuid.UUID(group_id), remaining, len(job_ids), tuple(unfinished[:SHOWN_HEADER_JOBS])
    )


def _holder(cursor: CursorWrapper, key: str, job_id: uuid.UUID) -> uuid.UUID | None:
    cursor.execute(sql.UNIQUE_HOLDER, [key, job_id])
    row = cursor.fetchone()
    return None if row is None else row[0]


@contextmanager
def _cursor() -> Iterator[CursorWrapper]:
    with guard.statements(ours=True), connections[conf.database()].cursor() as cursor:
        yield cursor
