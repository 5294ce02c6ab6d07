# ruff: noqa: E501  (the functions are kept exactly as the claim statements made them)
"""The claim functions ``djqueue_claim_one_queue`` and ``djqueue_claim_queues``: the
worker's two plain claims (djqueue.db.sql.claim) as PL/pgSQL functions, whose plan each
connection makes once and keeps instead of planning every claim anew.

The functions are written out here as they were when this migration was made; a later
change to the claim statements replaces them in a migration of its own.
"""

from django.db import migrations

CLAIM_ONE_QUEUE = """
CREATE OR REPLACE FUNCTION djqueue_claim_one_queue(p_queue text, p_limit integer, p_worker text, p_lease double precision)
RETURNS TABLE (id uuid, task_name varchar, args text, kwargs text, attempt integer, retries integer, queue varchar, priority smallint, eta timestamptz, expired boolean, revoked boolean, isolate boolean, workflow text, expires_at timestamptz)
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
SET jit = off
AS $claim$
#variable_conflict use_column
BEGIN
RETURN QUERY WITH RECURSIVE sync AS (SELECT set_config('synchronous_commit', 'off', true)),

levels(priority) AS (
    SELECT 32768
  UNION ALL
    SELECT (SELECT priority FROM djqueue_job
            WHERE state IN ('PENDING', 'RETRY') AND NOT gated AND queue = p_queue AND priority < l.priority
            ORDER BY priority DESC LIMIT 1)
    FROM levels AS l WHERE l.priority IS NOT NULL
),

picked AS (
    SELECT due.id FROM levels AS l, LATERAL (
        SELECT id FROM djqueue_job
        WHERE state IN ('PENDING', 'RETRY') AND NOT gated AND queue = p_queue AND priority = l.priority AND eta <= now()
        ORDER BY eta, id
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ) AS due
    WHERE l.priority < 32768
    LIMIT p_limit
)
UPDATE djqueue_job AS j
SET state = 'RECEIVED', attempt = j.attempt + 1, worker = p_worker, started_at = NULL,
    claimed_at = now(), lease_expires_at = now() + make_interval(secs => p_lease),
    reported_state = ''
FROM sync
WHERE j.id = ANY(ARRAY(SELECT id FROM picked))
RETURNING j.id, j.task_name, j.args::text, j.kwargs::text, j.attempt, j.retries,
          j.queue, j.priority, j.eta,
          (j.expires_at IS NOT NULL AND j.expires_at <= now()),
          j.revoke_requested_at IS NOT NULL, j.lost > 0 OR j.kills > 0,
          j.workflow::text, j.expires_at;
END
$claim$
"""

CLAIM_QUEUES = """
CREATE OR REPLACE FUNCTION djqueue_claim_queues(p_queues text[], p_limit integer, p_worker text, p_lease double precision)
RETURNS TABLE (id uuid, task_name varchar, args text, kwargs text, attempt integer, retries integer, queue varchar, priority smallint, eta timestamptz, expired boolean, revoked boolean, isolate boolean, workflow text, expires_at timestamptz)
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
SET jit = off
AS $claim$
#variable_conflict use_column
BEGIN
RETURN QUERY WITH RECURSIVE sync AS (SELECT set_config('synchronous_commit', 'off', true)),

levels(priority) AS (
    SELECT 32768
  UNION ALL
    SELECT (SELECT max(below.priority) FROM unnest(p_queues::text[]) AS q(name), LATERAL (
                SELECT priority FROM djqueue_job
                WHERE state IN ('PENDING', 'RETRY') AND NOT gated AND queue = q.name AND priority < l.priority
                ORDER BY priority DESC LIMIT 1
            ) AS below)
    FROM levels AS l WHERE l.priority IS NOT NULL
),

peek AS (
    SELECT best.queue, l.priority FROM levels AS l, LATERAL (
        SELECT q.name AS queue FROM unnest(p_queues::text[]) AS q(name), LATERAL (
            SELECT eta, id FROM djqueue_job
            WHERE state IN ('PENDING', 'RETRY') AND NOT gated AND queue = q.name AND priority = l.priority AND eta <= now()
            ORDER BY eta, id
            LIMIT p_limit
        ) AS head
        ORDER BY head.eta, head.id
        LIMIT p_limit
    ) AS best
    WHERE l.priority < 32768
    LIMIT p_limit
),
shares AS (SELECT queue, priority, count(*) AS n FROM peek GROUP BY queue, priority),
picked AS (
    SELECT due.id FROM shares AS s, LATERAL (
        SELECT id FROM djqueue_job
        WHERE state IN ('PENDING', 'RETRY') AND NOT gated AND queue = s.queue AND priority = s.priority AND eta <= now()
        ORDER BY eta, id
        LIMIT s.n
        FOR UPDATE SKIP LOCKED
    ) AS due
    LIMIT p_limit
)
UPDATE djqueue_job AS j
SET state = 'RECEIVED', attempt = j.attempt + 1, worker = p_worker, started_at = NULL,
    claimed_at = now(), lease_expires_at = now() + make_interval(secs => p_lease),
    reported_state = ''
FROM sync
WHERE j.id = ANY(ARRAY(SELECT id FROM picked))
RETURNING j.id, j.task_name, j.args::text, j.kwargs::text, j.attempt, j.retries,
          j.queue, j.priority, j.eta,
          (j.expires_at IS NOT NULL AND j.expires_at <= now()),
          j.revoke_requested_at IS NOT NULL, j.lost > 0 OR j.kills > 0,
          j.workflow::text, j.expires_at;
END
$claim$
"""

DROP = """
DROP FUNCTION IF EXISTS djqueue_claim_one_queue(text, integer, text, double precision);
DROP FUNCTION IF EXISTS djqueue_claim_queues(text[], integer, text, double precision);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("djqueue", "0027_drop_argument_search_index"),
    ]

    operations = [
        migrations.RunSQL(CLAIM_ONE_QUEUE, DROP),
        migrations.RunSQL(CLAIM_QUEUES, migrations.RunSQL.noop),
    ]
