"""URLs a project can include: ``path("tasks/", include("djqueue.urls"))``.

The documented import path; the code lives in :mod:`djqueue.ops.urls`.
"""

from djqueue.ops.urls import *  # noqa: F403
