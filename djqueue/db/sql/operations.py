"""Operations: revoke, forget, prune, and the admin's and ``manage.py djqueue``'s
actions (retry, delete, purge, pause), progress, and reads for the console."""

from __future__ import annotations

from djqueue.db.sql import parts

# Revoking a waiting job also revokes what follows it in a workflow, as a failure would.
REVOKE = """
WITH revoked AS (
    UPDATE djqueue_job
    SET state = 'REVOKED', finished_at = now(), lease_expires_at = NULL,
        error_type = 'djqueue.exceptions.TaskRevokedError', error_message = %s
    WHERE id = %s AND state IN ('PENDING', 'RETRY')
    RETURNING id, task_name, state, result, error_type, error_message, traceback, workflow
),
{follow_up}
SELECT id, (SELECT count(*) FROM woken), pg_notify('djqueue_done', id::text) FROM revoked
""".format(follow_up=parts.follow_up("revoked"))  # noqa: S608

# revoke(terminate=True) of a running job: the request is kept in the row (so that a
# worker that missed the notification sees it at its next heartbeat, and a claim after
# a rescue does not run the job) and announced to workers on djqueue_revoke.
REQUEST_REVOKE = """
WITH requested AS (
    UPDATE djqueue_job SET revoke_requested_at = now(), revoke_signal = %s
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

# The signal a revocation of a job a worker holds asked for (NULL: the pool's own way).
REVOKE_SIGNAL = """
SELECT revoke_signal FROM djqueue_job
WHERE id = %s AND attempt = %s AND worker = %s AND state IN ('RECEIVED', 'STARTED')
"""

# Delete a finished job's row (AsyncResult.forget); a job still waiting or running stays.
FORGET = """
DELETE FROM djqueue_job
WHERE id = %s AND state IN ('SUCCESS', 'FAILURE', 'REVOKED', 'REJECTED', 'IGNORED')
"""

# GroupResult.save(): a group made by the caller from sent jobs, stored for restore().
# A group stored already (every sent group is) keeps its row: ON CONFLICT leaves it.
SAVE_GROUP = """
INSERT INTO djqueue_group (id, job_ids, created_at, results, failed)
VALUES (%s, %s::jsonb, now(), '{}'::jsonb, '')
ON CONFLICT (id) DO NOTHING
"""

# GroupResult.delete(): a chord's counter (remaining IS NOT NULL) stays while it counts.
DELETE_GROUP = """
DELETE FROM djqueue_group WHERE id = %s AND (remaining IS NULL OR remaining <= 0)
"""

# Prune in bounded batches so that no statement holds many row locks (or the oldest
# snapshot) for long; SKIP LOCKED keeps two pruning workers out of each other's way.
# PRUNE_CUTOFF fixes the moment once per prune, so that a prune ends even while jobs
# pass the retention as fast as it deletes them. Each batch starts where the previous
# one ended (keyset: ``finished_at >= %(after)s``, the last batch's latest): a batch
# that started over at the oldest end would step again over the index entries of every
# row deleted so far, and while a long transaction elsewhere holds back vacuum those
# entries cannot even be marked dead, so that each batch would cost more than the one
# before (docs/scaling.md#size). A row skipped because it was locked stays
# for the next prune.
PRUNE_CUTOFF = "SELECT now() - make_interval(secs => %s)"
PRUNE = """
WITH gone AS (
    DELETE FROM djqueue_job WHERE id IN (
        SELECT id FROM djqueue_job
        WHERE finished_at >= %(after)s AND finished_at < %(before)s
        ORDER BY finished_at
        LIMIT %(batch)s
        FOR UPDATE SKIP LOCKED
    )
    RETURNING finished_at
)
SELECT count(*), max(finished_at) FROM gone
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
        revoke_requested_at = NULL, revoke_signal = NULL,
        max_attempts = CASE WHEN max_attempts IS NULL THEN NULL
                            ELSE attempt + GREATEST(max_attempts - attempt, 1) END,
        lost = GREATEST(lost, LEAST(kills, 1)), kills = 0,
        -- The failed attempt goes into the history before its columns are cleared.
        history = COALESCE(history, '[]'::jsonb) || jsonb_build_array(jsonb_build_object(
            'attempt', attempt, 'worker', worker, 'claimed_at', claimed_at,
            'started_at', started_at,
            'ended_at', finished_at, 'outcome', 'FAILURE', 'error_type', error_type,
            'error_message', error_message))
    WHERE id IN (SELECT id FROM candidates) AND state = 'FAILURE'
    RETURNING id, queue
)
SELECT q.queue, q.ids, pg_notify('djqueue', q.queue)
FROM (SELECT queue, array_agg(id) AS ids FROM again GROUP BY queue) AS q
"""

# Delete finished jobs chosen in the admin; waiting and running ones stay.
DELETE_FINISHED = """
DELETE FROM djqueue_job
WHERE id = ANY(%s::uuid[]) AND state IN ('SUCCESS', 'FAILURE', 'REVOKED', 'REJECTED', 'IGNORED')
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

# The paused queues (a worker reads them at start and when told they changed).
PAUSED_QUEUES = "SELECT name FROM djqueue_queue WHERE paused"

# A queue's limits (NULL: none). The notification is the pause channel's: workers read
# the queues' state again, limits and pauses together, when it names one of theirs.
SET_QUEUE_LIMITS = """
WITH changed AS (
    INSERT INTO djqueue_queue (name, paused, changed_at, concurrency_limit, rate_limit,
                               rate_period)
    VALUES (%(queue)s, false, now(), %(concurrency)s, %(rate)s, %(period)s)
    ON CONFLICT (name) DO UPDATE
    SET concurrency_limit = EXCLUDED.concurrency_limit, rate_limit = EXCLUDED.rate_limit,
        rate_period = EXCLUDED.rate_period, changed_at = now()
    RETURNING name
)
SELECT pg_notify('djqueue_pause', name) FROM changed
"""

# What a worker keeps of the queues: which are paused, and the limits of limited ones.
QUEUE_STATES = """
SELECT name, paused, concurrency_limit, rate_limit, rate_period FROM djqueue_queue
WHERE paused OR concurrency_limit IS NOT NULL OR rate_limit IS NOT NULL
"""

# Progress of a running job, fenced like a finish: a stale run cannot overwrite it.
UPDATE_PROGRESS = """
UPDATE djqueue_job SET progress = %s::jsonb
WHERE id = %s AND attempt = %s AND worker = %s AND state IN ('RECEIVED', 'STARTED')
"""

# Whether a job has a row: a send tried again after a lost connection finds its own job.
JOB_EXISTS = "SELECT 1 FROM djqueue_job WHERE id = %s"

# A state the running task reports (self.update_state), with its meta; fenced like a
# finish: a stale run cannot overwrite what the current one reported.
UPDATE_STATE = """
UPDATE djqueue_job SET reported_state = %s, progress = %s::jsonb
WHERE id = %s AND attempt = %s AND worker = %s AND state IN ('RECEIVED', 'STARTED')
"""

# Whether a job's row exists for other sessions: a job sent in a transaction that is
# still open exists only for the session that sent it (AsyncResult.get asks, from a
# connection of its own, to tell the caller so). A plain read: no lock.
JOB_VISIBLE = "SELECT 1 FROM djqueue_job WHERE id = %s"

# The planner's row estimate for a table, kept by ANALYZE and autovacuum: no scan (the
# admin's job list counts a large table this way).
ESTIMATE = "SELECT reltuples::bigint FROM pg_class WHERE relname = %s"

# The admin's reads on a big table (db.counts): what the planner expects of a query, and
# a statement timeout local to the transaction (a pooler's server connection never keeps
# it), read first so that it can be set back.
EXPLAIN = "EXPLAIN (FORMAT JSON) {statement}"
STATEMENT_TIMEOUT = "SELECT current_setting('statement_timeout')"
SET_STATEMENT_TIMEOUT = "SELECT set_config('statement_timeout', %s, true)"

# control.rate_limit: the task's waiting jobs take the new limit (or none). ``gated``
# follows, so that a job with a limit leaves the plain claim's index and one without
# any returns to it. Jobs already claimed keep the limit they were claimed under.
SET_RATE_LIMIT = """
UPDATE djqueue_job
SET rate_limit = %(count)s, rate_period = %(period)s,
    gated = %(count)s::int IS NOT NULL OR concurrency_limit IS NOT NULL
WHERE task_name = %(task)s AND state IN ('PENDING', 'RETRY')
  AND (rate_limit IS DISTINCT FROM %(count)s::int
       OR rate_period IS DISTINCT FROM %(period)s::float8)
"""

# A claimed job goes back with the rate limit a control command set for its task (the
# worker then hands it back): fenced like any write of a held job.
SET_CLAIMED_RATE_LIMIT = """
UPDATE djqueue_job
SET rate_limit = %(count)s, rate_period = %(period)s,
    gated = %(count)s::int IS NOT NULL OR concurrency_limit IS NOT NULL
WHERE id = %(id)s AND attempt = %(attempt)s AND worker = %(worker)s AND state = 'RECEIVED'
"""
