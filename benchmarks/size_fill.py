"""The big table of ``size.py``: finished history and waiting jobs made on the server.

Rows get time-ordered ids as djqueue's own (version 7 UUIDs, from the row's enqueue
time), so that the primary key grows at its end as it does in use and a benchmark can
find its own later jobs by ``id > mark`` without touching the millions before them.
"""

from __future__ import annotations

import time
from typing import Any

# An id in djqueue's layout for the moment ``t`` (a timestamptz expression) and row ``n``:
# 48 bits of milliseconds, the version, 12 bits of counter, the variant, 60 random bits.
_ID = """(
    lpad(to_hex((extract(epoch FROM {t}) * 1000)::bigint), 12, '0') || '7'
    || lpad(to_hex({n} %% 4096), 3, '0') || '8' || substr(md5({n}::text), 1, 15)
)::uuid"""

# Finished history: row n finished ``n / rate`` seconds before the fill's moment (so the
# history is what ``rate`` finished jobs a second leave behind), 2 % failed with an
# error message, the rest succeeded with a small result; ten tasks, three queues.
FINISHED = """
INSERT INTO djqueue_job (
    id, task_name, queue, priority, state, args, kwargs, attempt, retries, max_attempts,
    eta, enqueued_at, claimed_at, started_at, finished_at, worker, result, error_type,
    error_message, traceback, gated
)
SELECT {id}, 'bench.task_' || (n %% 10), (ARRAY['default', 'mail', 'reports'])[1 + n %% 3],
       0, CASE WHEN n %% 50 = 2 THEN 'FAILURE' ELSE 'SUCCESS' END,
       jsonb_build_array(n), '{{}}'::jsonb, 1, 0, 4,
       t - interval '20 ms', t - interval '20 ms', t - interval '10 ms', t - interval '5 ms', t,
       'bench-worker', CASE WHEN n %% 50 = 2 THEN NULL ELSE to_jsonb(n) END,
       CASE WHEN n %% 50 = 2 THEN 'ValueError' ELSE '' END,
       CASE WHEN n %% 50 = 2 THEN 'bad input ' || n ELSE '' END, '', false
FROM (SELECT n, %(at)s::timestamptz - make_interval(secs => n / %(rate)s::float8) AS t
      FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS n) AS s
""".format(id=_ID.format(t="t - interval '20 ms'", n="n"))

# Waiting jobs: half due in a queue no benchmark worker serves (a backlog of a queue whose
# workers are down), half in the benchmark's queue but scheduled for tomorrow (countdowns):
# both sit in the claim index the benchmark's workers read.
WAITING = """
INSERT INTO djqueue_job (
    id, task_name, queue, priority, state, args, kwargs, attempt, retries, max_attempts,
    eta, enqueued_at, worker, error_type, error_message, traceback, gated
)
SELECT {id}, 'bench.task_' || (n %% 10), CASE WHEN n %% 2 = 0 THEN 'backlog' ELSE 'default' END,
       0, 'PENDING', jsonb_build_array(n), '{{}}'::jsonb, 0, 0, 4,
       CASE WHEN n %% 2 = 0 THEN t ELSE %(at)s::timestamptz + interval '1 day' END, t, '',
       '', '', '', false
FROM (SELECT n, %(at)s::timestamptz - make_interval(secs => n / 1000.0) AS t
      FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS n) AS s
""".format(id=_ID.format(t="t", n="(n + 500000000)"))

# Built after the fill (far faster than entry by entry), as migration 0023 defines them.
SEARCH_INDEXES = ("djqueue_job_error_search",)

# Rows per INSERT: progress shows, and one statement's WAL stays moderate.
CHUNK = 1_000_000


def fill(cursor: Any, finished: int, waiting: int, rate: float, say: Any = print) -> float:
    """Insert ``finished`` finished jobs (``rate`` a second before now) and ``waiting``
    waiting ones through ``cursor``; vacuum and analyse; return the fill's moment
    (epoch seconds): the history ends there."""
    cursor.execute("SELECT extract(epoch FROM now())")
    at = float(cursor.fetchone()[0])
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE indexname = ANY(%s)",
        [list(SEARCH_INDEXES)],
    )
    search_indexes = cursor.fetchall()
    for name, _ in search_indexes:
        cursor.execute(f"DROP INDEX {name}")
    started = time.monotonic()
    for statement, count in ((FINISHED, finished), (WAITING, waiting)):
        for first in range(1, count + 1, CHUNK):
            last = min(count, first + CHUNK - 1)
            params = {"at": _timestamp(at), "rate": rate, "first": first, "last": last}
            cursor.execute(statement, params)
            say(f"  filled rows {first:,}-{last:,} ({time.monotonic() - started:.0f}s)")
    for name, definition in search_indexes:
        say(f"  building {name}")
        cursor.execute(definition)
    say("  VACUUM ANALYZE djqueue_job")
    cursor.execute("VACUUM ANALYZE djqueue_job")
    say(
        f"  filled {finished:,} finished + {waiting:,} waiting in {time.monotonic() - started:.0f}s"
    )
    return at


def _timestamp(epoch: float) -> str:
    return (
        time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1e6):06d}+00"
    )
