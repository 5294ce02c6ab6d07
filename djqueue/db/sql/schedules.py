"""Periodic tasks: the scheduler's leader and sync locks, runs, slots, the database
clock, and change notifications."""

from __future__ import annotations

# Notified (empty payload) whenever a periodic task or a schedule changes.
CHANNEL = "djqueue_beat"
# Advisory lock keys (any fixed 64-bit numbers, unlikely to collide with a project's).
LEADER_LOCK = 0x646A_7175_6265_6174  # "djqubeat"
SYNC_LOCK = 0x646A_7175_7379_6E63  # "djqusync"

# Subscribes the scheduler's own connection to change notifications.
LISTEN = f"LISTEN {CHANNEL}"

# Checks that the leader's transaction (which holds the leader lock) is alive.
PING = "SELECT 1"

# The leader lock is a transaction-level advisory lock, taken in a transaction that the
# leader keeps open for as long as it leads, on a connection of its own. Not a
# session-level one: through a transaction-mode pooler (PgBouncer) a session is a
# server connection that passes from client to client between transactions, so a
# session lock would stay behind for the pooler's next client when the leader dies,
# and a second scheduler handed the same server connection would take it again (an
# advisory lock is re-entrant within a session): two leaders. An open transaction keeps
# its server connection, through a pooler too, and ends when the leader's connection
# does, however it ends (kill -9 included): the server (or the pooler, which closes a
# server connection whose client left mid-transaction) rolls it back and the lock is
# free for a follower's next attempt. The transaction writes nothing and, at READ
# COMMITTED, holds no snapshot between statements, so it holds back no vacuum. It
# conflicts with the session-level lock of earlier versions (same key), so a rolling
# upgrade keeps one leader. "try" never waits, so followers stay responsive to shutdown.
TRY_LEAD = "SELECT pg_try_advisory_xact_lock(%s)"

# Serializes BEAT_SCHEDULE syncs of schedulers starting together, so that two of them
# never both create the same periodic task; released at the end of the transaction.
LOCK_SYNC = "SELECT pg_advisory_xact_lock(%s)"

# The arbiter of double firing. Two leaders (or a stale one) that compute the same slot
# both try this insert; the unique (periodic_task_id, slot) index lets one in, and an
# insert racing an uncommitted one waits for it, then does nothing. The job is enqueued
# only when a row comes back, in the same transaction: a slot has a job iff it has a run.
INSERT_RUN = """
INSERT INTO djqueue_periodicrun (periodic_task_id, slot, job_id, enqueued_at)
VALUES (%s, %s, %s, now())
ON CONFLICT (periodic_task_id, slot) DO NOTHING
RETURNING id
"""

# A unique task's duplicate was not inserted: the run points at the job that stood in.
RUN_JOB = "UPDATE djqueue_periodicrun SET job_id = %s WHERE id = %s"

# GREATEST: a scheduler working from an older view never moves a task's last slot back
# (GREATEST ignores the NULL of a task that never ran). A finished task (one-off, or a
# schedule with no more slots) is disabled in the same statement.
ADVANCE = """
UPDATE djqueue_periodictask
SET last_run_at = GREATEST(last_run_at, %s),
    total_run_count = total_run_count + %s,
    enabled = enabled AND NOT %s
WHERE id = %s
"""

# The database's clock, as seconds since the epoch: a float needs no time-zone
# conversion, whatever USE_TZ says about how Django reads timestamps.
NOW = "SELECT extract(epoch FROM statement_timestamp())::float8"

# Old run records go (the unique (task, slot) index only needs recent ones); no lock
# beyond the rows deleted, which nobody else writes.
PRUNE_RUNS = "DELETE FROM djqueue_periodicrun WHERE enqueued_at < now() - make_interval(secs => %s)"

# NOTIFY is transactional: sent from a save inside a transaction, it is heard at commit.
NOTIFY_SCHEDULES = "SELECT pg_notify(%s, '')"
