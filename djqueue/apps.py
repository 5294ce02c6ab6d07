"""App configuration: registers system checks, wires signals and discovers tasks."""

from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class DjqueueConfig(AppConfig):
    name = "djqueue"
    verbose_name = "Task queue"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: Django imports this module before any app's
        # models, and these modules import djqueue's models.
        from djqueue.client import (
            app,
            builtins,  # noqa: F401 - registers the builtin tasks
        )
        from djqueue.core import registry
        from djqueue.db import models, periodic
        from djqueue.ops import checks

        checks.register()
        # A saved or deleted periodic task or schedule wakes running schedulers.
        for model in (
            models.IntervalSchedule,
            models.CrontabSchedule,
            models.ClockedSchedule,
            models.SolarSchedule,
            models.PeriodicTask,
        ):
            for signal in (post_save, post_delete):
                signal.connect(
                    periodic.schedules_changed,
                    sender=model,
                    dispatch_uid=f"djqueue-beat-{model.__name__}",
                )
        registry.autodiscover()
        _discover_django_tasks()
        # Tasks declared with a Celery project's @app.task while the apps were loading:
        # in proj/celery.py (imported with the settings) and in the tasks.py modules.
        app.make_pending_tasks()


def _discover_django_tasks() -> None:
    """Register the ``@django.tasks.task`` functions that use the djqueue backend."""
    try:
        # Imported here for the same reason as above; and it fails without django.tasks.
        from djqueue.integrations import django_tasks
    except ImportError:  # Django before 6.0 has no Tasks framework
        return
    django_tasks.discover()
