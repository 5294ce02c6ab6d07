"""The console's permissions and its two roles, as data (docs/monitoring.md#access).

The admin and views check these (:mod:`djqueue.ops.access`); ``manage.py djqueue roles``
makes the roles' groups (:mod:`djqueue.db.roles`).
"""

from __future__ import annotations

APP = "djqueue"

# Seeing.
VIEW_JOBS = "view_job"
VIEW_WORKERS = "view_worker"
VIEW_QUEUES = "view_queue"
VIEW_PERIODIC = "view_periodictask"
VIEW_METRICS = "view_metrics"
# Doing: one permission per kind of action.
REVOKE = "revoke_job"
TERMINATE = "terminate_job"
RETRY = "retry_job"
DELETE_JOBS = "delete_job"
PAUSE = "pause_queue"
LIMIT_QUEUES = "change_queue"
CONTROL_WORKERS = "control_worker"
RUN_PERIODIC = "run_periodictask"

SCHEDULE_MODELS = ("intervalschedule", "crontabschedule", "solarschedule", "clockedschedule")

# The read-only role: every page, no action.
OPERATOR = (
    VIEW_JOBS,
    VIEW_WORKERS,
    VIEW_QUEUES,
    VIEW_PERIODIC,
    VIEW_METRICS,
    *(f"view_{model}" for model in SCHEDULE_MODELS),
)
# The admin role: every page and every action, and editing periodic tasks.
ADMIN = (
    *OPERATOR,
    REVOKE,
    TERMINATE,
    RETRY,
    DELETE_JOBS,
    PAUSE,
    "add_queue",
    LIMIT_QUEUES,
    CONTROL_WORKERS,
    RUN_PERIODIC,
    *(
        f"{verb}_{model}"
        for model in ("periodictask", *SCHEDULE_MODELS)
        for verb in ("add", "change", "delete")
    ),
)

# The groups ``manage.py djqueue roles`` makes, and the permissions each holds.
ROLES: dict[str, tuple[str, ...]] = {
    "djqueue operator": OPERATOR,
    "djqueue admin": ADMIN,
}
