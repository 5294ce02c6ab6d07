"""Settings: the ``DJQUEUE`` dict, read lazily, with documented defaults.

A key missing from ``DJQUEUE`` is taken from the project's Celery settings when one of
them says the same thing (``CELERY_TASK_ALWAYS_EAGER`` for ``EAGER``; see
:mod:`djqueue.core.celery_conf`), then from the defaults.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from djqueue.core import celery_conf

DEFAULTS: dict[str, Any] = {
    # Run tasks at send time in the calling process (for users' unit tests).
    "EAGER": False,
    # With EAGER, raise a task's error in the caller at send time (as Celery's
    # task_eager_propagates); otherwise sending returns its FAILURE result.
    "EAGER_PROPAGATES": False,
    # Database alias holding the queue tables; transactional enqueue needs it to be
    # the alias the application writes to.
    "DATABASE": "default",
    # Alias that the read-only monitoring queries use (the admin's overview, the figures
    # of manage.py djqueue, the metrics): a standby, say. None: DATABASE.
    "MONITORING_DATABASE": None,
    # Queue used when neither the task nor the call names one.
    "DEFAULT_QUEUE": "default",
    # Seconds a claimed job stays owned without a heartbeat before it is rescued.
    "LEASE_SECONDS": 30.0,
    # Seconds between a worker's heartbeats (lease extension, rescue of expired leases).
    "HEARTBEAT_SECONDS": 5.0,
    # Seconds a worker waits for running jobs after SIGTERM before handing them back.
    "SHUTDOWN_GRACE_SECONDS": 30.0,
    # Where jobs go when neither the call nor the task names a queue: Celery's
    # task_routes forms (a dict by task name or glob, routers, a list of them).
    "ROUTES": None,
    # Attributes set on tasks by name or for all ("*"), as Celery's task_annotations.
    "ANNOTATIONS": None,
    # Modules imported at startup besides the apps' tasks.py (Celery's imports/include).
    "IMPORTS": [],
    # Worker defaults for the options of runworker (its flags win).
    "CONCURRENCY": None,
    "TIME_LIMIT": None,
    "SOFT_TIME_LIMIT": None,
    "MAX_TASKS_PER_CHILD": None,
    "MAX_MEMORY_PER_CHILD": None,
    # Seconds finished jobs are kept before pruning (None keeps them forever).
    "RESULT_RETENTION_SECONDS": 86400.0,
    # Seconds between prunes done by workers.
    "PRUNE_INTERVAL_SECONDS": 300.0,
    # Largest accepted size in bytes of encoded args + kwargs, and of a result.
    "MAX_PAYLOAD_BYTES": 1_048_576,
    # Characters of a failed job's error message and traceback that are stored; longer
    # ones keep their start and end and say how much was left out.
    "MAX_ERROR_CHARS": 10_000,
    "MAX_TRACEBACK_CHARS": 100_000,
    # A job that killed the process running it this many times (a segfault, os.abort(),
    # the out-of-memory killer) ends FAILURE instead of running again.
    "QUARANTINE_AFTER_KILLS": 3,
    # Seconds between polls when no notification arrives (the LISTEN fallback).
    "POLL_INTERVAL_SECONDS": 1.0,
    # Jobs a worker may hold per free slot.
    "PREFETCH_MULTIPLIER": 4,
    # With three or more workers on a queue, a worker whose last answer to a notification
    # claimed nothing waits this many ms (up to twice that) before it claims for the next
    # one, and not at all if a peer said meanwhile that it emptied the queue. 0: all
    # workers claim at once on every notification.
    "WAKE_STAGGER_MS": 10.0,
    # Largest number of jobs claimed in one statement.
    "CLAIM_BATCH_SIZE": 100,
    # Outcomes are written in batches: at most this many, or after this many ms.
    "FINISH_BATCH_SIZE": 100,
    "FINISH_FLUSH_MS": 5.0,
    # Rows per INSERT statement in bulk enqueue.
    "BULK_BATCH_SIZE": 5000,
    # Prepare the broker's statements on the server (planned once per connection): True,
    # False, or "auto": on unless LISTEN_DSN is set, which says that DATABASES goes
    # through a transaction-mode pooler (see prepared_statements()).
    "PREPARED_STATEMENTS": "auto",
    # A direct (non-pooled) DSN for LISTEN, for setups behind a transaction pooler.
    "LISTEN_DSN": None,
    # Guards against a network link that dies without a word (djqueue.db.sessions): TCP
    # keepalives and tcp_user_timeout on the connections of workers, beat and the
    # listeners; a statement timeout on those of djqueue's own threads. None: not set.
    "TCP_KEEPALIVE_IDLE_SECONDS": 10,
    "TCP_KEEPALIVE_INTERVAL_SECONDS": 5,
    "TCP_KEEPALIVE_COUNT": 3,
    "TCP_USER_TIMEOUT_SECONDS": 30.0,
    # Seconds a new connection may take (libpq's connect_timeout, per host of a
    # multi-host HOST): a host that vanished is given up on, and the next one tried.
    "CONNECT_TIMEOUT_SECONDS": 10,
    "STATEMENT_TIMEOUT_SECONDS": 60.0,
    # Extra exception classes (dotted paths) that AsyncResult.get() may re-raise.
    "RESULT_EXCEPTIONS": [],
    # The time zone of crontab() schedules that name none (Celery's timezone).
    "TIMEZONE": "UTC",
    # Periodic tasks declared in code: name -> {"task", "schedule", "args", "kwargs",
    # "options"}; runbeat syncs them into the PeriodicTask table when it starts.
    "BEAT_SCHEDULE": {},
    # Longest time runbeat sleeps without looking at the periodic tasks again (the
    # fallback when a change notification is missed).
    "BEAT_MAX_INTERVAL_SECONDS": 5.0,
    # Seconds a follower waits between attempts to become the leader.
    "BEAT_FOLLOWER_RETRY_SECONDS": 1.0,
    # Seconds run records (one per enqueued slot) are kept.
    "BEAT_RUN_RETENTION_SECONDS": 7 * 86400.0,
    # The console's time series (docs/monitoring.md): seconds between a worker's
    # rollups (None: workers keep no series), and seconds rows are kept (None: forever).
    "SERIES_ROLLUP_SECONDS": 30.0,
    "SERIES_RETENTION_SECONDS": 8 * 86400.0,
    # Alerts on the overview: a due job waiting longer than this many seconds; a task
    # whose failure rate over the last minutes reaches this fraction (and at least twice
    # its rate of the hour before) with at least ALERT_FAILURE_MIN_JOBS failures.
    "ALERT_WAIT_SECONDS": 300.0,
    "ALERT_FAILURE_RATE": 0.2,
    "ALERT_FAILURE_MIN_JOBS": 10,
    # Access (docs/monitoring.md#access). The job status view answers only the holder of
    # the job's token or a user with djqueue.view_job, unless this opens it to anyone.
    "JOB_STATUS_PUBLIC": False,
    # The metrics view answers "Authorization: Bearer <METRICS_TOKEN>" (when set) or a
    # user with djqueue.view_metrics, unless METRICS_PUBLIC opens it to anyone.
    "METRICS_TOKEN": None,
    "METRICS_PUBLIC": False,
    # Metrics labels: a task label or not, and how many distinct queue names and task
    # names keep their own label value (the first to appear; later ones are "(other)").
    "METRICS_TASK_LABELS": True,
    "METRICS_MAX_LABEL_VALUES": 50,
}


# Every setting's value, merged once: ``delay()`` reads several settings per call, and
# reading Django's lazy settings each time was a measurable part of its cost. Dropped
# whenever Django says a setting changed (override_settings, the settings fixture).
_merged: dict[str, Any] | None = None


def get(name: str) -> Any:
    """Return the setting ``name`` from ``settings.DJQUEUE`` or its default."""
    merged = _merged if _merged is not None else _merge()
    try:
        return merged[name]
    except KeyError:
        raise KeyError(f"unknown djqueue setting {name!r}") from None


def _merge() -> dict[str, Any]:
    global _merged
    user: dict[str, Any] = getattr(settings, "DJQUEUE", {}) or {}
    mapped = celery_conf.mapped()
    merged = {
        name: user[name] if name in user else mapped.get(name, default)
        for name, default in DEFAULTS.items()
    }
    _merged = merged
    return merged


def forget(**kwargs: Any) -> None:
    """Drop the merged settings (a setting changed, as in tests' override_settings)."""
    global _merged
    _merged = None


setting_changed.connect(forget, weak=False, dispatch_uid="djqueue.conf")


def integer(name: str) -> int:
    """The setting ``name`` as a whole number; a clear error when it is not one."""
    value = get(name)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(_wrong(name, value, "a whole number")) from None


def number(name: str) -> float:
    """The setting ``name`` as a number of seconds, bytes...; a clear error otherwise."""
    value = get(name)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(_wrong(name, value, "a number")) from None


def optional_integer(name: str) -> int | None:
    """The setting ``name`` as a whole number, or None where None means "never"."""
    return None if get(name) is None else integer(name)


def optional_number(name: str) -> float | None:
    """The setting ``name`` as a number, or None where None means "not set"."""
    return None if get(name) is None else number(name)


def flag(name: str) -> bool:
    """The setting ``name`` as true or false."""
    return bool(get(name))


def behind_pooler() -> bool:
    """Whether ``DATABASES`` is taken to go through a transaction-mode pooler.

    ``LISTEN_DSN`` says so: a direct DSN for LISTEN is what a project behind such a
    pooler sets. Session state (prepared statements, session settings) must not be left
    on its connections, which pass from client to client between transactions.
    """
    return bool(get("LISTEN_DSN"))


def prepared_statements() -> tuple[bool, str]:
    """Whether the broker prepares its statements on the server, and why (one sentence).

    ``PREPARED_STATEMENTS`` True or False decides; ``"auto"`` (the default) turns them
    off when ``LISTEN_DSN`` is set: a direct DSN for LISTEN is what a project behind a
    transaction-mode pooler sets, and such a pooler may hand each transaction to a
    server connection where the statement was never prepared (PgBouncer before 1.21,
    or without ``max_prepared_statements``).
    """
    value = get("PREPARED_STATEMENTS")
    if value is True or value is False:
        return value, f"DJQUEUE['PREPARED_STATEMENTS'] is {value}"
    if value != "auto":
        raise ImproperlyConfigured(_wrong("PREPARED_STATEMENTS", value, 'True, False or "auto"'))
    if behind_pooler():
        return False, (
            "DJQUEUE['PREPARED_STATEMENTS'] is \"auto\" and LISTEN_DSN is set, which says "
            "that DATABASES goes through a transaction-mode pooler"
        )
    return True, "DJQUEUE['PREPARED_STATEMENTS'] is \"auto\" and LISTEN_DSN is not set"


def string(name: str) -> str:
    """The setting ``name`` as text; a clear error when it is something else."""
    value = get(name)
    if not isinstance(value, str):
        raise ImproperlyConfigured(_wrong(name, value, "a string"))
    return value


def names(name: str) -> list[str]:
    """The setting ``name`` as a list of names (module paths...): a clear error otherwise."""
    value = get(name) or []
    if isinstance(value, str) or not all(isinstance(item, str) for item in value):
        raise ImproperlyConfigured(_wrong(name, value, "a list of strings"))
    return list(value)


def database() -> str:
    """The alias of the database holding the queue tables (``DATABASE``)."""
    return string("DATABASE")


def monitoring_database() -> str:
    """The alias that read-only monitoring queries use (``MONITORING_DATABASE``, or
    ``DATABASE`` when it is not set). Never written to."""
    return string("MONITORING_DATABASE") if get("MONITORING_DATABASE") else database()


def _wrong(name: str, value: Any, expected: str) -> str:
    return f"DJQUEUE[{name!r}] must be {expected}, not {value!r}"


def unknown_keys() -> list[str]:
    """Keys in ``settings.DJQUEUE`` that djqueue does not know (likely typos)."""
    user: dict[str, Any] = getattr(settings, "DJQUEUE", {}) or {}
    return sorted(set(user) - set(DEFAULTS))
