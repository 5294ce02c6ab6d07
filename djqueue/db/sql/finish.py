"""Finish: write outcomes (fenced by attempt and worker), mark starts, count kills."""

from __future__ import annotations

from djqueue.db.sql import parts

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
# follow-ups (parts.FOLLOW_UP) in the same statement. A job's outcome is written by exactly
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
        finished_at = CASE WHEN v.state IN ('RETRY', 'PENDING') THEN NULL ELSE now() END,
        -- A job that ran and ended before its start was marked: dated from its runtime.
        started_at = COALESCE(j.started_at, now() - make_interval(secs => v.runtime)),
        eta = CASE WHEN v.state IN ('RETRY', 'PENDING')
                   THEN COALESCE(v.retry_at, now() + make_interval(secs => v.retry_in))
                   ELSE j.eta END,
        retries = j.retries + CASE WHEN v.state = 'RETRY' THEN 1 ELSE 0 END,
        lease_expires_at = NULL,
        -- A retry (or a requeue: PENDING) keeps the attempt that asked for it; other
        -- outcomes leave both as they are (the common SUCCESS row pays for a CASE).
        history = CASE WHEN v.state IN ('RETRY', 'PENDING')
                       THEN COALESCE(j.history, '[]'::jsonb) || jsonb_build_array(
                           jsonb_build_object(
                               'attempt', j.attempt, 'worker', j.worker,
                               'claimed_at', j.claimed_at,
                               'started_at', COALESCE(j.started_at, now() - make_interval(
                                   secs => v.runtime)),
                               'ended_at', now(),
                               'outcome', CASE WHEN v.state = 'RETRY' THEN 'RETRY'
                                               ELSE 'REQUEUED' END,
                               'error_type', v.error_type,
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
# A job that rejected itself asking to be requeued (PENDING) shares that budget too: on
# its last attempt it ends REJECTED, so that it cannot go round forever.
_CAPPED = (
    _GIVEN  # noqa: S608 (constants only)
    + """,
v AS (
    SELECT g.id, g.attempt,
           CASE WHEN g.state = 'RETRY' AND g.attempt >= j.max_attempts THEN 'FAILURE'
                WHEN g.state = 'PENDING' AND g.attempt >= j.max_attempts THEN 'REJECTED'
                ELSE g.state END AS state,
           g.result, g.error_type, g.error_message, g.traceback, g.retry_in, g.retry_at,
           g.worker, g.runtime
    FROM given AS g JOIN djqueue_job AS j ON j.id = g.id
)"""
)
# The hot batch: outcomes of plain jobs, no retry among them.
FINISH = _FINISH.format(
    outcomes=_OUTCOMES,
    which="AND j.workflow IS NULL",
    returning="j.id, j.queue, j.concurrency_key",
    follow_up="",
    woken="",
    keys="",
    key_set="",
)
# A batch with retries: a retrying unique job may have to give up its key (parts.GIVE_UP_KEYS).
# Its own statement, so that the common batch of successes pays nothing for it.
# Outcomes that go back to waiting: retries, and requeues (Reject(requeue=True)).
_BACK_TO_WAITING = "SELECT id FROM v WHERE state IN ('RETRY', 'PENDING')"
FINISH_RETRYING = _FINISH.format(
    outcomes=_CAPPED,
    which="AND j.workflow IS NULL",
    returning="j.id, j.queue, j.concurrency_key",
    follow_up="",
    woken="",
    keys="," + parts.GIVE_UP_KEYS.format(source=_BACK_TO_WAITING),
    key_set=",\n        "
    + parts.KEY_SET.replace("j.id IN", "v.state IN ('RETRY', 'PENDING') AND j.id IN"),
)
# Outcomes of jobs in a workflow, with their follow-ups in the same statement.
FINISH_WORKFLOW = _FINISH.format(
    outcomes=_CAPPED,
    which="AND j.workflow IS NOT NULL",
    returning=(
        "j.id, j.queue, j.concurrency_key, j.task_name, j.state, j.result, j.error_type,\n"
        "              j.error_message, j.traceback, j.workflow"
    ),
    follow_up=",\n" + parts.follow_up("done").rstrip().rstrip(","),
    woken=",\n       (SELECT count(*) FROM woken)",
    keys="",
    key_set="",
)

# What an outcome fenced off by the statements above met instead: read only when one
# was, to say why (see finishing._report_stale).
FENCED_ROWS = "SELECT id, attempt, worker, state FROM djqueue_job WHERE id = ANY(%s::uuid[])"

# Record that jobs a worker received have started running. Not needed for correctness
# (the outcome records the start too): it shows running jobs as STARTED, and tells a
# rescue that the job had begun, so that it is charged the attempt. Fenced like a
# finish; asynchronous commit, since a lost mark only shows the job as received.
# The ids marked are announced on djqueue_started (for ``manage.py djqueue events``; an
# empty payload past 200 ids, as djqueue_done's): one notification per batch, from the
# worker's control thread, never from a claim or a finish.
MARK_STARTED = """
WITH sync AS (SELECT set_config('synchronous_commit', 'off', true)),
marked AS (
    UPDATE djqueue_job AS j
    SET state = 'STARTED', started_at = now() - make_interval(secs => v.ago)
    FROM unnest(%s::uuid[], %s::int[], %s::float8[]) AS v(id, attempt, ago), sync
    WHERE j.id = v.id AND j.attempt = v.attempt AND j.worker = %s AND j.state = 'RECEIVED'
    RETURNING j.id
)
SELECT pg_notify('djqueue_started',
                 CASE WHEN count(*) <= 200 THEN string_agg(id::text, ' ') ELSE '' END)
FROM marked HAVING count(*) > 0
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
