"""Signals sent around a task's life.

The documented import path; the code lives in :mod:`djqueue.core.signals`.
"""

from djqueue.core.signals import *  # noqa: F403
