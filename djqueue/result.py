"""Results: ``AsyncResult``, ``ResultSet`` and ``GroupResult``; ``allow_join_result()``.

The documented import path; the code lives in :mod:`djqueue.client.result`,
:mod:`djqueue.client.result_set` and :mod:`djqueue.client.joining`.
"""

from djqueue.client.joining import *  # noqa: F403
from djqueue.client.result import *  # noqa: F403
from djqueue.client.result_set import *  # noqa: F403
