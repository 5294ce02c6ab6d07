"""Reading the tables of ``django_celery_beat`` (by SQL: the package need not be
installed), for ``manage.py djqueue import-beat``. Nothing here writes to them."""

from __future__ import annotations

from typing import Any

from django.db import connections

PREFIX = "django_celery_beat_"

# Columns read from each table, by the name the import uses. Older versions of the
# package lack some (headers, priority, clocked...): they read as NULL.
COLUMNS = {
    "periodictask": [
        "name", "task", "args", "kwargs", "queue", "exchange", "routing_key", "headers",
        "priority", "expires", "expire_seconds", "one_off", "start_time", "enabled",
        "last_run_at", "total_run_count", "description",
        "interval_id", "crontab_id", "solar_id", "clocked_id",
    ],
    "intervalschedule": ["every", "period"],
    "crontabschedule": [
        "minute", "hour", "day_of_week", "day_of_month", "month_of_year", "timezone",
    ],
    "solarschedule": ["event", "latitude", "longitude"],
    "clockedschedule": ["clocked_time"],
}  # fmt: skip

# The package's tables and their columns, in the schemas on the search path.
TABLE_COLUMNS = """
SELECT table_name, column_name FROM information_schema.columns
WHERE table_schema = ANY(current_schemas(false)) AND table_name LIKE %s
"""


def columns(alias: str) -> dict[str, set[str]]:
    """The package's tables in database ``alias`` (without the prefix), with their columns."""
    with connections[alias].cursor() as cursor:
        cursor.execute(TABLE_COLUMNS, [PREFIX.replace("_", r"\_") + "%"])
        found: dict[str, set[str]] = {}
        for table, column in cursor.fetchall():
            found.setdefault(table[len(PREFIX) :], set()).add(column)
    return found


def _select(table: str, present: set[str], where: str) -> str:
    # Table and column names come from COLUMNS, never from data; a column the table
    # lacks reads as NULL.
    parts = [
        f'"{column}"' if column in present else f'NULL AS "{column}"' for column in COLUMNS[table]
    ]
    return f'SELECT {", ".join(parts)} FROM "{PREFIX}{table}" {where}'  # noqa: S608


def periodic_tasks(alias: str, found: dict[str, set[str]]) -> list[dict[str, Any]]:
    """Every row of the periodic task table, as dicts by column, in id order."""
    with connections[alias].cursor() as cursor:
        cursor.execute(_select("periodictask", found["periodictask"], "ORDER BY id"))
        return [dict(zip(COLUMNS["periodictask"], row, strict=True)) for row in cursor.fetchall()]


def schedule(
    alias: str, table: str, row_id: int, found: dict[str, set[str]]
) -> dict[str, Any] | None:
    """The row ``row_id`` of the schedule table ``table``, or None when it is missing."""
    if table not in found:
        return None
    with connections[alias].cursor() as cursor:
        cursor.execute(_select(table, found[table], "WHERE id = %s"), [row_id])
        values = cursor.fetchone()
    return None if values is None else dict(zip(COLUMNS[table], values, strict=True))
