"""App configuration: registers system checks and discovers tasks at startup."""

from __future__ import annotations

from django.apps import AppConfig


class DjqueueConfig(AppConfig):
    name = "djqueue"
    verbose_name = "Task queue"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from djqueue.core import registry
        from djqueue.ops import checks

        checks.register()
        registry.autodiscover()
