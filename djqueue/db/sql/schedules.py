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

# Checks that the scheduler's connection (which holds the leader lock) is alive.
PING = "SELECT 1"

# The leader lock is a session-level advisory lock on the scheduler's own connection:
# held for as long as that connection lives, and released by the server when it ends,
# however it ends (kill -9 included), so a follower's next attempt succeeds. "try" never
# waits, so followers stay responsive to shutdown.
TRY_LEAD = "SELECT pg_try_advisory_lock(%s)"

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
