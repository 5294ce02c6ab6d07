"""Every SQL statement of the broker, with why each lock or trick is there.

Table names are fixed by the models (``djqueue_job``, ``djqueue_worker``). Parameters
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

# Claim a batch in one statement. SKIP LOCKED lets concurrent workers take disjoint rows
# without waiting on each other. The WHERE and ORDER BY match the partial index
# djqueue_job_ready exactly (no OR: an OR makes the planner leave the index).
# synchronous_commit is off for this transaction only: losing a claim in a server crash
# just leaves the job PENDING, which is safe for at-least-once delivery.
_CLAIM = """
WITH sync AS (SELECT set_config('synchronous_commit', 'off', true)),
picked AS (
    SELECT id FROM djqueue_job
    WHERE state IN ('PENDING', 'RETRY') AND queue {queue_test} AND eta <= now()
    ORDER BY {order}
    LIMIT %s
    FOR UPDATE SKIP LOCKED
)
UPDATE djqueue_job AS j
SET state = 'STARTED', attempt = j.attempt + 1, worker = %s, started_at = now(),
    lease_expires_at = now() + make_interval(secs => %s)
FROM picked, sync
WHERE j.id = picked.id
RETURNING j.id, j.task_name, j.args::text, j.kwargs::text, j.attempt, j.retries,
          j.queue, j.priority, j.eta,
          (j.expires_at IS NOT NULL AND j.expires_at <= now())
"""
# With one queue the equality lets the index deliver rows already in order.
CLAIM_ONE_QUEUE = _CLAIM.format(queue_test="= %s", order="priority DESC, eta, id")
CLAIM_QUEUES = _CLAIM.format(queue_test="= ANY(%s::text[])", order="priority DESC, eta, id")

# Write a batch of outcomes. Fencing: only a row still STARTED under the same attempt and
# worker is touched, so a worker presumed dead (its job rescued, maybe re-claimed) cannot
# overwrite newer state. The worker is part of the fence because an asynchronously
# committed claim lost in a server crash lets another worker claim the same attempt.
# The ids written are announced on djqueue_done for result waiters; the payload is empty
# when it would pass NOTIFY's 8000-byte limit, which tells waiters to re-read.
# Asynchronous commit as for claims: a lost acknowledgement only means the job runs again.
FINISH = """
WITH sync AS (SELECT set_config('synchronous_commit', 'off', true)),
v AS (
    SELECT * FROM unnest(
        %s::uuid[], %s::int[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
        %s::float8[], %s::timestamptz[], %s::text[]
    ) AS v(id, attempt, state, result, error_type, error_message, traceback, retry_in,
           retry_at, worker)
),
done AS (
    UPDATE djqueue_job AS j
    SET state = v.state,
        result = v.result::jsonb,
        error_type = v.error_type,
        error_message = v.error_message,
        traceback = v.traceback,
        finished_at = CASE WHEN v.state = 'RETRY' THEN NULL ELSE now() END,
        eta = CASE WHEN v.state = 'RETRY'
                   THEN COALESCE(v.retry_at, now() + make_interval(secs => v.retry_in))
                   ELSE j.eta END,
        retries = j.retries + CASE WHEN v.state = 'RETRY' THEN 1 ELSE 0 END,
        lease_expires_at = NULL
    FROM v, sync
    WHERE j.id = v.id AND j.attempt = v.attempt AND j.worker = v.worker
          AND j.state = 'STARTED'
    RETURNING j.id
)
SELECT array_agg(id),
       pg_notify('djqueue_done',
                 CASE WHEN count(*) <= 200 THEN string_agg(id::text, ' ') ELSE '' END)
FROM done
"""

# Heartbeat: keep this worker's running jobs owned. Jobs rescued from it meanwhile have
# another state or worker and are left alone.
EXTEND_LEASES = """
UPDATE djqueue_job SET lease_expires_at = now() + make_interval(secs => %s)
WHERE state = 'STARTED' AND worker = %s
RETURNING id
"""

# Rescue jobs whose lease ran out: their worker died or hung. SKIP LOCKED so that two
# rescuers (or a finishing worker) never wait on each other. Out of attempts: FAILURE.
RESCUE = """
WITH lost AS (
    SELECT id FROM djqueue_job
    WHERE state = 'STARTED' AND lease_expires_at < now()
    FOR UPDATE SKIP LOCKED
),
moved AS (
    UPDATE djqueue_job AS j
    SET state = CASE WHEN j.attempt >= j.max_attempts THEN 'FAILURE' ELSE 'PENDING' END,
        error_type = CASE WHEN j.attempt >= j.max_attempts
                          THEN 'djqueue.exceptions.WorkerLostError' ELSE j.error_type END,
        error_message = CASE WHEN j.attempt >= j.max_attempts
                             THEN 'worker lost: ' || j.worker
                                  || ' stopped renewing its lease on attempt '
                                  || j.attempt || ' of ' || j.max_attempts
                             ELSE j.error_message END,
        finished_at = CASE WHEN j.attempt >= j.max_attempts THEN now() ELSE NULL END,
        worker = '',
        lease_expires_at = NULL
    FROM lost
    WHERE j.id = lost.id
    RETURNING j.state, j.queue
)
SELECT state, queue, count(*) FROM moved GROUP BY state, queue
"""

# Hand jobs back at shutdown. A job that never started gives its attempt back.
RELEASE = """
UPDATE djqueue_job AS j
SET state = 'PENDING', worker = '', lease_expires_at = NULL, started_at = NULL,
    attempt = j.attempt - CASE WHEN v.started THEN 0 ELSE 1 END
FROM unnest(%s::uuid[], %s::int[], %s::bool[]) AS v(id, attempt, started)
WHERE j.id = v.id AND j.attempt = v.attempt AND j.state = 'STARTED'
RETURNING j.queue
"""

NOTIFY = "SELECT pg_notify('djqueue', %s)"

REVOKE = """
UPDATE djqueue_job
SET state = 'REVOKED', finished_at = now(), lease_expires_at = NULL,
    error_type = 'djqueue.exceptions.TaskRevokedError', error_message = %s
WHERE id = %s AND state IN ('PENDING', 'RETRY')
RETURNING id
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

# Live workers beat every few seconds; the floor keeps their rows even when asked to
# prune everything finished (--older-than 0).
PRUNE_WORKERS = """
DELETE FROM djqueue_worker
WHERE last_heartbeat < now() - make_interval(secs => GREATEST(%s, %s))
"""

REGISTER_WORKER = """
INSERT INTO djqueue_worker (
    name, hostname, pid, pool, concurrency, queues, started_at, last_heartbeat, jobs_done
)
VALUES (%s, %s, %s, %s, %s, %s::jsonb, now(), now(), 0)
ON CONFLICT (name) DO UPDATE
SET started_at = now(), last_heartbeat = now(), stopped_at = NULL, jobs_done = 0
"""

WORKER_HEARTBEAT = """
UPDATE djqueue_worker SET last_heartbeat = now(), jobs_done = %s WHERE name = %s
"""

WORKER_STOPPED = """
UPDATE djqueue_worker SET last_heartbeat = now(), stopped_at = now(), jobs_done = %s
WHERE name = %s
"""
