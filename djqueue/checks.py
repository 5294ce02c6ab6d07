"""System checks: PostgreSQL as the queue database, and known settings."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from djqueue import conf


def register() -> None:
    checks.register(check_database, checks.Tags.database, deploy=False)
    checks.register(check_settings)


def check_database(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The queue's database must be PostgreSQL: claiming relies on SKIP LOCKED and NOTIFY."""
    alias = conf.get("DATABASE")
    return database_errors(alias, settings.DATABASES.get(alias))


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
    lease, beat = float(conf.get("LEASE_SECONDS")), float(conf.get("HEARTBEAT_SECONDS"))
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
