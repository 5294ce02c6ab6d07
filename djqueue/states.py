"""Job states.

The documented import path; the code lives in :mod:`djqueue.core.states`.
"""

from djqueue.core.states import *  # noqa: F403
