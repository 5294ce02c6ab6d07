"""gevent's patching, applied before Django is imported (imports only the standard library).

The documented import path; the code lives in :mod:`djqueue.runtime.gevent_patch`.
"""

from djqueue.runtime.gevent_patch import *  # noqa: F403
