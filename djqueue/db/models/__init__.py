"""Queue state, schedules and the time series as Django models, one module per concern.

- :mod:`~djqueue.db.models.jobs`: jobs, groups and chords, limits (written by the broker)
- :mod:`~djqueue.db.models.fleet`: workers, queues, control commands and their replies
- :mod:`~djqueue.db.models.periodic`: periodic tasks, schedules and runs
- :mod:`~djqueue.db.models.series`: the time series and cumulative totals
- :mod:`~djqueue.db.models.fields`: djqueue's array column types

Every model is re-exported here, where the rest of the package imports them from (and
``djqueue.models``, the documented path Django loads an app's models from). The app
label, model names and table names do not depend on the module a model is in.
"""

from djqueue.db.models.fields import BigIntegerArrayField, IntegerArrayField, TimestampArrayField
from djqueue.db.models.fleet import Control, ControlReply, Queue, Worker
from djqueue.db.models.jobs import Group, Job, Limit, parent_expression
from djqueue.db.models.periodic import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicRun,
    PeriodicTask,
    SolarSchedule,
    aware,
)
from djqueue.db.models.series import JobHour, JobMinute, JobTotal, QueueMinute, SeriesMark

__all__ = [
    "BigIntegerArrayField",
    "ClockedSchedule",
    "Control",
    "ControlReply",
    "CrontabSchedule",
    "Group",
    "IntegerArrayField",
    "IntervalSchedule",
    "Job",
    "JobHour",
    "JobMinute",
    "JobTotal",
    "Limit",
    "PeriodicRun",
    "PeriodicTask",
    "Queue",
    "QueueMinute",
    "SeriesMark",
    "SolarSchedule",
    "TimestampArrayField",
    "Worker",
    "aware",
    "parent_expression",
]
