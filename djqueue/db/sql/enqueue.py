"""Enqueue: the INSERTs of jobs (plain, of a workflow, with limits or a unique key),
the groups of a workflow, and the unique-key look-ups that go with them."""

from __future__ import annotations

from djqueue.db.sql import parts

# One INSERT for any number of jobs (arrays unnested server-side: one round trip), and
# one NOTIFY per distinct queue. NOTIFY is transactional: listeners hear it only when the
# caller's transaction commits, so a worker never wakes for a job it cannot see yet.
# eta/expiry come from the database clock so that worker and web clocks never matter.
_ENQUEUE = f"""
WITH v AS ({{source}}),
inserted AS (
    INSERT INTO djqueue_job (
{parts.JOB_COLUMNS}
    )
    SELECT v.id, v.task_name, v.queue, v.priority, 'PENDING', v.args::jsonb,
           v.kwargs::jsonb, 0, 0, v.max_attempts,
           {parts.DUE_ETA},
           {parts.EXPIRES_AT},
           now(), '', '', '', ''
    FROM v
    RETURNING queue
)
SELECT pg_notify('djqueue', q.queue) FROM (SELECT DISTINCT queue FROM inserted) AS q
"""  # noqa: S608 (built from constants only)
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

# Jobs of a workflow (docs/canvas.md): plain jobs plus their continuation (``workflow``)
# and whether they wait for an upstream job. A separate statement so that plain jobs keep
# theirs. A waiting job is PENDING with eta = WAITING_ETA: never due, so no claim takes it
# (and the ready index still serves the claim unchanged) until the statement that records
# its upstream job's outcome sets a real eta. Only queues with a job due are notified.
# Jobs with a rate or concurrency limit carry it here too (gated: claimed by the limited
# path once due); jobs with a unique key never come here (they are inserted on their own).
ENQUEUE_WORKFLOW = f"""
WITH v AS (
    SELECT (e->>0)::uuid AS id, e->>1 AS task_name, e->>2 AS queue, (e->>3)::int AS priority,
           e->4 AS args, e->5 AS kwargs, (e->>6)::int AS max_attempts,
           (e->>7)::timestamptz AS eta, (e->>8)::float8 AS countdown,
           (e->>9)::timestamptz AS expires_at, (e->>10)::float8 AS expires_in,
           NULLIF(e->11, 'null'::jsonb) AS workflow, (e->>12)::bool AS waiting,
           (e->>13)::int AS rate_limit, (e->>14)::float8 AS rate_period,
           e->>15 AS concurrency_key, (e->>16)::int AS concurrency_limit
    FROM jsonb_array_elements(%s::jsonb) AS e
),
inserted AS (
    INSERT INTO djqueue_job (
{parts.JOB_COLUMNS}, workflow, gated, rate_limit, rate_period, concurrency_key,
        concurrency_limit
    )
    SELECT v.id, v.task_name, v.queue, v.priority, 'PENDING', v.args, v.kwargs, 0, 0,
           v.max_attempts,
           CASE WHEN v.waiting THEN {parts.WAITING}::timestamptz
                ELSE {parts.DUE_ETA}
           END,
           {parts.EXPIRES_AT},
           now(), '', '', '', '', v.workflow,
           v.rate_limit IS NOT NULL OR v.concurrency_limit IS NOT NULL,
           v.rate_limit, v.rate_period, v.concurrency_key, v.concurrency_limit
    FROM v
    RETURNING queue, eta
)
SELECT pg_notify('djqueue', q.queue)
FROM (SELECT DISTINCT queue FROM inserted WHERE eta <> {parts.WAITING}) AS q
"""  # noqa: S608 (built from constants only)

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
_ENQUEUE_LIMITED = f"""
WITH v AS ({{source}}),
inserted AS (
    INSERT INTO djqueue_job (
{parts.JOB_COLUMNS}, gated, rate_limit, rate_period, concurrency_key, concurrency_limit,
        unique_key, unique_until
    )
    SELECT v.id, v.task_name, v.queue, v.priority, 'PENDING', v.args::jsonb,
           v.kwargs::jsonb, 0, 0, v.max_attempts,
           {parts.DUE_ETA},
           {parts.EXPIRES_AT},
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
"""  # noqa: S608 (built from constants only)
_LIMITED_COLUMNS = (
    _COLUMNS
    + ", rate_limit, rate_period, concurrency_key, concurrency_limit, unique_key, unique_for"
)
_LIMITED_TYPES = (*_TYPES, "int", "float8", "text", "int", "text", "float8")
# Many jobs with limits or keys: one JSON array parameter, as ENQUEUE_MANY.
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
# One job with limits or a key: plain parameters, as ENQUEUE_ONE.
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

# Wakes the workers of a queue (a job became due there outside an enqueue statement).
NOTIFY = "SELECT pg_notify('djqueue', %s)"
