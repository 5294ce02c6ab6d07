"""Schedules: when a periodic task is due.

Every schedule answers two questions about instants (aware datetimes, compared in UTC):
``next_after(slot)``, the first slot after a given one, and ``last_at_or_before(moment)``,
the latest slot not after a moment. The scheduler computes a task's next slot from its
previous slot, never from the current time, so a timer that wakes early cannot produce a
slot twice. Crontabs are read and stepped as Celery reads and steps them
(:mod:`djqueue.core.cron`); sun events are computed with PyEphem, as Celery computes them.

One module per kind of schedule, all re-exported here (and by the documented
``djqueue.schedules``):

- :mod:`~djqueue.core.schedules.base`: the protocol, Celery's ``is_due`` questions, durations
- :mod:`~djqueue.core.schedules.crontabs`: ``crontab``, across clock changes
- :mod:`~djqueue.core.schedules.intervals`: ``schedule(run_every=...)``, intervals from a
  start, a single moment
- :mod:`~djqueue.core.schedules.sun`: ``solar`` events
- :mod:`~djqueue.core.schedules.catch_up`: what is due now, and missed slots
"""

from djqueue.core.schedules.base import UTC, CeleryChecks, Schedule, duration, schedstate
from djqueue.core.schedules.catch_up import (
    CATCH_UP_ALL,
    CATCH_UP_ONCE,
    CATCH_UP_POLICIES,
    CATCH_UP_SKIP,
    Decision,
    due,
)
from djqueue.core.schedules.crontabs import LOOKBACK, Crontab, crontab
from djqueue.core.schedules.intervals import Clocked, Every, Interval, schedule
from djqueue.core.schedules.sun import (
    SECOND,
    SOLAR_ALIASES,
    SOLAR_EVENTS,
    SOLAR_SEARCH_DAYS,
    Solar,
    solar,
)

__all__ = [
    "CATCH_UP_ALL",
    "CATCH_UP_ONCE",
    "CATCH_UP_POLICIES",
    "CATCH_UP_SKIP",
    "LOOKBACK",
    "SECOND",
    "SOLAR_ALIASES",
    "SOLAR_EVENTS",
    "SOLAR_SEARCH_DAYS",
    "UTC",
    "CeleryChecks",
    "Clocked",
    "Crontab",
    "Decision",
    "Every",
    "Interval",
    "Schedule",
    "Solar",
    "crontab",
    "due",
    "duration",
    "schedstate",
    "schedule",
    "solar",
]
