"""The backend for Django's Tasks framework: ``djqueue.backends.DjqueueBackend``.

The documented import path; the code lives in :mod:`djqueue.integrations.django_tasks`.
"""

from djqueue.integrations.django_tasks import DjqueueBackend

__all__ = ["DjqueueBackend"]
