"""The time series the console charts: written here, off the hot path, and read here.

:func:`rollup` is called by every worker now and then (``SERIES_ROLLUP_SECONDS``); an
advisory lock lets one of them in at a time. It writes the minutes that closed since
the last rollup from the jobs table, reading each minute once: a minute is closed when
no row dated in it can still be committed (``sql.ROLLUP_RANGE``). It also samples queue
depth and prunes rows older than ``SERIES_RETENTION_SECONDS``. The jobs, the claim and
the finish statements are not touched: the hot path pays nothing but the rollup's own
reads.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import connections, transaction

from djqueue.core import conf
from djqueue.db import guard, sql

# Seconds a minute must have ended before it is rolled up: rows dated in it by
# transactions we cannot see (other roles' sessions) commit within them.
SETTLE_SECONDS = 15.0
# Seconds after its end a minute is rolled up at the latest, even while a transaction
# that began before its end is still open (the jobs that transaction ends later are not
# in the series).
LONGEST_WAIT_SECONDS = 120.0
# The most minutes one rollup reads: after a long stop, later rollups catch up in
# steps, so that none runs for long.
MAX_MINUTES = 10
MINUTE = datetime.timedelta(minutes=1)
HOUR = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class Rolled:
    """What one rollup did: the minutes rewritten, ``[start, end)`` (None when no
    minute was due or another process held the lock), and whether it ran at all."""

    ran: bool
    start: datetime.datetime | None = None
    end: datetime.datetime | None = None


def rollup() -> Rolled:
    """Roll up the minutes that closed since the last rollup, sample queue depth, prune.

    Returns at once, doing nothing, when another process is rolling up.
    """
    retention = conf.optional_number("SERIES_RETENTION_SECONDS")
    with transaction.atomic(using=conf.database()), _cursor() as cursor:
        cursor.execute(sql.TRY_ROLLUP_LOCK, [sql.ROLLUP_LOCK])
        if not cursor.fetchone()[0]:
            return Rolled(ran=False)
        cursor.execute(sql.FRESH_ACTIVITY)
        cursor.execute(
            sql.ROLLUP_RANGE, {"settle": SETTLE_SECONDS, "longest": LONGEST_WAIT_SECONDS}
        )
        closed, mark, now = cursor.fetchone()
        cursor.execute(sql.SAMPLE_DEPTH)
        window = _window(closed, mark, now, retention)
        if window is not None:
            rewrite(cursor, *window)
            fold(cursor, *window)
            cursor.execute(sql.SET_MARK, [window[1]])
            if retention is not None:
                cursor.execute(sql.PRUNE_JOB_MINUTES, [retention])
                cursor.execute(sql.PRUNE_JOB_HOURS, [retention])
                cursor.execute(sql.PRUNE_QUEUE_MINUTES, [retention])
        return Rolled(True, *(window or (None, None)))


def _window(
    closed: datetime.datetime,
    mark: datetime.datetime | None,
    now: datetime.datetime,
    retention: float | None,
) -> tuple[datetime.datetime, datetime.datetime] | None:
    """The minutes to rewrite, or None when no minute closed since the last rollup."""
    if mark is not None and mark >= closed:
        return None
    start = closed - MAX_MINUTES * MINUTE if mark is None else mark
    if retention is not None:
        oldest = now - datetime.timedelta(seconds=retention)
        start = max(start, oldest.replace(second=0, microsecond=0))
    end = min(closed, start + MAX_MINUTES * MINUTE)
    return (start, end) if start < end else None


def rewrite(cursor: Any, start: datetime.datetime, end: datetime.datetime) -> None:
    """Rewrite the rollup rows of the minutes in ``[start, end)`` from the jobs table,
    and the hours they fall in from their minutes."""
    cursor.execute(sql.ROLLUP_DELETE, [start, end])
    cursor.execute(sql.ROLLUP_INSERT, {"start": start, "end": end})
    first, last = _floor_hour(start), _ceil_hour(end)
    cursor.execute(sql.HOURS_DELETE, [first, last])
    cursor.execute(sql.HOURS_INSERT, {"start": first, "end": last})


def _floor_hour(moment: datetime.datetime) -> datetime.datetime:
    # Hours as the database truncates them: in UTC (Django's connections use UTC).
    return moment.astimezone(datetime.UTC).replace(minute=0, second=0, microsecond=0)


def _ceil_hour(moment: datetime.datetime) -> datetime.datetime:
    floor = _floor_hour(moment)
    return floor if floor == moment else floor + HOUR


def _hour_span(
    start: datetime.datetime, end: datetime.datetime, step: float | None = None
) -> dict[str, datetime.datetime]:
    """The whole hours in ``[start, end)`` a read takes from the hours table (the rest
    from the minutes). With bins of ``step`` seconds from ``start``, only when each hour
    falls in one bin: ``step`` a whole number of hours and ``start`` on an hour."""
    first, last = _ceil_hour(start), _floor_hour(end)
    binned_apart = step is not None and (step % 3600 or _floor_hour(start) != start)
    if first >= last or binned_apart:
        return {"hours_from": start, "hours_to": start}
    return {"hours_from": first, "hours_to": last}


def fold(cursor: Any, start: datetime.datetime, end: datetime.datetime) -> None:
    """Add the minutes in ``[start, end)`` to the cumulative totals. The rollup calls
    it for the minutes it has just written, which it never reads again (the next rollup
    starts at ``end``), so each minute is added once."""
    if start < end:
        cursor.execute(sql.FOLD_TOTALS, {"start": start, "end": end})


def rewrite_minutes(start: datetime.datetime, end: datetime.datetime) -> None:
    """Rewrite the minutes in ``[start, end)`` again (the rollup's own step, in a
    transaction of its own; the mark is left as it is)."""
    with transaction.atomic(using=conf.database()), _cursor() as cursor:
        rewrite(cursor, start, end)


@contextmanager
def _cursor(alias: str | None = None) -> Iterator[Any]:
    """A cursor on the queue database (or on ``alias``); missing tables say to run
    ``migrate``."""
    with (
        guard.statements(alias, ours=True),
        connections[alias or conf.database()].cursor() as cursor,
    ):
        yield cursor


def _reading() -> Any:
    """A cursor for the reads below: on the monitoring database (a standby, maybe)."""
    return _cursor(conf.monitoring_database())


# Reads ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskTotal:
    """One task's jobs that ended one way over a window, with their durations."""

    task_name: str
    outcome: str
    count: int
    runtime_sum: float
    runtime_max: float | None
    runtime_buckets: Sequence[int]
    wait_sum: float
    wait_max: float | None
    wait_buckets: Sequence[int]


def outcomes_by_bin(
    start: datetime.datetime, end: datetime.datetime, step: float
) -> list[tuple[datetime.datetime, str, int]]:
    """``(bin start, outcome, jobs)`` for bins of ``step`` seconds from ``start`` (read
    from whole hours where each falls in one bin)."""
    params = {"start": start, "end": end, "step": step, "origin": start}
    with _reading() as cursor:
        cursor.execute(sql.OUTCOMES_BY_BIN, {**params, **_hour_span(start, end, step)})
        return [tuple(row) for row in cursor.fetchall()]


def depth_by_bin(
    start: datetime.datetime, end: datetime.datetime, step: float
) -> list[tuple[datetime.datetime, str, int, int, float | None]]:
    """``(bin start, queue, peak waiting, peak running, peak oldest age)`` per bin; the
    queue ``""`` is all queues together."""
    return _rows(sql.DEPTH_BY_BIN, start, end, step)  # type: ignore[return-value]


def task_totals(start: datetime.datetime, end: datetime.datetime) -> list[TaskTotal]:
    """Per task and outcome, the jobs that ended in ``[start, end)``."""
    with _reading() as cursor:
        cursor.execute(sql.TASK_TOTALS, {"start": start, "end": end, **_hour_span(start, end)})
        return [TaskTotal(*row) for row in cursor.fetchall()]


@dataclass(frozen=True)
class Total:
    """One queue, task and outcome's jobs since the totals began (only grows)."""

    queue: str
    task_name: str
    outcome: str
    count: int
    runtime_sum: float
    runtime_buckets: Sequence[int]
    wait_sum: float
    wait_buckets: Sequence[int]


def totals() -> list[Total]:
    """Every cumulative total, in the order their label values first appeared."""
    with _reading() as cursor:
        cursor.execute(sql.TOTALS)
        return [Total(*row) for row in cursor.fetchall()]


def recent_queues(since: datetime.datetime) -> set[str]:
    """The queues that had jobs waiting or held, or ended jobs, since ``since``."""
    with _reading() as cursor:
        cursor.execute(sql.RECENT_QUEUES, {"since": since})
        return {row[0] for row in cursor.fetchall()}


def mark() -> datetime.datetime | None:
    """Where the rolled-up series ends (None before the first rollup)."""
    with _reading() as cursor:
        cursor.execute(sql.SERIES_MARK)
        row = cursor.fetchone()
        return row[0] if row else None


def _rows(
    statement: str, start: datetime.datetime, end: datetime.datetime, step: float
) -> list[tuple[object, ...]]:
    params = {"start": start, "end": end, "step": step, "origin": start}
    with _reading() as cursor:
        cursor.execute(statement, params)
        return [tuple(row) for row in cursor.fetchall()]
