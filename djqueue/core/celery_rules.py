"""What djqueue does with each Celery setting: the table of rules.

Each known name has a rule: it sets a djqueue setting (and how its value converts), it
already holds as djqueue works, it has no effect by design (the broker and result
backend are the database), or it cannot be honoured (the system checks say what to do
instead). Reading the project's settings is :mod:`djqueue.core.celery_conf`; the names
are :mod:`djqueue.core.celery_names`.
"""

from __future__ import annotations

import datetime
import enum
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from djqueue.core.celery_names import KNOWN


class Kind(enum.Enum):
    MAPPED = "sets a djqueue setting"
    HOLDS = "holds as djqueue works"
    IGNORED = "no effect: not needed with djqueue"
    UNSUPPORTED = "not honoured"


@dataclass(frozen=True)
class Rule:
    """What djqueue does with one Celery setting."""

    kind: Kind
    # MAPPED: the DJQUEUE key it sets, and how a Celery value becomes djqueue's.
    ours: str = ""
    convert: Callable[[Any], Any] | None = None
    # MAPPED and HOLDS: the values that are honoured (others get a warning).
    accepts: Callable[[Any], bool] | None = None
    # What to do instead when the value is not honoured, or why it has no effect.
    advice: str = ""

    def honoured(self, value: Any) -> bool:
        return self.kind in (Kind.MAPPED, Kind.HOLDS) and (
            self.accepts is None or self.accepts(value)
        )


# Converters and predicates ----------------------------------------------------------


def seconds(value: Any) -> float | None:
    """A Celery duration (seconds or a timedelta) as seconds."""
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    return float(value)


def retention(value: Any) -> float | None:
    """``result_expires``: None or 0 keep results for ever, as in Celery."""
    found = seconds(value)
    return found if found else None


def module_names(value: Any) -> list[str]:
    """``imports``/``include``: a module name or a sequence of them."""
    if isinstance(value, str):
        return [value]
    return [str(name) for name in value or ()]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _positive(value: Any) -> bool:
    if isinstance(value, datetime.timedelta):
        return value.total_seconds() > 0
    return _number(value) and value > 0


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _json_only(value: Any) -> bool:
    items = [value] if isinstance(value, str) else list(value or ())
    return all(str(item) in ("json", "application/json") for item in items)


def _zone_name(value: Any) -> bool:
    try:
        zoneinfo.ZoneInfo(str(value))
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return False
    return isinstance(value, str)


def _is(expected: Any) -> Callable[[Any], bool]:
    return lambda value: value == expected


def _anything(value: Any) -> bool:
    return True


def _mapped(
    ours: str,
    convert: Callable[[Any], Any] | None = None,
    accepts: Callable[[Any], bool] | None = None,
    advice: str = "",
) -> Rule:
    return Rule(Kind.MAPPED, ours=ours, convert=convert, accepts=accepts, advice=advice)


def _holds(accepts: Callable[[Any], bool], advice: str) -> Rule:
    return Rule(Kind.HOLDS, accepts=accepts, advice=advice)


def _ignored(advice: str) -> Rule:
    return Rule(Kind.IGNORED, advice=advice)


def _unsupported(advice: str) -> Rule:
    return Rule(Kind.UNSUPPORTED, advice=advice)


# The rules ----------------------------------------------------------------------------

_BACKEND = (
    "djqueue keeps jobs and results in the Django database; there is no broker or "
    "result backend to configure. Remove it once Celery is gone."
)
_LOGGING = "runworker logs through Django's LOGGING setting and its -l option. Remove it."
_ANNOTATE = (
    "Set it on the tasks (@task(...)), or for all of them with "
    "CELERY_TASK_ANNOTATIONS = {{'*': {{{0!r}: ...}}}}."
)
_AT_LEAST_ONCE = (
    "djqueue acknowledges a job after it ran and runs the job of a worker that died "
    "again (at-least-once, Celery's acks_late=True with reject_on_worker_lost=True). "
    "Make the task idempotent, and remove the setting."
)
_NO_REMOTE = "Workers are steered through the database; see docs/monitoring.md. Remove the setting."

RULES: dict[str, Rule] = {
    # Sending and running.
    "task_always_eager": _mapped("EAGER", bool),
    "task_eager_propagates": _mapped("EAGER_PROPAGATES", bool),
    "task_store_eager_result": _unsupported(
        "Eager runs store no row; leave EAGER off and run a worker to keep results."
    ),
    "task_default_queue": _mapped(
        "DEFAULT_QUEUE", str, lambda v: isinstance(v, str) and 0 < len(v) <= 100
    ),
    "task_routes": _mapped("ROUTES"),
    "task_annotations": _mapped("ANNOTATIONS"),
    "task_time_limit": _mapped(
        "TIME_LIMIT", seconds, _positive, "Give a positive number of seconds."
    ),
    "task_soft_time_limit": _mapped(
        "SOFT_TIME_LIMIT", seconds, _positive, "Give a positive number of seconds."
    ),
    "task_serializer": _holds(
        _is("json"), "djqueue stores arguments as JSON only; pass plain data (ids, not objects)."
    ),
    "result_serializer": _holds(
        _is("json"), "djqueue stores results as JSON only; return plain data."
    ),
    "accept_content": _holds(_json_only, "djqueue accepts JSON only (never pickle)."),
    "result_accept_content": _holds(_json_only, "djqueue accepts JSON only (never pickle)."),
    "event_serializer": _ignored("djqueue sends no events; the admin and signals show them."),
    "task_compression": _ignored("Jobs are rows; there are no messages to compress."),
    "result_compression": _ignored("Results are rows; there are no messages to compress."),
    "task_acks_late": _holds(_is(True), _AT_LEAST_ONCE),
    "task_acks_on_failure_or_timeout": _holds(
        _is(True), "A job that failed or timed out ends FAILURE; it is never redelivered."
    ),
    "task_acks_on_failure": _holds(
        lambda v: v in (None, True), "A job that failed ends FAILURE; it is never redelivered."
    ),
    "task_acks_on_timeout": _holds(
        lambda v: v in (None, True), "A job that timed out ends FAILURE; it is never redelivered."
    ),
    "task_reject_on_worker_lost": _holds(lambda v: v in (None, True), _AT_LEAST_ONCE),
    "task_retry_on_worker_lost": _holds(_anything, _AT_LEAST_ONCE),
    "task_track_started": _holds(_anything, "STARTED is always recorded."),
    "task_store_errors_even_if_ignored": _holds(
        _anything, "Errors are always stored, even for tasks with ignore_result=True."
    ),
    "task_remote_tracebacks": _holds(_anything, "Tracebacks are always stored with the error."),
    "task_ignore_result": _unsupported(_ANNOTATE.format("ignore_result")),
    "task_default_rate_limit": _unsupported(_ANNOTATE.format("rate_limit")),
    "task_default_priority": _unsupported(
        _ANNOTATE.format("priority") + " djqueue priorities go from -100 to 100, higher first."
    ),
    "task_inherit_parent_priority": _unsupported(
        "Pass priority= when sending from a task (self.request.priority is the parent's)."
    ),
    "task_queue_max_priority": _ignored("Every queue takes priorities from -100 to 100."),
    "task_create_missing_queues": _holds(
        _is(True), "Queues are names: a job's queue exists as soon as a job names it."
    ),
    "task_queues": _ignored(
        "Queues need no declaration: name them on tasks or routes, and start "
        "`runworker -Q a,b` for the ones a worker serves."
    ),
    "task_default_exchange": _ignored("There are no exchanges; jobs go to queues by name."),
    "task_default_exchange_type": _ignored("There are no exchanges; jobs go to queues by name."),
    "task_default_routing_key": _ignored("There are no routing keys; jobs go to queues by name."),
    "task_default_delivery_mode": _ignored("Jobs are rows, always persistent."),
    "task_default_queue_type": _ignored("Queues are names; there are no queue types."),
    "task_create_missing_queue_type": _ignored("Queues are names; there are no queue types."),
    "task_create_missing_queue_exchange_type": _ignored("There are no exchanges."),
    "task_protocol": _ignored("Jobs are rows; there is no message protocol."),
    "task_publish_retry": _ignored(
        "Sending is an INSERT in the caller's transaction: it succeeds or raises."
    ),
    "task_publish_retry_policy": _ignored(
        "Sending is an INSERT in the caller's transaction: it succeeds or raises."
    ),
    "task_send_sent_event": _ignored(
        "djqueue sends no events; connect to the djqueue.signals signals instead."
    ),
    "task_repr_maxlevels": _ignored("Arguments are stored as JSON and shown by the admin."),
    "task_allow_error_cb_on_chord_header": _unsupported(
        "Put link_error on the chord's body; see docs/canvas.md."
    ),
    # Results.
    "result_expires": _mapped(
        "RESULT_RETENTION_SECONDS",
        retention,
        lambda v: v is None or _positive(v) or v == 0,
        "Give seconds or a timedelta (None or 0 keeps results for ever).",
    ),
    "result_failure_expires": _unsupported(
        "One retention applies to every finished job: DJQUEUE['RESULT_RETENTION_SECONDS']."
    ),
    "result_extended": _holds(
        _anything, "Every job row keeps its task name, arguments, queue and worker."
    ),
    "result_persistent": _ignored("Results are rows, always persistent."),
    "result_chord_expires": _ignored("Chord state is pruned with its jobs."),
    # Modules, time.
    "imports": _mapped("IMPORTS", module_names),
    "include": _mapped("IMPORTS", module_names),
    "timezone": _mapped(
        "TIMEZONE", str, _zone_name, "Give an IANA time zone name, like 'Europe/Paris'."
    ),
    "enable_utc": _holds(
        _is(True),
        "djqueue stores aware times (USE_TZ) and reads crontab() in TIMEZONE; remove it.",
    ),
    # Beat.
    "beat_schedule": _mapped("BEAT_SCHEDULE"),
    "beat_max_loop_interval": _mapped(
        "BEAT_MAX_INTERVAL_SECONDS",
        seconds,
        _positive,
        "0 means the scheduler's default; remove it or give seconds.",
    ),
    "beat_scheduler": _unsupported(
        "runbeat always keeps its schedule in the database. To move a django_celery_beat "
        "schedule, run `manage.py djqueue import-beat` once; then remove the setting."
    ),
    "beat_schedule_filename": _ignored("runbeat keeps its state in the database, not a file."),
    "beat_sync_every": _ignored("runbeat writes every run as it sends it."),
    "beat_cron_starting_deadline": _unsupported(
        "Use catch_up on the entry ('once', 'skip' or 'all'; see docs/periodic.md)."
    ),
    "beat_enable_remote_control": _ignored(_NO_REMOTE),
    "beat_remote_control_max_tick_age": _ignored(_NO_REMOTE),
    # Workers.
    "worker_concurrency": _mapped(
        "CONCURRENCY", int, _whole, "Give a whole number of slots (runworker -c)."
    ),
    "worker_prefetch_multiplier": _mapped(
        "PREFETCH_MULTIPLIER",
        int,
        _whole,
        "djqueue needs at least 1 (0, unlimited, is not supported).",
    ),
    "worker_max_tasks_per_child": _mapped(
        "MAX_TASKS_PER_CHILD", int, _whole, "Give a whole number of jobs."
    ),
    "worker_max_memory_per_child": _mapped(
        "MAX_MEMORY_PER_CHILD", int, _whole, "Give a whole number of kilobytes."
    ),
    "worker_pool": _unsupported("Choose the pool on the command line: runworker -P prefork."),
    "worker_autoscaler": _unsupported("Use runworker --autoscale MAX,MIN."),
    "worker_disable_rate_limits": _unsupported(
        "Rate limits are shared by all workers; remove rate_limit from the tasks instead."
    ),
    "worker_disable_prefetch": _unsupported("Use PREFETCH_MULTIPLIER = 1."),
    "worker_enable_prefetch_count_reduction": _ignored("Claims are counted per job."),
    "worker_eta_task_limit": _ignored("Jobs with an eta stay in the table until they are due."),
    "worker_soft_shutdown_timeout": _unsupported(
        "Set DJQUEUE['SHUTDOWN_GRACE_SECONDS']: how long running jobs may finish after SIGTERM."
    ),
    "worker_enable_soft_shutdown_on_idle": _ignored(
        "A worker always lets running jobs finish within SHUTDOWN_GRACE_SECONDS."
    ),
    "worker_cancel_long_running_tasks_on_connection_loss": _ignored(
        "Leases decide: a job whose worker lost the database runs again after LEASE_SECONDS."
    ),
    "worker_lost_wait": _ignored("Leases decide when a job of a lost worker runs again."),
    "worker_proc_alive_timeout": _ignored("The prefork pool watches its children itself."),
    "worker_deduplicate_successful_tasks": _unsupported(
        "Use unique_key=/unique_for= on the task (docs/limits.md)."
    ),
    "worker_enable_remote_control": _ignored(_NO_REMOTE),
    "worker_direct": _unsupported("Send to a queue that only that worker serves (-Q)."),
    "worker_send_task_events": _ignored(
        "djqueue sends no events; the admin and djqueue.signals show the same."
    ),
    "worker_state_db": _ignored("Revocations are kept in the database."),
    "worker_hijack_root_logger": _ignored(_LOGGING),
    "worker_log_color": _ignored(_LOGGING),
    "worker_log_datefmt": _ignored(_LOGGING),
    "worker_log_format": _ignored(_LOGGING),
    "worker_task_log_format": _ignored(_LOGGING),
    "worker_task_log_datefmt": _ignored(_LOGGING),
    "worker_redirect_stdouts": _ignored(_LOGGING),
    "worker_redirect_stdouts_level": _ignored(_LOGGING),
    "worker_pool_putlocks": _ignored("Not needed by djqueue's pools."),
    "worker_pool_restarts": _ignored("Restart the worker to load new code."),
    "worker_pool_start_method": _ignored("The prefork pool forks after Django is set up."),
    "worker_timer": _ignored("Not needed by djqueue's workers."),
    "worker_timer_precision": _ignored("Not needed by djqueue's workers."),
    "worker_consumer": _ignored("Not needed by djqueue's workers."),
    "worker_agent": _ignored("Not needed by djqueue's workers."),
    "worker_detect_quorum_queues": _ignored("There are no broker queues."),
}

# Families of settings that configure a broker, a result backend or message transport.
_FAMILIES = (
    "broker_",
    "result_backend",
    "result_cache_max",
    "result_chord_",
    "result_exchange",
    "cache_",
    "database_",
    "redis_",
    "mongodb_",
    "cassandra_",
    "s3_",
    "azureblockblob_",
    "gcs_",
    "couchbase_",
    "arangodb_",
    "cosmosdbsql_",
    "elasticsearch_",
    "control_",
    "event_",
)

_SECURITY = _unsupported(
    "Jobs are not signed; the database's access control protects them. Remove it."
)


def rule(name: str) -> Rule | None:
    """The rule for the Celery setting ``name`` (lower case, as Celery names it)."""
    found = RULES.get(name)
    if found is not None:
        return found
    if name.startswith("security_"):
        return _SECURITY
    if name in KNOWN and name.startswith(_FAMILIES):
        return _ignored(_BACKEND)
    if name in KNOWN:
        return _unsupported("djqueue has no equivalent. Remove it.")
    return None
