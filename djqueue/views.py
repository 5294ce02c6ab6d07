"""The health and metrics views.

The documented import path; the code lives in :mod:`djqueue.ops.views`.
"""

from djqueue.ops.views import *  # noqa: F403
