"""The only writer of queue state: the calls on jobs, workers, limits and queues.

Callers use this module; each concern is a module of its own, with its statements in
:mod:`djqueue.db.sql`:

- :mod:`djqueue.db.enqueueing`: inserting jobs (plain, limited or unique, workflows);
- :mod:`djqueue.db.claims`: claiming, leases, marking started, handing back, rescue;
- :mod:`djqueue.db.finishing`: writing outcomes (and what follows them in a workflow);
- :mod:`djqueue.db.operations`: revoke, forget, retry, delete, purge, prune, pause,
  limits, groups, and what a running task reports of itself;
- :mod:`djqueue.db.workers`: worker rows;
- :mod:`djqueue.db.cursors`: the cursor they all run on.
"""

from djqueue.db.claims import (
    claim,
    claim_capped,
    claim_limited,
    mark_started,
    release,
    release_orphans,
    renew_leases,
    rescue,
    revoke_asked,
    revoke_signal,
)
from djqueue.db.enqueueing import enqueue, enqueue_workflow, limits_enqueue
from djqueue.db.finishing import finish
from djqueue.db.operations import (
    delete_finished,
    delete_group,
    exists,
    forget,
    paused_queues,
    prune,
    purge,
    requeue_failed,
    retry_failed,
    revoke,
    save_group,
    set_claimed_rate_limit,
    set_paused,
    set_queue_limits,
    set_rate_limit,
    update_progress,
    update_state,
)
from djqueue.db.workers import (
    announce_drained,
    peers,
    register_worker,
    set_worker_queues,
    worker_heartbeat,
    worker_stopped,
)

__all__ = [
    "announce_drained",
    "claim",
    "claim_capped",
    "claim_limited",
    "delete_finished",
    "delete_group",
    "enqueue",
    "enqueue_workflow",
    "exists",
    "finish",
    "forget",
    "limits_enqueue",
    "mark_started",
    "paused_queues",
    "peers",
    "prune",
    "purge",
    "register_worker",
    "release",
    "release_orphans",
    "renew_leases",
    "requeue_failed",
    "rescue",
    "retry_failed",
    "revoke",
    "revoke_asked",
    "revoke_signal",
    "save_group",
    "set_claimed_rate_limit",
    "set_paused",
    "set_queue_limits",
    "set_rate_limit",
    "set_worker_queues",
    "update_progress",
    "update_state",
    "worker_heartbeat",
    "worker_stopped",
]
