"""Why a job waits: the rows the console's job page reads to say what holds a job back
(``djqueue.db.waiting``). Every statement reads one job's surroundings through an index;
counts of jobs ahead stop at a bound, so that a page stays fast behind a long queue."""

from __future__ import annotations

from djqueue.db.sql import parts

# The job, and the database's own clock (times on the page compare with it, not the web
# server's). ``waits_upstream``: its eta is the far moment a workflow step waits at until
# the step before it ends (sql.parts.WAITING_ETA).
WAITING_JOB = f"""
SELECT j.id, j.state, j.queue, j.task_name, j.priority, j.eta, j.gated, j.rate_limit,
       j.rate_period, j.concurrency_key, j.concurrency_limit, j.unique_key, j.worker,
       j.claimed_at, j.workflow->>'parent', j.workflow->>'body_of',
       j.eta = {parts.WAITING} AS waits_upstream, now(), j.lease_expires_at
FROM djqueue_job AS j WHERE j.id = %s
"""  # noqa: S608

# The worker that holds a job: whether it stopped, and when it was last heard from.
HOLDING_WORKER = f"""
SELECT last_heartbeat, stopped_at, {parts.LIVE_WORKER}
FROM djqueue_worker WHERE name = %s
"""  # noqa: S608

# Whether the job's queue is paused, and since when; its own limits (NULL: none).
QUEUE_PAUSED = """
SELECT paused, changed_at, concurrency_limit, rate_limit, rate_period
FROM djqueue_queue WHERE name = %s
"""

# Jobs of a queue held by workers (what its concurrency limit counts, as QUEUE_ROOM).
QUEUE_HELD = """
SELECT count(*) FROM djqueue_job WHERE state IN ('RECEIVED', 'STARTED') AND queue = %s
"""


def _ahead(among: str) -> str:
    """A count of the due waiting jobs that ``among`` picks and that a claim ranks before
    this one (its ORDER BY: priority DESC, eta, id), up to a bound: the statements below
    differ only in the jobs they count, each through its own index."""
    return f"""
SELECT count(*) FROM (
    SELECT 1 FROM djqueue_job
    WHERE state IN ('PENDING', 'RETRY') AND {among}
          AND eta <= now()
          AND (priority > %(priority)s
               OR (priority = %(priority)s AND (eta, id) < (%(eta)s, %(id)s)))
    LIMIT %(bound)s
) AS ahead
"""  # noqa: S608


# Due plain jobs of the queue that a claim takes before this one, through the ready index.
PLAIN_AHEAD = _ahead("NOT gated AND queue = %(queue)s")

# A rate limit's log (djqueue_limit.starts, kept by the limited claim): starts within
# the last period, and the oldest of them (a start is allowed again one period after it).
RATE_USED = """
SELECT count(*), min(s.at)
FROM djqueue_limit AS l, unnest(l.starts) AS s(at)
WHERE l.key = %s AND s.at > now() - make_interval(secs => %s)
"""

# Due jobs under the same rate limit (the task's) that the limited claim ranks before
# this one: its rate_rank, across queues.
RATE_AHEAD = _ahead("gated AND task_name = %(task)s AND rate_limit IS NOT NULL")

# Jobs holding a concurrency key now (claimed or running: index djqueue_job_concurrency).
CONCURRENCY_HELD = """
SELECT count(*) FROM djqueue_job
WHERE state IN ('RECEIVED', 'STARTED') AND concurrency_key = %s
"""

# Due jobs of the same concurrency key ranked before this one (its concurrency_rank).
CONCURRENCY_AHEAD = _ahead("gated AND concurrency_key = %(key)s")

# The jobs a workflow step waits for, by id: the step before it, or its chord's header.
JOBS_BRIEF = """
SELECT id, task_name, state FROM djqueue_job WHERE id = ANY(%s::uuid[]) ORDER BY id
"""

# A chord's counter: header members not ended yet, and its members' last jobs.
CHORD_COUNTER = "SELECT remaining, job_ids FROM djqueue_group WHERE id = %s"

# The waiting job that holds a unique key (index djqueue_job_unique), if another does.
UNIQUE_HOLDER = """
SELECT id FROM djqueue_job
WHERE unique_key = %s AND state IN ('PENDING', 'RETRY') AND id <> %s
"""
