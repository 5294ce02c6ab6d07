"""The time series: per-minute rollups of ended jobs, queue depth samples, pruning, and
the console's reads of them (docs/monitoring.md#time-series)."""

from __future__ import annotations

from djqueue.core import histogram

# Advisory lock key (a fixed 64-bit number, as the scheduler's): one rollup at a time.
ROLLUP_LOCK = 0x646A_7175_726F_6C6C  # "djquroll"

# Every worker tries the rollup; the transaction-level lock lets one in and the others
# pass ("try" never waits, so a heartbeat is never held up by another worker's rollup).
TRY_ROLLUP_LOCK = "SELECT pg_try_advisory_xact_lock(%s)"

# The database's clock: where the minutes to roll up end, the mark left by the previous
# rollup, and now. Each minute is read once, so it must be complete when it is read: a
# finish statement dates its rows with its transaction's start, which may commit a
# little after the minute ended. A minute counts as closed once it ended ``settle``
# seconds ago and no transaction of another session that began before its end is still
# open (pg_stat_activity shows the start of the transactions of sessions we may see;
# those of other roles are covered by the settle alone), or at the latest ``longest``
# seconds after it ended, so that a transaction left open does not stop the series.
ROLLUP_RANGE = """
SELECT date_trunc('minute', GREATEST(
           LEAST(now() - make_interval(secs => %(settle)s),
                 (SELECT min(xact_start) FROM pg_stat_activity
                  WHERE datname = current_database() AND pid <> pg_backend_pid())),
           now() - make_interval(secs => %(longest)s))),
       (SELECT until FROM djqueue_seriesmark WHERE name = 'jobs'),
       now()
"""

# pg_stat_activity is read once per transaction and kept: a rollup inside a longer
# transaction would see the sessions as they were at its first read.
FRESH_ACTIVITY = "SELECT pg_stat_clear_snapshot()"

_THRESHOLDS = "ARRAY[{}]::float8[]".format(", ".join(repr(b) for b in histogram.BOUNDS))


def _buckets(column: str) -> str:
    # One FILTER aggregate per bucket (width_bucket gives 0 .. len(BOUNDS)), adding up
    # the job counts of the bucket groups.
    counts = ", ".join(
        f"COALESCE(sum(n) FILTER (WHERE {column} = {index}), 0)" for index in range(histogram.SIZE)
    )
    return f"ARRAY[{counts}]::int[]"


# A rollup rewrites its minutes whole: rows of those minutes go, then each group is
# inserted from the jobs. Recomputing the same minutes gives the same rows (idempotent),
# and a group that vanished (a job retried again later moves its retry) leaves no stale
# row. Reads go through the finished_at and retried_at indexes, over [start, end) only;
# the rollup reads each minute once (ROLLUP_RANGE says when it is complete).
# Runtime of a retried attempt is not kept: its row's started_at may already belong to
# the next attempt.
ROLLUP_DELETE = "DELETE FROM djqueue_jobminute WHERE minute >= %s AND minute < %s"

ROLLUP_INSERT = f"""
WITH ended AS (
    SELECT date_trunc('minute', finished_at) AS minute, queue, task_name,
           state AS outcome,
           EXTRACT(EPOCH FROM finished_at - started_at)::float8 AS runtime,
           GREATEST(EXTRACT(EPOCH FROM started_at - eta)::float8, 0) AS wait
    FROM djqueue_job
    WHERE finished_at >= %(start)s AND finished_at < %(end)s
    UNION ALL
    SELECT date_trunc('minute', retried_at), queue, task_name, 'RETRY', NULL, NULL
    FROM djqueue_job
    WHERE retried_at >= %(start)s AND retried_at < %(end)s
),
-- Grouped by bucket first: the per-bucket counts below then read a few rows per group
-- instead of every job.
binned AS (
    SELECT minute, queue, task_name, outcome,
           width_bucket(runtime, {_THRESHOLDS}) AS runtime_bucket,
           width_bucket(wait, {_THRESHOLDS}) AS wait_bucket,
           count(*) AS n, sum(runtime) AS runtime_sum, max(runtime) AS runtime_max,
           sum(wait) AS wait_sum, max(wait) AS wait_max
    FROM ended
    GROUP BY 1, 2, 3, 4, 5, 6
)
INSERT INTO djqueue_jobminute (
    minute, queue, task_name, outcome, count,
    runtime_sum, runtime_max, runtime_buckets, wait_sum, wait_max, wait_buckets
)
SELECT minute, queue, task_name, outcome, sum(n),
       COALESCE(sum(runtime_sum), 0), max(runtime_max), {_buckets("runtime_bucket")},
       COALESCE(sum(wait_sum), 0), max(wait_max), {_buckets("wait_bucket")}
FROM binned
GROUP BY minute, queue, task_name, outcome
ON CONFLICT (minute, queue, task_name, outcome) DO UPDATE
SET count = EXCLUDED.count,
    runtime_sum = EXCLUDED.runtime_sum, runtime_max = EXCLUDED.runtime_max,
    runtime_buckets = EXCLUDED.runtime_buckets,
    wait_sum = EXCLUDED.wait_sum, wait_max = EXCLUDED.wait_max,
    wait_buckets = EXCLUDED.wait_buckets
"""  # noqa: S608 (constants only)


def _position_sums(column: str, kind: str) -> str:
    # Bucket arrays added position by position: one sum per bucket in one pass (a row
    # whose array is shorter adds nothing to the positions it lacks).
    sums = ", ".join(f"COALESCE(sum({column}[{i}]), 0)" for i in range(1, histogram.SIZE + 1))
    return f"ARRAY[{sums}]::{kind}[]"


# The hours of the minutes a rollup wrote, rewritten from those minutes (at most sixty
# minute rows per queue, task and outcome each).
HOURS_DELETE = "DELETE FROM djqueue_jobhour WHERE hour >= %s AND hour < %s"

HOURS_INSERT = f"""
INSERT INTO djqueue_jobhour (
    hour, queue, task_name, outcome, count,
    runtime_sum, runtime_max, runtime_buckets, wait_sum, wait_max, wait_buckets
)
SELECT date_trunc('hour', minute), queue, task_name, outcome, sum(count),
       sum(runtime_sum), max(runtime_max), {_position_sums("runtime_buckets", "int")},
       sum(wait_sum), max(wait_max), {_position_sums("wait_buckets", "int")}
FROM djqueue_jobminute
WHERE minute >= %(start)s AND minute < %(end)s
GROUP BY 1, 2, 3, 4
"""  # noqa: S608 (constants only)

SET_MARK = """
INSERT INTO djqueue_seriesmark (name, until) VALUES ('jobs', %s)
ON CONFLICT (name) DO UPDATE SET until = EXCLUDED.until
"""

# Queue depth now, per queue and over all queues (the ROLLUP's grand total, queue ''):
# waiting jobs without and with limits, and held jobs, each read through its own partial
# index (djqueue_job_ready, djqueue_job_gated, djqueue_job_running: together no index
# holds them, and the whole job table would be read at every sample); the latest sample
# of a minute wins.
SAMPLE_DEPTH = """
INSERT INTO djqueue_queueminute (minute, queue, waiting, scheduled, running, oldest_seconds)
SELECT date_trunc('minute', now()), COALESCE(queue, ''),
       count(*) FILTER (WHERE NOT held AND eta <= now()),
       count(*) FILTER (WHERE NOT held AND eta > now()),
       count(*) FILTER (WHERE held),
       EXTRACT(EPOCH FROM now() - min(eta) FILTER (WHERE NOT held AND eta <= now()))::float8
FROM (
    SELECT queue, eta, false FROM djqueue_job
    WHERE state IN ('PENDING', 'RETRY') AND NOT gated
    UNION ALL
    SELECT queue, eta, false FROM djqueue_job
    WHERE state IN ('PENDING', 'RETRY') AND gated
    UNION ALL
    SELECT queue, eta, true FROM djqueue_job
    WHERE state IN ('RECEIVED', 'STARTED')
) AS jobs (queue, eta, held)
GROUP BY ROLLUP (queue)
ON CONFLICT (minute, queue) DO UPDATE
SET waiting = EXCLUDED.waiting, scheduled = EXCLUDED.scheduled,
    running = EXCLUDED.running, oldest_seconds = EXCLUDED.oldest_seconds
"""

# Pruning: rows older than the retention; both tables are small and indexed by minute.
PRUNE_JOB_MINUTES = "DELETE FROM djqueue_jobminute WHERE minute < now() - make_interval(secs => %s)"
PRUNE_JOB_HOURS = (
    "DELETE FROM djqueue_jobhour WHERE hour < now() - make_interval(secs => %s) - interval '1 hour'"
)
PRUNE_QUEUE_MINUTES = (
    "DELETE FROM djqueue_queueminute WHERE minute < now() - make_interval(secs => %s)"
)

# Reads for the console. ``date_bin`` puts minutes into bins of the chart's step. Rows
# come from the hours table for the whole hours in [hours_from, hours_to) and from the
# minutes table for the rest of [start, end), so that a week reads some thousands of
# rows, not some hundred thousand (the caller passes an empty hour span, hours_from =
# hours_to = start, where hours do not fit).
_TOTALLED = (
    "task_name, outcome, count, runtime_sum, runtime_max, runtime_buckets, "
    "wait_sum, wait_max, wait_buckets"
)
_ENDED_ROWS = """
    SELECT minute AS at, {columns} FROM djqueue_jobminute
    WHERE (minute >= %(start)s AND minute < %(hours_from)s)
       OR (minute >= %(hours_to)s AND minute < %(end)s)
    UNION ALL
    SELECT hour, {columns} FROM djqueue_jobhour
    WHERE hour >= %(hours_from)s AND hour < %(hours_to)s
"""

OUTCOMES_BY_BIN = f"""
SELECT date_bin(make_interval(secs => %(step)s), at, %(origin)s) AS bin, outcome,
       sum(count)::bigint
FROM ({_ENDED_ROWS.format(columns="outcome, count")}) AS ended
GROUP BY bin, outcome
ORDER BY bin
"""  # noqa: S608 (constants only)

# The peak depth of each bin: a spike inside an hour should not average away.
DEPTH_BY_BIN = """
SELECT date_bin(make_interval(secs => %(step)s), minute, %(origin)s) AS bin, queue,
       max(waiting), max(running), max(oldest_seconds)
FROM djqueue_queueminute
WHERE minute >= %(start)s AND minute < %(end)s
GROUP BY bin, queue
ORDER BY bin
"""

# Per task and outcome over a window: counts, sums, maxima, and bucket counts added up
# position by position.
TASK_TOTALS = f"""
SELECT task_name, outcome, sum(count)::bigint,
       sum(runtime_sum), max(runtime_max), {_position_sums("runtime_buckets", "bigint")},
       sum(wait_sum), max(wait_max), {_position_sums("wait_buckets", "bigint")}
FROM ({_ENDED_ROWS.format(columns=_TOTALLED)}) AS ended
GROUP BY task_name, outcome
ORDER BY task_name, outcome
"""  # noqa: S608 (constants only)

# The queues the series saw since a moment: those sampled with jobs waiting or held, and
# those that ended jobs (both tables are small and indexed by minute first).
RECENT_QUEUES = """
SELECT queue FROM djqueue_queueminute
WHERE minute >= %(since)s AND queue <> '' AND waiting + scheduled + running > 0
UNION
SELECT queue FROM djqueue_jobminute WHERE minute >= %(since)s
"""

# Where the series ends: the mark (minutes before it are rolled up).
SERIES_MARK = "SELECT until FROM djqueue_seriesmark WHERE name = 'jobs'"

# Cumulative totals (the metrics' counters). The rollup adds the minutes no later rollup
# will rewrite, [start, end), once, in its own transaction under its lock: totals only
# grow. Bucket arrays are added position by position (unnest WITH ORDINALITY); rows are
# inserted in name order so that ids, which order label values by first appearance, do
# not depend on the plan.
_SUMMED_BUCKETS = """
    SELECT queue, task_name, outcome, array_agg(n ORDER BY i) AS buckets FROM (
        SELECT r.queue, r.task_name, r.outcome, b.i, sum(b.n)::bigint AS n
        FROM rows AS r, unnest(r.{column}) WITH ORDINALITY AS b(n, i)
        GROUP BY r.queue, r.task_name, r.outcome, b.i
    ) AS s GROUP BY queue, task_name, outcome
"""


def _added(column: str) -> str:
    # Column names from this module only.
    return (
        f"ARRAY(SELECT COALESCE(a, 0) + COALESCE(b, 0) FROM unnest(t.{column}, "  # noqa: S608
        f"EXCLUDED.{column}) WITH ORDINALITY AS u(a, b, i) ORDER BY i)"
    )


FOLD_TOTALS = f"""
WITH rows AS (
    SELECT * FROM djqueue_jobminute WHERE minute >= %(start)s AND minute < %(end)s
),
sums AS (
    SELECT queue, task_name, outcome, sum(count)::bigint AS count,
           sum(runtime_sum) AS runtime_sum, sum(wait_sum) AS wait_sum
    FROM rows GROUP BY queue, task_name, outcome
),
runtime AS ({_SUMMED_BUCKETS.format(column="runtime_buckets")}),
wait AS ({_SUMMED_BUCKETS.format(column="wait_buckets")})
INSERT INTO djqueue_jobtotal AS t (
    queue, task_name, outcome, count, runtime_sum, runtime_buckets, wait_sum, wait_buckets
)
SELECT s.queue, s.task_name, s.outcome, s.count, s.runtime_sum,
       COALESCE(r.buckets, '{{}}'::bigint[]), s.wait_sum, COALESCE(w.buckets, '{{}}'::bigint[])
FROM sums AS s
LEFT JOIN runtime AS r USING (queue, task_name, outcome)
LEFT JOIN wait AS w USING (queue, task_name, outcome)
ORDER BY s.queue, s.task_name, s.outcome
ON CONFLICT (queue, task_name, outcome) DO UPDATE
SET count = t.count + EXCLUDED.count,
    runtime_sum = t.runtime_sum + EXCLUDED.runtime_sum,
    runtime_buckets = {_added("runtime_buckets")},
    wait_sum = t.wait_sum + EXCLUDED.wait_sum,
    wait_buckets = {_added("wait_buckets")}
"""  # noqa: S608 (constants only)

TOTALS = """
SELECT queue, task_name, outcome, count, runtime_sum, runtime_buckets, wait_sum, wait_buckets
FROM djqueue_jobtotal
ORDER BY id
"""
