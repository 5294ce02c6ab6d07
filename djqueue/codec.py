"""The JSON codec of arguments and results.

The documented import path; the code lives in :mod:`djqueue.core.codec`.
"""

from djqueue.core.codec import *  # noqa: F403
