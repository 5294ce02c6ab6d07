"""Read-only admin pages for jobs and workers. Changes go through the broker only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from djqueue.models import Job, Worker


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Shows rows; adding, editing and deleting are left to the broker."""

    # No full COUNT(*) on every page load: the job table can hold millions of rows.
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "task_name",
        "state",
        "queue",
        "priority",
        "attempt",
        "enqueued_at",
        "started_at",
        "finished_at",
        "worker",
    )
    list_filter = ("state", "queue")
    search_fields = ("=id", "task_name")
    ordering = ("-id",)
    readonly_fields = [field.name for field in Job._meta.fields]


@admin.register(Worker)
class WorkerAdmin(ReadOnlyAdmin):
    list_display = (
        "name",
        "pool",
        "concurrency",
        "queues",
        "started_at",
        "last_heartbeat",
        "stopped_at",
        "jobs_done",
    )
    ordering = ("-last_heartbeat",)
    readonly_fields = [field.name for field in Worker._meta.fields]
