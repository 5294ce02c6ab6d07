"""``djqueue.periodic.notify_changed``: tell the scheduler that schedules changed.

The documented import path; the code lives in :mod:`djqueue.db.periodic`.
"""

from djqueue.db.periodic import notify_changed

__all__ = ["notify_changed"]
