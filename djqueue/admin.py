"""The admin pages (Django's admin autodiscovery imports ``djqueue.admin``).

The documented import path; the code lives in :mod:`djqueue.ops.admin`.
"""

from djqueue.ops.admin import *  # noqa: F403
