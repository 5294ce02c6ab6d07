"""Pieces shared by several statements: the waiting eta, the unique-key hand-over of
jobs going back to waiting, and the follow-ups of jobs that end inside a workflow."""

from __future__ import annotations

# The eta of a job that waits for another in a workflow: far enough never to come, and
# unlike 'infinity' a moment Python can read (a model or the admin shows the row).
WAITING_ETA = "9999-01-01 00:00:00+00"
# ... as an SQL literal.
WAITING = f"'{WAITING_ETA}'"

# A worker row of a live worker: not stopped, and its last heartbeat no older than the
# given seconds (djqueue.db.workers.live_seconds, the one rule).
LIVE_WORKER = "stopped_at IS NULL AND last_heartbeat >= now() - make_interval(secs => %s)"

# The columns every INSERT of jobs sets (statements add their own after these).
JOB_COLUMNS = """\
        id, task_name, queue, priority, state, args, kwargs, attempt, retries,
        max_attempts, eta, expires_at, enqueued_at, worker, error_type, error_message,
        traceback"""

# A new job's eta: the given moment, or now plus the countdown (the database's clock).
DUE_ETA = "COALESCE(v.eta, now() + make_interval(secs => COALESCE(v.countdown, 0)))"
# A new job's expiry: the given moment, or now plus the given seconds (NULL: never).
EXPIRES_AT = "COALESCE(v.expires_at, now() + make_interval(secs => v.expires_in))"

# Unique jobs going back to waiting (a retry, a rescue, a hand-back). Only waiting jobs
# hold their unique key, so a duplicate may have been sent while this one ran; and two
# running duplicates may return in one statement. Either would make two waiting jobs
# with one key, which the unique index refuses: the statement, and every job in it,
# would fail. So a returning job gives up its key when another waiting job holds it, or
# when an earlier returning job (by id) of the same statement keeps it. Nothing is lost:
# both run, as both would have had the first one not come back.
# ``{source}`` is a query of the ids going back to waiting; the CTE names those among
# them that must give up their key.
GIVE_UP_KEYS = """
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
KEY_SET = (
    "unique_key = CASE WHEN j.id IN (SELECT id FROM giving_up) THEN NULL ELSE j.unique_key END"
)


# What follows the end of jobs that belong to a workflow (docs/canvas.md), as CTEs to
# append to a statement that ends jobs: ``{source}`` names its CTE of ended rows (id,
# task_name, state, result, error_type, error_message, workflow). Being part of that same
# statement, a follow-up is written exactly when the outcome is: a crash can neither lose
# it nor, since fencing writes an outcome once, start it twice. Plain jobs (workflow NULL)
# leave ``ended`` empty, and every CTE below then joins nothing.
# - ``released``: waiting next steps of succeeded jobs get a due eta, and the result as
#   their first argument unless immutable ("pass"). The state and eta = WAITING_ETA test
#   makes a release happen once and never revive a revoked step.
# - ``callbacks``: link (on success, with the result, and the job as their parent, so
#   that they are among its children as in Celery) and link_error (on failure, with
#   the failed job's id, or Celery's (request, exc, traceback) for an errback that takes
#   three arguments: "style") callbacks are inserted; their ids were fixed when the
#   workflow was sent, so ON CONFLICT DO NOTHING runs an errback shared by several jobs
#   once.
# - ``cancelled``: the waiting parts downstream of a job that failed end FAILURE with its
#   error and traceback, as Celery stores a failed step's error on the rest of its chain
#   (so each of their results raises the original error); after a revocation, rejection
#   or Ignore they end REVOKED. Nothing would ever release them.
# - chords: a header member's end decrements its chord's counter row. UPDATE under READ
#   COMMITTED waits for a concurrent decrement to commit and then recomputes SET from the
#   row as that transaction left it, so decrements and results never get lost, and
#   exactly one statement sees remaining reach 0: that one releases the body, with the
#   header results in header order. chord_locks takes the counter rows in id order first,
#   so that two batches that share several chords cannot deadlock. A failed or revoked
#   member ends the body at once (FAILURE with ChordError naming it, or REVOKED); so
#   does a rejected or ignored one (REVOKED), which would otherwise hold it forever. A
#   body that ends FAILURE so runs its errbacks (``body_errbacks``), with its own id, or
#   its request and the ChordError, as Celery's does.
# - ``woken``: one NOTIFY per queue given a due job, and a djqueue_done NOTIFY for jobs
#   ended here (result waiters); the statement must read it for it to run.
FOLLOW_UP = """
ended AS (
    SELECT s.id, s.task_name, s.state, s.result, s.workflow, s.error_type, s.error_message,
           s.traceback,
           s.task_name || '[' || s.id || '] '
           || CASE WHEN s.state = 'REVOKED' THEN 'was revoked: ' || s.error_message
                   WHEN s.state = 'REJECTED' THEN 'was rejected: ' || s.error_message
                   WHEN s.state = 'IGNORED' THEN 'was ignored'
                   ELSE 'raised ' || regexp_replace(s.error_type, '^.*[.]', '') || ': '
                        || s.error_message END AS what
    FROM {source} AS s
    WHERE s.workflow IS NOT NULL
          AND s.state IN ('SUCCESS', 'FAILURE', 'REVOKED', 'REJECTED', 'IGNORED')
),
released AS (
    UPDATE djqueue_job AS n
    SET eta = COALESCE((r.step->>'eta')::timestamptz,
                       now() + make_interval(secs => COALESCE((r.step->>'countdown')::float8, 0))),
        args = CASE WHEN (r.step->>'pass')::bool THEN jsonb_build_array(r.value) || n.args
                    ELSE n.args END
    FROM (SELECT jsonb_array_elements(e.workflow->'next') AS step, e.result AS value
          FROM ended AS e WHERE e.state = 'SUCCESS') AS r
    WHERE n.id = (r.step->>'id')::uuid AND n.state = 'PENDING' AND n.eta = {waiting}
    RETURNING n.queue
),
callbacks AS (
    INSERT INTO djqueue_job (
{columns}, workflow
    )
    SELECT DISTINCT ON ((c.sig->>'id')::uuid)
           (c.sig->>'id')::uuid, c.sig->>'task_name', c.sig->>'queue',
           (c.sig->>'priority')::int, 'PENDING',
           CASE WHEN c.sig->>'style' = 'request' THEN c.value || (c.sig->'args')
                WHEN (c.sig->>'pass')::bool THEN jsonb_build_array(c.value) || (c.sig->'args')
                ELSE c.sig->'args' END,
           c.sig->'kwargs', 0, 0, (c.sig->>'max_attempts')::int,
           now() + make_interval(secs => COALESCE((c.sig->>'countdown')::float8, 0)),
           now() + make_interval(secs => (c.sig->>'expires_in')::float8),
           now(), '', '', '', '', c.place
    FROM (SELECT jsonb_array_elements(e.workflow->'link') AS sig, e.result AS value,
                 jsonb_build_object('parent', e.id::text) AS place
          FROM ended AS e WHERE e.state = 'SUCCESS'
          UNION ALL
          SELECT l.sig,
                 CASE WHEN l.sig->>'style' = 'request' THEN {errback_args}
                      ELSE to_jsonb(e.id::text) END,
                 NULL
          FROM ended AS e JOIN djqueue_job AS o ON o.id = e.id
               CROSS JOIN LATERAL jsonb_array_elements(e.workflow->'link_error') AS l(sig)
          WHERE e.state = 'FAILURE') AS c
    ON CONFLICT (id) DO NOTHING
    RETURNING queue
),
cancelled AS (
    UPDATE djqueue_job AS n
    SET state = CASE WHEN x.state = 'FAILURE' THEN 'FAILURE' ELSE 'REVOKED' END,
        finished_at = now(),
        error_type = CASE WHEN x.state = 'FAILURE' THEN x.error_type
                          ELSE 'djqueue.exceptions.TaskRevokedError' END,
        error_message = CASE WHEN x.state = 'FAILURE' THEN x.error_message
                             ELSE 'upstream failed: ' || x.what END,
        traceback = CASE WHEN x.state = 'FAILURE' THEN x.traceback ELSE '' END
    FROM (SELECT jsonb_array_elements_text(e.workflow->'cancel')::uuid AS id, e.what, e.state,
                 e.error_type, e.error_message, e.traceback
          FROM ended AS e WHERE e.state <> 'SUCCESS') AS x
    WHERE n.id = x.id AND n.state = 'PENDING' AND n.eta = {waiting}
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
    WHERE n.id = (b.step->>'id')::uuid AND n.state = 'PENDING' AND n.eta = {waiting}
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
    WHERE n.id = b.id AND n.state = 'PENDING' AND n.eta = {waiting}
    RETURNING n.id, n.task_name, n.state, n.args, n.kwargs, n.queue, n.priority, n.workflow,
              n.error_message
),
body_errbacks AS (
    INSERT INTO djqueue_job (
{columns}
    )
    SELECT DISTINCT ON ((l.sig->>'id')::uuid)
           (l.sig->>'id')::uuid, l.sig->>'task_name', l.sig->>'queue',
           (l.sig->>'priority')::int, 'PENDING',
           CASE WHEN l.sig->>'style' = 'request' THEN {body_errback_args} || (l.sig->'args')
                WHEN (l.sig->>'pass')::bool THEN jsonb_build_array(f.id::text) || (l.sig->'args')
                ELSE l.sig->'args' END,
           l.sig->'kwargs', 0, 0, (l.sig->>'max_attempts')::int,
           now() + make_interval(secs => COALESCE((l.sig->>'countdown')::float8, 0)),
           now() + make_interval(secs => (l.sig->>'expires_in')::float8),
           now(), '', '', '', ''
    FROM failed_bodies AS f
         CROSS JOIN LATERAL jsonb_array_elements(f.workflow->'link_error') AS l(sig)
    WHERE f.state = 'FAILURE'
    ON CONFLICT (id) DO NOTHING
    RETURNING queue
),
woken AS (
    SELECT pg_notify('djqueue', q.queue)
    FROM (SELECT queue FROM released UNION SELECT queue FROM callbacks
          UNION SELECT queue FROM bodies UNION SELECT queue FROM body_errbacks) AS q
    UNION ALL
    SELECT pg_notify('djqueue_done',
                     CASE WHEN count(*) <= 200 THEN string_agg(f.id::text, ' ') ELSE '' END)
    FROM (SELECT id FROM cancelled UNION ALL SELECT id FROM failed_bodies) AS f
    HAVING count(*) > 0
)
"""


# The arguments of an errback that takes Celery's ``(request, exc, traceback)``: the
# failed job's request and error as tagged values (djqueue.core.codec reads them back as
# a Request and a rebuilt exception) and its traceback. ``e`` is the ended row and ``o``
# the job's row as it was before this statement (what the ending does not change).
ERRBACK_ARGS = """jsonb_build_array(
                     jsonb_build_object('__djqueue__', 'request', 'v', jsonb_build_object(
                         'id', e.id, 'task', e.task_name, 'args', o.args,
                         'kwargs', o.kwargs, 'retries', o.retries, 'attempt', o.attempt,
                         'queue', o.queue, 'priority', o.priority, 'hostname', o.worker,
                         'root_id', COALESCE(e.workflow->'options'->>'root_id', e.id::text),
                         'parent_id', COALESCE(e.workflow->'options'->>'parent_id',
                                               e.workflow->>'parent'),
                         'group', e.workflow->>'group')::text),
                     jsonb_build_object('__djqueue__', 'exception', 'v', jsonb_build_object(
                         'type', e.error_type, 'message', e.error_message)::text),
                     to_jsonb(e.traceback))"""
# ... for a chord body that ends FAILURE without running (a header task failed): as
# Celery, the body's own request, a ChordError, and no traceback.
BODY_ERRBACK_ARGS = """jsonb_build_array(
                     jsonb_build_object('__djqueue__', 'request', 'v', jsonb_build_object(
                         'id', f.id, 'task', f.task_name, 'args', f.args,
                         'kwargs', f.kwargs, 'queue', f.queue, 'priority', f.priority,
                         'root_id', COALESCE(f.workflow->'options'->>'root_id', f.id::text),
                         'parent_id', f.workflow->>'parent',
                         'group', f.workflow->>'group')::text),
                     jsonb_build_object('__djqueue__', 'exception', 'v', jsonb_build_object(
                         'type', 'djqueue.exceptions.ChordError',
                         'message', f.error_message)::text),
                     'null'::jsonb)"""


def follow_up(source: str) -> str:
    """The follow-up CTEs reading ended rows from the CTE named ``source``."""
    return FOLLOW_UP.format(
        source=source,
        waiting=WAITING,
        columns=JOB_COLUMNS,
        errback_args=ERRBACK_ARGS,
        body_errback_args=BODY_ERRBACK_ARGS,
    )
