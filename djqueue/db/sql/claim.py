"""Claim: take due jobs for a worker, plain ones on the hot path, limited ones within
their limits."""

from __future__ import annotations

_READY = "state IN ('PENDING', 'RETRY') AND NOT gated"

# Claim a batch in one statement. SKIP LOCKED lets concurrent workers take disjoint rows
# without waiting on each other. Every scan below is on the partial index djqueue_job_ready
# (queue, priority DESC, eta, id) WHERE waiting AND NOT gated, with equality on queue and
# priority and a range on eta: no OR (an OR makes the planner leave the index), and
# limited jobs are not even in it.
#
# Why priority "levels": an index scan ordered by (priority DESC, eta, id) with
# ``eta <= now()`` as a mere filter reads, once the due jobs run out, every job scheduled
# for later (a queue with 500,000 jobs due tomorrow: all of them, on every claim). With
# the priority fixed, ``eta <= now()`` bounds the index range, so the scan stops at the
# first job not due yet. LEVELS lists the waiting jobs' distinct priorities, highest
# first, one index descent per queue and priority (a loose index scan: each step asks
# for the highest priority below the previous one, starting above any smallint); a claim
# only visits the levels it needs, since rows are pulled lazily under the outer LIMIT. A
# recursive CTE yields its rows in the order it makes them, which orders the levels.
_LEVELS_ONE_QUEUE = """
levels(priority) AS (
    SELECT 32768
  UNION ALL
    SELECT (SELECT priority FROM djqueue_job
            WHERE {ready} AND queue = %(queue)s AND priority < l.priority
            ORDER BY priority DESC LIMIT 1)
    FROM levels AS l WHERE l.priority IS NOT NULL
)"""
_LEVELS_QUEUES = """
levels(priority) AS (
    SELECT 32768
  UNION ALL
    SELECT (SELECT max(below.priority) FROM unnest(%(queues)s::text[]) AS q(name), LATERAL (
                SELECT priority FROM djqueue_job
                WHERE {ready} AND queue = q.name AND priority < l.priority
                ORDER BY priority DESC LIMIT 1
            ) AS below)
    FROM levels AS l WHERE l.priority IS NOT NULL
)"""

# synchronous_commit is off for this transaction only: losing a claim in a server crash
# just leaves the job PENDING, which is safe for at-least-once delivery.
# A claimed job is RECEIVED, not STARTED: it waits in the worker's buffer until a pool
# slot takes it (MARK_STARTED, or the outcome itself, records the start). ``isolate``
# tells the worker that the job was once taken back from a lost worker or killed its
# process, so that in-process pools run it in a process of its own.
# The UPDATE finds the picked rows by primary key from an array: joined to ``picked``
# instead, a plan made for unknown parameters (a prepared statement's generic plan) may
# hash the whole table.
_CLAIM = """
WITH RECURSIVE sync AS (SELECT set_config('synchronous_commit', 'off', true)),
{levels},
{picked}
UPDATE djqueue_job AS j
SET state = 'RECEIVED', attempt = j.attempt + 1, worker = %(worker)s, started_at = NULL,
    claimed_at = now(), lease_expires_at = now() + make_interval(secs => %(lease)s),
    reported_state = ''
FROM sync
WHERE j.id = ANY(ARRAY(SELECT id FROM picked))
RETURNING j.id, j.task_name, j.args::text, j.kwargs::text, j.attempt, j.retries,
          j.queue, j.priority, j.eta,
          (j.expires_at IS NOT NULL AND j.expires_at <= now()),
          j.revoke_requested_at IS NOT NULL, j.lost > 0 OR j.kills > 0,
          j.workflow::text, j.expires_at
"""

# One queue: level by level, the due jobs in (eta, id) order, locked as they are read.
# Rows are pulled one at a time through the nested loop, so the outer LIMIT stops the
# scan (and the locking) at exactly ``limit`` jobs; a row another worker holds is
# skipped and the scan goes on, as a plain index scan would.
_PICKED_ONE_QUEUE = """
picked AS (
    SELECT due.id FROM levels AS l, LATERAL (
        SELECT id FROM djqueue_job
        WHERE {ready} AND queue = %(queue)s AND priority = l.priority AND eta <= now()
        ORDER BY eta, id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    ) AS due
    WHERE l.priority < 32768
    LIMIT %(limit)s
)"""

# Several queues: claim order is priority across the queues, then eta, then id, which
# no index delivers across queues (a plain ``queue = ANY`` claim read and sorted every
# due job of them). So first PEEK, without locking: per level, each queue's first
# ``limit`` due jobs (bounded index ranges), merged in claim order, the first ``limit``
# of them across levels. That says how many jobs to take from each (queue, level);
# they are then taken there, locked as read with SKIP LOCKED, as with one queue. Exactly
# ``limit`` rows at most are locked (locking the peeked rows of every queue and keeping
# the best would hold rows other workers then skip, and under-claim); a job peeked but
# taken meanwhile by another worker is skipped and the next one of its queue and level
# taken instead.
_PICKED_QUEUES = """
peek AS (
    SELECT best.queue, l.priority FROM levels AS l, LATERAL (
        SELECT q.name AS queue FROM unnest(%(queues)s::text[]) AS q(name), LATERAL (
            SELECT eta, id FROM djqueue_job
            WHERE {ready} AND queue = q.name AND priority = l.priority AND eta <= now()
            ORDER BY eta, id
            LIMIT %(limit)s
        ) AS head
        ORDER BY head.eta, head.id
        LIMIT %(limit)s
    ) AS best
    WHERE l.priority < 32768
    LIMIT %(limit)s
),
shares AS (SELECT queue, priority, count(*) AS n FROM peek GROUP BY queue, priority),
picked AS (
    SELECT due.id FROM shares AS s, LATERAL (
        SELECT id FROM djqueue_job
        WHERE {ready} AND queue = s.queue AND priority = s.priority AND eta <= now()
        ORDER BY eta, id
        LIMIT s.n
        FOR UPDATE SKIP LOCKED
    ) AS due
    LIMIT %(limit)s
)"""

CLAIM_ONE_QUEUE = _CLAIM.format(
    levels=_LEVELS_ONE_QUEUE.format(ready=_READY),
    picked=_PICKED_ONE_QUEUE.format(ready=_READY),
)
CLAIM_QUEUES = _CLAIM.format(
    levels=_LEVELS_QUEUES.format(ready=_READY),
    picked=_PICKED_QUEUES.format(ready=_READY),
)

# The worker runs the two claims above through SQL functions (made by migration 0028)
# whose plan is made once per connection and kept: a claim's own work is a few index
# descents, and planning it anew on every call (which PostgreSQL does for these
# statements even when prepared: it keeps choosing custom plans) cost more than running
# it. ``plan_cache_mode`` makes PL/pgSQL keep the plan made without the parameters'
# values, which for these statements is the same index plan; ``jit = off`` because such
# a plan's estimated cost on a large table can cross ``jit_above_cost``, and compiling
# it would cost more than the claim. A function also keeps its plan behind a pooler,
# where statements are not prepared. The functions' bodies are the statements above,
# with the parameters renamed: a change to those statements needs a migration that
# replaces the functions (an integration test compares them with the database's).
_CLAIM_COLUMNS = (
    "id uuid, task_name varchar, args text, kwargs text, attempt integer, retries integer,"
    " queue varchar, priority smallint, eta timestamptz, expired boolean, revoked boolean,"
    " isolate boolean, workflow text, expires_at timestamptz"
)
_FUNCTION = """CREATE OR REPLACE FUNCTION {name}({arguments})
RETURNS TABLE ({columns})
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
SET jit = off
AS $claim$
#variable_conflict use_column
BEGIN
RETURN QUERY {body};
END
$claim$"""
_ARGUMENT_NAMES = {
    "%(queue)s": "p_queue",
    "%(queues)s": "p_queues",
    "%(limit)s": "p_limit",
    "%(worker)s": "p_worker",
    "%(lease)s": "p_lease",
}


def _function(name: str, arguments: str, statement: str) -> str:
    body = statement.strip()
    for placeholder, argument in _ARGUMENT_NAMES.items():
        body = body.replace(placeholder, argument)
    return _FUNCTION.format(name=name, arguments=arguments, columns=_CLAIM_COLUMNS, body=body)


CLAIM_FUNCTIONS = [
    _function(
        "djqueue_claim_one_queue",
        "p_queue text, p_limit integer, p_worker text, p_lease double precision",
        CLAIM_ONE_QUEUE,
    ),
    _function(
        "djqueue_claim_queues",
        "p_queues text[], p_limit integer, p_worker text, p_lease double precision",
        CLAIM_QUEUES,
    ),
]
# What the worker sends: the functions above, with CLAIM_ONE_QUEUE's and CLAIM_QUEUES's
# parameters.
CALL_CLAIM_ONE_QUEUE = (
    "SELECT * FROM djqueue_claim_one_queue(%(queue)s, %(limit)s, %(worker)s, %(lease)s)"
)
CALL_CLAIM_QUEUES = (
    "SELECT * FROM djqueue_claim_queues(%(queues)s::text[], %(limit)s, %(worker)s, %(lease)s)"
)

# A limited queue (its own concurrency or rate limit, over all workers) is claimed in a
# transaction of its own, as limited jobs are and for the same reason: LOCK_QUEUE_GATE
# first (its djqueue_limit row ``queue:<name>``, made on first use), then, in a fresh
# snapshot taken while the lock is held, QUEUE_ROOM counts the queue's jobs held by
# workers and its starts in the rate window and says how many may be claimed now; the
# claims follow in the same transaction, and QUEUE_STARTS logs them. Every claim from a
# limited queue holds its lock, so claims under one queue limit are serialised. SKIP
# LOCKED: a queue another worker is claiming from right now is left to it this time.
LOCK_QUEUE_GATE = """
WITH created AS (
    INSERT INTO djqueue_limit (key, starts) VALUES (%(key)s, '{}')
    ON CONFLICT (key) DO NOTHING
    RETURNING key
),
locked AS (
    SELECT key FROM djqueue_limit WHERE key = %(key)s FOR UPDATE SKIP LOCKED
)
SELECT key FROM created UNION ALL SELECT key FROM locked
"""

# How many jobs of the queue may be claimed now: at most ``want``, what its concurrency
# limit leaves (jobs held by workers, on the partial index of held jobs) and what its
# rate limit leaves (starts within the window). A NULL limit leaves ``want``.
QUEUE_ROOM = """
SELECT LEAST(
    %(want)s,
    COALESCE(%(concurrency)s::int - (
        SELECT count(*) FROM djqueue_job
        WHERE state IN ('RECEIVED', 'STARTED') AND queue = %(queue)s
    ), %(want)s),
    COALESCE(%(rate)s::int - (
        SELECT count(*) FROM djqueue_limit AS l, unnest(l.starts) AS s(at)
        WHERE l.key = %(key)s
              AND s.at > statement_timestamp() - make_interval(secs => %(period)s::float8)
    ), %(want)s)
)
"""

# The starts of a rate-limited queue's claims, the log trimmed to the window.
QUEUE_STARTS = """
UPDATE djqueue_limit
SET starts = ARRAY(
        SELECT s.at FROM unnest(starts) AS s(at)
        WHERE s.at > statement_timestamp() - make_interval(secs => %(period)s::float8)
    ) || array_fill(statement_timestamp(), ARRAY[%(n)s::int])
WHERE key = %(key)s
"""

# Limited jobs (rate or concurrency limit) are claimed in a transaction of two statements:
# LOCK_GATES, then CLAIM_GATED. Two statements because under READ COMMITTED a statement
# sees the database as it was when the statement began: had one statement both waited
# for a limit's lock and counted the jobs running under it, it could count from before
# the previous lock holder committed its claims, and overshoot the limit. Locking first
# and counting in the next statement (a fresh snapshot, taken while we hold the lock)
# sees every claim made under that limit.
#
# LOCK_GATES: the limits of waiting limited jobs in these queues (at most %s of them),
# their djqueue_limit rows created on first use, and locked FOR UPDATE for the rest of
# the transaction. Every claim of a limited job holds the locks of all its limits, so
# claims under one limit are serialised. SKIP LOCKED: a limit another worker is claiming
# under right now is left to that worker rather than waited for; our claim simply takes
# no jobs of it this time. The INSERT takes keys in sorted order, so two claimers that
# both create rows wait for each other (on the uncommitted insert) in the same order
# and cannot deadlock; ON CONFLICT DO NOTHING takes no lock on a row that exists.
# Rows this statement inserts are ours until commit but invisible to its own SELECT
# FOR UPDATE, hence the UNION of both.
LOCK_GATES = """
WITH waiting AS (
    SELECT task_name, rate_limit, concurrency_key FROM djqueue_job
    WHERE state IN ('PENDING', 'RETRY') AND gated AND queue = ANY(%s::text[])
          AND eta <= now()
),
keys AS (
    SELECT DISTINCT k.key
    FROM waiting AS w,
         LATERAL (VALUES (CASE WHEN w.rate_limit IS NOT NULL THEN 'rate:' || w.task_name END),
                         ('concurrency:' || w.concurrency_key)) AS k(key)
    WHERE k.key IS NOT NULL
    ORDER BY k.key
    LIMIT %s
),
created AS (
    INSERT INTO djqueue_limit (key, starts)
    SELECT key, '{}' FROM keys ORDER BY key
    ON CONFLICT (key) DO NOTHING
    RETURNING key
),
locked AS (
    SELECT l.key FROM djqueue_limit AS l
    WHERE l.key IN (SELECT key FROM keys)
    FOR UPDATE SKIP LOCKED
)
SELECT key FROM created UNION ALL SELECT key FROM locked
"""

# CLAIM_GATED: claim limited jobs whose every limit we locked, no more than each allows.
# - Concurrency: a key's jobs held by workers (RECEIVED or STARTED) are counted (index
#   djqueue_job_concurrency); counting the jobs themselves cannot drift the way a
#   separate counter could when a job is rescued, revoked or released.
# - Rate: djqueue_limit.starts is a sliding log of start times. A start is allowed while
#   fewer than rate_limit starts lie within the last rate_period seconds, which bounds
#   starts in *every* window of that length (a token bucket would let twice as many
#   through across a refill). The log is trimmed to the window on every write.
# Within a limit, jobs are ranked in claim order; a job is taken when its rank fits in
# what its limits allow. A job held back by one of its limits still uses a rank in the
# other: that can only under-claim, never overshoot.
# Times come from statement_timestamp(): taken after LOCK_GATES got the locks, they grow
# in lock order, which the sliding window relies on (now() is the transaction's start).
# The jobs themselves are locked FOR UPDATE SKIP LOCKED (a revoke in progress, say) and
# the state is checked again on the locked row.
CLAIM_GATED = """
WITH sync AS (SELECT set_config('synchronous_commit', 'off', true)),
waiting AS (
    SELECT id, priority, eta, task_name, rate_limit, rate_period, concurrency_key,
           concurrency_limit
    FROM djqueue_job
    WHERE state IN ('PENDING', 'RETRY') AND gated AND queue = ANY(%(queues)s::text[])
          AND eta <= now()
          AND (rate_limit IS NULL OR 'rate:' || task_name = ANY(%(keys)s::text[]))
          AND (concurrency_key IS NULL
               OR 'concurrency:' || concurrency_key = ANY(%(keys)s::text[]))
),
ranked AS (
    SELECT w.*,
           row_number() OVER (PARTITION BY w.task_name, w.rate_limit IS NULL
                              ORDER BY w.priority DESC, w.eta, w.id) AS rate_rank,
           row_number() OVER (PARTITION BY w.concurrency_key
                              ORDER BY w.priority DESC, w.eta, w.id) AS concurrency_rank
    FROM waiting AS w
),
rate_used AS (
    SELECT p.task_name, p.rate_period,
           (SELECT count(*) FROM unnest(l.starts) AS s(at)
            WHERE s.at > statement_timestamp() - make_interval(secs => p.rate_period)) AS used
    FROM (SELECT DISTINCT task_name, rate_period FROM waiting WHERE rate_limit IS NOT NULL) AS p
    JOIN djqueue_limit AS l ON l.key = 'rate:' || p.task_name
),
running AS (
    SELECT concurrency_key, count(*) AS used FROM djqueue_job
    WHERE state IN ('RECEIVED', 'STARTED')
          AND concurrency_key IN (SELECT concurrency_key FROM waiting)
    GROUP BY concurrency_key
),
allowed AS (
    SELECT r.id FROM ranked AS r
    LEFT JOIN rate_used AS u ON u.task_name = r.task_name AND u.rate_period = r.rate_period
    LEFT JOIN running AS c ON c.concurrency_key = r.concurrency_key
    WHERE (r.rate_limit IS NULL OR r.rate_rank <= r.rate_limit - COALESCE(u.used, 0))
      AND (r.concurrency_key IS NULL
           OR r.concurrency_rank <= r.concurrency_limit - COALESCE(c.used, 0))
    ORDER BY r.priority DESC, r.eta, r.id
    LIMIT %(limit)s
),
picked AS (
    SELECT id FROM djqueue_job
    WHERE id IN (SELECT id FROM allowed) AND state IN ('PENDING', 'RETRY')
    FOR UPDATE SKIP LOCKED
),
claimed AS (
    UPDATE djqueue_job AS j
    SET state = 'RECEIVED', attempt = j.attempt + 1, worker = %(worker)s,
        started_at = NULL, claimed_at = statement_timestamp(),
        lease_expires_at = statement_timestamp() + make_interval(secs => %(lease)s),
        reported_state = ''
    FROM picked, sync
    WHERE j.id = picked.id
    RETURNING j.id, j.task_name, j.args::text AS args, j.kwargs::text AS kwargs, j.attempt,
              j.retries, j.queue, j.priority, j.eta,
              (j.expires_at IS NOT NULL AND j.expires_at <= now()) AS expired,
              j.revoke_requested_at IS NOT NULL AS revoked,
              j.lost > 0 OR j.kills > 0 AS isolate,
              j.workflow::text AS workflow, j.expires_at,
              j.rate_limit, j.rate_period
),
logged AS (
    UPDATE djqueue_limit AS l
    SET starts = ARRAY(
            SELECT s.at FROM unnest(l.starts) AS s(at)
            WHERE s.at > statement_timestamp() - make_interval(secs => c.period)
        ) || array_fill(statement_timestamp(), ARRAY[c.n])
    FROM (SELECT 'rate:' || task_name AS key, max(rate_period) AS period, count(*)::int AS n
          FROM claimed WHERE rate_limit IS NOT NULL GROUP BY 1) AS c
    WHERE l.key = c.key
)
SELECT id, task_name, args, kwargs, attempt, retries, queue, priority, eta, expired, revoked,
       isolate, workflow, expires_at, rate_limit, rate_period
FROM claimed
"""
