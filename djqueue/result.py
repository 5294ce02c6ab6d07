"""Results: ``AsyncResult`` and ``GroupResult``.

The documented import path; the code lives in :mod:`djqueue.client.result`.
"""

from djqueue.client.result import *  # noqa: F403
