"""Leases: renew what a worker holds, hand back what it does not, rescue what a lost
worker held, and hand jobs back at shutdown."""

from __future__ import annotations

from djqueue.db.sql import parts

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
            'attempt', j.attempt, 'worker', j.worker, 'claimed_at', j.claimed_at,
            'started_at', j.started_at,
            'ended_at', now(), 'outcome', 'RELEASED',
            'error_message', 'held by its worker without the worker knowing (a lost '
                             || 'reply); handed back to the queue'))
    FROM found
    WHERE j.id = found.id AND j.state IN ('RECEIVED', 'STARTED')
    RETURNING j.queue
)
SELECT q.queue, q.n, pg_notify('djqueue', q.queue)
FROM (SELECT queue, count(*) AS n FROM orphans GROUP BY queue) AS q
""".format(keys=parts.GIVE_UP_KEYS.format(source="SELECT id FROM found"), key_set=parts.KEY_SET)  # noqa: S608

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
            'attempt', j.attempt, 'worker', j.worker, 'claimed_at', j.claimed_at,
            'started_at', j.started_at,
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
              j.traceback, j.workflow
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
    follow_up=parts.follow_up("moved"),
    keys=parts.GIVE_UP_KEYS.format(source="SELECT id FROM lost"),
    key_set=parts.KEY_SET,
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
    keys=parts.GIVE_UP_KEYS.format(source="SELECT id FROM v WHERE NOT (ran AND last)"),
    key_set=parts.KEY_SET,
)
