"""Control and inspection of workers: ``from djqueue import control``.

The documented import path; the code lives in :mod:`djqueue.client.control`.
"""

from djqueue.client.control import *  # noqa: F403
