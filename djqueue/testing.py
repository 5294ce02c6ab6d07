"""Helpers for tests of projects using djqueue.

The documented import path; the code lives in :mod:`djqueue.integrations.testing`.
"""

from djqueue.integrations.testing import *  # noqa: F403
