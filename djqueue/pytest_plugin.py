"""The pytest plugin (the ``pytest11`` entry point names this module).

The documented import path; the code lives in :mod:`djqueue.integrations.pytest_plugin`.
"""

from djqueue.integrations.pytest_plugin import *  # noqa: F403
