"""``DJQUEUE["BEAT_SCHEDULE"]``: its entries checked, and synced to periodic task rows."""

from __future__ import annotations

import datetime
import decimal
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from djqueue.beat import entries
from djqueue.core import conf, registry, schedules
from djqueue.core.exceptions import DjqueueError
from djqueue.db import periodic
from djqueue.db.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

logger = logging.getLogger("djqueue.beat")


SPEC_KEYS = {"task", "schedule", "args", "kwargs", "options", "catch_up", "description", "enabled"}
OPTION_KEYS = {"queue", "priority", "expires"}


@dataclass
class SyncReport:
    """What a sync did, by entry name."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def sync(spec: Mapping[str, Any] | None = None) -> SyncReport:
    """Create or update the periodic tasks of ``BEAT_SCHEDULE``; disable removed ones.

    Rows made in the admin are never touched. An entry that is invalid gets an error
    naming it in the report, and its row (if an earlier sync made one) is disabled, so
    nothing is enqueued for it.
    """
    spec = conf.get("BEAT_SCHEDULE") if spec is None else spec
    report = SyncReport()
    if not isinstance(spec, Mapping):
        report.errors["BEAT_SCHEDULE"] = f"must be a dict of entries, not {type(spec).__name__}"
        spec = {}
    with transaction.atomic(using=_alias()):
        periodic.lock_sync()
        kept = [name for name, value in spec.items() if _sync_one(str(name), value, report)]
        report.disabled = periodic.disable_from_settings(kept)
    for name, error in report.errors.items():
        logger.error("BEAT_SCHEDULE entry %r is invalid and will not run: %s", name, error)
    return report


def _sync_one(name: str, value: Any, report: SyncReport) -> bool:
    """Sync one entry; return whether its row now exists and is enabled."""
    try:
        with transaction.atomic(using=_alias()):
            fields = _fields(value)
            return _upsert(name, fields, report)
    except (DjqueueError, KeyError, ValueError, TypeError) as exc:
        report.errors[name] = entries.reason(exc)
        return False


def _upsert(name: str, fields: dict[str, Any], report: SyncReport) -> bool:
    row = PeriodicTask.objects.using(_alias()).filter(name=name).first()
    if row is None:
        periodic.create_task(name, fields)
        report.created.append(name)
        return bool(fields["enabled"])
    if not row.from_settings:
        raise ValueError(
            f"a periodic task named {name!r} was made in the admin; the settings entry "
            "leaves it alone (rename one of them)"
        )
    if periodic.update_task(row, fields):
        report.updated.append(name)
    return bool(fields["enabled"])


def check_entry(value: Any) -> None:
    """Raise as a sync would on a bad BEAT_SCHEDULE entry, without touching the database.

    ``NotRegistered`` for an unknown task, ``ValueError``/``TypeError`` for the rest.
    """
    if not isinstance(value, Mapping):
        raise TypeError(f"an entry must be a dict with 'task' and 'schedule', not {value!r}")
    unknown = sorted(set(value) - SPEC_KEYS)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown}; entries take {sorted(SPEC_KEYS)}")
    for required in ("task", "schedule"):
        if required not in value:
            raise ValueError(f"the entry has no {required!r}")
    options = dict(value.get("options") or {})
    unknown = sorted(set(options) - OPTION_KEYS)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown}; options are {sorted(OPTION_KEYS)}")
    catch_up = value.get("catch_up", schedules.CATCH_UP_ONCE)
    if catch_up not in schedules.CATCH_UP_POLICIES:
        raise ValueError(f"catch_up must be one of {schedules.CATCH_UP_POLICIES}, not {catch_up!r}")
    check_schedule(value["schedule"])
    # Validates the task name, the arguments (JSON, size) and the options as a send would.
    registry.get(value["task"]).prepare(value.get("args", []), value.get("kwargs", {}), **options)


def check_schedule(schedule: Any) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``schedule`` can be an entry's schedule."""
    kinds = (schedules.Crontab, schedules.Solar, schedules.Clocked, schedules.Interval)
    if isinstance(schedule, kinds):
        return  # each validates itself when it is made
    if isinstance(schedule, datetime.timedelta | int | float) and not isinstance(schedule, bool):
        _interval(schedule)
        return
    raise TypeError(
        f"schedule must be crontab(...), schedule(run_every), seconds, a timedelta, "
        f"solar(...) or schedules.Clocked(...), not {schedule!r}"
    )


def _fields(value: Any) -> dict[str, Any]:
    """An entry of BEAT_SCHEDULE as PeriodicTask field values; raises on bad input."""
    check_entry(value)
    options = dict(value.get("options") or {})
    expires = options.get("expires")
    return {
        "task": value["task"],
        "args": list(value.get("args", [])),
        "kwargs": dict(value.get("kwargs", {})),
        "queue": options.get("queue") or "",
        "priority": options.get("priority"),
        "expires": expires if isinstance(expires, datetime.datetime) else None,
        "expire_seconds": None if expires is None else _expire_seconds(expires),
        "catch_up": value.get("catch_up", schedules.CATCH_UP_ONCE),
        "description": str(value.get("description", "")),
        "enabled": bool(value.get("enabled", True)),
        **_schedule_fields(value["schedule"]),
    }


def _expire_seconds(expires: Any) -> int | None:
    if isinstance(expires, datetime.datetime):
        return None
    seconds = expires.total_seconds() if isinstance(expires, datetime.timedelta) else expires
    return max(1, round(float(seconds)))


def _schedule_fields(schedule: Any) -> dict[str, Any]:
    """The four schedule foreign keys, exactly one set, for a schedule from settings."""
    found: dict[str, Any] = {"interval": None, "crontab": None, "solar": None, "clocked": None}
    if isinstance(schedule, schedules.Crontab):
        found["crontab"] = periodic.schedule_row(CrontabSchedule, **schedule.fields())
    elif isinstance(schedule, schedules.Solar):
        found["solar"] = periodic.schedule_row(
            SolarSchedule,
            event=schedule.event,
            latitude=_degrees(schedule.latitude),
            longitude=_degrees(schedule.longitude),
        )
    elif isinstance(schedule, schedules.Clocked):
        found["clocked"] = periodic.schedule_row(ClockedSchedule, clocked_time=schedule.at)
    elif isinstance(schedule, schedules.Interval):
        every, period = _interval(schedule.run_every)
        found["interval"] = periodic.schedule_row(IntervalSchedule, every=every, period=period)
    elif isinstance(schedule, datetime.timedelta | int | float) and not isinstance(schedule, bool):
        every, period = _interval(schedule)
        found["interval"] = periodic.schedule_row(IntervalSchedule, every=every, period=period)
    else:
        raise TypeError(
            f"schedule must be crontab(...), schedule(run_every), seconds, a timedelta, "
            f"solar(...) or schedules.Clocked(...), not {schedule!r}"
        )
    return found


def _interval(value: datetime.timedelta | float) -> tuple[int, str]:
    """(every, period) for an interval: the largest period it is a whole number of."""
    step = value if isinstance(value, datetime.timedelta) else datetime.timedelta(seconds=value)
    micros = step // datetime.timedelta(microseconds=1)
    if micros <= 0:
        raise ValueError(f"an interval must be positive, not {value!r}")
    for period, size in IntervalSchedule.PERIOD_MICROSECONDS.items():
        if micros % size == 0:
            return micros // size, period
    raise AssertionError("every interval divides by 1 microsecond")  # pragma: no cover


def _degrees(value: float) -> decimal.Decimal:
    return decimal.Decimal(str(value)).quantize(decimal.Decimal("0.000001"))


def _alias() -> str:
    return conf.database()
