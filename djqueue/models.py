"""The models (Django loads an app's models from ``<app>.models``).

The documented import path; the code lives in :mod:`djqueue.db.models`.
"""

from djqueue.db.models import *  # noqa: F403
