"""Schedules: ``crontab``, ``solar``, intervals.

The documented import path; the code lives in :mod:`djqueue.core.schedules`.
"""

from djqueue.core.schedules import *  # noqa: F403
