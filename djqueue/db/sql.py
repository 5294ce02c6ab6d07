"""Every SQL statement of the broker, with why each lock or trick is there.

Table names are fixed by the models (``djqueue_job``, ``djqueue_worker``,
``djqueue_limit``). Parameters
use ``%s`` placeholders as Django cursors expect.
"""

from __future__ import annotations

# One INSERT for any number of jobs (arrays unnested server-side: one round trip), and
# one NOTIFY per distinct queue. NOTIFY is transactional: listeners hear it only when the
# caller's transaction commits, so a worker never wakes for a job it cannot see yet.
# eta/expiry come from the database clock so that worker and web clocks never matter.
_ENQUEUE = """
WITH v AS ({source}),
inserted AS (
    INSERT INTO djqueue_job (
        id, task_name, queue, priority, state, args, kwargs, attempt, retries,
        max_attempts, eta, expires_at, enqueued_at, worker, error_type, error_message,
        traceback
    )
    SELECT v.id, v.task_name, v.queue, v.priority, 'PENDING', v.args::jsonb,
           v.kwargs::jsonb, 0, 0, v.max_attempts,
           COALESCE(v.eta, now() + make_interval(secs => COALESCE(v.countdown, 0))),
           COALESCE(v.expires_at, now() + make_interval(secs => v.expires_in)),
           now(), '', '', '', ''
    FROM v
    RETURNING queue
)
SELECT pg_notify('djqueue', q.queue) FROM (SELECT DISTINCT queue FROM inserted) AS q
"""
_COLUMNS = (
    "id, task_name, queue, priority, args, kwargs, max_attempts, eta, countdown, "
    "expires_at, expires_in"
)
_TYPES = (
    "uuid",
    "text",
    "text",
    "int",
    "text",
    "text",
    "int",
    "timestamptz",
    "float8",
    "timestamptz",
    "float8",
)
# Many jobs: one JSON array of rows, as a single parameter. The server parses it in C,
# which is much cheaper than building one array parameter per column on the client;
# arguments travel as embedded JSON. (Built from the constants above only.)
ENQUEUE_MANY = _ENQUEUE.format(
    source="SELECT {} FROM jsonb_array_elements(%s::jsonb) AS e".format(  # noqa: S608
        ", ".join(
            f"e->{index} AS {name}"
            if name in ("args", "kwargs")
            else f"(e->>{index})::{kind} AS {name}"
            for index, (kind, name) in enumerate(zip(_TYPES, _COLUMNS.split(", "), strict=True))
        )
    )
)
# One job (the common delay() case): plain parameters, cheaper to send than arrays.
ENQUEUE_ONE = _ENQUEUE.format(
    source="SELECT {}".format(
        ", ".join(
            f"%s::{kind} AS {name}" for kind, name in zip(_TYPES, _COLUMNS.split(", "), strict=True)
        )
    )
)

# The eta of a job that waits for another in a workflow: far enough never to come, and
# unlike 'infinity' a moment Python can read (a model or the admin shows the row).
WAITING_ETA = "9999-01-01 00:00:00+00"

# Jobs of a workflow (docs/canvas.md): plain jobs plus their continuation (``workflow``)
# and whether they wait for an upstream job. A separate statement so that plain jobs keep
# theirs. A waiting job is PENDING with eta = WAITING_ETA: never due, so no claim takes it
# (and the ready index still serves the claim unchanged) until the statement that records
# its upstream job's outcome sets a real eta. Only queues with a job due are notified.
ENQUEUE_WORKFLOW = """
WITH v AS (
    SELECT (e->>0)::uuid AS id, e->>1 AS task_name, e->>2 AS queue, (e->>3)::int AS priority,
           e->4 AS args, e->5 AS kwargs, (e->>6)::int AS max_attempts,
           (e->>7)::timestamptz AS eta, (e->>8)::float8 AS countdown,
           (e->>9)::timestamptz AS expires_at, (e->>10)::float8 AS expires_in,
           NULLIF(e->11, 'null'::jsonb) AS workflow, (e->>12)::bool AS waiting
    FROM jsonb_array_elements(%s::jsonb) AS e
),
inserted AS (
    INSERT INTO djqueue_job (
        id, task_name, queue, priority, state, args, kwargs, attempt, retries,
        max_attempts, eta, expires_at, enqueued_at, worker, error_type, error_message,
        traceback, workflow
    )
    SELECT v.id, v.task_name, v.queue, v.priority, 'PENDING', v.args, v.kwargs, 0, 0,
           v.max_attempts,
           CASE WHEN v.waiting THEN '9999-01-01 00:00:00+00'::timestamptz
                ELSE COALESCE(v.eta, now() + make_interval(secs => COALESCE(v.countdown, 0)))
           END,
           COALESCE(v.expires_at, now() + make_interval(secs => v.expires_in)),
           now(), '', '', '', '', v.workflow
    FROM v
    RETURNING queue, eta
)
SELECT pg_notify('djqueue', q.queue)
FROM (SELECT DISTINCT queue FROM inserted WHERE eta <> '9999-01-01 00:00:00+00') AS q
"""

# Groups and chord counters of a workflow, inserted in the transaction of its jobs.
INSERT_GROUPS = """
INSERT INTO djqueue_group (id, job_ids, created_at, remaining, results, release, body_id, failed)
SELECT (e->>'id')::uuid, e->'job_ids', now(), (e->>'remaining')::int, '{}'::jsonb,
       NULLIF(e->'release', 'null'::jsonb), (e->>'body_id')::uuid, ''
FROM jsonb_array_elements(%s::jsonb) AS e
"""

# Jobs with limits or a unique key. A separate statement, so that plain jobs keep the
# statements above (and their byte-for-byte rows) and pay nothing for these columns.
# ON CONFLICT names the partial unique index djqueue_job_unique as its arbiter: a job
# whose key a waiting job holds is not inserted (the caller then looks the holder up);
# any other conflict, a reused id say, still raises. A conflict with a row another
# transaction inserted and has not committed yet waits for that transaction, so the
# database, not a read-then-write in Python, decides which of two duplicates wins.
# RETURNING lists the jobs actually inserted.
_ENQUEUE_LIMITED = """
WITH v AS ({source}),
inserted AS (
    INSERT INTO djqueue_job (
        id, task_name, queue, priority, state, args, kwargs, attempt, retries,
        max_attempts, eta, expires_at, enqueued_at, worker, error_type, error_message,
        traceback, gated, rate_limit, rate_period, concurrency_key, concurrency_limit,
        unique_key, unique_until
    )
    SELECT v.id, v.task_name, v.queue, v.priority, 'PENDING', v.args::jsonb,
           v.kwargs::jsonb, 0, 0, v.max_attempts,
           COALESCE(v.eta, now() + make_interval(secs => COALESCE(v.countdown, 0))),
           COALESCE(v.expires_at, now() + make_interval(secs => v.expires_in)),
           now(), '', '', '', '',
           v.rate_limit IS NOT NULL OR v.concurrency_limit IS NOT NULL,
           v.rate_limit, v.rate_period, v.concurrency_key, v.concurrency_limit,
           v.unique_key, now() + make_interval(secs => v.unique_for)
    FROM v
    ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state IN ('PENDING', 'RETRY')
    DO NOTHING
    RETURNING id, queue
),
notified AS (
    SELECT pg_notify('djqueue', q.queue) FROM (SELECT DISTINCT queue FROM inserted) AS q
)
SELECT i.id, (SELECT count(*) FROM notified) FROM inserted AS i
"""
_LIMITED_COLUMNS = (
    _COLUMNS
    + ", rate_limit, rate_period, concurrency_key, concurrency_limit, unique_key, unique_for"
)
_LIMITED_TYPES = (*_TYPES, "int", "float8", "text", "int", "text", "float8")
ENQUEUE_LIMITED_MANY = _ENQUEUE_LIMITED.format(
    source="SELECT {} FROM jsonb_array_elements(%s::jsonb) AS e".format(  # noqa: S608
        ", ".join(
            f"e->{index} AS {name}"
            if name in ("args", "kwargs")
            else f"(e->>{index})::{kind} AS {name}"
            for index, (kind, name) in enumerate(
                zip(_LIMITED_TYPES, _LIMITED_COLUMNS.split(", "), strict=True)
            )
        )
    )
)
ENQUEUE_LIMITED_ONE = _ENQUEUE_LIMITED.format(
    source="SELECT {}".format(
        ", ".join(
            f"%s::{kind} AS {name}"
            for kind, name in zip(_LIMITED_TYPES, _LIMITED_COLUMNS.split(", "), strict=True)
        )
    )
)

# The waiting holders of unique keys, through the unique index. Read in a new snapshot
# after the INSERT above, so a holder committed while the INSERT waited is seen.
# ``lapsed``: its unique_for window is over, and a duplicate may take the key.
UNIQUE_HOLDERS = """
SELECT unique_key, id, COALESCE(unique_until <= now(), false)
FROM djqueue_job
WHERE unique_key = ANY(%s::text[]) AND state IN ('PENDING', 'RETRY')
"""

# Take the key away from holders whose unique_for window is over, so that the duplicate
# can be inserted. The row lock taken here lasts until the caller's transaction ends;
# meanwhile claims skip that job (SKIP LOCKED), which only delays it.
UNIQUE_RELEASE = """
UPDATE djqueue_job SET unique_key = NULL
WHERE unique_key = ANY(%s::text[]) AND state IN ('PENDING', 'RETRY') AND unique_until <= now()
"""

# Unique jobs going back to waiting (a retry, a rescue, a hand-back). Only waiting jobs
# hold their unique key, so a duplicate may have been sent while this one ran; and two
# running duplicates may return in one statement. Either would make two waiting jobs
# with one key, which the unique index refuses: the statement, and every job in it,
# would fail. So a returning job gives up its key when another waiting job holds it, or
# when an earlier returning job (by id) of the same statement keeps it. Nothing is lost:
# both run, as both would have had the first one not come back.
# ``{source}`` is a query of the ids going back to waiting; the CTE names those among
# them that must give up their key.
_GIVE_UP_KEYS = """
giving_up AS (
    SELECT r.id FROM (
        SELECT j.id, j.unique_key,
               row_number() OVER (PARTITION BY j.unique_key ORDER BY j.id) AS n
        FROM djqueue_job AS j
        WHERE j.id IN ({source}) AND j.unique_key IS NOT NULL
    ) AS r
    WHERE r.n > 1
       OR EXISTS (SELECT 1 FROM djqueue_job AS d
                  WHERE d.unique_key = r.unique_key AND d.state IN ('PENDING', 'RETRY')
                        AND d.id <> r.id)
)"""
# The SET clause that goes with it.
_KEY_SET = (
    "unique_key = CASE WHEN j.id IN (SELECT id FROM giving_up) THEN NULL ELSE j.unique_key END"
)


# Claim a batch in one statement. SKIP LOCKED lets concurrent workers take disjoint rows
# without waiting on each other. The WHERE and ORDER BY match the partial index
# djqueue_job_ready exactly (no OR: an OR makes the planner leave the index); "NOT gated"
# is part of that index's predicate, so limited jobs are not even in it.
# synchronous_commit is off for this transaction only: losing a claim in a server crash
# just leaves the job PENDING, which is safe for at-least-once delivery.
# A claimed job is RECEIVED, not STARTED: it waits in the worker's buffer until a pool
# slot takes it (MARK_STARTED, or the outcome itself, records the start). ``isolate``
# tells the worker that the job was once taken back from a lost worker or killed its
# process, so that in-process pools run it in a process of its own.
_CLAIM = """
WITH sync AS (SELECT set_config('synchronous_commit', 'off', true)),
picked AS (
    SELECT id FROM djqueue_job
    WHERE state IN ('PENDING', 'RETRY') AND NOT gated AND queue {queue_test} AND eta <= now()
    ORDER BY {order}
    LIMIT %s
    FOR UPDATE SKIP LOCKED
)
UPDATE djqueue_job AS j
SET state = 'RECEIVED', attempt = j.attempt + 1, worker = %s, started_at = NULL,
    claimed_at = now(), lease_expires_at = now() + make_interval(secs => %s)
FROM picked, sync
WHERE j.id = picked.id
RETURNING j.id, j.task_name, j.args::text, j.kwargs::text, j.attempt, j.retries,
          j.queue, j.priority, j.eta,
          (j.expires_at IS NOT NULL AND j.expires_at <= now()),
          j.revoke_requested_at IS NOT NULL, j.lost > 0 OR j.kills > 0
"""
# With one queue the equality lets the index deliver rows already in order.
CLAIM_ONE_QUEUE = _CLAIM.format(queue_test="= %s", order="priority DESC, eta, id")
CLAIM_QUEUES = _CLAIM.format(queue_test="= ANY(%s::text[])", order="priority DESC, eta, id")

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
        lease_expires_at = statement_timestamp() + make_interval(secs => %(lease)s)
    FROM picked, sync
    WHERE j.id = picked.id
    RETURNING j.id, j.task_name, j.args::text AS args, j.kwargs::text AS kwargs, j.attempt,
              j.retries, j.queue, j.priority, j.eta,
              (j.expires_at IS NOT NULL AND j.expires_at <= now()) AS expired,
              j.revoke_requested_at IS NOT NULL AS revoked,
              j.lost > 0 OR j.kills > 0 AS isolate,
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
       isolate
FROM claimed
"""

# What follows the end of jobs that belong to a workflow (docs/canvas.md), as CTEs to
# append to a statement that ends jobs: ``{source}`` names its CTE of ended rows (id,
# task_name, state, result, error_type, error_message, workflow). Being part of that same
# statement, a follow-up is written exactly when the outcome is: a crash can neither lose
# it nor, since fencing writes an outcome once, start it twice. Plain jobs (workflow NULL)
# leave ``ended`` empty, and every CTE below then joins nothing.
# - ``released``: waiting next steps of succeeded jobs get a due eta, and the result as
#   their first argument unless immutable ("pass"). The state and eta = WAITING_ETA test
#   makes a release happen once and never revive a revoked step.
# - ``callbacks``: link (on success, with the result) and link_error (on failure, with
#   the failed job's id) callbacks are inserted; their ids were fixed when the workflow
#   was sent, so ON CONFLICT DO NOTHING runs an errback shared by several jobs once.
# - ``cancelled``: on failure or revocation, the waiting parts downstream end REVOKED.
# - chords: a header member's end decrements its chord's counter row. UPDATE under READ
#   COMMITTED waits for a concurrent decrement to commit and then recomputes SET from the
#   row as that transaction left it, so decrements and results never get lost, and
#   exactly one statement sees remaining reach 0: that one releases the body, with the
#   header results in header order. chord_locks takes the counter rows in id order first,
#   so that two batches that share several chords cannot deadlock. A failed or revoked
#   member ends the body at once (FAILURE with ChordError naming it, or REVOKED).
# - ``woken``: one NOTIFY per queue given a due job, and a djqueue_done NOTIFY for jobs
#   ended here (result waiters); the statement must read it for it to run.
_FOLLOW_UP = """
ended AS (
    SELECT s.id, s.state, s.result, s.workflow,
           s.task_name || '[' || s.id || '] '
           || CASE WHEN s.state = 'REVOKED' THEN 'was revoked: ' || s.error_message
                   ELSE 'raised ' || regexp_replace(s.error_type, '^.*[.]', '') || ': '
                        || s.error_message END AS what
    FROM {source} AS s
    WHERE s.workflow IS NOT NULL AND s.state IN ('SUCCESS', 'FAILURE', 'REVOKED')
),
released AS (
    UPDATE djqueue_job AS n
    SET eta = COALESCE((r.step->>'eta')::timestamptz,
                       now() + make_interval(secs => COALESCE((r.step->>'countdown')::float8, 0))),
        args = CASE WHEN (r.step->>'pass')::bool THEN jsonb_build_array(r.value) || n.args
                    ELSE n.args END
    FROM (SELECT jsonb_array_elements(e.workflow->'next') AS step, e.result AS value
          FROM ended AS e WHERE e.state = 'SUCCESS') AS r
    WHERE n.id = (r.step->>'id')::uuid AND n.state = 'PENDING' AND n.eta = '9999-01-01 00:00:00+00'
    RETURNING n.queue
),
callbacks AS (
    INSERT INTO djqueue_job (
        id, task_name, queue, priority, state, args, kwargs, attempt, retries,
        max_attempts, eta, expires_at, enqueued_at, worker, error_type, error_message,
        traceback
    )
    SELECT DISTINCT ON ((c.sig->>'id')::uuid)
           (c.sig->>'id')::uuid, c.sig->>'task_name', c.sig->>'queue',
           (c.sig->>'priority')::int, 'PENDING',
           CASE WHEN (c.sig->>'pass')::bool THEN jsonb_build_array(c.value) || (c.sig->'args')
                ELSE c.sig->'args' END,
           c.sig->'kwargs', 0, 0, (c.sig->>'max_attempts')::int,
           now() + make_interval(secs => COALESCE((c.sig->>'countdown')::float8, 0)),
           now() + make_interval(secs => (c.sig->>'expires_in')::float8),
           now(), '', '', '', ''
    FROM (SELECT jsonb_array_elements(e.workflow->'link') AS sig, e.result AS value
          FROM ended AS e WHERE e.state = 'SUCCESS'
          UNION ALL
          SELECT jsonb_array_elements(e.workflow->'link_error'), to_jsonb(e.id::text)
          FROM ended AS e WHERE e.state = 'FAILURE') AS c
    ON CONFLICT (id) DO NOTHING
    RETURNING queue
),
cancelled AS (
    UPDATE djqueue_job AS n
    SET state = 'REVOKED', finished_at = now(),
        error_type = 'djqueue.exceptions.TaskRevokedError',
        error_message = 'upstream failed: ' || x.what
    FROM (SELECT jsonb_array_elements_text(e.workflow->'cancel')::uuid AS id, e.what
          FROM ended AS e WHERE e.state <> 'SUCCESS') AS x
    WHERE n.id = x.id AND n.state = 'PENDING' AND n.eta = '9999-01-01 00:00:00+00'
    RETURNING n.id
),
counted AS (
    SELECT (e.workflow->>'chord')::uuid AS id, count(*)::int AS n,
           COALESCE(jsonb_object_agg(e.workflow->>'slot', e.result)
                    FILTER (WHERE e.state = 'SUCCESS'), '{{}}'::jsonb) AS results,
           COALESCE(min(e.what) FILTER (WHERE e.state <> 'SUCCESS'), '') AS failed,
           bool_or(e.state = 'FAILURE') AS errored
    FROM ended AS e
    -- A member's last job counts; an earlier job of a member chain counts when it does
    -- not succeed, since the member then ends there.
    WHERE e.workflow ? 'chord' AND (e.state <> 'SUCCESS' OR e.workflow ? 'slot')
    GROUP BY 1
),
chord_locks AS (
    SELECT g.id FROM djqueue_group AS g
    WHERE g.id IN (SELECT id FROM counted)
    ORDER BY g.id
    FOR UPDATE
),
chords AS (
    UPDATE djqueue_group AS g
    SET remaining = g.remaining - c.n,
        results = g.results || c.results,
        failed = CASE WHEN g.failed = '' THEN c.failed ELSE g.failed END
    FROM counted AS c
    WHERE g.id = c.id AND g.remaining IS NOT NULL AND g.id IN (SELECT id FROM chord_locks)
    RETURNING g.remaining, g.results, g.job_ids, g.release, g.failed,
              c.failed <> '' AS failing, c.errored
),
bodies AS (
    UPDATE djqueue_job AS n
    SET eta = COALESCE((b.step->>'eta')::timestamptz,
                       now() + make_interval(secs => COALESCE((b.step->>'countdown')::float8, 0))),
        args = CASE WHEN (b.step->>'pass')::bool THEN jsonb_build_array(b.value) || n.args
                    ELSE n.args END
    FROM (SELECT jsonb_array_elements(c.release) AS step,
                 (SELECT COALESCE(jsonb_agg(c.results->(t.slot::text) ORDER BY t.slot), '[]')
                  FROM generate_series(0, jsonb_array_length(c.job_ids) - 1) AS t(slot)) AS value
          FROM chords AS c WHERE c.remaining = 0 AND c.failed = '') AS b
    WHERE n.id = (b.step->>'id')::uuid AND n.state = 'PENDING' AND n.eta = '9999-01-01 00:00:00+00'
    RETURNING n.queue
),
failed_bodies AS (
    UPDATE djqueue_job AS n
    SET state = CASE WHEN b.errored THEN 'FAILURE' ELSE 'REVOKED' END, finished_at = now(),
        error_type = CASE WHEN b.errored THEN 'djqueue.canvas.ChordError'
                          ELSE 'djqueue.exceptions.TaskRevokedError' END,
        error_message = 'chord header task ' || b.failed
    FROM (SELECT (jsonb_array_elements(c.release)->>'id')::uuid AS id, c.failed, c.errored
          FROM chords AS c WHERE c.failing) AS b
    WHERE n.id = b.id AND n.state = 'PENDING' AND n.eta = '9999-01-01 00:00:00+00'
    RETURNING n.id
),
woken AS (
    SELECT pg_notify('djqueue', q.queue)
    FROM (SELECT queue FROM released UNION SELECT queue FROM callbacks
          UNION SELECT queue FROM bodies) AS q
    UNION ALL
    SELECT pg_notify('djqueue_done',
                     CASE WHEN count(*) <= 200 THEN string_agg(f.id::text, ' ') ELSE '' END)
    FROM (SELECT id FROM cancelled UNION ALL SELECT id FROM failed_bodies) AS f
    HAVING count(*) > 0
)
"""


def _follow_up(source: str) -> str:
    """The follow-up CTEs reading ended rows from the CTE named ``source``."""
    return _FOLLOW_UP.format(source=source)


# Write a batch of outcomes. Fencing: only a row still held (RECEIVED or STARTED) under the
# same attempt and worker is touched, so a worker presumed dead (its job rescued, maybe
# re-claimed) cannot overwrite newer state. The worker is part of the fence because an
# asynchronously committed claim lost in a server crash lets another worker claim the
# same attempt.
# The ids written are announced on djqueue_done for result waiters; the payload is empty
# when it would pass NOTIFY's 8000-byte limit, which tells waiters to re-read.
# Asynchronous commit as for claims: a lost acknowledgement only means the job runs again
# (and a workflow's follow-ups, written in the same statement, are lost with it).
#
# Two statements share this shape. FINISH, the hot one, leaves jobs of a workflow alone
# ("workflow IS NULL"): it stays as small to plan and run as it was before workflows, and
# the broker writes the outcomes it skipped with FINISH_WORKFLOW, which adds the
# follow-ups (_FOLLOW_UP) in the same statement. A job's outcome is written by exactly
# one of them, and the fence makes that write happen once.
_FINISH = """
WITH sync AS (SELECT set_config('synchronous_commit', 'off', true)),
{outcomes}{keys},
done AS (
    UPDATE djqueue_job AS j
    SET state = v.state,
        result = v.result::jsonb,
        error_type = v.error_type,
        error_message = v.error_message,
        traceback = v.traceback,
        finished_at = CASE WHEN v.state = 'RETRY' THEN NULL ELSE now() END,
        -- A job that ran and ended before its start was marked: dated from its runtime.
        started_at = COALESCE(j.started_at, now() - make_interval(secs => v.runtime)),
        eta = CASE WHEN v.state = 'RETRY'
                   THEN COALESCE(v.retry_at, now() + make_interval(secs => v.retry_in))
                   ELSE j.eta END,
        retries = j.retries + CASE WHEN v.state = 'RETRY' THEN 1 ELSE 0 END,
        lease_expires_at = NULL,
        -- A retry keeps the attempt that asked for it; other outcomes leave both as
        -- they are (the common SUCCESS row pays for a CASE, nothing more).
        history = CASE WHEN v.state = 'RETRY'
                       THEN COALESCE(j.history, '[]'::jsonb) || jsonb_build_array(
                           jsonb_build_object(
                               'attempt', j.attempt, 'worker', j.worker,
                               'started_at', COALESCE(j.started_at, now() - make_interval(
                                   secs => v.runtime)),
                               'ended_at', now(),
                               'outcome', 'RETRY', 'error_type', v.error_type,
                               'error_message', v.error_message))
                       ELSE j.history END,
        retried_at = CASE WHEN v.state = 'RETRY' THEN now() ELSE j.retried_at END{key_set}
    FROM v, sync
    WHERE j.id = v.id AND j.attempt = v.attempt AND j.worker = v.worker
          AND j.state IN ('RECEIVED', 'STARTED') {which}
    RETURNING {returning}
){follow_up}
SELECT array_agg(id),
       pg_notify('djqueue_done',
                 CASE WHEN count(*) <= 200 THEN string_agg(id::text, ' ') ELSE '' END),
       -- A job under a concurrency limit freed a slot: wake the queue's workers now
       -- rather than at their next poll. Plain jobs never match.
       (SELECT count(pg_notify('djqueue', q.queue))
        FROM (SELECT DISTINCT queue FROM done WHERE concurrency_key IS NOT NULL) AS q){woken}
FROM done
"""
# The outcomes as given, one row each.
_GIVEN = """given AS (
    SELECT * FROM unnest(
        %s::uuid[], %s::int[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
        %s::float8[], %s::timestamptz[], %s::text[], %s::float8[]
    ) AS v(id, attempt, state, result, error_type, error_message, traceback, retry_in,
           retry_at, worker, runtime)
)"""
_OUTCOMES = _GIVEN.replace("given AS", "v AS", 1)
# Retries and lost runs count against one budget of attempts: a retry asked for on the
# last attempt (a task's retries left, but a run was lost with its worker before) ends
# the job as FAILURE with the error that asked for it, as a retry past max_retries does.
_CAPPED = (
    _GIVEN  # noqa: S608 (constants only)
    + """,
v AS (
    SELECT g.id, g.attempt,
           CASE WHEN g.state = 'RETRY' AND g.attempt >= j.max_attempts THEN 'FAILURE'
                ELSE g.state END AS state,
           g.result, g.error_type, g.error_message, g.traceback, g.retry_in, g.retry_at,
           g.worker, g.runtime
    FROM given AS g JOIN djqueue_job AS j ON j.id = g.id
)"""
)
FINISH = _FINISH.format(
    outcomes=_OUTCOMES,
    which="AND j.workflow IS NULL",
    returning="j.id, j.queue, j.concurrency_key",
    follow_up="",
    woken="",
    keys="",
    key_set="",
)
# A batch with retries: a retrying unique job may have to give up its key (_GIVE_UP_KEYS).
# Its own statement, so that the common batch of successes pays nothing for it.
FINISH_RETRYING = _FINISH.format(
    outcomes=_CAPPED,
    which="AND j.workflow IS NULL",
    returning="j.id, j.queue, j.concurrency_key",
    follow_up="",
    woken="",
    keys="," + _GIVE_UP_KEYS.format(source="SELECT id FROM v WHERE state = 'RETRY'"),  # noqa: S608
    key_set=",\n        " + _KEY_SET.replace("j.id IN", "v.state = 'RETRY' AND j.id IN"),
)
FINISH_WORKFLOW = _FINISH.format(
    outcomes=_CAPPED,
    which="AND j.workflow IS NOT NULL",
    returning=(
        "j.id, j.queue, j.concurrency_key, j.task_name, j.state, j.result, j.error_type,\n"
        "              j.error_message, j.workflow"
    ),
    follow_up=",\n" + _follow_up("done").rstrip().rstrip(","),
    woken=",\n       (SELECT count(*) FROM woken)",
    keys="",
    key_set="",
)

# Record that jobs a worker received have started running. Not needed for correctness
# (the outcome records the start too): it shows running jobs as STARTED, and tells a
# rescue that the job had begun, so that it is charged the attempt. Fenced like a
# finish; asynchronous commit, since a lost mark only shows the job as received.
MARK_STARTED = """
WITH sync AS (SELECT set_config('synchronous_commit', 'off', true))
UPDATE djqueue_job AS j
SET state = 'STARTED', started_at = now() - make_interval(secs => v.ago)
FROM unnest(%s::uuid[], %s::int[], %s::float8[]) AS v(id, attempt, ago), sync
WHERE j.id = v.id AND j.attempt = v.attempt AND j.worker = %s AND j.state = 'RECEIVED'
"""

# A job whose run killed its process (a prefork child or an isolated run died under
# it): count the kill, fenced like a finish. The broker runs it in the transaction that
# then writes the outcome, so that a write tried again after a lost reply counts once.
COUNT_KILL = """
UPDATE djqueue_job AS j SET kills = j.kills + 1
FROM unnest(%s::uuid[], %s::int[], %s::text[]) AS v(id, attempt, worker)
WHERE j.id = v.id AND j.attempt = v.attempt AND j.worker = v.worker
      AND j.state IN ('RECEIVED', 'STARTED')
RETURNING j.id, j.kills
"""

# Heartbeat: renew the leases of exactly the jobs the worker holds, named by id and
# attempt (never "every row that names the worker": a claim whose reply was lost names
# it too, and would be renewed forever). Jobs rescued from it meanwhile have another
# state, attempt or worker and are left alone; what comes back is what is still ours.
RENEW_LEASES = """
UPDATE djqueue_job AS j SET lease_expires_at = now() + make_interval(secs => %s)
FROM unnest(%s::uuid[], %s::int[]) AS v(id, attempt)
WHERE j.id = v.id AND j.attempt = v.attempt AND j.worker = %s
      AND j.state IN ('RECEIVED', 'STARTED')
RETURNING j.id, j.revoke_requested_at IS NOT NULL
"""

# Rows that name a live worker but that it does not hold: the reply to a claim was lost
# (the rows were committed, the worker never saw them), or the worker gave up on an
# outcome it could not write. They go back to the queue now instead of waiting for a
# lease that the worker would never renew. One that was only received gets its attempt
# back (it never ran); a started one on its last attempt has its lease ended instead, so
# that the rescue the worker runs next fails it as a lost job. The worker runs this
# statement while no claim of its own is in flight, so a claim that is being answered
# cannot be mistaken for a lost one.
RELEASE_ORPHANS = """
WITH candidates AS (
    SELECT id, COALESCE(state = 'STARTED' AND attempt >= max_attempts, false) AS last
    FROM djqueue_job
    WHERE worker = %s AND state IN ('RECEIVED', 'STARTED') AND id <> ALL(%s::uuid[])
),
found AS (SELECT id FROM candidates WHERE NOT last),
spent AS (
    UPDATE djqueue_job AS j SET lease_expires_at = LEAST(j.lease_expires_at, now() - interval '1 s')
    FROM candidates AS c WHERE j.id = c.id AND c.last
),{keys},
orphans AS (
    UPDATE djqueue_job AS j
    SET state = 'PENDING', worker = '', lease_expires_at = NULL, started_at = NULL,
        max_attempts = j.max_attempts + CASE WHEN j.state = 'RECEIVED' THEN 1 ELSE 0 END,
        {key_set},
        history = COALESCE(j.history, '[]'::jsonb) || jsonb_build_array(jsonb_build_object(
            'attempt', j.attempt, 'worker', j.worker, 'started_at', j.started_at,
            'ended_at', now(), 'outcome', 'RELEASED',
            'error_message', 'held by its worker without the worker knowing (a lost '
                             || 'reply); handed back to the queue'))
    FROM found
    WHERE j.id = found.id AND j.state IN ('RECEIVED', 'STARTED')
    RETURNING j.queue
)
SELECT q.queue, q.n, pg_notify('djqueue', q.queue)
FROM (SELECT queue, count(*) AS n FROM orphans GROUP BY queue) AS q
""".format(keys=_GIVE_UP_KEYS.format(source="SELECT id FROM found"), key_set=_KEY_SET)  # noqa: S608

# Rescue jobs whose lease ran out: their worker died, froze or was cut off. SKIP LOCKED
# so that two rescuers (or a finishing worker) never wait on each other.
# - A job only RECEIVED never ran: it goes back with its attempt given back (the budget
#   grows by one, so that ``attempt`` stays a fence that only ever grows).
# - A STARTED job out of attempts ends FAILURE (WorkerLostError); otherwise it goes back.
# Either way ``lost`` counts up: a job that may have killed its worker runs next in a
# process of its own, where a second kill is seen for what it is (docs/guarantees.md).
RESCUE = """
WITH lost AS (
    SELECT id FROM djqueue_job
    WHERE state IN ('RECEIVED', 'STARTED') AND lease_expires_at < now()
    FOR UPDATE SKIP LOCKED
),{keys},
moved AS (
    UPDATE djqueue_job AS j
    SET state = CASE WHEN j.state = 'STARTED' AND j.attempt >= j.max_attempts
                     THEN 'FAILURE' ELSE 'PENDING' END,
        error_type = CASE WHEN j.state = 'STARTED' AND j.attempt >= j.max_attempts
                          THEN 'djqueue.exceptions.WorkerLostError' ELSE j.error_type END,
        error_message = CASE WHEN j.state = 'STARTED' AND j.attempt >= j.max_attempts
                             THEN 'worker lost: ' || j.worker
                                  || ' stopped renewing its lease on attempt '
                                  || j.attempt || ' of ' || j.max_attempts
                             ELSE j.error_message END,
        finished_at = CASE WHEN j.state = 'STARTED' AND j.attempt >= j.max_attempts
                           THEN now() ELSE NULL END,
        max_attempts = j.max_attempts + CASE WHEN j.state = 'RECEIVED' THEN 1 ELSE 0 END,
        started_at = CASE WHEN j.state = 'STARTED' THEN j.started_at END,
        lost = j.lost + 1,
        {key_set},
        history = COALESCE(j.history, '[]'::jsonb) || jsonb_build_array(jsonb_build_object(
            'attempt', j.attempt, 'worker', j.worker, 'started_at', j.started_at,
            'ended_at', now(), 'outcome', 'LOST',
            'error_message', CASE WHEN j.state = 'RECEIVED'
                                  THEN 'the worker stopped renewing its lease before the '
                                       || 'job started (the attempt is not counted)'
                                  ELSE 'the worker stopped renewing its lease' END)),
        worker = '',
        lease_expires_at = NULL
    FROM lost
    WHERE j.id = lost.id
    RETURNING j.id, j.state, j.queue, j.task_name, j.result, j.error_type, j.error_message,
              j.workflow
),
{follow_up},
-- Jobs that ended here are announced to result waiters (ids, or '' past NOTIFY's limit).
failed AS (
    SELECT pg_notify('djqueue_done',
                     CASE WHEN count(*) <= 200 THEN string_agg(id::text, ' ') ELSE '' END)
    FROM moved WHERE state = 'FAILURE' HAVING count(*) > 0
)
SELECT state, queue, count(*), (SELECT count(*) FROM woken), (SELECT count(*) FROM failed)
FROM moved GROUP BY state, queue
""".format(  # noqa: S608
    follow_up=_follow_up("moved"),
    keys=_GIVE_UP_KEYS.format(source="SELECT id FROM lost"),
    key_set=_KEY_SET,
)

# Hand jobs back at shutdown. A job that never started gets its attempt back (the budget
# grows by one: ``attempt`` only ever grows, since it fences late writes). Fenced by
# worker too, as a finish is: a worker presumed dead hands back nothing it lost.
# A started job on its last attempt cannot go back: its lease is ended instead, and the
# next rescue (any worker's heartbeat) fails it as a lost job, follow-ups included.
RELEASE = """
WITH v AS (
    SELECT v.*, j.state = 'STARTED' OR v.started AS ran,
           COALESCE(v.attempt >= j.max_attempts, false) AS last
    FROM unnest(%s::uuid[], %s::int[], %s::bool[]) AS v(id, attempt, started)
    JOIN djqueue_job AS j ON j.id = v.id AND j.attempt = v.attempt AND j.worker = %s
                            AND j.state IN ('RECEIVED', 'STARTED')
),{keys},
spent AS (
    UPDATE djqueue_job AS j SET lease_expires_at = LEAST(j.lease_expires_at, now() - interval '1 s')
    FROM v WHERE j.id = v.id AND v.ran AND v.last
)
UPDATE djqueue_job AS j
SET state = 'PENDING', worker = '', lease_expires_at = NULL, started_at = NULL,
    max_attempts = j.max_attempts + CASE WHEN v.ran THEN 0 ELSE 1 END,
    {key_set}
FROM v
WHERE j.id = v.id AND NOT (v.ran AND v.last)
RETURNING j.queue
""".format(  # noqa: S608
    keys=_GIVE_UP_KEYS.format(source="SELECT id FROM v WHERE NOT (ran AND last)"),
    key_set=_KEY_SET,
)

NOTIFY = "SELECT pg_notify('djqueue', %s)"

# Revoking a waiting job also revokes what follows it in a workflow, as a failure would.
REVOKE = """
WITH revoked AS (
    UPDATE djqueue_job
    SET state = 'REVOKED', finished_at = now(), lease_expires_at = NULL,
        error_type = 'djqueue.exceptions.TaskRevokedError', error_message = %s
    WHERE id = %s AND state IN ('PENDING', 'RETRY')
    RETURNING id, task_name, state, result, error_type, error_message, workflow
),
{follow_up}
SELECT id, (SELECT count(*) FROM woken), pg_notify('djqueue_done', id::text) FROM revoked
""".format(follow_up=_follow_up("revoked"))  # noqa: S608

# revoke(terminate=True) of a running job: the request is kept in the row (so that a
# worker that missed the notification sees it at its next heartbeat, and a claim after
# a rescue does not run the job) and announced to workers on djqueue_revoke.
REQUEST_REVOKE = """
WITH requested AS (
    UPDATE djqueue_job SET revoke_requested_at = now()
    WHERE id = %s AND state IN ('RECEIVED', 'STARTED')
    RETURNING id
)
SELECT pg_notify('djqueue_revoke', id::text) FROM requested
"""

# Whether a revocation was asked for a job a worker holds: a revoke notification is only
# a hint (any role may send one), the row says whether to act.
REVOKE_ASKED = """
SELECT revoke_requested_at IS NOT NULL FROM djqueue_job
WHERE id = %s AND attempt = %s AND worker = %s AND state IN ('RECEIVED', 'STARTED')
"""

FORGET = """
DELETE FROM djqueue_job
WHERE id = %s AND state IN ('SUCCESS', 'FAILURE', 'REVOKED')
"""

# Prune in bounded batches so that no statement holds many row locks for long; SKIP
# LOCKED keeps two pruning workers out of each other's way.
PRUNE = """
DELETE FROM djqueue_job WHERE id IN (
    SELECT id FROM djqueue_job
    WHERE finished_at < now() - make_interval(secs => %s)
    ORDER BY finished_at
    LIMIT %s
    FOR UPDATE SKIP LOCKED
)
"""

# Groups (GroupResult.restore, chord counters) older than the retention whose jobs are
# all gone: nothing can read them any more. Bounded batches, as for jobs.
PRUNE_GROUPS = """
DELETE FROM djqueue_group WHERE id IN (
    SELECT g.id FROM djqueue_group AS g
    WHERE g.created_at < now() - make_interval(secs => %s)
          AND NOT EXISTS (
              SELECT 1 FROM djqueue_job AS j
              WHERE j.id IN (SELECT value::uuid FROM jsonb_array_elements_text(g.job_ids))
                 OR j.id = g.body_id)
    ORDER BY g.created_at
    LIMIT %s
    FOR UPDATE SKIP LOCKED
)
"""

# Live workers beat every few seconds; the floor keeps their rows even when asked to
# prune everything finished (--older-than 0).
PRUNE_WORKERS = """
DELETE FROM djqueue_worker
WHERE last_heartbeat < now() - make_interval(secs => GREATEST(%s, %s))
"""

REGISTER_WORKER = """
INSERT INTO djqueue_worker (
    name, hostname, pid, pool, concurrency, queues, started_at, last_heartbeat, jobs_done,
    children
)
VALUES (%s, %s, %s, %s, %s, %s::jsonb, now(), now(), 0, '[]'::jsonb)
ON CONFLICT (name) DO UPDATE
SET started_at = now(), last_heartbeat = now(), stopped_at = NULL, jobs_done = 0,
    children = '[]'::jsonb
"""

WORKER_HEARTBEAT = """
UPDATE djqueue_worker SET last_heartbeat = now(), jobs_done = %s, children = %s::jsonb
WHERE name = %s
"""

# Operations (admin actions and manage.py djqueue) -------------------------------------

# Run failed jobs again as a new attempt with the same arguments, keeping their ids (so
# that result handles stay valid). The attempt budget starts over from here; a job that
# killed its process keeps running in a process of its own (``lost`` stays above 0).
# A unique job is left failed while another job holding its key waits (retrying it would
# make the duplicate the key forbids), and of several failed jobs with one key only the
# newest is retried.
RETRY_FAILED = """
WITH candidates AS (
    SELECT DISTINCT ON (COALESCE(f.unique_key, f.id::text)) f.id
    FROM djqueue_job AS f
    WHERE f.id = ANY(%s::uuid[]) AND f.state = 'FAILURE'
          AND NOT EXISTS (SELECT 1 FROM djqueue_job AS w
                          WHERE w.unique_key = f.unique_key AND w.state IN ('PENDING', 'RETRY'))
    ORDER BY COALESCE(f.unique_key, f.id::text), f.finished_at DESC, f.id
),
again AS (
    UPDATE djqueue_job
    SET state = 'PENDING', eta = now(), started_at = NULL, finished_at = NULL,
        worker = '', lease_expires_at = NULL, result = NULL, error_type = '',
        error_message = '', traceback = '', retries = 0, progress = NULL,
        revoke_requested_at = NULL,
        max_attempts = CASE WHEN max_attempts IS NULL THEN NULL
                            ELSE attempt + GREATEST(max_attempts - attempt, 1) END,
        lost = GREATEST(lost, LEAST(kills, 1)), kills = 0,
        -- The failed attempt goes into the history before its columns are cleared.
        history = COALESCE(history, '[]'::jsonb) || jsonb_build_array(jsonb_build_object(
            'attempt', attempt, 'worker', worker, 'started_at', started_at,
            'ended_at', finished_at, 'outcome', 'FAILURE', 'error_type', error_type,
            'error_message', error_message))
    WHERE id IN (SELECT id FROM candidates) AND state = 'FAILURE'
    RETURNING queue
)
SELECT q.queue, q.n, pg_notify('djqueue', q.queue)
FROM (SELECT queue, count(*) AS n FROM again GROUP BY queue) AS q
"""

DELETE_FINISHED = """
DELETE FROM djqueue_job
WHERE id = ANY(%s::uuid[]) AND state IN ('SUCCESS', 'FAILURE', 'REVOKED')
"""

# Purge takes waiting jobs only: running ones belong to their workers.
PURGE = """
DELETE FROM djqueue_job WHERE queue = %s AND state IN ('PENDING', 'RETRY')
"""

# Pausing is stored (it outlives workers) and announced so that workers react at once.
SET_PAUSED = """
WITH changed AS (
    INSERT INTO djqueue_queue (name, paused, changed_at) VALUES (%s, %s, now())
    ON CONFLICT (name) DO UPDATE SET paused = EXCLUDED.paused, changed_at = now()
    RETURNING name
)
SELECT pg_notify('djqueue_pause', name) FROM changed
"""

PAUSED_QUEUES = "SELECT name FROM djqueue_queue WHERE paused"

# Progress of a running job, fenced like a finish: a stale run cannot overwrite it.
UPDATE_PROGRESS = """
UPDATE djqueue_job SET progress = %s::jsonb
WHERE id = %s AND attempt = %s AND worker = %s AND state IN ('RECEIVED', 'STARTED')
"""

WORKER_STOPPED = """
UPDATE djqueue_worker SET last_heartbeat = now(), stopped_at = now(), jobs_done = %s
WHERE name = %s
"""

# Whether a job's row exists for other sessions: a job sent in a transaction that is
# still open exists only for the session that sent it (AsyncResult.get asks, from a
# connection of its own, to tell the caller so). A plain read: no lock.
JOB_VISIBLE = "SELECT 1 FROM djqueue_job WHERE id = %s"
