"""The phases of ``size.py``, each on a table that holds other rows: drain and pick-up
of the benchmark's own jobs, history written at a fixed rate while pruning deletes what
passed the retention, jobs sent at a fixed rate while a transaction holds back vacuum.

Every phase finds its own jobs by ``id > mark`` (ids grow with time), so that it never
counts or truncates the millions of rows around them. Run with Django set up
(``benchmarks.settings``); the database is the default alias's.
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection

from benchmarks import common, djqueue_side
from benchmarks.size_fill import _ID

# Jobs a producer inserts on the server: plain no-op jobs as delay() makes them, due now.
PRODUCE = """
WITH made AS (
    INSERT INTO djqueue_job (id, task_name, queue, priority, state, args, kwargs, attempt,
                             retries, eta, enqueued_at, worker, error_type, error_message,
                             traceback)
    SELECT {id}, 'bench.noop', 'default', 0, 'PENDING', jsonb_build_array(n), '{{}}'::jsonb,
           0, 0, now(), now(), '', '', '', ''
    FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS n
    RETURNING id
)
SELECT count(*), pg_notify('djqueue', 'default') FROM made
""".format(id=_ID.format(t="clock_timestamp()", n="n"))

# New history: jobs inserted waiting and finished in the same transaction, so that each
# leaves a dead row version behind as a claimed and finished job does.
HISTORY_INSERT = """
INSERT INTO djqueue_job (id, task_name, queue, priority, state, args, kwargs, attempt,
                         retries, eta, enqueued_at, worker, error_type, error_message,
                         traceback)
SELECT {id}, 'bench.task_' || (n %% 10), 'default', 0, 'PENDING', jsonb_build_array(n),
       '{{}}'::jsonb, 0, 0, now(), now(), '', '', '', ''
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS n
RETURNING id
""".format(id=_ID.format(t="clock_timestamp()", n="n"))
HISTORY_FINISH = """
UPDATE djqueue_job SET state = 'SUCCESS', attempt = 1, worker = 'bench-worker',
       claimed_at = now(), started_at = now(), finished_at = now(), result = 'null'::jsonb
WHERE id = ANY(%s::uuid[])
"""


def connect(database: str | None = None) -> psycopg.Connection[Any]:
    """A connection of its own to the benchmark database, or ``database`` on the same
    server (autocommit)."""
    db = settings.DATABASES["default"]
    params = {k: db[k.upper()] for k in ("user", "host", "port", "password") if db[k.upper()]}
    return psycopg.connect(dbname=database or db["NAME"], autocommit=True, **params)


def mark() -> str:
    """An id below every id made from now on (ids begin with their milliseconds): the
    phase's own jobs come after it, the millions before it are never looked at."""
    milliseconds = int(time.time() * 1000) - 1
    return str(uuid.UUID(int=(milliseconds << 80) | (0x7 << 76)))


def forget_since(since: str) -> None:
    """Delete the phase's own jobs and the workers' rows, leaving the rest as it is."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM djqueue_job WHERE id > %s", [since])
        cursor.execute("DELETE FROM djqueue_worker")


def drain(jobs: int, spec: djqueue_side.WorkerSpec, timeout: float) -> dict[str, Any]:
    """``jobs`` no-op jobs sent in bulk, then drained by ``spec``'s workers: jobs/s from
    the first start to the last finish (database clock); each checked to have run once."""
    from benchmarks.benchapp.tasks import noop

    since = mark()
    noop.delay_many([(index,) for index in range(jobs)])
    logs = Path(tempfile.mkdtemp(prefix="djqueue-size-"))
    workers = djqueue_side.start_workers(spec, logs)
    try:
        done = common.wait_until(lambda: _finished(since) >= jobs, timeout, 0.5)
    finally:
        common.stop(workers)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT extract(epoch FROM min(started_at)), extract(epoch FROM max(finished_at)),
                   count(*) FILTER (WHERE state = 'SUCCESS' AND attempt = 1)
            FROM djqueue_job WHERE id > %s
            """,
            [since],
        )
        first, last, once = cursor.fetchone()
    forget_since(since)
    if not done:
        raise RuntimeError(f"drain timed out:\n{common.tail(logs / 'worker-0.log')}")
    return {"drain": common.rate(jobs, float(last) - float(first)), "drain_ok": once == jobs}


def pick_up(samples: int, spec: djqueue_side.WorkerSpec, timeout: float) -> dict[str, Any]:
    """``stamp`` jobs sent one at a time to one idle worker: enqueue to start, in ms."""
    from benchmarks.benchapp.tasks import stamp

    since = mark()
    logs = Path(tempfile.mkdtemp(prefix="djqueue-size-"))
    workers = djqueue_side.start_workers(
        djqueue_side.WorkerSpec(1, spec.pool, spec.concurrency), logs
    )
    delays: list[float] = []
    try:
        if not common.wait_until(lambda: djqueue_side._workers_registered() >= 1, timeout):
            raise RuntimeError(f"worker did not start:\n{common.tail(logs / 'worker-0.log')}")
        for _ in range(5):  # warm-up: connections, plan caches
            stamp.delay().get(timeout=timeout)
        for _ in range(samples):
            time.sleep(0.02)
            sent = time.time()
            delays.append((stamp.delay().get(timeout=timeout) - sent) * 1000)
    finally:
        common.stop(workers)
    forget_since(since)
    return {
        "pickup_p50_ms": common.percentile(delays, 0.5),
        "pickup_p99_ms": common.percentile(delays, 0.99),
    }


def _finished(since: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM djqueue_job WHERE id > %s AND finished_at IS NOT NULL", [since]
        )
        return int(cursor.fetchone()[0])


class Paced(threading.Thread):
    """Calls ``step(first, last)`` for ``rate`` rows a second in ten steps a second, on
    a schedule of its own (open loop: a slow step is caught up, never skipped), until
    stopped; keeps when each step ended and how many rows it made."""

    def __init__(self, rate: float, step: Callable[[int, int], None]) -> None:
        super().__init__(daemon=True)
        self.rate, self.step = rate, step
        self.stop = threading.Event()
        self.made: list[tuple[float, int]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            started, sent, tick = time.monotonic(), 0, 0.1
            while not self.stop.is_set():
                due = int(self.rate * (time.monotonic() - started + tick))
                if due > sent:
                    self.step(sent + 1, due)
                    self.made.append((time.time(), due - sent))
                    sent = due
                self.stop.wait(max(0.0, started + sent / self.rate - time.monotonic()))
        except BaseException as exc:  # reported by the phase that started it
            self.error = exc

    def rows(self) -> int:
        return sum(count for _, count in self.made)


def history_writer(rate: float) -> Paced:
    """New finished history at ``rate`` jobs a second, on a connection of its own."""
    db = connect()
    db.autocommit = False
    offset = int(time.time() * 1000) * 1000  # row numbers (hence ids) of this run

    def step(first: int, last: int) -> None:
        with db.transaction():
            ids = db.execute(
                HISTORY_INSERT, {"first": offset + first, "last": offset + last}
            ).fetchall()
            db.execute(HISTORY_FINISH, [[row[0] for row in ids]])

    return Paced(rate, step)


def producer(rate: float) -> Paced:
    """Waiting no-op jobs at ``rate`` a second (with a notification), own connection."""
    db = connect()
    offset = int(time.time() * 1000) * 1000

    def step(first: int, last: int) -> None:
        db.execute(PRODUCE, {"first": offset + first, "last": offset + last})

    return Paced(rate, step)


def sizes() -> dict[str, Any]:
    """The job table's size: heap, indexes (MB), dead rows and vacuums so far."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT pg_relation_size('djqueue_job'), pg_indexes_size('djqueue_job'),
                   n_live_tup, n_dead_tup, autovacuum_count + vacuum_count
            FROM pg_stat_user_tables WHERE relname = 'djqueue_job'
            """
        )
        heap, indexes, live, dead, vacuums = cursor.fetchone()
    return {
        "heap_mb": heap / 2**20,
        "indexes_mb": indexes / 2**20,
        "live_rows": int(live),
        "dead_rows": int(dead),
        "vacuums": int(vacuums),
    }


def hold_xmin(seconds: float, database: str) -> threading.Thread:
    """A transaction in ``database`` that keeps a snapshot open for ``seconds`` (as a
    long report or an idle-in-transaction session does): vacuum may remove nothing that
    died after it began in the tables it sees (PostgreSQL 14 and later: those of its own
    database; before, every database's)."""

    def hold() -> None:
        with connect(database) as db:
            db.autocommit = False
            db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            db.execute("SELECT count(*) FROM pg_class")
            time.sleep(seconds)
            db.rollback()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    return holder


# Autovacuum's trigger for a table (its own scale factor where set, else the server's).
DEAD_TRIGGER = """
SELECT s.n_dead_tup > current_setting('autovacuum_vacuum_threshold')::float8
       + COALESCE((SELECT split_part(o, '=', 2)::float8 FROM unnest(c.reloptions) AS o
                   WHERE o LIKE 'autovacuum_vacuum_scale_factor=%%'),
                  current_setting('autovacuum_vacuum_scale_factor')::float8)
         * GREATEST(c.reltuples, 0)
FROM pg_stat_user_tables AS s JOIN pg_class AS c ON c.oid = s.relid
WHERE s.relname = 'djqueue_job'
"""


# Autovacuum's cost limit for the job table: the table's own (migration 0026) or 200.
COST_LIMIT = """
SELECT COALESCE((SELECT split_part(o, '=', 2)::int FROM unnest(reloptions) AS o
                 WHERE o LIKE 'autovacuum_vacuum_cost_limit=%%'), 200)
FROM pg_class WHERE relname = 'djqueue_job'
"""


class Vacuumer(threading.Thread):
    """Autovacuum's work on the job tables of ``databases``, for a server that runs
    without it (a test server may): every few seconds, VACUUM a job table whose dead
    rows passed autovacuum's trigger, at autovacuum's pace (cost delay 2 ms, the
    table's cost limit, no parallel workers). Counts the vacuums and their seconds."""

    def __init__(self, databases: list[str], every: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.databases, self.every = databases, every
        self.stop = threading.Event()
        self.runs: list[tuple[str, float, float]] = []  # database, start, seconds
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            connections = {name: connect(name) for name in self.databases}
            for db in connections.values():
                db.execute("SET vacuum_cost_delay = '2ms'")
                limit = db.execute(COST_LIMIT).fetchone()[0]
                db.execute("SELECT set_config('vacuum_cost_limit', %s, false)", [str(limit)])
            while not self.stop.wait(self.every):
                for name, db in connections.items():
                    due = db.execute(DEAD_TRIGGER).fetchone()
                    if due and due[0] and not self.stop.is_set():
                        at, started = time.time(), time.monotonic()
                        self.runs.append((name, at, 0.0))
                        db.execute("VACUUM (PARALLEL 0) djqueue_job")
                        self.runs[-1] = (name, at, time.monotonic() - started)
        except BaseException as exc:  # reported by size.py at the end
            self.error = exc

    def during(self, database: str, start: float, end: float) -> tuple[int, float]:
        """Vacuums of ``database`` that began between ``start`` and ``end`` (epoch
        seconds) and their seconds in all (so far, for one still running)."""
        found = [s for name, at, s in self.runs if name == database and start <= at < end]
        return len(found), sum(found)


def autovacuum_on() -> bool:
    """Whether the server runs autovacuum."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        return str(cursor.fetchone()[0]) == "on"
