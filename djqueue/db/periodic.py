"""Periodic task state in the database: change notifications to running schedulers."""

from __future__ import annotations

from typing import Any

from django.db import connections, models

from djqueue.core import conf

# Notified (empty payload) whenever a periodic task or a schedule changes.
CHANNEL = "djqueue_beat"

# NOTIFY is transactional: sent from a save inside a transaction, it is heard at commit.
NOTIFY = "SELECT pg_notify(%s, '')"


def notify_changed(using: str | None = None) -> None:
    """Tell running schedulers to read the periodic tasks again (at commit)."""
    with connections[using or conf.get("DATABASE")].cursor() as cursor:
        cursor.execute(NOTIFY, [CHANNEL])


def schedules_changed(sender: type[models.Model], using: str, **kwargs: Any) -> None:
    """Signal receiver: a periodic task or a schedule was saved or deleted."""
    notify_changed(using)
