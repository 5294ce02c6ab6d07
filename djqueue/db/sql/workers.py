"""Worker rows: registration, heartbeats, stop, and pruning of old rows."""

from __future__ import annotations

from djqueue.db.sql import parts

# A worker (re)starts: one row per name, reset on a restart under the same name.
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

# A heartbeat: the worker is alive, with its counters and its pool's size now (a control
# command or the autoscaler may have changed it; NULL keeps the size recorded).
WORKER_HEARTBEAT = """
UPDATE djqueue_worker
SET last_heartbeat = now(), jobs_done = %s, children = %s::jsonb,
    concurrency = COALESCE(%s, concurrency)
WHERE name = %s
"""

# A worker stopped cleanly.
WORKER_STOPPED = """
UPDATE djqueue_worker SET last_heartbeat = now(), stopped_at = now(), jobs_done = %s
WHERE name = %s
"""

# Live workers beat every few seconds; the floor keeps their rows even when asked to
# prune everything finished (--older-than 0).
PRUNE_WORKERS = """
DELETE FROM djqueue_worker
WHERE last_heartbeat < now() - make_interval(secs => GREATEST(%s, %s))
"""

SET_WORKER_QUEUES = "UPDATE djqueue_worker SET queues = %s::jsonb WHERE name = %s"

# How many other live workers take jobs from any of ``queues`` (a worker that has peers
# on its queues staggers its answers to notifications). ``?|``: any array element.
PEERS = f"""
SELECT count(*) FROM djqueue_worker
WHERE name <> %s AND {parts.LIVE_WORKER} AND queues ?| %s::text[]
"""  # noqa: S608

# A claim that came back short says that it emptied these queues, so that peers waiting
# to claim for the same notification need not (a hint: they poll all the same).
ANNOUNCE_DRAINED = "SELECT pg_notify('djqueue_drained', q) FROM unnest(%s::text[]) AS q"
