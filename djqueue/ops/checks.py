"""System checks: PostgreSQL as the queue database, known settings, prepared statements,
BEAT_SCHEDULE."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from djqueue.beat import beat_schedule
from djqueue.core import conf
from djqueue.core.exceptions import DjqueueError, NotRegistered
from djqueue.ops import celery_checks


def register() -> None:
    checks.register(check_database, checks.Tags.database, deploy=False)
    checks.register(check_settings)
    checks.register(check_prepared_statements)
    checks.register(check_beat_schedule)
    checks.register(celery_checks.check_celery_settings)
    checks.register(celery_checks.check_routes)


def check_database(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The queue's database must be PostgreSQL: claiming relies on SKIP LOCKED and NOTIFY.
    A monitoring database, if set, must be one of ``DATABASES`` too."""
    alias = conf.database()
    found = database_errors(alias, settings.DATABASES.get(alias))
    monitoring = conf.get("MONITORING_DATABASE")
    if monitoring and monitoring not in settings.DATABASES:
        found.append(
            checks.Error(
                f"DJQUEUE['MONITORING_DATABASE'] is {monitoring!r}, which is not in DATABASES.",
                hint="Name an alias in DATABASES that reaches the queue's tables (a "
                "standby, say), or leave it unset to read from DJQUEUE['DATABASE'].",
                id="djqueue.E009",
            )
        )
    return found


def database_errors(alias: str, database: dict[str, Any] | None) -> list[checks.CheckMessage]:
    """Errors for the queue database ``alias`` configured as ``database`` (None: absent)."""
    if database is None:
        return [
            checks.Error(
                f"DJQUEUE['DATABASE'] is {alias!r}, which is not in DATABASES.",
                hint="Name one of the aliases in DATABASES (usually 'default').",
                id="djqueue.E001",
            )
        ]
    engine = database.get("ENGINE", "")
    if engine != "django.db.backends.postgresql":
        return [
            checks.Error(
                f"djqueue needs PostgreSQL, but database {alias!r} uses {engine!r}.",
                hint="Set ENGINE to 'django.db.backends.postgresql' (PostgreSQL 13 or "
                "later, with psycopg 3 installed).",
                id="djqueue.E002",
            )
        ]
    return []


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Unknown keys in ``DJQUEUE`` are probably typos; heartbeats must beat the lease."""
    messages: list[checks.CheckMessage] = []
    lease, beat = conf.number("LEASE_SECONDS"), conf.number("HEARTBEAT_SECONDS")
    if beat >= lease:
        messages.append(
            checks.Error(
                f"HEARTBEAT_SECONDS ({beat:g}) must be below LEASE_SECONDS ({lease:g}).",
                hint="Otherwise leases run out between heartbeats and running jobs are "
                "rescued and run twice; a lease of 3 heartbeats or more is safe.",
                id="djqueue.E003",
            )
        )
    return messages + [
        checks.Warning(
            f"Unknown setting DJQUEUE[{key!r}] is ignored.",
            hint=f"Known settings: {', '.join(sorted(conf.DEFAULTS))}.",
            id="djqueue.W001",
        )
        for key in conf.unknown_keys()
    ]


def check_prepared_statements(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Which way the broker's statements go, and why, unless it is the plain default.

    Silent when they are prepared because nothing says a pooler is in between (the
    default without ``LISTEN_DSN``); otherwise one line says whether they are prepared
    and what decided it, so that a deployment behind a pooler can see it.
    """
    try:
        prepared, why = conf.prepared_statements()
    except ImproperlyConfigured as exc:
        return [
            checks.Error(
                f"{exc}.",
                hint='Use "auto" (the default), True or False; see docs/settings.md.',
                id="djqueue.E008",
            )
        ]
    if prepared and not conf.get("LISTEN_DSN"):
        return []
    if prepared:
        return [
            checks.Info(
                f"djqueue prepares its statements on the server ({why}), though LISTEN_DSN is set.",
                hint="Right with a pooler that keeps prepared statements (PgBouncer 1.21 or "
                "later with max_prepared_statements above 0); behind one that does not, "
                'set DJQUEUE["PREPARED_STATEMENTS"] to "auto" or False.',
                id="djqueue.I001",
            )
        ]
    return [
        checks.Info(
            f"djqueue does not prepare its statements on the server: {why}.",
            hint="Each statement is planned on every call. Behind a pooler that keeps "
            "prepared statements (PgBouncer 1.21 or later with max_prepared_statements "
            'above 0), or without a pooler, set DJQUEUE["PREPARED_STATEMENTS"] to True.',
            id="djqueue.I002",
        )
    ]


def check_beat_schedule(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Each ``BEAT_SCHEDULE`` entry names a registered task and a schedule that parses.

    The scheduler skips a bad entry (and logs why); this says so before it is deployed.
    """
    spec = conf.get("BEAT_SCHEDULE")
    if not isinstance(spec, Mapping):
        return [
            checks.Error(
                f"DJQUEUE['BEAT_SCHEDULE'] must be a dict of entries, not {type(spec).__name__}.",
                hint="Give each periodic task a name: {'name': {'task': ..., 'schedule': ...}}.",
                id="djqueue.E004",
            )
        ]
    return [error for name, value in spec.items() for error in _entry_errors(str(name), value)]


def _entry_errors(name: str, value: Any) -> list[checks.CheckMessage]:
    where = f"BEAT_SCHEDULE[{name!r}]"
    if isinstance(value, Mapping) and "schedule" in value:
        try:
            beat_schedule.check_schedule(value["schedule"])
        except (TypeError, ValueError) as exc:
            return [checks.Error(f"{where}: {exc}.", hint=_SCHEDULE_HINT, id="djqueue.E006")]
    try:
        beat_schedule.check_entry(value)
    except NotRegistered as exc:
        hint = "Register the task in an installed app's tasks.py, or correct its name."
        return [checks.Error(f"{where}: {exc}", hint=hint, id="djqueue.E005")]
    except (DjqueueError, TypeError, ValueError) as exc:
        hint = "See the entry's keys in docs/periodic.md (Declaring schedules in settings)."
        return [checks.Error(f"{where}: {exc}.", hint=hint, id="djqueue.E007")]
    return []


_SCHEDULE_HINT = (
    "Use crontab(...), schedule(run_every), a number of seconds, a timedelta, solar(...) or "
    "schedules.Clocked(...) from djqueue.schedules."
)
