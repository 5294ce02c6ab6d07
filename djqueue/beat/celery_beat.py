"""Importing a Celery project's schedule: the tables of ``django_celery_beat`` (read by
SQL, the package need not be installed) into djqueue's periodic tasks.

Rows are matched by name, so importing again changes nothing that is already as
imported; rows djqueue has run since keep their own last run. What cannot be imported
(an unregistered task, a schedule djqueue does not read) is reported with the reason.
"""

from __future__ import annotations

import datetime
import decimal
import json
from dataclasses import dataclass, field
from typing import Any

from django.db import connections

from djqueue.core import conf, registry, schedules
from djqueue.core.exceptions import NotRegistered
from djqueue.db.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

PREFIX = "django_celery_beat_"
TASKS = PREFIX + "periodictask"

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

SCHEDULES = {
    "interval_id": "intervalschedule",
    "crontab_id": "crontabschedule",
    "solar_id": "solarschedule",
    "clocked_id": "clockedschedule",
}

# Fields an import sets on an existing row; its run history stays djqueue's own.
COMPARED = (
    "task", "args", "kwargs", "queue", "priority", "expires", "expire_seconds", "one_off",
    "start_time", "enabled", "description", "interval", "crontab", "solar", "clocked",
)  # fmt: skip


class Skip(Exception):
    """A row that cannot be imported; the message says why and what to do."""


@dataclass
class Report:
    """What an import did, by periodic task name."""

    found: bool = False
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)


def import_tables(using: str | None = None) -> Report:
    """Import every ``django_celery_beat`` periodic task found in database ``using``."""
    alias = using or conf.database()
    report = Report()
    columns = _columns(alias)
    if "periodictask" not in columns:
        return report
    report.found = True
    for row in _rows(alias, columns):
        name = str(row["name"])
        notes: list[str] = []
        try:
            fields = _fields(row, columns, alias, notes)
        except Skip as exc:
            report.skipped[name] = str(exc)
            continue
        if notes:
            report.notes[name] = notes
        _upsert(name, fields, row, report)
    return report


def _columns(alias: str) -> dict[str, set[str]]:
    """The package's tables in the database, with the columns each has."""
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = ANY(current_schemas(false)) AND table_name LIKE %s",
            [PREFIX.replace("_", r"\_") + "%"],
        )
        found: dict[str, set[str]] = {}
        for table, column in cursor.fetchall():
            found.setdefault(table[len(PREFIX) :], set()).add(column)
    return found


def _select(table: str, wanted: list[str], present: set[str], where: str = "") -> str:
    # Table and column names come from COLUMNS above, never from data; a column the
    # table lacks reads as NULL.
    parts = [f'"{column}"' if column in present else f'NULL AS "{column}"' for column in wanted]
    return f'SELECT {", ".join(parts)} FROM "{PREFIX}{table}" {where}'  # noqa: S608


def _rows(alias: str, columns: dict[str, set[str]]) -> list[dict[str, Any]]:
    wanted = COLUMNS["periodictask"]
    sql = _select("periodictask", wanted, columns["periodictask"], "ORDER BY id")
    with connections[alias].cursor() as cursor:
        cursor.execute(sql)
        return [dict(zip(wanted, values, strict=True)) for values in cursor.fetchall()]


def _schedule_row(
    alias: str, table: str, row_id: int, columns: dict[str, set[str]]
) -> dict[str, Any] | None:
    if table not in columns:
        return None
    wanted = COLUMNS[table]
    with connections[alias].cursor() as cursor:
        cursor.execute(_select(table, wanted, columns[table], "WHERE id = %s"), [row_id])
        values = cursor.fetchone()
    return None if values is None else dict(zip(wanted, values, strict=True))


def _fields(
    row: dict[str, Any], columns: dict[str, set[str]], alias: str, notes: list[str]
) -> dict[str, Any]:
    task = str(row["task"])
    try:
        registry.get(task)
    except NotRegistered as exc:
        raise Skip(f"{exc.args[0]}; register the task, then import again") from None
    fields: dict[str, Any] = {
        "task": task,
        "args": _json(row["args"], list, "args", "[]"),
        "kwargs": _json(row["kwargs"], dict, "kwargs", "{}"),
        "queue": row["queue"] or "",
        "priority": _priority(row["priority"], notes),
        "expires": row["expires"],
        "expire_seconds": row["expire_seconds"],
        "one_off": bool(row["one_off"]),
        "start_time": row["start_time"],
        "enabled": bool(row["enabled"]),
        "description": row["description"] or "",
        **_schedule(row, columns, alias),
    }
    if row["exchange"] or row["routing_key"]:
        notes.append("exchange and routing_key have no effect (jobs go to queues by name)")
    if row["headers"] and _loads(row["headers"]) not in ({}, None):
        notes.append("headers are not sent")
    return fields


def _json(text: Any, kind: type, label: str, empty: str) -> Any:
    value = _loads(text or empty)
    if not isinstance(value, kind):
        raise Skip(f"{label} must be a JSON {kind.__name__}, not {text!r}")
    return value


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise Skip(f"{text!r} is not JSON") from None


def _priority(value: Any, notes: list[str]) -> int | None:
    if value is None:
        return None
    if -100 <= int(value) <= 100:
        return int(value)
    notes.append(f"priority {value} is outside -100..100 (higher first) and was left out")
    return None


def _schedule(row: dict[str, Any], columns: dict[str, set[str]], alias: str) -> dict[str, Any]:
    found = {"interval": None, "crontab": None, "solar": None, "clocked": None}
    given = [(key, row[key]) for key in SCHEDULES if row[key] is not None]
    if len(given) != 1:
        raise Skip("it has no schedule" if not given else "it has more than one schedule")
    [(key, row_id)] = given
    table = SCHEDULES[key]
    values = _schedule_row(alias, table, row_id, columns)
    if values is None:
        raise Skip(f"its {table} row {row_id} is missing")
    try:
        found[key[: -len("_id")]] = _make(table, values)
    except (TypeError, ValueError) as exc:
        raise Skip(f"its schedule cannot be read: {exc}") from None
    return found


def _make(table: str, values: dict[str, Any]) -> Any:
    if table == "intervalschedule":
        every, period = int(values["every"]), str(values["period"])
        if every <= 0 or period not in IntervalSchedule.PERIOD_MICROSECONDS:
            raise ValueError(f"every {every} {period} is not an interval djqueue reads")
        return _get_or_create(IntervalSchedule, every=every, period=period)
    if table == "crontabschedule":
        made = schedules.crontab(
            values["minute"],
            values["hour"],
            values["day_of_week"],
            values["day_of_month"],
            values["month_of_year"],
            str(values["timezone"] or "UTC"),
        )
        return _get_or_create(CrontabSchedule, **made.fields())
    if table == "solarschedule":
        schedules.solar(str(values["event"]), float(values["latitude"]), float(values["longitude"]))
        return _get_or_create(
            SolarSchedule,
            event=str(values["event"]),
            latitude=decimal.Decimal(values["latitude"]),
            longitude=decimal.Decimal(values["longitude"]),
        )
    moment: datetime.datetime = values["clocked_time"]
    return _get_or_create(ClockedSchedule, clocked_time=moment)


def _get_or_create(model: Any, **values: Any) -> Any:
    manager = model.objects.using(conf.database())
    return manager.filter(**values).order_by("pk").first() or manager.create(**values)


def _upsert(name: str, fields: dict[str, Any], row: dict[str, Any], report: Report) -> None:
    manager = PeriodicTask.objects.using(conf.database())
    existing = manager.filter(name=name).first()
    if existing is None:
        extra = {}
        if row["last_run_at"] is not None:
            # An interval's slots are counted from the task's anchor (start_time, else
            # creation): from its last run, the next one falls where Celery's would.
            extra["date_created"] = row["last_run_at"]
        manager.create(
            name=name,
            last_run_at=row["last_run_at"],
            total_run_count=row["total_run_count"] or 0,
            **extra,
            **fields,
        )
        report.created.append(name)
        return
    if existing.from_settings:
        report.skipped[name] = (
            "a BEAT_SCHEDULE entry has this name; rename one of them, then import again"
        )
        return
    changed = [key for key in COMPARED if getattr(existing, key) != fields[key]]
    if not changed:
        report.unchanged.append(name)
        return
    for key in changed:
        setattr(existing, key, fields[key])
    existing.save()
    report.updated.append(name)
