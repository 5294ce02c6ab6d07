"""djqueue's exceptions.

The documented import path; the code lives in :mod:`djqueue.core.exceptions`.
"""

from djqueue.core.exceptions import *  # noqa: F403
