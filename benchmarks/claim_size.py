"""The claim statement on a big queue: latency of one claim, the previous statement and
the current one side by side, in turns, on the same rows.

    .venv/bin/python benchmarks/claim_size.py                  # 500,000 rows per case
    .venv/bin/python benchmarks/claim_size.py --rows 100000 --claims 100

A database of its own (``--database``, kept between runs with ``--keep``) holds:

- ``hot``: 20,000 due jobs, nothing else (the hot path: one queue, jobs due);
- ``later``: ``--rows`` jobs scheduled for tomorrow and 5 due ones (a queue whose
  workers wake up, find a few jobs or none, and sleep again);
- ``s1``, ``s2``, ``s3``: 20,000 due jobs across them, priorities 0-2 (a worker serving
  three queues, the hot path);
- ``q1``, ``q2``, ``q3``: ``--rows`` due jobs across them, priorities 0-2 (the same with
  a backlog).

Each claim takes up to ``--limit`` jobs and is undone, so every claim finds the same
rows; the current claim is sent as the worker sends it (a call of its SQL function,
which keeps its plan), the previous statement prepared on the server as the worker
prepared it (and, for the hot path,
also not prepared: planned on every call, as behind a pooler without them). Printed: median and
p90 of each case per statement, and their ratio (measured in turns within one run: a
drift of the machine weighs on both).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from djqueue.db.sql import claim as current  # noqa: E402

# The statements before priority levels (kept here to compare with): one index scan
# ordered by (priority DESC, eta, id) with eta <= now() as a filter, and for several
# queues queue = ANY(...) with the rows sorted after the scan.
_BEFORE = """
WITH sync AS (SELECT set_config('synchronous_commit', 'off', true)),
picked AS (
    SELECT id FROM djqueue_job
    WHERE state IN ('PENDING', 'RETRY') AND NOT gated AND queue {queue_test} AND eta <= now()
    ORDER BY priority DESC, eta, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE djqueue_job AS j
SET state = 'RECEIVED', attempt = j.attempt + 1, worker = %(worker)s, started_at = NULL,
    claimed_at = now(), lease_expires_at = now() + make_interval(secs => %(lease)s),
    reported_state = ''
FROM picked, sync
WHERE j.id = picked.id
RETURNING j.id, j.task_name, j.args::text, j.kwargs::text, j.attempt, j.retries,
          j.queue, j.priority, j.eta,
          (j.expires_at IS NOT NULL AND j.expires_at <= now()),
          j.revoke_requested_at IS NOT NULL, j.lost > 0 OR j.kills > 0,
          j.workflow::text, j.expires_at
"""
BEFORE_ONE_QUEUE = _BEFORE.format(queue_test="= %(queue)s")
BEFORE_QUEUES = _BEFORE.format(queue_test="= ANY(%(queues)s::text[])")

_FILL = """
INSERT INTO djqueue_job (id, task_name, queue, priority, state, args, kwargs, attempt,
                         retries, eta, enqueued_at, worker, error_type, error_message,
                         traceback, gated)
SELECT gen_random_uuid(), 'bench.task', {queue}, {priority}, 'PENDING', '[]', '{{}}', 0, 0,
       {eta}, now(), '', '', '', '', false
FROM generate_series(1, %(rows)s) AS n
"""
FILLS = {
    "hot": _FILL.format(
        queue="'hot'", priority="0", eta="now() - interval '1 hour' + n * interval '1 ms'"
    ),
    "later": _FILL.format(
        queue="'later'", priority="0", eta="now() + interval '1 day' + n * interval '1 ms'"
    ),
    "later, due": _FILL.format(queue="'later'", priority="0", eta="now() - interval '1 hour'"),
    "three small queues": _FILL.format(
        queue="(ARRAY['s1', 's2', 's3'])[1 + n %% 3]",
        priority="(n / 3) %% 3",
        eta="now() - interval '1 hour' + n * interval '1 ms'",
    ),
    "three queues": _FILL.format(
        queue="(ARRAY['q1', 'q2', 'q3'])[1 + n %% 3]",
        priority="(n / 3) %% 3",
        eta="now() - interval '1 hour' + n * interval '1 ms'",
    ),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--rows", type=int, default=500_000, help="scheduled rows, and due rows (500000)")
    add("--claims", type=int, default=200, help="claims per case and statement (200)")
    add("--limit", type=int, default=10, help="jobs per claim (10)")
    add("--database", default="bench_claim_size")
    add("--keep", action="store_true", help="reuse the rows of an earlier run")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    prepare(options)
    dsn = f"host=127.0.0.1 user=postgres dbname={options.database}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        cases = [
            ("one queue, 20,000 due", "queue", "hot"),
            ("the same, statements not prepared", "queue", "hot"),
            (f"one queue, {options.rows:,} scheduled, 5 due", "queue", "later"),
            ("three queues, 20,000 due", "queues", ["s1", "s2", "s3"]),
            (f"three queues, {options.rows:,} due", "queues", ["q1", "q2", "q3"]),
        ]
        rows = []
        for title, key, value in cases:
            before = BEFORE_ONE_QUEUE if key == "queue" else BEFORE_QUEUES
            after = current.CALL_CLAIM_ONE_QUEUE if key == "queue" else current.CALL_CLAIM_QUEUES
            params = {key: value, "limit": options.limit, "worker": "bench", "lease": 30}
            times: dict[str, list[float]] = {"before": [], "after": []}
            for n in range(options.claims):
                for name, query in (("before", before), ("after", after))[:: 1 - 2 * (n % 2)]:
                    prepared = "not prepared" not in title
                    times[name].append(claim_once(conn, query, params, prepared))
            rows.append((title, times["before"], times["after"]))
            conn.execute("VACUUM djqueue_job")  # the dead versions of the undone claims
    print(report(rows, options))
    return 0


def claim_once(
    conn: psycopg.Connection[Any], query: str, params: dict[str, Any], prepared: bool
) -> float:
    """Seconds one claim takes; not ``prepared``: planned anew each time, as behind a
    transaction-mode pooler. The claim is then undone by an UPDATE (a rollback would
    drop the connection's prepared statements), so that the next one finds the same
    rows, and leaves dead row versions behind as a worker's claims do."""
    with conn.cursor() as cursor:
        began = time.perf_counter()
        cursor.execute(query, params, prepare=prepared)
        taken = [row[0] for row in cursor.fetchall()]
        seconds = time.perf_counter() - began
        cursor.execute(_UNDO, [taken])
    return seconds


_UNDO = """
UPDATE djqueue_job
SET state = 'PENDING', attempt = attempt - 1, worker = '', claimed_at = NULL,
    lease_expires_at = NULL
WHERE id = ANY(%s)
"""


def prepare(options: argparse.Namespace) -> None:
    """The database, its schema (djqueue's migrations) and its rows."""
    import os

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as c:
        exists = c.execute("SELECT 1 FROM pg_database WHERE datname = %s", [options.database])
        if exists.fetchone() and options.keep:
            return
        c.execute(f'DROP DATABASE IF EXISTS "{options.database}"')
        c.execute(f'CREATE DATABASE "{options.database}"')
    os.environ["DJQUEUE_BENCH_DB"] = options.database
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    dsn = f"host=127.0.0.1 user=postgres dbname={options.database}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        sizes = {"hot": 20_000, "later, due": 5, "three small queues": 20_000}
        for name, fill in FILLS.items():
            print(f"-- filling {name}", file=sys.stderr)
            conn.execute(fill, {"rows": sizes.get(name, options.rows)})
        conn.execute("VACUUM ANALYZE djqueue_job")


def report(rows: list[tuple[str, list[float], list[float]]], options: argparse.Namespace) -> str:
    lines = [
        f"One claim of up to {options.limit} jobs, {options.claims} claims per case and "
        "statement, in turns (ms; shared, loaded 2-core machine: read the ratios):",
        f"{'case':<42} {'before p50':>10} {'p90':>8} {'after p50':>10} {'p90':>8} {'ratio':>7}",
    ]
    for title, before, after in rows:
        b50, a50 = statistics.median(before) * 1e3, statistics.median(after) * 1e3
        b90, a90 = (statistics.quantiles(t, n=10)[-1] * 1e3 for t in (before, after))
        lines.append(
            f"{title:<42} {b50:>10.2f} {b90:>8.2f} {a50:>10.2f} {a90:>8.2f} {b50 / a50:>6.1f}x"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
