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

from djqueue.core import conf, registry, schedules
from djqueue.core.exceptions import NotRegistered
from djqueue.db import celery_beat_tables as tables
from djqueue.db import periodic
from djqueue.db.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

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
    columns = tables.columns(alias)
    if "periodictask" not in columns:
        return report
    report.found = True
    for row in tables.periodic_tasks(alias, columns):
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
    values = tables.schedule(alias, table, row_id, columns)
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
        return periodic.schedule_row(IntervalSchedule, every=every, period=period)
    if table == "crontabschedule":
        made = schedules.crontab(
            values["minute"],
            values["hour"],
            values["day_of_week"],
            values["day_of_month"],
            values["month_of_year"],
            str(values["timezone"] or "UTC"),
        )
        return periodic.schedule_row(CrontabSchedule, **made.fields())
    if table == "solarschedule":
        schedules.solar(str(values["event"]), float(values["latitude"]), float(values["longitude"]))
        return periodic.schedule_row(
            SolarSchedule,
            event=str(values["event"]),
            latitude=decimal.Decimal(values["latitude"]),
            longitude=decimal.Decimal(values["longitude"]),
        )
    moment: datetime.datetime = values["clocked_time"]
    return periodic.schedule_row(ClockedSchedule, clocked_time=moment)


def _upsert(name: str, fields: dict[str, Any], row: dict[str, Any], report: Report) -> None:
    existing = PeriodicTask.objects.using(conf.database()).filter(name=name).first()
    if existing is None:
        extra: dict[str, Any] = {
            "last_run_at": row["last_run_at"],
            "total_run_count": row["total_run_count"] or 0,
        }
        if row["last_run_at"] is not None:
            # An interval's slots are counted from the task's anchor (start_time, else
            # creation): from its last run, the next one falls where Celery's would.
            extra["date_created"] = row["last_run_at"]
        periodic.create_imported_task(name, {**fields, **extra})
        report.created.append(name)
        return
    if existing.from_settings:
        report.skipped[name] = (
            "a BEAT_SCHEDULE entry has this name; rename one of them, then import again"
        )
        return
    # Its run history stays djqueue's own: only the definition is compared and updated.
    if periodic.update_task(existing, {key: fields[key] for key in COMPARED}):
        report.updated.append(name)
    else:
        report.unchanged.append(name)
